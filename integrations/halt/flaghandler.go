package halt

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/reins-oss/reins/incidents/sessions"
)

// Handler serves GET /api/v1/agents/{agent}/halted?session=ID, the kill flag
// agents poll (mount it on a pattern that names {agent}):
//
//	200 {"agent":"support-bot","session":"s-8812","halted":true,"reason":"looping",
//	     "since":"2026-11-28T02:14:00Z","scope":"agent"}
//
// scope says which flag halts the caller: "agent" (the whole agent),
// "session" (that session alone) or "" when not halted; since is null then.
//
// It answers from memory, with Cache-Control: max-age=1 (a halt must reach
// pollers within about a second) and an ETag, so a poller that sends
// If-None-Match gets an empty 304 until the state changes.
//
// It fails closed. An agent reins.yaml does not name answers 404, so a
// misspelt or removed agent's poller sees an error instead of a reassuring
// halted:false (pollers should treat any answer but 200 halted:false as
// "stop"). A known agent answers its recorded halt state whatever its
// adapter: halts verified through the other adapters raise the same flag
// (Registry mirrors them), so an agent that polls stops even when it is
// halted by Kubernetes or a webhook. Aliases answer for their agent.
//
// agents resolves a name or alias to the agent's name; nil answers for any
// name (tests and benchmarks).
//
// When flagToken is set, requests must carry "Authorization: Bearer <token>"
// (compared in constant time) or get 401.
func (f *Flags) Handler(flagToken string, agents func(nameOrAlias string) (name string, ok bool)) http.Handler {
	h := &flagHandler{flags: f, agents: agents}
	if flagToken != "" {
		h.want = []byte("Bearer " + flagToken)
	}
	return h
}

type flagHandler struct {
	flags  *Flags
	agents func(string) (string, bool)
	want   []byte // "Bearer <token>"; nil when no token is required
}

// Header values shared by every answer. net/http only reads them, and a
// later Add on the same key appends to a full slice, which copies it.
var (
	hdrJSON      = []string{"application/json"}
	hdrCache     = []string{"max-age=1"}
	hdrGetHead   = []string{"GET, HEAD"}
	hdrNoStore   = []string{"no-store"}
	hdrAuthBlank = []string{`Bearer realm="reins kill flag"`}
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (h *flagHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr["Allow"] = hdrGetHead
		writeError(w, http.StatusMethodNotAllowed, "Use GET to read the kill flag.")
		return
	}
	if h.want != nil && !h.authorized(r.Header["Authorization"]) {
		hdr["Www-Authenticate"] = hdrAuthBlank
		writeError(w, http.StatusUnauthorized, "Send the kill-flag token as Authorization: Bearer $REINS_FLAG_TOKEN.")
		return
	}
	agent := r.PathValue("agent")
	if agent == "" {
		writeError(w, http.StatusBadRequest, "Name the agent in the path: /api/v1/agents/{agent}/halted.")
		return
	}
	session, given, ok := queryValue(r.URL.RawQuery, "session")
	if !ok {
		writeError(w, http.StatusBadRequest, "The session parameter is not valid URL encoding.")
		return
	}
	if given {
		// A session reins could never have halted is a bad request, not
		// halted:false: the poller has a bug to fix, and must not go on.
		why := sessions.ValidID(session)
		if why == "" && !utf8.ValidString(session) {
			why = "session ID is not valid UTF-8"
		}
		if why != "" {
			writeError(w, http.StatusBadRequest, "The session parameter is not a session ID ("+why+
				"): send the ID your spans carry, or no session parameter for the whole agent.")
			return
		}
	}
	name := agent
	if h.agents != nil {
		var known bool
		if name, known = h.agents(agent); !known {
			writeError(w, http.StatusNotFound, "No agent named "+strconv.Quote(agent)+
				" in reins.yaml: poll with the agent's name (or an alias) as reins.yaml spells it, and treat this answer as halted.")
			return
		}
	}
	e := h.flags.state.Load().lookup(name, session)
	hdr["Content-Type"] = hdrJSON
	hdr["Cache-Control"] = hdrCache
	hdr["Etag"] = e.etag
	if inm := r.Header["If-None-Match"]; len(inm) > 0 && etagMatches(inm, e.etag[0]) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], `{"agent":`...)
	b = appendJSONString(b, agent)
	b = append(b, `,"session":`...)
	b = appendJSONString(b, session)
	b = append(b, ',')
	b = append(b, e.tail...)
	w.Write(b)
	*bp = b
	bufPool.Put(bp)
}

// authorized compares the first Authorization value with the token in
// constant time. The header map is read directly: the key is canonical.
func (h *flagHandler) authorized(values []string) bool {
	if len(values) == 0 {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(values[0]), h.want) == 1
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header()["Content-Type"] = hdrJSON
	w.Header()["Cache-Control"] = hdrNoStore
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// queryValue returns the first value of key in a raw query without building
// the url.Values map; it decodes only when the value is escaped.
func queryValue(raw, key string) (value string, given, ok bool) {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(part, "=")
		if k != key {
			continue
		}
		if needsUnescape(v) {
			dec, err := url.QueryUnescape(v)
			return dec, true, err == nil
		}
		return v, true, true
	}
	return "", false, true
}

func needsUnescape(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' || s[i] == '+' {
			return true
		}
	}
	return false
}

// etagMatches implements If-None-Match's weak comparison over every value
// and comma-separated entity tag, and "*".
func etagMatches(values []string, etag string) bool {
	for _, v := range values {
		for v != "" {
			var tag string
			tag, v, _ = strings.Cut(v, ",")
			tag = strings.TrimSpace(tag)
			tag = strings.TrimPrefix(tag, "W/")
			if tag == etag || tag == "*" {
				return true
			}
		}
	}
	return false
}

// plainJSON marks the ASCII bytes a JSON string may hold unescaped (<, >
// and & are escaped, as encoding/json does, since agent and session come
// from the request).
var plainJSON = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf && plainJSON[s[i]] {
		i++
	}
	if i == len(s) { // the common case: nothing to escape
		b = append(b, s...)
		return append(b, '"')
	}
	return append(appendEscaped(b, s, i), '"')
}

// appendEscaped appends s, whose first start bytes need no escaping.
func appendEscaped(b []byte, s string, start int) []byte {
	const hex = "0123456789abcdef"
	b = append(b, s[:start]...)
	s = s[start:]
	start = 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainJSON[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			start = i + size
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			start = i + size
		}
		i += size
	}
	return append(b, s[start:]...)
}
