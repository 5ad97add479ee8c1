package main

import (
	"os"
	"path/filepath"
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
