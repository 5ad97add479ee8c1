package halt_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/halt"
	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/ownership"
)

func ldAgent(url string) *ownership.Agent {
	return &ownership.Agent{Name: "support-bot", Halt: ownership.HaltSpec{Adapter: halt.AdapterLaunchDarkly,
		Settings: map[string]string{"url": url, "token_env": "LD_TOKEN", "project": "agents", "flag": "support-bot-enabled", "environment": "production"}}}
}

func TestLaunchDarklyConformance(t *testing.T) {
	f := halttest.NewLaunchDarkly(t, "api-123", "agents", "support-bot-enabled", "production")
	runConformance(t, conformance{
		agent:   ldAgent(f.URL()),
		fake:    f,
		halted:  func() bool { return !f.On() },
		secret:  "LD_TOKEN",
		adapter: func(cfg halt.Config) halt.Adapter { return halt.NewLaunchDarkly(cfg) },
	}, "api-123")
}

func TestLaunchDarklyRequests(t *testing.T) {
	f := halttest.NewLaunchDarkly(t, "api-123", "agents", "support-bot-enabled", "production")
	a := halt.NewLaunchDarkly(halt.Config{Getenv: env{"LD_TOKEN": "api-123"}.get})
	ctx := context.Background()
	if err := a.Drill(ctx, ldAgent(f.URL())); err != nil {
		t.Fatal(err)
	}
	if err := a.Do(ctx, request(ldAgent(f.URL()+"/"), incidents.ActionHalt)); err != nil {
		t.Fatal(err)
	}
	assertVerify(t, a, request(ldAgent(f.URL()), incidents.ActionHalt), true)
	calls := f.Calls()
	assertCalls(t, calls,
		"GET /api/v2/flags/agents/support-bot-enabled?env=production",
		"PATCH /api/v2/flags/agents/support-bot-enabled",
		"GET /api/v2/flags/agents/support-bot-enabled?env=production")
	var patch map[string]any
	if err := json.Unmarshal(calls[1].Body, &patch); err != nil {
		t.Fatal(err)
	}
	wantComment := "reins halt of support-bot by slack:U01ALICE (incident 42): looping on refunds"
	if patch["comment"] != wantComment {
		t.Errorf("comment %q, want %q", patch["comment"], wantComment)
	}
	if got := calls[1].Header.Get("Authorization"); got != "api-123" {
		t.Errorf("Authorization %q, want the bare token", got)
	}
}

func TestLaunchDarklyErrors(t *testing.T) {
	f := halttest.NewLaunchDarkly(t, "api-123", "agents", "support-bot-enabled", "production")
	a := halt.NewLaunchDarkly(halt.Config{Getenv: env{"LD_TOKEN": "api-123"}.get})
	tests := []struct {
		name string
		edit func(*ownership.HaltSpec)
		code string
		want string
	}{
		{"ErrUnknownEnvironment", func(s *ownership.HaltSpec) { *s = s.With("environment", "staging") }, incidents.EUNAVAILABLE, `no environment "staging"`},
		{"ErrUnknownFlag", func(s *ownership.HaltSpec) { *s = s.With("flag", "nope") }, incidents.EUNAVAILABLE, "404"},
		{"ErrNoProject", func(s *ownership.HaltSpec) { *s = s.With("project", "") }, incidents.EINVALID, "halt.project"},
		{"ErrNoTokenEnv", func(s *ownership.HaltSpec) { *s = s.With("token_env", "") }, incidents.EINVALID, "halt.token_env"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agent := ldAgent(f.URL())
			tt.edit(&agent.Halt)
			assertErr(t, a.Drill(context.Background(), agent), tt.code, tt.want)
		})
	}
}
