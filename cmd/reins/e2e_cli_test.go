package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// cli runs the reins command line in-process and returns exit code and output.
func cli(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut, func(k string) string { return env[k] })
	return code, out.String(), errOut.String()
}

func TestCLIUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"NoCommand", nil, 2, "Usage"},
		{"UnknownCommand", []string{"frobnicate"}, 2, "unknown command"},
		{"UnknownFlag", []string{"serve", "--frobnicate"}, 2, "frobnicate"},
		{"KillWithoutReason", []string{"kill", "support-bot"}, 2, "--reason"},
		{"KillWithoutAgent", []string{"kill", "--reason", "x"}, 2, "agent"},
		{"IncidentNotANumber", []string{"incident", "abc"}, 2, "number"},
		{"PostmortemBadFormat", []string{"postmortem", "1", "--format", "pdf"}, 2, "format"},
		{"Help", []string{"help"}, 0, "validate"},
		{"Version", []string{"version"}, 0, "reins "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := cli(t, nil, tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("got exit %d, stdout %q, stderr %q; want exit %d mentioning %q", code, out, errOut, tt.code, tt.want)
			}
		})
	}
}

func TestCLIDatabaseErrors(t *testing.T) {
	code, _, errOut := cli(t, map[string]string{"REINS_DATABASE_URL": "postgres://reins:hunter2@127.0.0.1:1/reins?sslmode=disable"}, "migrate")
	if code != 1 || !strings.Contains(errOut, "127.0.0.1:1") || strings.Contains(errOut, "hunter2") || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
		t.Errorf("unreachable database: exit %d, %q; want exit 1 and one line naming the host, not the password", code, errOut)
	}
	code, _, errOut = cli(t, map[string]string{"REINS_DATABASE_URL": "mysql://db/reins"}, "migrate")
	if code != 1 || !strings.Contains(errOut, "postgres://") || !strings.Contains(errOut, "sqlite:") {
		t.Errorf("unknown scheme: exit %d, %q; want exit 1 listing the schemes that work", code, errOut)
	}
}

func TestCLIValidate(t *testing.T) {
	code, out, _ := cli(t, nil, "validate", "--config", "../../examples/reins.yaml")
	if code != 0 || !strings.Contains(out, "0 errors") {
		t.Fatalf("validate examples/reins.yaml: exit %d\n%s", code, out)
	}
	broken := filepath.Join(t.TempDir(), "reins.yaml")
	ex, _ := os.ReadFile("../../examples/reins.yaml")
	if err := os.WriteFile(broken, bytes.Replace(ex, []byte("adapter: webhook"), []byte("adapter: teleport"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = cli(t, nil, "validate", "--config", broken)
	if code != 1 || !strings.Contains(out, broken+":") || !strings.Contains(out, "teleport") {
		t.Fatalf("validate a broken file: exit %d\n%s", code, out)
	}
}

// Break-glass: with no Slack settings at all, `reins kill` halts through the
// agent's adapter and the halt shows in `reins incident` afterwards.
func TestCLIKillWithoutSlack(t *testing.T) {
	hook := halttest.NewWebhook(t, haltSecret)
	tmpl, _ := os.ReadFile("testdata/reins.yaml.tmpl")
	cfg := filepath.Join(t.TempDir(), "reins.yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(string(tmpl), "{{HALT_URL}}", hook.URL())), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"REINS_DATABASE_URL": dbtest.SQLiteURL(t), "SUPPORT_BOT_HALT_SECRET": haltSecret}

	code, out, errOut := cli(t, env, "kill", "support-bot", "--reason", "test", "--config", cfg)
	if code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("kill: exit %d\n%s\n%s", code, out, errOut)
	}
	msgs := hook.Messages()
	if len(msgs) == 0 || msgs[0].Action != "halt" || msgs[0].Actor.Kind != "cli" || msgs[0].Reason != "test" {
		t.Fatalf("the adapter got %+v", msgs)
	}
	code, out, _ = cli(t, env, "incident", "1", "--config", cfg)
	if code != 0 || !strings.Contains(out, "halt_verified") || !strings.Contains(out, "support-bot") {
		t.Fatalf("incident 1: exit %d\n%s", code, out)
	}
	code, out, _ = cli(t, env, "incidents", "--open", "--config", cfg)
	if code != 0 || !strings.Contains(out, "support-bot") {
		t.Fatalf("incidents --open: exit %d\n%s", code, out)
	}
	code, out, _ = cli(t, env, "resume", "support-bot", "--config", cfg)
	if code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("resume: exit %d\n%s", code, out)
	}
	code, out, _ = cli(t, env, "postmortem", "1", "--config", cfg)
	if code != 0 || !strings.Contains(out, "support-bot") {
		t.Fatalf("postmortem: exit %d\n%s", code, out)
	}
}

// `reins migrate` twice on PostgreSQL: the second run applies nothing.
func TestCLIMigrateTwice(t *testing.T) {
	env := map[string]string{"REINS_DATABASE_URL": dbtest.PostgresURL(t)}
	for i, want := range []string{"", " 0 migrations applied"} {
		code, out, errOut := cli(t, env, "migrate")
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("run %d: exit %d %q %q", i+1, code, out, errOut)
		}
	}
}

// `reins validate --online` asks Slack and PagerDuty whether everyone and
// everything the file names exists.
func TestCLIValidateOnline(t *testing.T) {
	e := startTestMain(t, testOptions{})
	env := map[string]string{
		"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": e.Slack.APIURL(),
		"PAGERDUTY_API_TOKEN": "test-pd-token", "PAGERDUTY_API_URL": e.PD.URL, "PAGERDUTY_EVENTS_URL": e.PD.URL,
		"SUPPORT_BOT_HALT_SECRET": haltSecret, "PD_SUPPORT_AI_KEY": "k",
	}
	code, out, errOut := cli(t, env, "validate", "--online", "--config", e.env["REINS_CONFIG"])
	if code != 0 {
		t.Fatalf("validate --online of a config whose people exist: exit %d\n%s%s", code, out, errOut)
	}
	broken := filepath.Join(t.TempDir(), "reins.yaml")
	cfg, _ := os.ReadFile(e.env["REINS_CONFIG"])
	cfg = bytes.Replace(cfg, []byte("users: [U01ALICE, bob@example.com]"), []byte("users: [U09GHOST, bob@example.com]"), 1)
	if err := os.WriteFile(broken, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = cli(t, env, "validate", "--online", "--config", broken)
	if code != 1 || !strings.Contains(out, "U09GHOST") || !strings.Contains(out, broken+":") {
		t.Fatalf("validate --online with an unknown user: exit %d\n%s", code, out)
	}
}
