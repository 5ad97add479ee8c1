package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// The web view's session page draws the record reins stored from the agent's
// telemetry, not a stand-in: one bar per step, the tool calls named.
func TestWebSessionPageShowsTheStoredRecord(t *testing.T) {
	e := startTestMain(t, testOptions{Env: map[string]string{
		"REINS_WEB_AUTH": "proxy", "REINS_WEB_USER_HEADER": "X-Forwarded-Email",
		"REINS_WEB_TRUSTED_PROXIES": "127.0.0.1, ::1",
	}})
	seedSession(t, e, "s-web-1", 30)
	signedIn := http.Header{"X-Forwarded-Email": {"alice@example.com"}}

	status, body := e.do(http.MethodGet, "/sessions/s-web-1", signedIn, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /sessions/s-web-1: %d\n%s", status, body)
	}
	page := string(body)
	for _, want := range []string{"s-web-1", "support-bot", "salesforce.update_record", "Timeout"} {
		if !strings.Contains(page, want) {
			t.Errorf("the session page does not show %q", want)
		}
	}
	if bars := len(regexp.MustCompile(`<rect[^>]*class="[^"]*\bbar\b`).FindAllString(page, -1)); bars != 30 {
		t.Errorf("waterfall has %d bars, want one per stored step (30)", bars)
	}

	if status, _ := e.do(http.MethodGet, "/sessions/s-never-seen", signedIn, nil); status != http.StatusNotFound {
		t.Errorf("a session reins has no record of: %d, want 404", status)
	}
}
