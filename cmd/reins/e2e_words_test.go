package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// cliNoSlack is the environment of a reins run from the shell with neither
// Slack nor PagerDuty configured, its halt webhook at hook.
func cliNoSlack(t *testing.T, hook *halttest.Webhook) (map[string]string, string) {
	t.Helper()
	tmpl, _ := os.ReadFile("testdata/reins.yaml.tmpl")
	cfg := filepath.Join(t.TempDir(), "reins.yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(string(tmpl), "{{HALT_URL}}", hook.URL())), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"REINS_DATABASE_URL": dbtest.SQLiteURL(t), "SUPPORT_BOT_HALT_SECRET": haltSecret, "REINS_CONFIG": cfg}, cfg
}

// A failed break-glass kill prints its result in plain words, not JSON log
// lines; --verbose brings the logs back.
func TestCLIKillFailsPlainly(t *testing.T) {
	hook := halttest.NewWebhook(t, haltSecret)
	hook.SetFault(halttest.FaultError)
	env, _ := cliNoSlack(t, hook)
	code, out, errOut := cli(t, env, "kill", "support-bot", "--reason", "runaway refunds")
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	if code != 1 || !strings.Contains(out, "FAILED") {
		t.Fatalf("kill with a failing adapter: exit %d, want 1 and FAILED\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, `{"time"`) || strings.Contains(out+errOut, `"level"`) {
		t.Errorf("a failed kill without --verbose printed JSON logs:\n%s%s", out, errOut)
	}
	_, _, errOut = cli(t, env, "kill", "support-bot", "--reason", "runaway refunds", "--verbose")
	if !strings.Contains(errOut, `"level"`) {
		t.Errorf("--verbose: want the JSON logs, got %q", errOut)
	}
}

// Session IDs are typed after the agent, as a person says them; --session
// still works. Without Slack or PagerDuty no line claims a delivery to them.
func TestCLIPositionalSessionsAndHonestDelivery(t *testing.T) {
	hook := halttest.NewWebhook(t, haltSecret)
	env, _ := cliNoSlack(t, hook)
	code, out, errOut := cli(t, env, "kill", "support-bot", "s-1", "--reason", "loops")
	if code != 0 || !strings.Contains(out, "sessions s-1") {
		t.Fatalf("kill support-bot s-1: exit %d\n%s%s", code, out, errOut)
	}
	if msgs := hook.Messages(); len(msgs) == 0 || msgs[0].Action != "halt" || strings.Join(msgs[0].Sessions, ",") != "s-1" {
		t.Fatalf("the adapter got %+v, want a halt of session s-1", msgs)
	}
	for _, claim := range []string{"posts it to Slack", "PagerDuty;", "Slack and PagerDuty"} {
		if strings.Contains(out, claim) {
			t.Errorf("kill without Slack or PagerDuty claims %q:\n%s", claim, out)
		}
	}
	if !strings.Contains(out, "nothing goes to Slack") {
		t.Errorf("kill without Slack: want it to say nothing goes to Slack:\n%s", out)
	}
	code, out, errOut = cli(t, env, "resume", "support-bot", "s-1")
	if code != 0 || !strings.Contains(out, "sessions s-1") {
		t.Fatalf("resume support-bot s-1: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cli(t, env, "kill", "support-bot", "s-2", "--session", "s-3", "--reason", "loops")
	if code != 0 || !strings.Contains(out, "sessions s-2, s-3") {
		t.Fatalf("kill support-bot s-2 --session s-3: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cli(t, env, "declare", "flag-bot", "refunds", "to", "wrong", "accounts")
	if code != 0 || strings.Contains(out, "pages the kill authority") || strings.Contains(out, "opens its Slack channel") ||
		!strings.Contains(strings.ToLower(out), "nothing goes to slack") || !strings.Contains(out, "nobody is paged") {
		t.Errorf("declare without Slack or PagerDuty: exit %d\n%s%s", code, out, errOut)
	}
}

// A mistyped command gets the command it most likely meant.
func TestCLIDidYouMean(t *testing.T) {
	for typed, want := range map[string]string{"incidnets": "did you mean incidents?", "resovle": "did you mean resolve?",
		"kil": "did you mean kill?", "postmortme": "did you mean postmortem?"} {
		code, _, errOut := cli(t, nil, typed)
		if code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("reins %s: exit %d, %q; want exit 2 and %q", typed, code, errOut, want)
		}
	}
	if _, _, errOut := cli(t, nil, "frobnicate"); strings.Contains(errOut, "did you mean") {
		t.Errorf("reins frobnicate: %q; want no guess for a word close to nothing", errOut)
	}
}

// `reins agents` fits a 100-column terminal, whatever the holders.
func TestCLIAgentsFits100Columns(t *testing.T) {
	e := startTestMain(t, testOptions{})
	var sessions []string
	for i := range 6 {
		sessions = append(sessions, fmt.Sprintf("s-otel-2026-12-07-conversation-%04d", i))
	}
	if code, out, errOut := cli(t, e.env, append([]string{"kill", "support-bot", "--reason", "loops"}, sessions...)...); code != 0 {
		t.Fatalf("kill sessions: exit %d\n%s%s", code, out, errOut)
	}
	e.PD.Close() // on-call cannot be asked: its reason is said, and still fits
	code, out, errOut := cli(t, e.env, "agents")
	if code != 0 {
		t.Fatalf("agents: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("\n%s", out)
	for _, line := range strings.Split(out, "\n") {
		if n := len([]rune(line)); n > 100 {
			t.Errorf("line of %d columns, want at most 100: %q", n, line)
		}
	}
	if !strings.Contains(out, "support-bot") || !strings.Contains(out, "U01ALICE") && !strings.Contains(out, "alice") {
		t.Errorf("agents does not list support-bot and its holders:\n%s", out)
	}
}

// stormEnv runs reins with alerts.max_new_incidents_per_minute: 2.
func stormEnv(t *testing.T) *testEnv {
	t.Helper()
	hook := halttest.NewWebhook(t, haltSecret)
	tmpl, err := os.ReadFile("testdata/reins.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.ReplaceAll(string(tmpl), "{{HALT_URL}}", hook.URL())
	cfg = strings.Replace(cfg, "  group_window: 4h\n", "  group_window: 4h\n  max_new_incidents_per_minute: 2\n", 1)
	path := filepath.Join(t.TempDir(), "reins.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return startTestMain(t, testOptions{Config: path, Halt: hook})
}

// Alertmanager incidents are titled by the summary annotation, `reins
// incident` shows it with the rule's name, and the unrouted incident names
// the unknown agent in its title: in the CLI, the API and the page alike.
// The recovery of an alert that went to the storm's overflow incident is
// kept there.
func TestAlertmanagerWordsAndCollectors(t *testing.T) {
	e := stormEnv(t)
	for _, agent := range []string{"ghost-bot", "support-bot", "flag-bot"} {
		if status, body := e.webhook("alertmanager", alertmanagerBody(t, agent)); status != http.StatusOK {
			t.Fatalf("webhook %s: %d %s", agent, status, body)
		}
	}
	byAgent := map[string]int64{}
	code, out, errOut := cli(t, e.env, "incidents")
	if code != 0 {
		t.Fatalf("incidents: exit %d %s", code, errOut)
	}
	for _, line := range strings.Split(out, "\n")[1:] {
		if f := strings.Fields(line); len(f) > 3 {
			id, _ := strconv.ParseInt(f[0], 10, 64)
			byAgent[f[3]] = id
		}
	}
	if !strings.Contains(out, "errors from support-bot") || strings.Contains(out, "AgentErrors") {
		t.Errorf("incidents: want support-bot's titled by its summary annotation, not the alertname:\n%s", out)
	}
	if !strings.Contains(out, "not in reins.yaml: ghost-bot") {
		t.Errorf("incidents: want the unrouted incident to name ghost-bot:\n%s", out)
	}
	_, out, _ = cli(t, e.env, "incident", strconv.FormatInt(byAgent["support-bot"], 10))
	for _, want := range []string{"errors from support-bot", "AgentErrors", "by an alertmanager alert"} {
		if !strings.Contains(out, want) {
			t.Errorf("reins incident %d does not show %q:\n%s", byAgent["support-bot"], want, out)
		}
	}
	if strings.Contains(out, "by a alertmanager") {
		t.Errorf("reins incident: \"by a alertmanager\":\n%s", out)
	}
	status, body := e.api(http.MethodGet, fmt.Sprintf("/incidents/%d", byAgent["unrouted:alertmanager"]), nil)
	if status != http.StatusOK || !strings.Contains(string(body), "ghost-bot") {
		t.Errorf("API incident %d (unrouted): %d, want ghost-bot named:\n%s", byAgent["unrouted:alertmanager"], status, body)
	}
	e.eventually("the unrouted incident's page names ghost-bot", func() bool {
		for _, ev := range e.PD.Events() {
			if ev.Payload != nil && strings.Contains(ev.Payload.Summary, "not in reins.yaml: ghost-bot") {
				return true
			}
		}
		return false
	})
	// A second unknown agent joins the unrouted incident's title.
	if status, body := e.webhook("alertmanager", alertmanagerBody(t, "phantom-bot")); status != http.StatusOK {
		t.Fatalf("webhook phantom-bot: %d %s", status, body)
	}
	_, out, _ = cli(t, e.env, "incident", strconv.FormatInt(byAgent["unrouted:alertmanager"], 10))
	if !strings.Contains(out, "not in reins.yaml: ghost-bot, phantom-bot") {
		t.Errorf("reins incident (unrouted) after a second unknown agent:\n%s", out)
	}

	// flag-bot's alert went to the overflow incident; its recovery is kept there.
	overflow := byAgent["overflow:alertmanager"]
	if overflow == 0 {
		t.Fatalf("no overflow incident: %v", byAgent)
	}
	resolved := strings.ReplaceAll(string(alertmanagerBody(t, "flag-bot")), `"status":"firing"`, `"status":"resolved"`)
	if status, body := e.webhook("alertmanager", []byte(resolved)); status != http.StatusOK {
		t.Fatalf("webhook resolved flag-bot: %d %s", status, body)
	}
	_, out, _ = cli(t, e.env, "incident", strconv.FormatInt(overflow, 10))
	if !strings.Contains(out, "Alert recovered") || !strings.Contains(out, "resolved") {
		t.Errorf("the overflow incident dropped flag-bot's recovery:\n%s", out)
	}
}

// Without Slack, the checklist and the postmortem are filled in from the
// shell, with the thread's rules (impact needs details) and its timeline.
func TestCLIChecklistAndPostmortemWithoutSlack(t *testing.T) {
	hook := halttest.NewWebhook(t, haltSecret)
	env, _ := cliNoSlack(t, hook)
	if code, out, errOut := cli(t, env, "declare", "support-bot", "refunds", "to", "wrong", "accounts"); code != 0 {
		t.Fatalf("declare: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := cli(t, env, "checklist", "1")
	if code != 0 || !strings.Contains(out, "Started the blast-radius checklist") || !strings.Contains(out, "1.") {
		t.Fatalf("checklist 1: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("\n%s", out)
	if code, _, errOut := cli(t, env, "checklist", "1", "answer", "1", "impact"); code != 2 || !strings.Contains(errOut, "--details") {
		t.Errorf("impact without details: exit %d %q, want 2 asking for --details", code, errOut)
	}
	if code, _, errOut := cli(t, env, "checklist", "1", "answer", "1", "maybe"); code != 2 || !strings.Contains(errOut, "no-impact") {
		t.Errorf("an unknown answer: exit %d %q, want 2 listing the answers", code, errOut)
	}
	code, out, errOut = cli(t, env, "checklist", "1", "answer", "1", "impact", "--details", "12 refunds to 3 customers")
	if code != 0 || !strings.Contains(out, "answered impact") || !strings.Contains(out, "1 of ") {
		t.Fatalf("answer 1 impact: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = cli(t, env, "checklist", "1", "answer", "std:containment", "n/a"); code != 0 {
		t.Fatalf("answer std:containment n/a: exit %d\n%s%s", code, out, errOut)
	}
	_, out, _ = cli(t, env, "checklist", "1")
	if !strings.Contains(out, "2 of ") || !strings.Contains(out, "12 refunds to 3 customers") {
		t.Errorf("checklist after two answers:\n%s", out)
	}

	code, out, errOut = cli(t, env, "postmortem", "1", "questions")
	if code != 0 || !strings.Contains(out, "root_cause") || !strings.Contains(out, "0 of 6") {
		t.Fatalf("postmortem 1 questions: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cli(t, env, "postmortem", "1", "answer", "root-cause", "A", "prompt", "change", "removed", "the", "refund", "cap.")
	if code != 0 || !strings.Contains(out, "1 of 6") {
		t.Fatalf("postmortem answer: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := cli(t, env, "postmortem", "1", "answer", "why", "because"); code != 2 || !strings.Contains(errOut, "questions") {
		t.Errorf("an unknown question: exit %d %q", code, errOut)
	}
	_, out, _ = cli(t, env, "postmortem", "1")
	for _, want := range []string{"A prompt change removed the refund cap.", "12 refunds to 3 customers"} {
		if !strings.Contains(out, want) {
			t.Errorf("the postmortem lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = cli(t, env, "incident", "1")
	for _, want := range []string{"checklist_answered", "postmortem_answer"} {
		if !strings.Contains(out, want) {
			t.Errorf("the timeline lacks %s:\n%s", want, out)
		}
	}
}
