package halt_test

import (
	"context"
	"testing"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/halt"
	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/ownership"
)

func unleashAgent(url string) *ownership.Agent {
	return &ownership.Agent{Name: "support-bot", Halt: ownership.HaltSpec{Adapter: halt.AdapterUnleash,
		Settings: map[string]string{"url": url, "token_env": "UNLEASH_TOKEN", "project": "default", "feature": "support-bot", "environment": "production"}}}
}

func TestUnleashConformance(t *testing.T) {
	f := halttest.NewUnleash(t, "*:*.admin", "default", "support-bot", "production")
	runConformance(t, conformance{
		agent:   unleashAgent(f.URL()),
		fake:    f,
		halted:  func() bool { return !f.Enabled() },
		secret:  "UNLEASH_TOKEN",
		adapter: func(cfg halt.Config) halt.Adapter { return halt.NewUnleash(cfg) },
	}, "*:*.admin")
}

func TestUnleashRequests(t *testing.T) {
	f := halttest.NewUnleash(t, "*:*.admin", "default", "support-bot", "production")
	a := halt.NewUnleash(halt.Config{Getenv: env{"UNLEASH_TOKEN": "*:*.admin"}.get})
	agent := unleashAgent(f.URL())
	ctx := context.Background()
	if err := a.Drill(ctx, agent); err != nil {
		t.Fatal(err)
	}
	if err := a.Do(ctx, request(agent, incidents.ActionHalt)); err != nil {
		t.Fatal(err)
	}
	assertVerify(t, a, request(agent, incidents.ActionHalt), true)
	if err := a.Do(ctx, request(agent, incidents.ActionResume)); err != nil {
		t.Fatal(err)
	}
	assertCalls(t, f.Calls(),
		"GET /api/admin/projects/default/features/support-bot",
		"POST /api/admin/projects/default/features/support-bot/environments/production/off",
		"GET /api/admin/projects/default/features/support-bot",
		"POST /api/admin/projects/default/features/support-bot/environments/production/on")
	for _, c := range f.Calls() {
		if got := c.Header.Get("Authorization"); got != "*:*.admin" {
			t.Errorf("Authorization %q, want the admin token", got)
		}
	}
}

func TestUnleashErrUnknownEnvironment(t *testing.T) {
	f := halttest.NewUnleash(t, "tok", "default", "support-bot", "production")
	a := halt.NewUnleash(halt.Config{Getenv: env{"UNLEASH_TOKEN": "tok"}.get})
	agent := unleashAgent(f.URL())
	agent.Halt = agent.Halt.With("environment", "staging")
	assertErr(t, a.Drill(context.Background(), agent), incidents.EUNAVAILABLE, `no environment "staging"`)
	_, err := a.Verify(context.Background(), request(agent, incidents.ActionHalt))
	assertErr(t, err, incidents.EUNAVAILABLE, `no environment "staging"`)
}
