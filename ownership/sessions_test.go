package ownership_test

import (
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/ownership"
)

const sessionsBase = `teams:
  t: {slack_channel: t}
agents:
  a:
    team: t
    kill_authority: {users: [U01ALICE]}
    halt: {adapter: flag}
`

func TestParseSessionSettings(t *testing.T) {
	reg, probs := ownership.Parse("reins.yaml", []byte(`pricing:
  gpt-4.1: {input: 2, output: 8}
`+sessionsBase+`    sessions:
      source: langfuse
      langfuse: {host: https://cloud.langfuse.com/, public_key_env: LF_PK, secret_key_env: LF_SK}
      retention: 48h
      capture_content: true
      content_limit: 512
      max_steps: 500
    blast_radius:
      - system: Salesforce
        tools: [salesforce.*, crm_update_record]
`), ownership.Options{Adapters: adapters, Getenv: func(string) string { return "x" }})
	if err := probs.Err(); err != nil {
		t.Fatal(err)
	}
	a := reg.Agents["a"]
	want := ownership.SessionSettings{Source: "langfuse", Retention: 48 * time.Hour, CaptureContent: true, ContentLimit: 512,
		MaxSteps: 500, Langfuse: ownership.LangfuseSettings{Host: "https://cloud.langfuse.com", PublicKeyEnv: "LF_PK", SecretKeyEnv: "LF_SK"}}
	if a.Sessions != want {
		t.Errorf("sessions = %+v\nwant %+v", a.Sessions, want)
	}
	if a.SystemOf("Salesforce.update_record") != "Salesforce" || a.SystemOf("crm_update_record") != "Salesforce" || a.SystemOf("zendesk.close") != "" {
		t.Errorf("tool globs do not match as declared")
	}
	for model, ok := range map[string]bool{"gpt-4.1": true, "GPT-4.1-2025-04-14": true, "gpt-4.10": false, "gpt-4": false} {
		if _, got := reg.PriceOf(model); got != ok {
			t.Errorf("PriceOf(%q) found = %v, want %v", model, got, ok)
		}
	}
}

func TestParseSessionDefaults(t *testing.T) {
	reg, probs := ownership.Parse("reins.yaml", []byte(sessionsBase), ownership.Options{Adapters: adapters, Getenv: func(string) string { return "x" }})
	if err := probs.Err(); err != nil {
		t.Fatal(err)
	}
	want := ownership.SessionSettings{Source: "otlp", Retention: 7 * 24 * time.Hour, MaxSteps: 10000, ContentLimit: 2048}
	if got := reg.Agents["a"].Sessions; got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
}

func TestParseSessionErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"ErrSource", "    sessions: {source: phoenix}\n", `reins.yaml:8: agents.a.sessions.source: "phoenix" is not a session source`},
		{"ErrLangfuseWithoutHost", "    sessions: {source: langfuse}\n", "reins.yaml:8: agents.a.sessions: source is langfuse but langfuse.host is missing"},
		{"ErrMaxSteps", "    sessions: {max_steps: 2.5}\n", "reins.yaml:8: agents.a.sessions.max_steps: expected a whole number"},
		{"ErrRetention", "    sessions: {retention: 7d}\n", "reins.yaml:8: agents.a.sessions.retention: \"7d\" is not a duration"},
		{"ErrGlob", "    blast_radius:\n      - system: S\n        tools: ['[bad']\n", "reins.yaml:10: agents.a.blast_radius[0].tools: \"[bad\" is not a usable glob"},
		{"ErrNegativePrice", "pricing:\n  m: {input: -1, output: 2}\n", "agents"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := sessionsBase + tc.yaml
			if strings.HasPrefix(tc.yaml, "pricing") {
				src = tc.yaml + sessionsBase
				tc.want = "reins.yaml:2: pricing.m.input: a price cannot be negative"
			}
			_, probs := ownership.Parse("reins.yaml", []byte(src), ownership.Options{Adapters: adapters, Getenv: func(string) string { return "x" }})
			if !strings.Contains(probs.String(), tc.want) {
				t.Errorf("problems:\n%s\nwant %q", probs.String(), tc.want)
			}
		})
	}
}
