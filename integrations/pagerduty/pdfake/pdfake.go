// Package pdfake is an httptest fake of the PagerDuty APIs reins uses: the
// Events API v2 (POST /v2/enqueue) and the REST endpoints GET /oncalls and
// GET /escalation_policies/{id}. It records what it receives and answers in
// PagerDuty's formats, including programmable failures. Its URL serves as both
// PAGERDUTY_EVENTS_URL and PAGERDUTY_API_URL.
//
// It also signs v3 webhook bodies (SignV3) and builds them (WebhookBody), so a
// test can play PagerDuty calling reins back.
package pdfake

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Link is one entry of an event's links.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// Payload is the payload of a trigger event.
type Payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp"`
	Component     string         `json:"component"`
	Group         string         `json:"group"`
	Class         string         `json:"class"`
	CustomDetails map[string]any `json:"custom_details"`
}

// ReceivedEvent is one Events API v2 request as the fake decoded it.
type ReceivedEvent struct {
	RoutingKey string   `json:"routing_key"`
	Action     string   `json:"event_action"`
	DedupKey   string   `json:"dedup_key"`
	Client     string   `json:"client"`
	ClientURL  string   `json:"client_url"`
	Payload    *Payload `json:"payload"`
	Links      []Link   `json:"links"`

	Raw    []byte    `json:"-"` // the body as received
	Status int       `json:"-"` // what the fake answered
	At     time.Time `json:"-"`
}

// Accepted says whether the fake answered 202.
func (e ReceivedEvent) Accepted() bool { return e.Status == http.StatusAccepted }

type failure struct {
	status     int
	retryAfter string
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	URL string

	srv *httptest.Server

	mu          sync.Mutex
	events      []ReceivedEvent
	failEvents  []failure
	failAPI     []failure
	onCall      map[string][]string // escalation policy -> e-mails
	policies    map[string]bool
	routingKeys map[string]bool // nil: any non-blank key is accepted
	apiToken    string
	apiRequests []string
}

// New starts a fake; Close it when done.
func New() *Server {
	s := &Server{onCall: map[string][]string{}, policies: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/enqueue", s.enqueue)
	mux.HandleFunc("GET /oncalls", s.listOnCalls)
	mux.HandleFunc("GET /escalation_policies/{id}", s.getEscalationPolicy)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// FailNext makes the next n Events API requests fail with status, sending a
// Retry-After header when retryAfter is not "". They are still recorded.
func (s *Server) FailNext(n int, status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failEvents = append(s.failEvents, failure{status: status, retryAfter: retryAfter})
	}
}

// FailAPINext makes the next n REST requests fail with status.
func (s *Server) FailAPINext(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failAPI = append(s.failAPI, failure{status: status})
	}
}

// SetOnCall sets who is on call for an escalation policy, which then exists.
func (s *Server) SetOnCall(policy string, emails ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCall[policy] = append([]string(nil), emails...)
	s.policies[policy] = true
}

// AddEscalationPolicy makes an escalation policy exist, with no one on call.
func (s *Server) AddEscalationPolicy(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policies[id] = true
}

// SetRoutingKeys makes the Events API refuse any other routing key with
// PagerDuty's 400 "Invalid routing key". By default any non-blank key passes.
func (s *Server) SetRoutingKeys(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routingKeys = map[string]bool{}
	for _, k := range keys {
		s.routingKeys[k] = true
	}
}

// RequireAPIToken makes the REST endpoints answer 401 unless the request
// carries "Authorization: Token token=<token>". By default any token passes.
func (s *Server) RequireAPIToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiToken = token
}

// Events returns every Events API request received, in order.
func (s *Server) Events() []ReceivedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ReceivedEvent(nil), s.events...)
}

// Count returns how many events with this action and dedup key were accepted.
func (s *Server) Count(action, dedupKey string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.events {
		if e.Accepted() && e.Action == action && e.DedupKey == dedupKey {
			n++
		}
	}
	return n
}

// Triggers returns how many triggers for dedupKey were accepted.
func (s *Server) Triggers(dedupKey string) int { return s.Count("trigger", dedupKey) }

// APIRequests returns the REST requests received, as "METHOD /path?query".
func (s *Server) APIRequests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.apiRequests...)
}

// enqueue answers like the Events API v2.
func (s *Server) enqueue(w http.ResponseWriter, r *http.Request) {
	// PagerDuty refuses events over 512 KB; read a little past that.
	raw, readErr := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	ev := ReceivedEvent{Raw: raw, At: time.Now().UTC()}

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failEvents) > 0 {
		f := s.failEvents[0]
		s.failEvents = s.failEvents[1:]
		_ = json.Unmarshal(raw, &ev)
		ev.Status = f.status
		s.events = append(s.events, ev)
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		writeJSON(w, f.status, map[string]any{"status": http.StatusText(f.status), "message": "Programmed failure"})
		return
	}
	status, answer := validate(raw, readErr, &ev)
	if status == http.StatusAccepted && s.routingKeys != nil && !s.routingKeys[ev.RoutingKey] {
		status, answer = http.StatusBadRequest, map[string]any{
			"status": "invalid event", "message": "Event object is invalid", "errors": []string{"Invalid routing key"}}
	}
	ev.Status = status
	s.events = append(s.events, ev)
	writeJSON(w, status, answer)
}

// validate checks an event as PagerDuty does and builds the answer.
func validate(raw []byte, readErr error, ev *ReceivedEvent) (int, map[string]any) {
	invalid := func(errs ...string) (int, map[string]any) {
		return http.StatusBadRequest, map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": errs}
	}
	if readErr != nil {
		return invalid("Could not read the request body")
	}
	if err := json.Unmarshal(raw, ev); err != nil {
		return http.StatusBadRequest, map[string]any{"status": "invalid request", "message": "Invalid JSON", "errors": []string{err.Error()}}
	}
	switch {
	case ev.RoutingKey == "":
		return invalid("'routing_key' is missing or blank")
	case ev.Action != "trigger" && ev.Action != "acknowledge" && ev.Action != "resolve":
		return invalid("'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')")
	case len(ev.DedupKey) > 255:
		return invalid("Length of 'dedup_key' is too long (should be at most 255 characters)")
	case ev.Action != "trigger" && ev.DedupKey == "":
		return invalid("'dedup_key' is missing or blank")
	case ev.Action == "trigger" && ev.Payload == nil:
		return invalid("'payload' is missing or blank")
	}
	if ev.Action == "trigger" {
		if errs := validatePayload(ev.Payload); len(errs) > 0 {
			return invalid(errs...)
		}
		if ev.DedupKey == "" {
			ev.DedupKey = fmt.Sprintf("%x", sha256.Sum256(raw))[:32]
		}
	}
	return http.StatusAccepted, map[string]any{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey}
}

func validatePayload(p *Payload) []string {
	var errs []string
	if p.Summary == "" {
		errs = append(errs, "'payload.summary' is missing or blank")
	} else if len([]rune(p.Summary)) > 1024 {
		errs = append(errs, "Length of 'payload.summary' is too long (should be at most 1024 characters)")
	}
	if p.Source == "" {
		errs = append(errs, "'payload.source' is missing or blank")
	}
	switch p.Severity {
	case "critical", "error", "warning", "info":
	default:
		errs = append(errs, "'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')")
	}
	return errs
}

// restAuth records a REST request and answers its failure, if any; it
// returns false when it has answered.
func (s *Server) restAuth(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiRequests = append(s.apiRequests, r.Method+" "+r.URL.RequestURI())
	if len(s.failAPI) > 0 {
		f := s.failAPI[0]
		s.failAPI = s.failAPI[1:]
		writeAPIError(w, f.status, http.StatusText(f.status), 0)
		return false
	}
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Token token=") || auth == "Token token=" ||
		(s.apiToken != "" && auth != "Token token="+s.apiToken) {
		writeAPIError(w, http.StatusUnauthorized, "Unauthorized", 2006)
		return false
	}
	return true
}

// listOnCalls answers GET /oncalls for escalation_policy_ids[], paginated by
// limit and offset like PagerDuty.
func (s *Server) listOnCalls(w http.ResponseWriter, r *http.Request) {
	if !s.restAuth(w, r) {
		return
	}
	q := r.URL.Query()
	limit, offset := intParam(q.Get("limit"), 25), intParam(q.Get("offset"), 0)
	withUsers := false
	for _, inc := range q["include[]"] {
		withUsers = withUsers || inc == "users"
	}
	var all []map[string]any
	s.mu.Lock()
	for _, policy := range q["escalation_policy_ids[]"] {
		for i, email := range s.onCall[policy] {
			user := map[string]any{"id": userID(email), "type": "user_reference", "summary": email}
			if withUsers {
				user = map[string]any{"id": userID(email), "type": "user", "summary": email, "name": email, "email": email}
			}
			all = append(all, map[string]any{
				"user":              user,
				"escalation_policy": map[string]any{"id": policy, "type": "escalation_policy_reference"},
				"escalation_level":  i + 1,
				"start":             nil,
				"end":               nil,
			})
		}
	}
	s.mu.Unlock()
	page := []map[string]any{}
	if offset < len(all) {
		page = all[offset:min(offset+limit, len(all))]
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"oncalls": page, "limit": limit, "offset": offset, "more": offset+len(page) < len(all), "total": nil,
	})
}

// getEscalationPolicy answers GET /escalation_policies/{id}.
func (s *Server) getEscalationPolicy(w http.ResponseWriter, r *http.Request) {
	if !s.restAuth(w, r) {
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	ok := s.policies[id]
	s.mu.Unlock()
	if !ok {
		writeAPIError(w, http.StatusNotFound, "Not Found", 2100)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"escalation_policy": map[string]any{
		"id": id, "type": "escalation_policy", "summary": id, "name": id, "num_loops": 0,
	}})
}

// SignV3 returns the X-PagerDuty-Signature value PagerDuty would send for body.
func SignV3(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// WebhookBody builds a v3 webhook for an incident event such as
// "incident.acknowledged", in PagerDuty's format.
func WebhookBody(eventType, incidentKey, agent string, at time.Time) []byte {
	status := map[string]string{"incident.acknowledged": "acknowledged", "incident.resolved": "resolved"}[eventType]
	body, _ := json.Marshal(map[string]any{"event": map[string]any{
		"id":            fmt.Sprintf("01%X", at.UnixNano()),
		"event_type":    eventType,
		"resource_type": "incident",
		"occurred_at":   at.UTC().Format("2006-01-02T15:04:05.000Z"),
		"agent": map[string]any{
			"html_url": "https://acme.pagerduty.com/users/PLH1HKV", "id": "PLH1HKV",
			"self": "https://api.pagerduty.com/users/PLH1HKV", "summary": agent, "type": "user_reference",
		},
		"client": nil,
		"data": map[string]any{
			"id": "PGR0VU2", "type": "incident", "self": "https://api.pagerduty.com/incidents/PGR0VU2",
			"html_url": "https://acme.pagerduty.com/incidents/PGR0VU2", "number": 2,
			"status": cmp.Or(status, "triggered"), "incident_key": incidentKey,
			"created_at": at.UTC().Add(-time.Minute).Format(time.RFC3339), "title": "reins page",
			"urgency": "high", "resolve_reason": nil,
		},
	}})
	return body
}

func writeAPIError(w http.ResponseWriter, status int, msg string, code int) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "code": code, "errors": []string{}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func intParam(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return def
	}
	return n
}

func userID(email string) string {
	return "P" + strings.ToUpper(fmt.Sprintf("%x", sha256.Sum256([]byte(email)))[:6])
}

// ClearFailures forgets every programmed failure.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failEvents, s.failAPI = nil, nil
}
