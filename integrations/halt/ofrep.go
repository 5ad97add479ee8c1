package halt

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"hash/fnv"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sessions"
)

// OFREP serves the containment state over the OpenFeature Remote Evaluation
// Protocol (github.com/open-feature/protocol, service/openapi.yaml), so an
// agent reads reins' decision with any OpenFeature SDK's stock OFREP
// provider:
//
//	POST /ofrep/v1/evaluate/flags/{key}   one agent: key is its name or alias
//	POST /ofrep/v1/evaluate/flags         every agent (bulk), with ETag and If-None-Match
//
// The evaluation context's targetingKey is the session; without one the
// answer is the agent's own (agent-wide) state. The value is a string, the
// mode (running, throttled, restricted, halted), also the variant; metadata
// carries the parameters: allow (the allowed tool globs, comma-separated:
// OFREP metadata values are primitives), rate, halted, scope, reason, since.
//
//	200 {"key":"support-bot","value":"restricted","variant":"restricted","reason":"TARGETING_MATCH",
//	     "metadata":{"mode":"restricted","allow":"salesforce.read,zendesk.*","rate":0,"halted":false,
//	                 "scope":"session","reason":"tool_scope","since":"2026-11-28T02:14:00Z"}}
//
// It fails closed as the kill flag does: an unknown key is 404 FLAG_NOT_FOUND
// and a malformed request 400 PARSE_ERROR or INVALID_CONTEXT, so the SDK
// returns the caller's default (which should mean "stop") with an error,
// never a value meaning "go on". With a flag token set, requests need
// "Authorization: Bearer <token>" or get 401 with no body, as the protocol
// says.
type OFREP struct {
	flags  *Flags
	agents func(nameOrAlias string) (string, bool)
	names  func() []string // every agent's name, for bulk evaluation
	want   []byte          // "Bearer <token>"; nil when no token is required
}

// OFREP returns the OFREP handler on f. agents resolves a name or alias
// (nil: any name is an agent); names lists the agents for bulk evaluation.
func (f *Flags) OFREP(flagToken string, agents func(string) (string, bool), names func() []string) *OFREP {
	o := &OFREP{flags: f, agents: agents, names: names}
	if flagToken != "" {
		o.want = []byte("Bearer " + flagToken)
	}
	return o
}

// Evaluate answers POST /ofrep/v1/evaluate/flags/{key}.
func (o *OFREP) Evaluate() http.Handler { return http.HandlerFunc(o.evaluate) }

// Bulk answers POST /ofrep/v1/evaluate/flags.
func (o *OFREP) Bulk() http.Handler { return http.HandlerFunc(o.bulk) }

// OFREP error codes (OpenFeature's error codes, as the protocol uses them).
const (
	ofrepParseError     = "PARSE_ERROR"
	ofrepInvalidContext = "INVALID_CONTEXT"
	ofrepFlagNotFound   = "FLAG_NOT_FOUND"
	ofrepGeneral        = "GENERAL"
)

// maxOFREPBody bounds an evaluation request: a context is small.
const maxOFREPBody = 64 << 10

var (
	hdrPost     = []string{"POST"}
	hdrOFREPWWW = []string{`Bearer realm="reins containment flag"`}
)

func (o *OFREP) admit(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header()["Allow"] = hdrPost
		ofrepError(w, http.StatusMethodNotAllowed, "", ofrepGeneral, "Use POST to evaluate a flag over OFREP.")
		return false
	}
	if o.want != nil {
		v := r.Header["Authorization"]
		if len(v) == 0 || subtle.ConstantTimeCompare([]byte(v[0]), o.want) != 1 {
			// 401 has no body in the protocol: the SDK maps the status.
			w.Header()["Www-Authenticate"] = hdrOFREPWWW
			w.Header()["Cache-Control"] = hdrNoStore
			w.WriteHeader(http.StatusUnauthorized)
			return false
		}
	}
	return true
}

func (o *OFREP) evaluate(w http.ResponseWriter, r *http.Request) {
	if !o.admit(w, r) {
		return
	}
	key := r.PathValue("key")
	session, code, msg := readContext(r)
	if code != "" {
		ofrepError(w, http.StatusBadRequest, key, code, msg)
		return
	}
	name, ok := o.resolve(key)
	if !ok {
		ofrepError(w, http.StatusNotFound, key, ofrepFlagNotFound, "No agent named "+strconv.Quote(key)+
			" in reins.yaml: use the agent's name (or an alias) as the flag key, and treat this error as halted.")
		return
	}
	e := o.flags.state.Load().lookup(name, session)
	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], `{"key":`...)
	b = appendJSONString(b, key)
	b = appendEvaluation(b, e)
	b = append(b, ",\"cacheable\":false}\n"...)
	w.Header()["Content-Type"] = hdrJSON
	w.Header()["Cache-Control"] = hdrNoStore
	w.Write(b)
	*bp = b
	bufPool.Put(bp)
}

// appendEvaluation appends everything of a success after the key (without
// the closing brace): value, variant, reason and metadata.
func appendEvaluation(b []byte, e *flagEntry) []byte {
	c := e.mode
	if c.Mode == "" {
		c = incidents.Running
	}
	scope, reason := "", "STATIC"
	if !c.IsRunning() {
		scope = "agent"
		if e.flag.Session != "" {
			scope, reason = "session", "TARGETING_MATCH"
		}
	}
	b = append(b, `,"value":`...)
	b = appendJSONString(b, c.Mode)
	b = append(b, `,"variant":`...)
	b = appendJSONString(b, c.Mode)
	b = append(b, `,"reason":"`...)
	b = append(b, reason...)
	b = append(b, `","metadata":{"mode":`...)
	b = appendJSONString(b, c.Mode)
	b = append(b, `,"allow":`...)
	b = appendJSONString(b, strings.Join(c.Allow, ","))
	b = append(b, `,"rate":`...)
	b = strconv.AppendInt(b, int64(c.Rate), 10)
	b = append(b, `,"halted":`...)
	b = strconv.AppendBool(b, c.Mode == incidents.ModeHalted)
	b = append(b, `,"scope":`...)
	b = appendJSONString(b, scope)
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, e.flag.Reason)
	if !c.IsRunning() {
		b = append(b, `,"since":"`...)
		b = e.flag.UpdatedAt.UTC().AppendFormat(b, time.RFC3339)
		b = append(b, '"')
	}
	return append(b, '}')
}

func (o *OFREP) bulk(w http.ResponseWriter, r *http.Request) {
	if !o.admit(w, r) {
		return
	}
	session, code, msg := readContext(r)
	if code != "" {
		ofrepError(w, http.StatusBadRequest, "", code, msg)
		return
	}
	var names []string
	if o.names != nil {
		names = slices.Sorted(slices.Values(o.names()))
	}
	st := o.flags.state.Load()
	b := []byte(`{"flags":[`)
	for i, name := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"key":`...)
		b = appendJSONString(b, name)
		b = appendEvaluation(b, st.lookup(name, session))
		b = append(b, '}')
	}
	b = append(b, "]}\n"...)
	// The body is the whole answer for this context: hashing it keeps the
	// ETag equal across replicas and changes it with any flag.
	h := fnv.New64a()
	h.Write(b)
	etag := `"` + strconv.FormatUint(h.Sum64(), 16) + `"`
	w.Header()["Etag"] = []string{etag}
	w.Header()["Cache-Control"] = hdrNoStore
	if inm := r.Header["If-None-Match"]; len(inm) > 0 && etagMatches(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header()["Content-Type"] = hdrJSON
	w.Write(b)
}

func (o *OFREP) resolve(key string) (string, bool) {
	if key == "" {
		return "", false
	}
	if o.agents == nil {
		return key, true
	}
	return o.agents(key)
}

// readContext reads the request's evaluation context and returns its
// targetingKey (the session, "" when absent), or an OFREP error code and
// message. An empty body is an empty context.
func readContext(r *http.Request) (session, code, msg string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxOFREPBody+1))
	if err != nil {
		return "", ofrepParseError, "The request body could not be read."
	}
	if len(body) > maxOFREPBody {
		return "", ofrepParseError, "The request body is over 64 KiB: send only the evaluation context."
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return "", "", ""
	}
	var req struct {
		Context json.RawMessage `json:"context"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return "", ofrepParseError, "The body is not a JSON object {\"context\":{…}}: " + err.Error()
	}
	ctx := bytes.TrimSpace(req.Context)
	if len(ctx) == 0 || string(ctx) == "null" {
		return "", "", ""
	}
	if ctx[0] != '{' {
		return "", ofrepInvalidContext, "context must be a JSON object."
	}
	var c struct {
		TargetingKey json.RawMessage `json:"targetingKey"`
	}
	if err := json.Unmarshal(ctx, &c); err != nil {
		return "", ofrepInvalidContext, "context is not a valid object: " + err.Error()
	}
	tk := bytes.TrimSpace(c.TargetingKey)
	if len(tk) == 0 || string(tk) == "null" {
		return "", "", ""
	}
	if err := json.Unmarshal(tk, &session); err != nil {
		return "", ofrepInvalidContext, "targetingKey must be a string: the session ID."
	}
	if session == "" {
		return "", "", ""
	}
	// As the kill flag's ?session=: a targetingKey reins could never have
	// contained is the caller's bug, answered with an error (the SDK's
	// default, stop), never "running". The decoder turns bytes that are not
	// UTF-8 into U+FFFD, so they are looked for in the raw JSON.
	why := sessions.ValidID(session)
	if why == "" && !utf8.Valid(tk) {
		why = "session ID is not valid UTF-8"
	}
	if why != "" {
		return "", ofrepInvalidContext, "targetingKey is not a session ID (" + why + "): send the ID your spans carry, or none for the whole agent."
	}
	return session, "", ""
}

// ofrepError writes an OFREP failure: {"key","errorCode","errorDetails"}
// (the key left out where the protocol has none: bulk and general errors).
func ofrepError(w http.ResponseWriter, status int, key, code, details string) {
	w.Header()["Content-Type"] = hdrJSON
	w.Header()["Cache-Control"] = hdrNoStore
	w.WriteHeader(status)
	body := map[string]string{"errorCode": code, "errorDetails": details}
	if key != "" {
		body["key"] = key
	}
	if status >= 500 || status == http.StatusMethodNotAllowed {
		body = map[string]string{"errorDetails": details}
	}
	json.NewEncoder(w).Encode(body)
}
