package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents/guard"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/ownership"
)

// queueEnv starts reins on the given clock with support-bot halting each
// session at its second step, under the escalation given (YAML lines
// indented as under `escalation:`).
func queueEnv(t *testing.T, pg bool, clock *incidentstest.Clock, escalation string) *testEnv {
	t.Helper()
	hook := halttest.NewWebhook(t, haltSecret)
	hook.SetNow(clock.Now)
	tmpl, err := os.ReadFile("testdata/reins.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.ReplaceAll(string(tmpl), "{{HALT_URL}}", hook.URL())
	yaml = strings.Replace(yaml, templateSLAs, `    slas:
      - metric: steps_per_session
        max: 1
        on_breach: halt_session
    escalation:
`+escalation, 1)
	path := filepath.Join(t.TempDir(), "reins.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return startTestMain(t, testOptions{Postgres: pg, Config: path, Halt: hook,
		Env: map[string]string{"REINS_OTLP_TOKEN": otlpToken}, Setup: func(m *Main) { m.Clock = clock }})
}

// breachSessions sends two spans for each of n sessions, one request per
// session: each session crosses steps_per_session max 1 at its second.
func breachSessions(t *testing.T, e *testEnv, prefix string, n int) {
	t.Helper()
	hdr := http.Header{"Authorization": {"Bearer " + otlpToken}, "Content-Type": {"application/json"}}
	for i := range n {
		body := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"support-bot"}}]},
		  "scopeSpans":[{"spans":[
		   {"traceId":"5b8efff798038103d269b633813f%04x","spanId":"aaa19b7ec3c1%04x","name":"chat","startTimeUnixNano":"1765000000000000000","endTimeUnixNano":"1765000001000000000",
		    "attributes":[{"key":"session.id","value":{"stringValue":"%s-%02d"}}]},
		   {"traceId":"5b8efff798038103d269b633813f%04x","spanId":"bbb19b7ec3c1%04x","name":"chat","startTimeUnixNano":"1765000001000000000","endTimeUnixNano":"1765000002000000000",
		    "attributes":[{"key":"session.id","value":{"stringValue":"%s-%02d"}}]}]}]}]}`, i, i, prefix, i, i, i, prefix, i)
		if status, resp := e.do(http.MethodPost, "/v1/traces", hdr, []byte(body)); status != http.StatusOK {
			t.Fatalf("export of session %d: %d %s", i, status, resp)
		}
	}
}

// outcomes counts support-bot's breaches by outcome ("" is waiting).
func (e *testEnv) outcomes() map[string]int {
	e.t.Helper()
	all, err := e.Main.Store.FindBreaches(context.Background(), "support-bot", time.Time{}, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int{}
	for _, b := range all {
		out[b.Outcome]++
	}
	return out
}

// queuePages returns the summaries of the pages about waiting breaches.
func (e *testEnv) queuePages() []string {
	var out []string
	for _, ev := range e.PD.Events() {
		if ev.Action == "trigger" && strings.HasSuffix(ev.DedupKey, "/auto-halt-queue") && ev.Payload != nil {
			out = append(out, ev.Payload.Summary)
		}
	}
	return out
}

// Issue 23, acceptance 3: 40 sessions of one agent breach within a minute
// with max_auto_halts_per_minute 20. With escalation.overflow: queue, 20 are
// halted at once and 20 wait, visibly (/agent status, reins agents, one
// page), then go in crossing order when the budget frees (the clock moved a
// minute on: an injected clock, so the test does not sleep a minute). With
// the default policy the agent is halted as a whole. Nothing ends
// rate_limited or unacted on.
func TestGuardBreachesBeyondTheBudgetAreQueuedNotDropped(t *testing.T) {
	for _, store := range []struct {
		name string
		pg   bool
	}{{"SQLite", false}, {"PostgreSQL", true}} {
		t.Run(store.name+"/Queue", func(t *testing.T) {
			clock := incidentstest.NewClock(time.Now().UTC())
			e := queueEnv(t, store.pg, clock, "      max_auto_halts_per_minute: 20\n      overflow: queue\n")
			breachSessions(t, e, "s-q", 40)
			e.eventuallyWithin(30*time.Second, "20 halted, 20 waiting", func() bool {
				o := e.outcomes()
				if o[ownership.OnBreachHaltSession] == 20 && o[""] == 20 {
					return true
				}
				t.Logf("outcomes %v", o)
				return false
			})
			code, out, errOut := cli(t, e.env, "agents")
			if code != 0 || !strings.Contains(out, "Waiting to be halted: 20 sessions of support-bot (s-q-20, s-q-21,") ||
				!strings.Contains(out, "max_auto_halts_per_minute (20) is spent") {
				t.Errorf("reins agents: exit %d, want the queue in\n%s%s", code, out, errOut)
			}
			e.slash(alice, "C0SUPPORTAI", "status support-bot")
			e.eventually("the /agent status reply shows the queue", func() bool {
				for _, r := range e.Slack.Responses() {
					if strings.Contains(string(r.Blocks), "Waiting to be halted: 20 sessions of support-bot") {
						return true
					}
				}
				return false
			})
			e.eventually("one page about the queue", func() bool { return len(e.queuePages()) == 1 })
			// The page counts what waited when the budget ran out; the
			// channel and the status count on as more arrive.
			if p := e.queuePages()[0]; !regexp.MustCompile(`\] \d+ breaching sessions of support-bot are waiting to be halted: max_auto_halts_per_minute \(20\) is spent`).MatchString(p) ||
				!strings.Contains(p, "overflow: queue") {
				t.Errorf("queue page = %q", p)
			}

			// A person without kill authority cannot take a session out of
			// the queue; one with it can, on the record.
			e.slash(mallory, "C0SUPPORTAI", "leave support-bot s-q-38")
			e.eventually("mallory refused", func() bool { return e.replyContains("You may not leave sessions of support-bot running") })
			e.slash(alice, "C0SUPPORTAI", "leave support-bot s-q-39")
			e.eventually("alice's leave", func() bool { return e.replyContains("Session s-q-39 of support-bot is left running") })
			status, body := e.api(http.MethodPost, "/agents/support-bot/sessions/s-q-38/leave", map[string]string{"actor": "ops@example.com"})
			if status != http.StatusOK {
				t.Fatalf("leave through the API: %d %s", status, body)
			}

			clock.Advance(61 * time.Second) // the first 20 halts leave the minute
			e.eventuallyWithin(30*time.Second, "the other 38 halted", func() bool {
				return e.outcomes()[ownership.OnBreachHaltSession] == 38
			})
			if o := e.outcomes(); len(o) != 2 || o[guard.OutcomeLeft] != 2 {
				t.Errorf("outcomes = %v, want 38 halt_session and 2 left", o)
			}
			var order []string
			for _, m := range e.Halt.Messages() {
				if m.Action == "halt" {
					order = append(order, m.Sessions...)
				}
			}
			if len(order) != 38 {
				t.Fatalf("%d halt requests, want 38 (one per session not left running): %v", len(order), order)
			}
			for i, s := range order[20:] {
				if want := fmt.Sprintf("s-q-%02d", 20+i); s != want {
					t.Fatalf("waiting sessions halted in order %v, want crossing order", order[20:])
				}
			}
			if n := len(e.queuePages()); n != 1 {
				t.Errorf("%d queue pages, want 1", n)
			}
			q, err := e.Main.Guard.Queue(context.Background(), "support-bot")
			if err != nil || len(q.Sessions) != 0 {
				t.Errorf("queue after = %+v, %v", q, err)
			}
		})
		t.Run(store.name+"/HaltAgent", func(t *testing.T) {
			clock := incidentstest.NewClock(time.Now().UTC())
			e := queueEnv(t, store.pg, clock, "      max_auto_halts_per_minute: 20\n")
			breachSessions(t, e, "s-a", 40)
			e.eventuallyWithin(30*time.Second, "every breach acted on", func() bool {
				o := e.outcomes()
				return o[""] == 0 && o[ownership.OnBreachHaltSession]+o[ownership.OnBreachHaltAgent]+o["already_halted"] == 40
			})
			o := e.outcomes()
			if o[ownership.OnBreachHaltSession] != 20 || o[ownership.OnBreachHaltAgent] != 1 {
				t.Errorf("outcomes = %v, want 20 session halts, then the agent halted by escalation.overflow", o)
			}
			agentHalts := 0
			for _, m := range e.Halt.Messages() {
				if m.Action == "halt" && len(m.Sessions) == 0 {
					agentHalts++
				}
			}
			if agentHalts != 1 {
				t.Errorf("%d whole-agent halts, want 1", agentHalts)
			}
			e.eventually("one page about the queue", func() bool { return len(e.queuePages()) == 1 })
			if p := e.queuePages()[0]; !strings.Contains(p, "breaching sessions of support-bot are waiting") ||
				!strings.Contains(p, "overflow: halt_agent reins halts the whole of support-bot") {
				t.Errorf("queue page = %q", p)
			}
		})
	}
}

// replyContains says whether any reply to a slash command holds text.
func (e *testEnv) replyContains(text string) bool {
	for _, r := range e.Slack.Responses() {
		if strings.Contains(string(r.Blocks), text) || strings.Contains(r.Text, text) {
			return true
		}
	}
	return false
}
