package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/reins-oss/reins/incidents"
)

// The kill flag fails closed: an agent reins.yaml does not name is a 404,
// and every known agent answers its recorded halt state for the session
// asked about, whatever its adapter (support-bot halts through a webhook).
func TestKillFlagFailsClosed(t *testing.T) {
	e := startTestMain(t, testOptions{})
	poll := func(path string) (int, bool) {
		t.Helper()
		status, body := e.do(http.MethodGet, "/api/v1/agents/"+path, nil, nil)
		var got struct{ Halted bool }
		if status == http.StatusOK {
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%s: %s", path, body)
			}
		}
		return status, got.Halted
	}
	want := func(what, path string, halted bool) {
		t.Helper()
		if status, got := poll(path); status != http.StatusOK || got != halted {
			t.Errorf("%s: GET %s = %d halted:%v, want 200 halted:%v", what, path, status, got, halted)
		}
	}

	if status, body := e.do(http.MethodGet, "/api/v1/agents/no-such-bot/halted", nil, nil); status != http.StatusNotFound ||
		!strings.Contains(string(body), "reins.yaml") {
		t.Errorf("unknown agent: got %d %s, want 404 naming reins.yaml", status, body)
	}
	want("never halted", "support-bot/halted", false)

	halt := func(action string, sessions ...string) {
		t.Helper()
		body := map[string]any{"reason": "runaway", "actor": "ops", "sessions": sessions}
		if status, b := e.api(http.MethodPost, "/agents/support-bot/"+action, body); status != http.StatusOK ||
			!strings.Contains(string(b), `"verified"`) {
			t.Fatalf("%s %v: %d %s", action, sessions, status, b)
		}
	}
	halt("halt", "s-1")
	want("the halted session", "support-bot/halted?session=s-1", true)
	want("another session", "support-bot/halted?session=s-2", false)
	want("no session", "support-bot/halted", false)

	halt("halt")
	want("whole agent, any session", "support-bot/halted?session=s-2", true)
	want("whole agent", "support-bot/halted", true)
	want("whole agent by alias", "support-bot-v2/halted", true)

	halt("resume")
	want("resumed", "support-bot/halted", false)
	want("resumed session", "support-bot/halted?session=s-1", false)
}

// A halt recorded as verified whose flag is down (recorded before halts
// through other adapters were mirrored in the flag) raises the flag when
// reins starts: the poll answers the recorded state.
func TestRecordedHaltRaisesTheFlagAtStart(t *testing.T) {
	e := startTestMain(t, testOptions{})
	if status, b := e.api(http.MethodPost, "/agents/support-bot/halt", map[string]any{"reason": "runaway", "actor": "ops"}); status != http.StatusOK {
		t.Fatalf("halt: %d %s", status, b)
	}
	// As before the upgrade: the halt is recorded, the flag never raised.
	if err := e.Main.Flags.Set(t.Context(), incidents.KillFlag{Agent: "support-bot"}); err != nil {
		t.Fatal(err)
	}
	e.restart()
	_, body := e.do(http.MethodGet, "/api/v1/agents/support-bot/halted", nil, nil)
	if !strings.Contains(string(body), `"halted":true`) || !strings.Contains(string(body), "runaway") {
		t.Errorf("after a restart the poll says %s, want the recorded halt", body)
	}
}
