package halttest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// WebhookMessage is what reins POSTs to a control endpoint, as the
// endpoint's author reads docs/halt-webhook.md.
type WebhookMessage struct {
	Action   string       `json:"action"`
	Agent    string       `json:"agent"`
	Sessions []string     `json:"sessions"`
	Allow    []string     `json:"allow,omitempty"`
	Rate     int          `json:"rate,omitempty"`
	Incident int64        `json:"incident"`
	Reason   string       `json:"reason"`
	Actor    WebhookActor `json:"actor"`
}

// WebhookActor is who asked.
type WebhookActor struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Webhook fakes an agent's halt control endpoint (docs/halt-webhook.md). It
// checks every signature against its secret and a 5-minute window, answers
// 401 to a bad one, keeps the halt state per agent, and answers status.
type Webhook struct {
	server
	secret []byte
	now    func() time.Time

	smu      sync.Mutex
	messages []WebhookMessage
	bad      int
	halted   map[string]bool
	sessions map[string][]string
	rungs    map[string]Rung            // agent-wide restrict/throttle
	own      map[string]map[string]Rung // per agent, sessions restricted or throttled on their own
	noRungs  bool                       // answer 501 to restrict and throttle
}

// Rung is a restriction or a throttle as a control endpoint keeps it.
type Rung struct {
	Mode  string   `json:"mode"`
	Allow []string `json:"allow,omitempty"`
	Rate  int      `json:"rate,omitempty"`
}

// RefuseRungs makes the endpoint answer 501 Not Implemented to restrict and
// throttle, as one that only halts does.
func (f *Webhook) RefuseRungs(refuse bool) {
	f.smu.Lock()
	defer f.smu.Unlock()
	f.noRungs = refuse
}

// Rung returns the restriction or throttle of agent ("" session) or of one
// of its sessions, and whether there is one.
func (f *Webhook) Rung(agent, session string) (Rung, bool) {
	f.smu.Lock()
	defer f.smu.Unlock()
	if session == "" {
		r, ok := f.rungs[agent]
		return r, ok
	}
	r, ok := f.own[agent][session]
	return r, ok
}

// NewWebhook starts a control endpoint fake accepting signatures made with
// secret, at URL()+"/" or any path below it.
func NewWebhook(t testing.TB, secret string) *Webhook {
	t.Helper()
	f := &Webhook{secret: []byte(secret), now: time.Now, halted: map[string]bool{}, sessions: map[string][]string{},
		rungs: map[string]Rung{}, own: map[string]map[string]Rung{}}
	f.start(t, false, f.handle)
	return f
}

// SetNow replaces the clock the signature window is checked against.
func (f *Webhook) SetNow(now func() time.Time) {
	f.smu.Lock()
	defer f.smu.Unlock()
	f.now = now
}

// Messages returns the validly signed messages received, in order.
func (f *Webhook) Messages() []WebhookMessage {
	f.smu.Lock()
	defer f.smu.Unlock()
	return append([]WebhookMessage(nil), f.messages...)
}

// BadSignatures counts requests refused for their signature.
func (f *Webhook) BadSignatures() int {
	f.smu.Lock()
	defer f.smu.Unlock()
	return f.bad
}

// State returns whether agent is halted as a whole and its halted sessions.
func (f *Webhook) State(agent string) (halted bool, sessions []string) {
	f.smu.Lock()
	defer f.smu.Unlock()
	return f.halted[agent], slices.Clone(f.sessions[agent])
}

func (f *Webhook) handle(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Method != http.MethodPost {
		f.reject(w, r, "method %s, want POST", r.Method)
		return
	}
	if !f.expectHeader(w, r, "Content-Type", "application/json") {
		return
	}
	f.smu.Lock()
	now := f.now()
	f.smu.Unlock()
	if err := VerifySignature(f.secret, r.Header.Get("Reins-Signature"), body, now, 5*time.Minute); err != nil {
		f.smu.Lock()
		f.bad++
		f.smu.Unlock()
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": err.Error()})
		return
	}
	var m WebhookMessage
	if err := decodeStrict(body, &m); err != nil {
		f.reject(w, r, "body %s: %v", body, err)
		return
	}
	if m.Agent == "" || m.Sessions == nil || m.Actor.Kind == "" || m.Actor.ID == "" {
		f.reject(w, r, "body %s lacks agent, sessions (an array) or actor", body)
		return
	}
	f.smu.Lock()
	defer f.smu.Unlock()
	f.messages = append(f.messages, m)
	switch m.Action {
	case "halt", "resume":
		if f.faulty() != FaultWrongState {
			f.apply(m)
		}
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	case "restrict", "throttle":
		if f.noRungs {
			writeJSON(w, http.StatusNotImplemented, map[string]string{"error": m.Action + " is not implemented here"})
			return
		}
		if (m.Action == "restrict" && len(m.Allow) == 0) || (m.Action == "throttle" && m.Rate <= 0) {
			f.reject(w, r, "%s without its parameter: %s", m.Action, body)
			return
		}
		if f.faulty() != FaultWrongState {
			f.applyRung(m)
		}
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	case "status":
		sessions := append([]string{}, f.sessions[m.Agent]...)
		st := map[string]any{"halted": f.halted[m.Agent], "sessions": sessions, "mode": "running"}
		if f.halted[m.Agent] {
			st["mode"] = "halted"
		} else if r, ok := f.rungs[m.Agent]; ok {
			st["mode"], st["allow"], st["rate"] = r.Mode, r.Allow, r.Rate
		}
		contained := map[string]Rung{}
		for id, r := range f.own[m.Agent] {
			contained[id] = r
		}
		for _, id := range sessions {
			contained[id] = Rung{Mode: "halted"}
		}
		st["contained"] = contained
		writeJSON(w, http.StatusOK, st)
	case "drill":
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	default:
		f.reject(w, r, "unknown action %q", m.Action)
	}
}

// apply changes the state as a control endpoint must (f.smu held).
func (f *Webhook) apply(m WebhookMessage) {
	switch {
	case m.Action == "halt" && len(m.Sessions) == 0:
		f.halted[m.Agent] = true
		delete(f.rungs, m.Agent)
	case m.Action == "halt":
		for _, s := range m.Sessions {
			if !slices.Contains(f.sessions[m.Agent], s) {
				f.sessions[m.Agent] = append(f.sessions[m.Agent], s)
			}
			delete(f.own[m.Agent], s)
		}
	case len(m.Sessions) == 0: // resume everything
		f.halted[m.Agent] = false
		f.sessions[m.Agent] = nil
		delete(f.rungs, m.Agent)
		delete(f.own, m.Agent)
	default:
		f.sessions[m.Agent] = slices.DeleteFunc(f.sessions[m.Agent], func(s string) bool {
			return slices.Contains(m.Sessions, s)
		})
		for _, s := range m.Sessions {
			delete(f.own[m.Agent], s)
		}
	}
}

// applyRung restricts or throttles the agent or its sessions (f.smu held).
func (f *Webhook) applyRung(m WebhookMessage) {
	r := Rung{Mode: "restricted", Allow: m.Allow}
	if m.Action == "throttle" {
		r = Rung{Mode: "throttled", Rate: m.Rate}
	}
	if len(m.Sessions) == 0 {
		f.halted[m.Agent] = false
		f.rungs[m.Agent] = r
		return
	}
	if f.own[m.Agent] == nil {
		f.own[m.Agent] = map[string]Rung{}
	}
	for _, s := range m.Sessions {
		f.sessions[m.Agent] = slices.DeleteFunc(f.sessions[m.Agent], func(x string) bool { return x == s })
		f.own[m.Agent][s] = r
	}
}

// VerifySignature checks a Reins-Signature header the way a control endpoint
// should (docs/halt-webhook.md): the timestamp within tolerance of now, and
// any v1 equal, in constant time, to the HMAC-SHA256 of "<t>.<body>".
func VerifySignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errors.New("malformed Reins-Signature header")
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return errors.New("Reins-Signature timestamp outside the tolerance")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return errors.New("Reins-Signature does not match")
}
