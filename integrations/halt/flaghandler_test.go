package halt_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/integrations/halt"
	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/ownership"
)

const haltedPattern = "GET /api/v1/agents/{agent}/halted"

// flagServer mounts the handler as cmd/reins does.
func flagServer(t testing.TB, flags *halt.Flags, token string) *http.ServeMux {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(haltedPattern, flags.Handler(token, nil))
	mux.Handle("POST /api/v1/agents/{agent}/halted", flags.Handler(token, nil))
	return mux
}

func haltedFlags(t testing.TB) *halt.Flags {
	t.Helper()
	f := halt.NewFlags(halttest.NewFlagStore(), clock(epoch))
	ctx := context.Background()
	for _, fl := range []incidents.KillFlag{
		{Agent: "support-bot", Halted: true, Reason: `spend 12x <"baseline">`},
		{Agent: "billing-bot", Session: "s/1", Halted: true, Reason: "loop"},
		{Agent: "billing-bot", Session: "s-r", Mode: incidents.ModeRestricted, Allow: []string{"crm.read", "kb.*"}, Reason: "refunds"},
		{Agent: "rate-bot", Mode: incidents.ModeThrottled, Rate: 6, Reason: "tokens"},
		{Agent: "rate-bot", Session: "s-h", Halted: true, Mode: incidents.ModeHalted, Reason: "loop"},
	} {
		if err := f.Set(ctx, fl); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func serve(h http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestFlagHandler(t *testing.T) {
	mux := flagServer(t, haltedFlags(t), "")
	tests := []struct {
		name, method, target string
		status               int
		body                 string
	}{
		{"OKHaltedAgent", "GET", "/api/v1/agents/support-bot/halted", 200,
			`{"agent":"support-bot","session":"","halted":true,"mode":"halted","allow":[],"rate":0,"reason":"spend 12x \u003c\"baseline\"\u003e","since":"2026-11-28T02:14:00Z","scope":"agent"}` + "\n"},
		{"OKHaltedAgentAskedForSession", "GET", "/api/v1/agents/support-bot/halted?session=s-9", 200,
			`{"agent":"support-bot","session":"s-9","halted":true,"mode":"halted","allow":[],"rate":0,"reason":"spend 12x \u003c\"baseline\"\u003e","since":"2026-11-28T02:14:00Z","scope":"agent"}` + "\n"},
		{"OKHaltedSessionEscaped", "GET", "/api/v1/agents/billing-bot/halted?x=1&session=s%2F1", 200,
			`{"agent":"billing-bot","session":"s/1","halted":true,"mode":"halted","allow":[],"rate":0,"reason":"loop","since":"2026-11-28T02:14:00Z","scope":"session"}` + "\n"},
		{"OKOtherSession", "GET", "/api/v1/agents/billing-bot/halted?session=s-2", 200,
			`{"agent":"billing-bot","session":"s-2","halted":false,"mode":"running","allow":[],"rate":0,"reason":"","since":null,"scope":""}` + "\n"},
		{"OKUnknownAgentNotHalted", "GET", "/api/v1/agents/ghost/halted", 200,
			`{"agent":"ghost","session":"","halted":false,"mode":"running","allow":[],"rate":0,"reason":"","since":null,"scope":""}` + "\n"},
		{"OKRestrictedSession", "GET", "/api/v1/agents/billing-bot/halted?session=s-r", 200,
			`{"agent":"billing-bot","session":"s-r","halted":false,"mode":"restricted","allow":["crm.read","kb.*"],"rate":0,"reason":"refunds","since":"2026-11-28T02:14:00Z","scope":"session"}` + "\n"},
		{"OKThrottledAgent", "GET", "/api/v1/agents/rate-bot/halted?session=s-2", 200,
			`{"agent":"rate-bot","session":"s-2","halted":false,"mode":"throttled","allow":[],"rate":6,"reason":"tokens","since":"2026-11-28T02:14:00Z","scope":"agent"}` + "\n"},
		{"OKHaltedSessionOfThrottledAgent", "GET", "/api/v1/agents/rate-bot/halted?session=s-h", 200,
			`{"agent":"rate-bot","session":"s-h","halted":true,"mode":"halted","allow":[],"rate":0,"reason":"loop","since":"2026-11-28T02:14:00Z","scope":"session"}` + "\n"},
		{"OKHead", "HEAD", "/api/v1/agents/support-bot/halted", 200, ""},
		{"ErrBadEscape", "GET", "/api/v1/agents/support-bot/halted?session=%zz", 400,
			`{"error":"The session parameter is not valid URL encoding."}` + "\n"},
		{"ErrEmptySession", "GET", "/api/v1/agents/billing-bot/halted?session=", 400,
			`{"error":"The session parameter is not a session ID (empty session ID): send the ID your spans carry, or no session parameter for the whole agent."}` + "\n"},
		{"ErrNULInSession", "GET", "/api/v1/agents/billing-bot/halted?session=%00x", 400,
			`{"error":"The session parameter is not a session ID (session ID holds control characters): send the ID your spans carry, or no session parameter for the whole agent."}` + "\n"},
		{"ErrControlInSession", "GET", "/api/v1/agents/billing-bot/halted?session=s%0A1", 400,
			`{"error":"The session parameter is not a session ID (session ID holds control characters): send the ID your spans carry, or no session parameter for the whole agent."}` + "\n"},
		{"ErrOverlongSession", "GET", "/api/v1/agents/billing-bot/halted?session=" + strings.Repeat("s", 257), 400,
			`{"error":"The session parameter is not a session ID (session ID longer than 256 bytes): send the ID your spans carry, or no session parameter for the whole agent."}` + "\n"},
		{"ErrInvalidUTF8Session", "GET", "/api/v1/agents/billing-bot/halted?session=%FF", 400,
			`{"error":"The session parameter is not a session ID (session ID is not valid UTF-8): send the ID your spans carry, or no session parameter for the whole agent."}` + "\n"},
		{"ErrMethod", "POST", "/api/v1/agents/support-bot/halted", 405,
			`{"error":"Use GET to read the kill flag."}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(mux, tt.method, tt.target, nil)
			if w.Code != tt.status || w.Body.String() != tt.body {
				t.Errorf("got %d %s, want %d %s", w.Code, w.Body, tt.status, tt.body)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if tt.status == 200 {
				if got := w.Header().Get("Cache-Control"); got != "max-age=1" {
					t.Errorf("Cache-Control %q, want max-age=1", got)
				}
				if w.Header().Get("ETag") == "" {
					t.Error("no ETag")
				}
			}
		})
	}
	if got := serve(mux, "POST", "/api/v1/agents/x/halted", nil).Header().Get("Allow"); got != "GET, HEAD" {
		t.Errorf("Allow %q, want GET, HEAD", got)
	}
}

func TestFlagHandlerErrNoAgent(t *testing.T) {
	w := serve(haltedFlags(t).Handler("", nil), "GET", "/halted", nil)
	if w.Code != http.StatusBadRequest {
		t.Errorf("got %d, want 400 without an {agent} path value", w.Code)
	}
}

func TestFlagHandlerToken(t *testing.T) {
	mux := flagServer(t, haltedFlags(t), "poll-token")
	tests := []struct {
		name   string
		auth   []string
		status int
	}{
		{"OK", []string{"Bearer poll-token"}, 200},
		{"ErrMissing", nil, 401},
		{"ErrWrong", []string{"Bearer poll-tokem"}, 401},
		{"ErrPrefix", []string{"Bearer poll-token-and-more"}, 401},
		{"ErrNoScheme", []string{"poll-token"}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.auth != nil {
				h["Authorization"] = tt.auth
			}
			w := serve(mux, "GET", "/api/v1/agents/support-bot/halted", h)
			if w.Code != tt.status {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.status)
			}
			if tt.status == 401 {
				var e struct{ Error string }
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Errorf("401 body %q is not a JSON error", w.Body)
				}
				if w.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			}
		})
	}
}

func TestFlagHandlerETag(t *testing.T) {
	flags := haltedFlags(t)
	mux := flagServer(t, flags, "")
	const target = "/api/v1/agents/support-bot/halted"
	first := serve(mux, "GET", target, nil)
	etag := first.Header().Get("ETag")
	if len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' {
		t.Fatalf("ETag %q is not a quoted entity tag", etag)
	}
	tests := []struct {
		name   string
		inm    string
		status int
	}{
		{"NotModified", etag, 304},
		{"NotModifiedWeak", "W/" + etag, 304},
		{"NotModifiedInList", `"abc", ` + etag, 304},
		{"NotModifiedStar", "*", 304},
		{"OtherTag", `"abc"`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(mux, "GET", target, http.Header{"If-None-Match": {tt.inm}})
			if w.Code != tt.status {
				t.Fatalf("got %d, want %d", w.Code, tt.status)
			}
			if tt.status == 304 && w.Body.Len() != 0 {
				t.Errorf("304 with body %q", w.Body)
			}
			if got := w.Header().Get("ETag"); got != etag {
				t.Errorf("ETag %q, want %q", got, etag)
			}
		})
	}
	t.Run("ChangesWithState", func(t *testing.T) {
		if err := flags.Set(context.Background(), incidents.KillFlag{Agent: "support-bot", Halted: false}); err != nil {
			t.Fatal(err)
		}
		w := serve(mux, "GET", target, http.Header{"If-None-Match": {etag}})
		if w.Code != 200 || w.Header().Get("ETag") == etag {
			t.Errorf("got %d with ETag %q after the flag was lifted, want 200 and a new ETag", w.Code, w.Header().Get("ETag"))
		}
	})
	t.Run("SameAcrossReplicas", func(t *testing.T) {
		other := haltedFlags(t)
		got := serve(flagServer(t, other, ""), "GET", "/api/v1/agents/billing-bot/halted?session=s%2F1", nil).Header().Get("ETag")
		want := serve(mux, "GET", "/api/v1/agents/billing-bot/halted?session=s%2F1", nil).Header().Get("ETag")
		if got != want {
			t.Errorf("replica ETag %q, want %q", got, want)
		}
	})
}

// TestFlagHandlerAllocs keeps the polled path allocation-light.
func TestFlagHandlerAllocs(t *testing.T) {
	h := haltedFlags(t).Handler("poll-token", nil)
	r := httptest.NewRequest("GET", "/api/v1/agents/billing-bot/halted?session=s-2", nil)
	r.SetPathValue("agent", "billing-bot")
	r.Header.Set("Authorization", "Bearer poll-token")
	w := &discardWriter{h: http.Header{}}
	allocs := testing.AllocsPerRun(1000, func() {
		clear(w.h)
		h.ServeHTTP(w, r)
	})
	if w.status != 0 {
		t.Fatalf("status %d", w.status)
	}
	if allocs > 1 {
		t.Errorf("%.1f allocations per poll, want at most 1", allocs)
	}
}

func FuzzFlagHandler(f *testing.F) {
	f.Add("support-bot", "")
	f.Add("billing-bot", "s/1")
	f.Add("ghost", "s-8812")
	f.Add("a\"b\\c", "\x00\x1f<>&\u2028")
	f.Add("\xff\xfe", "é漢字")
	h := haltedFlags(f).Handler("", nil)
	f.Fuzz(func(t *testing.T, agent, session string) {
		r := httptest.NewRequest("GET", "/api/v1/agents/x/halted?session="+url.QueryEscape(session), nil)
		r.SetPathValue("agent", agent)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if agent == "" {
			if w.Code != 400 {
				t.Fatalf("empty agent: %d", w.Code)
			}
			return
		}
		if sessions.ValidID(session) != "" || !utf8.ValidString(session) {
			if w.Code != 400 {
				t.Fatalf("session %q that cannot be a session ID: %d %s, want 400", session, w.Code, w.Body)
			}
			return
		}
		if w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
		var got struct {
			Agent, Session string
			Halted         bool
		}
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("invalid JSON %q: %v", w.Body, err)
		}
		if utf8.ValidString(agent) && got.Agent != agent {
			t.Errorf("agent %q, want %q", got.Agent, agent)
		}
		if utf8.ValidString(session) && got.Session != session {
			t.Errorf("session %q, want %q", got.Session, session)
		}
		want := agent == "support-bot" || (agent == "billing-bot" && session == "s/1")
		if got.Halted != want {
			t.Errorf("halted %v, want %v", got.Halted, want)
		}
	})
}

// discardWriter is the least a ResponseWriter can be.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }

// With the agents of reins.yaml given, an unknown name is a 404 (never a
// reassuring halted:false) and an alias answers for its agent.
func TestFlagHandlerUnknownAgentIs404(t *testing.T) {
	known := func(name string) (string, bool) {
		switch name {
		case "support-bot", "support-bot-v2":
			return "support-bot", true
		}
		return "", false
	}
	mux := http.NewServeMux()
	mux.Handle(haltedPattern, haltedFlags(t).Handler("", known))
	for target, want := range map[string]int{
		"/api/v1/agents/suport-bot/halted":     http.StatusNotFound,
		"/api/v1/agents/support-bot-v2/halted": http.StatusOK,
	} {
		w := serve(mux, "GET", target, nil)
		if w.Code != want {
			t.Errorf("GET %s = %d %s, want %d", target, w.Code, w.Body, want)
		}
		if want == http.StatusOK && !strings.Contains(w.Body.String(), `"halted":true`) {
			t.Errorf("GET %s by alias: %s, want the agent's flag", target, w.Body)
		}
	}
}

// A halt verified through another adapter raises the flag pollers read, and
// its verified resume lowers it.
func TestRegistryMirrorsVerifiedHaltsInTheFlag(t *testing.T) {
	f := halttest.NewWebhook(t, "s3cret")
	flags := halt.NewFlags(halttest.NewFlagStore(), clock(epoch))
	reg := halt.NewRegistry(halt.Config{Getenv: env{"HALT_SECRET": "s3cret"}.get, Flags: flags})
	agent := &ownership.Agent{Name: "support-bot", Halt: ownership.HaltSpec{Adapter: halt.AdapterWebhook,
		Settings: map[string]string{"url": f.URL(), "secret_env": "HALT_SECRET"}}}
	ctx := context.Background()
	for _, step := range []struct {
		action   string
		sessions []string
		session  string
		want     bool
	}{
		{incidents.ActionHalt, []string{"s-1"}, "s-1", true},
		{incidents.ActionHalt, nil, "", true},
		{incidents.ActionResume, nil, "s-1", false},
	} {
		req := request(agent, step.action, step.sessions...)
		if err := reg.Do(ctx, req); err != nil {
			t.Fatal(err)
		}
		if ok, err := reg.Verify(ctx, req); !ok || err != nil {
			t.Fatalf("verify %s: %v %v", step.action, ok, err)
		}
		if got, _ := flags.Halted("support-bot", step.session); got != step.want {
			t.Errorf("after %s %v the flag says halted=%v, want %v", step.action, step.sessions, got, step.want)
		}
	}
}
