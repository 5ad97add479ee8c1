package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/integrations/halt/halttest"
)

// The dead-man as scheduled by `reins serve`: a critical incident nobody
// with kill authority acknowledged for 10 minutes has its agent halted
// through the real webhook adapter, once, by policy:support-bot/escalation.
func TestDeadManEscalation(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) { testDeadManEscalation(t, db == "postgres") })
	}
}

func testDeadManEscalation(t *testing.T, postgres bool) {
	clock := incidentstest.NewClock(time.Now().UTC())
	hook := halttest.NewWebhook(t, haltSecret)
	hook.SetNow(clock.Now)
	tmpl, err := os.ReadFile("testdata/reins.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.ReplaceAll(string(tmpl), "{{HALT_URL}}", hook.URL())
	yaml = strings.Replace(yaml, "    aliases: [support-bot-v2]\n",
		"    aliases: [support-bot-v2]\n    escalation:\n      auto_halt_after: 10m\n", 1)
	cfg := filepath.Join(t.TempDir(), "reins.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startTestMain(t, testOptions{Postgres: postgres, Config: cfg, Halt: hook, Setup: func(m *Main) { m.Clock = clock }})
	if e.Main.Registry.Current().Agent("support-bot").Escalation.AutoHaltAfter != 10*time.Minute {
		t.Fatal("the config's escalation was not loaded")
	}
	if status, b := e.webhook("generic", []byte(`{"agent":"support-bot","summary":"Refund loop","severity":"critical"}`)); status != http.StatusOK {
		t.Fatalf("webhook: %d %s", status, b)
	}
	halts := func() []halttest.WebhookMessage {
		var out []halttest.WebhookMessage
		for _, m := range hook.Messages() {
			if m.Action == "halt" {
				out = append(out, m)
			}
		}
		return out
	}
	runDeadMan := func() {
		t.Helper()
		var job cron.Job
		for _, en := range e.Main.cron.Entries() {
			if s, ok := en.Schedule.(cron.ConstantDelaySchedule); ok && s.Delay == 30*time.Second {
				job = en.Job
			}
		}
		if job == nil {
			t.Fatal("no job scheduled every 30s")
		}
		job.Run()
	}

	clock.Advance(9 * time.Minute)
	runDeadMan()
	if n := len(halts()); n != 0 {
		t.Fatalf("after 9 minutes: %d halt calls, want none", n)
	}
	clock.Advance(time.Minute)
	runDeadMan()
	msgs := halts()
	if len(msgs) != 1 || len(msgs[0].Sessions) != 0 || msgs[0].Actor.Kind != "policy" ||
		msgs[0].Actor.ID != "support-bot/escalation" || !strings.Contains(msgs[0].Reason, "nobody with kill authority acknowledged within 10m") {
		t.Fatalf("after 10 minutes: got %+v, want one whole-agent halt by policy:support-bot/escalation", msgs)
	}
	if halted, _ := hook.State("support-bot"); !halted {
		t.Error("the agent's endpoint does not report it halted")
	}
	clock.Advance(time.Minute)
	runDeadMan()
	if n := len(halts()); n != 1 {
		t.Errorf("a minute later: %d halt calls, want still 1", n)
	}
	status, body := e.api(http.MethodGet, "/incidents/1", nil)
	if status != http.StatusOK || !strings.Contains(string(body), "escalated") {
		t.Errorf("incident 1: %d, timeline lacks the escalation: %s", status, body)
	}
}
