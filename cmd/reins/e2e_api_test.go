package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/halt/halttest"
)

func TestHealthReadyMetrics(t *testing.T) {
	e := startTestMain(t, testOptions{})
	e.webhook("generic", []byte(`{"agent":"support-bot","summary":"spend"}`))
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if status, body := e.do(http.MethodGet, path, nil, nil); status != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, status, body)
		}
	}
	_, body := e.do(http.MethodGet, "/metrics", nil, nil)
	for _, want := range []string{"reins_alerts_received_total", "reins_incidents_opened_total"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestAgentsAPI(t *testing.T) {
	e := startTestMain(t, testOptions{})
	for name, h := range map[string]http.Header{
		"no token": {}, "wrong token": {"Authorization": {"Bearer nope"}}, "not bearer": {"Authorization": {apiToken}},
	} {
		status, body := e.do(http.MethodGet, "/api/v1/agents", h, nil)
		var got map[string]string
		if status != http.StatusUnauthorized || json.Unmarshal(body, &got) != nil || got["error"] == "" {
			t.Errorf("%s: got %d %s, want 401 with a JSON error", name, status, body)
		}
	}
	status, body := e.api(http.MethodGet, "/agents", nil)
	var list struct {
		Agents []struct {
			Name         string
			Halted       bool
			HoldersNow   []string `json:"kill_authority_now"`
			BlastRadius  []any    `json:"blast_radius"`
			SessionLink  string   `json:"session_link"`
			KillAuthAsIs any      `json:"kill_authority"`
		}
	}
	if status != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("GET /api/v1/agents: %d %s", status, body)
	}
	if len(list.Agents) != 2 || list.Agents[1].Name != "support-bot" || len(list.Agents[1].BlastRadius) != 2 ||
		list.Agents[1].SessionLink == "" || list.Agents[1].KillAuthAsIs == nil {
		t.Fatalf("agents: %s", body)
	}
	if strings.Contains(string(body), haltSecret) {
		t.Fatalf("the API shows a halt secret")
	}
	if status, body := e.api(http.MethodGet, "/agents/support-bot-v2", nil); status != http.StatusOK ||
		!strings.Contains(string(body), `"support-bot"`) {
		t.Errorf("GET agent by alias: %d %s", status, body)
	}
	if status, body := e.api(http.MethodGet, "/agents/suport-bot", nil); status != http.StatusNotFound ||
		!strings.Contains(string(body), "support-bot") {
		t.Errorf("misspelt agent: got %d %s, want 404 naming support-bot", status, body)
	}
}

// The flag adapter end to end: halt over the API, the agent's poll sees it,
// resume lifts it.
func TestHaltAPIAndKillFlag(t *testing.T) {
	e := startTestMain(t, testOptions{})
	halted := func() bool {
		_, body := e.do(http.MethodGet, "/api/v1/agents/flag-bot/halted", nil, nil)
		var got struct{ Halted bool }
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("halted: %s", body)
		}
		return got.Halted
	}
	if halted() {
		t.Fatal("halted before any halt")
	}
	status, body := e.api(http.MethodPost, "/agents/flag-bot/halt", map[string]any{"reason": "runaway", "actor": "ops-script"})
	if status != http.StatusOK || !strings.Contains(string(body), `"verified"`) {
		t.Fatalf("halt: %d %s", status, body)
	}
	if !halted() {
		t.Fatal("the kill flag does not show the halt")
	}
	if status, body := e.api(http.MethodPost, "/agents/flag-bot/resume", map[string]any{"actor": "ops-script"}); status != http.StatusOK {
		t.Fatalf("resume: %d %s", status, body)
	}
	if halted() {
		t.Fatal("still halted after resume")
	}
}

// Bad halt requests get the right 4xx with a JSON error and change nothing.
func TestHaltAPIBadInput(t *testing.T) {
	e := startTestMain(t, testOptions{})
	auth := http.Header{"Authorization": {"Bearer " + apiToken}, "Content-Type": {"application/json"}}
	tests := []struct {
		name   string
		ctype  string
		body   []byte
		status int
	}{
		{"MalformedJSON", "application/json", []byte(`{"reason":`), http.StatusBadRequest},
		{"UnknownField", "application/json", []byte(`{"reason":"x","actor":"a","force":true}`), http.StatusUnprocessableEntity},
		{"WrongType", "application/json", []byte(`{"reason":"x","actor":"a","sessions":"s-1"}`), http.StatusUnprocessableEntity},
		{"NoReason", "application/json", []byte(`{"actor":"a"}`), http.StatusUnprocessableEntity},
		{"NoActor", "application/json", []byte(`{"reason":"x"}`), http.StatusUnprocessableEntity},
		{"TooLarge", "application/json", bytes.Repeat([]byte(" "), 2<<20), http.StatusRequestEntityTooLarge},
		{"NotJSON", "text/plain", []byte(`{"reason":"x","actor":"a"}`), http.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := auth.Clone()
			h.Set("Content-Type", tt.ctype)
			status, body := e.do(http.MethodPost, "/api/v1/agents/support-bot/halt", h, tt.body)
			var got map[string]string
			if status != tt.status || json.Unmarshal(body, &got) != nil || got["error"] == "" {
				t.Errorf("got %d %s, want %d with a JSON error", status, body, tt.status)
			}
		})
	}
	if n := len(e.Halt.Messages()); n != 0 {
		t.Errorf("halt endpoint got %d requests", n)
	}
	if hs, _ := e.Main.Service.Halts(t.Context(), "", 0); len(hs) != 0 {
		t.Errorf("bad requests stored %d halts", len(hs))
	}
}

// A halt the adapter fails, or that the read-back shows did not take, is
// reported as failed, re-pages the kill authority, and is never shown as halted.
func TestHaltFailureRepagesAndIsNeverDone(t *testing.T) {
	for name, fault := range map[string]halttest.Fault{"Error500": halttest.FaultError, "WrongStateOnReadBack": halttest.FaultWrongState} {
		t.Run(name, func(t *testing.T) {
			e := startTestMain(t, testOptions{})
			e.Halt.SetFault(fault)
			status, body := e.api(http.MethodPost, "/agents/support-bot/halt", map[string]any{"reason": "runaway", "actor": "ops"})
			if status != http.StatusBadGateway || !strings.Contains(string(body), `"failed"`) {
				t.Fatalf("got %d %s, want 502 with status failed", status, body)
			}
			e.eventually("re-page", func() bool {
				for _, ev := range e.PD.Events() {
					if ev.Accepted() && ev.Action == "trigger" && strings.Contains(ev.Payload.Summary, "HALT FAILED") {
						return true
					}
				}
				return false
			})
			hs, err := e.Main.Service.Halts(t.Context(), "support-bot", 0)
			if err != nil || len(hs) != 1 || hs[0].Status != incidents.HaltFailed {
				t.Fatalf("halts: %+v %v", hs, err)
			}
			if fault == halttest.FaultError && hs[0].Attempts < 2 {
				t.Errorf("the failing adapter was called %d times; want retries", hs[0].Attempts)
			}
			sts, _ := e.Main.Service.Status(t.Context(), "support-bot")
			if len(sts) != 1 || sts[0].Halted {
				t.Fatalf("status shows a failed halt as halted: %+v", sts)
			}
		})
	}
}

// SIGHUP reload: a broken file keeps the registry in force, a good one swaps it.
func TestReloadKeepsOldRegistryOnError(t *testing.T) {
	e := startTestMain(t, testOptions{})
	path := e.env["REINS_CONFIG"]
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	agents := func() string { _, b := e.api(http.MethodGet, "/agents", nil); return string(b) }

	broken := strings.Replace(string(good), "adapter: flag", "adapter: teleport", 1)
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.Main.Reload(); err == nil || !strings.Contains(err.Error(), "teleport") {
		t.Fatalf("reload of a broken file: %v", err)
	}
	if !strings.Contains(agents(), `"flag-bot"`) {
		t.Fatalf("the old registry is gone after a failed reload")
	}

	renamed := strings.Replace(string(good), "  flag-bot:", "  summariser:", 1)
	if err := os.WriteFile(filepath.Clean(path), []byte(renamed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.Main.Reload(); err != nil {
		t.Fatalf("reload of a good file: %v", err)
	}
	if got := agents(); !strings.Contains(got, `"summariser"`) || strings.Contains(got, `"flag-bot"`) {
		t.Fatalf("the new registry is not in force: %s", got)
	}
}
