package main

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/bot"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/integrations/halt/halttest"
)

// gateSLAs contain a session by policy at its first out-of-scope tool call,
// and breach again past 6 steps; the gate needs two people and puts the
// resumed session on probation, restricted to the tool_scope allow-list.
const gateSLAs = `      - metric: tool_scope
        allow: [salesforce.read, zendesk.*]
        on_breach: halt_session
      - metric: steps_per_session
        max: 6
        on_breach: halt_session
    resume:
      approvals: 2
      probation: {for: 10m, as: restrict}
`

func gateEnv(t *testing.T, pg bool) (*testEnv, *incidentstest.Clock) {
	t.Helper()
	clock := incidentstest.NewClock(time.Now().UTC())
	hook := halttest.NewWebhook(t, haltSecret)
	hook.SetNow(clock.Now)
	tmpl, err := os.ReadFile("testdata/reins.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(strings.ReplaceAll(string(tmpl), "{{HALT_URL}}", hook.URL()), templateSLAs, "    slas:\n"+gateSLAs, 1)
	path := filepath.Join(t.TempDir(), "reins.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startTestMain(t, testOptions{Postgres: pg, Config: path, Halt: hook,
		Env: map[string]string{"REINS_OTLP_TOKEN": otlpToken}, Setup: func(m *Main) { m.Clock = clock }})
	return e, clock
}

// resumeAs runs /agent resume for session as user and returns the answer.
func (e *testEnv) resumeAs(user, session string) string {
	e.t.Helper()
	e.Main.Bot.Wait()
	before := len(e.Slack.Responses())
	e.slash(user, "C0SUPPORTAI", "resume support-bot session "+session)
	r := e.responseAfter(before, "resume answer")
	return r.Text + string(r.Blocks)
}

// runProbationJob runs the scheduled job that ends probations, at the
// injected clock's time.
func (e *testEnv) runProbationJob() {
	e.t.Helper()
	for _, en := range e.Main.cron.Entries() {
		if s, ok := en.Schedule.(interface{ Next(time.Time) time.Time }); ok && s.Next(time.Time{}).Sub(time.Time{}) == 20*time.Second {
			en.Job.Run()
			return
		}
	}
	e.t.Fatal("no job scheduled every 20s")
}

// Issue 27, acceptance 3: with approvals: 2 one approval does not resume,
// the same person twice does not, two people do; with probation 10m (and an
// injected clock) a breach at minute 4 re-contains at once, and a session
// with none for 10 minutes returns to running.
func TestResumeGateApprovalsAndProbation(t *testing.T) {
	for _, store := range []struct {
		name string
		pg   bool
	}{{"SQLite", false}, {"PostgreSQL", true}} {
		t.Run(store.name, func(t *testing.T) {
			e, clock := gateEnv(t, store.pg)
			for _, s := range []string{"s-a", "s-b"} {
				newAgentRun(t, e, s).tool("salesforce.write", `{}`) // contained by policy
				e.eventually("policy halt of "+s, func() bool { return len(messagesOf(e.Halt, "halt", s)) == 1 })
			}
			e.eventually("both halts verified", func() bool {
				hs, _ := e.Main.Service.Halts(t.Context(), "support-bot", 0)
				return len(hs) == 2 && hs[0].Status == "verified" && hs[1].Status == "verified"
			})

			if got := e.resumeAs(alice, "s-a"); !strings.Contains(got, "NOT resumed") || !strings.Contains(got, "needs 2 approvals") {
				t.Fatalf("one approval: %s", got)
			}
			if got := e.resumeAs(alice, "s-a"); !strings.Contains(got, "NOT resumed") || !strings.Contains(got, "1 so far") {
				t.Fatalf("the same person twice: %s", got)
			}
			if n := len(messagesOf(e.Halt, "restrict", "s-a")) + len(messagesOf(e.Halt, "resume", "s-a")); n != 0 {
				t.Fatalf("one person resumed it: %d requests", n)
			}
			got := e.resumeAs(bob, "s-a")
			if !strings.Contains(got, "Resumed") && !strings.Contains(got, "Restricted") {
				t.Fatalf("two people: %s", got)
			}
			if r, ok := e.Halt.Rung("support-bot", "s-a"); !ok || r.Mode != "restricted" ||
				!slices.Equal(r.Allow, []string{"salesforce.read", "zendesk.*"}) {
				t.Fatalf("after two approvals the session is not on probation (restricted): %+v %v", r, ok)
			}
			if _, sessions := e.Halt.State("support-bot"); slices.Contains(sessions, "s-a") {
				t.Error("s-a still halted at the endpoint")
			}
			audit, _ := e.Main.Store.FindAudit(t.Context(), "support-bot", 50)
			approvals := 0
			for _, a := range audit {
				if a.Action == "resume_approved" {
					approvals++
				}
			}
			if approvals != 2 {
				t.Errorf("%d resume approvals audited, want 2 (alice once, bob)", approvals)
			}

			// Minute 4 of s-a's probation: a breach re-contains at once.
			clock.Advance(4 * time.Minute)
			run := newAgentRun(t, e, "s-a")
			for range 6 {
				run.chat(10)
			}
			e.eventually("re-contained", func() bool { return len(messagesOf(e.Halt, "halt", "s-a")) == 2 })
			if h := messagesOf(e.Halt, "halt", "s-a")[1]; !strings.Contains(h.Reason, "breach during probation") {
				t.Errorf("re-containment does not say why: %+v", h)
			}
			e.eventually("incident channel", func() bool { return len(incidentChannels(e.Slack)) == 1 })
			e.channelSays(incidentChannels(e.Slack)[0].ID, "breach during probation")

			// s-b: resumed by two people, no breach for 10 minutes: running.
			e.resumeAs(carol, "s-b")
			// The second person approves with the button in the channel,
			// which says what the first approved and when.
			ch := incidentChannels(e.Slack)[0].ID
			var value string
			e.eventually("approval message with its button", func() bool {
				for _, m := range e.Slack.Messages(ch) {
					if v := buttonValue(m.Blocks, bot.ActionApproveResume); v != "" && strings.Contains(string(m.Blocks), "s-b") &&
						strings.Contains(string(m.Blocks), "1 so far") {
						value = v
						return true
					}
				}
				return false
			})
			e.interact(click(e, dave, ch, bot.ActionApproveResume, value))
			e.eventually("s-b on probation, verified", func() bool {
				hs, _ := e.Main.Service.Halts(t.Context(), "support-bot", 0)
				return len(hs) > 0 && hs[0].Action == "restrict" && hs[0].Status == "verified" && hs[0].ProbationUntil != nil &&
					slices.Equal(hs[0].Sessions, []string{"s-b"})
			})
			if r, ok := e.Halt.Rung("support-bot", "s-b"); !ok || r.Mode != "restricted" {
				t.Fatalf("s-b not on probation: %+v %v", r, ok)
			}
			clock.Advance(9 * time.Minute)
			e.runProbationJob()
			if _, ok := e.Halt.Rung("support-bot", "s-b"); !ok {
				t.Fatal("s-b left probation after 9 minutes")
			}
			clock.Advance(time.Minute)
			e.runProbationJob()
			if r, ok := e.Halt.Rung("support-bot", "s-b"); ok {
				t.Fatalf("s-b still %+v after 10 quiet minutes", r)
			}
			_, body := e.do(http.MethodGet, "/api/v1/agents/support-bot/halted?session=s-b", nil, nil)
			if !strings.Contains(string(body), `"mode":"running"`) {
				t.Errorf("flag after probation: %s", body)
			}
			_, body = e.do(http.MethodGet, "/api/v1/agents/support-bot/halted?session=s-a", nil, nil)
			if !strings.Contains(string(body), `"mode":"halted"`) {
				t.Errorf("s-a after the re-containment: %s", body)
			}
			_, md := e.api(http.MethodGet, "/incidents/1/postmortem?format=markdown", nil)
			for _, want := range []string{"needs 2 approvals from distinct people", "probation until", "breach during probation", "probation ended"} {
				if !strings.Contains(string(md), want) {
					t.Errorf("postmortem lacks %q", want)
				}
			}
		})
	}
}

// Issue 27, the resume gate through the API and the CLI, and the lighter
// gate for what a person contained: the API counts approvals by the actor
// it names and answers 409 with who approved when until there are enough;
// `reins resume` approves as the OS user; a person's halt needs
// person_approvals only.
func TestResumeGateAPICLIAndPersonApprovals(t *testing.T) {
	for _, store := range []struct {
		name string
		pg   bool
	}{{"SQLite", false}, {"PostgreSQL", true}} {
		t.Run(store.name, func(t *testing.T) {
			e := guardEnv(t, store.pg, `      - metric: tool_scope
        allow: [salesforce.read, zendesk.*]
        on_breach: halt_session
    resume:
      approvals: 2
      person_approvals: 1
`)
			newAgentRun(t, e, "s-p").tool("salesforce.write", `{}`) // contained by policy
			e.eventually("policy halt verified", func() bool {
				hs, _ := e.Main.Service.Halts(t.Context(), "support-bot", 0)
				return len(hs) == 1 && hs[0].Status == "verified"
			})
			resume := func(actor, session string) (int, string) {
				st, b := e.api(http.MethodPost, "/agents/support-bot/resume", map[string]any{"sessions": []string{session}, "actor": actor})
				return st, string(b)
			}
			if st, b := resume("ops", "s-p"); st != http.StatusConflict || !strings.Contains(b, "needs 2 approvals") || !strings.Contains(b, "ops at ") {
				t.Fatalf("one approval over the API: %d %s, want 409 naming ops and when", st, b)
			}
			if st, b := resume("ops", "s-p"); st != http.StatusConflict || !strings.Contains(b, "1 so far") {
				t.Fatalf("the same actor twice: %d %s, want 409 with 1 so far", st, b)
			}
			if n := len(messagesOf(e.Halt, "resume", "s-p")); n != 0 {
				t.Fatalf("one actor resumed s-p (%d resume requests)", n)
			}
			env := map[string]string{}
			for k, v := range e.env {
				env[k] = v
			}
			code, out, errOut := cli(t, env, "resume", "support-bot", "s-p")
			if code != 0 || !strings.Contains(out, "resume of support-bot (sessions s-p) done") {
				t.Fatalf("reins resume as the second person: exit %d\n%s\n%s", code, out, errOut)
			}
			if n := len(messagesOf(e.Halt, "resume", "s-p")); n != 1 {
				t.Errorf("%d resume requests for s-p after two approvals, want 1", n)
			}

			// A person's halt: person_approvals (1) lifts it.
			if st, b := e.api(http.MethodPost, "/agents/support-bot/halt",
				map[string]any{"sessions": []string{"s-h"}, "reason": "looping", "actor": "ops"}); st != http.StatusOK {
				t.Fatalf("halt s-h: %d %s", st, b)
			}
			if st, b := resume("ops", "s-h"); st != http.StatusOK {
				t.Errorf("resume of a person's halt with person_approvals 1: %d %s, want 200", st, b)
			}
		})
	}
}
