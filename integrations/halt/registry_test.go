package halt_test

import (
	"context"
	"strings"
	"testing"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/halt"
	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/ownership"
)

func TestRegistryAdapters(t *testing.T) {
	with := halt.NewRegistry(halt.Config{Flags: halt.NewFlags(halttest.NewFlagStore(), nil)})
	without := halt.NewRegistry(halt.Config{})
	for _, name := range []string{"flag", "webhook", "launchdarkly", "unleash", "kubernetes"} {
		a, ok := with.Adapter(name)
		if !ok {
			t.Errorf("adapter %s missing", name)
			continue
		}
		wantScoped := name == "flag" || name == "webhook"
		if a.SessionScoped() != wantScoped {
			t.Errorf("%s SessionScoped = %v, want %v", name, a.SessionScoped(), wantScoped)
		}
	}
	if _, ok := without.Adapter("flag"); ok {
		t.Error("flag adapter present without Flags")
	}
	if _, ok := with.Adapter("carrier-pigeon"); ok {
		t.Error("unknown adapter found")
	}
}

func TestRegistryDispatch(t *testing.T) {
	wh := halttest.NewWebhook(t, "s3cret")
	flags := halt.NewFlags(halttest.NewFlagStore(), clock(epoch))
	r := halt.NewRegistry(halt.Config{Flags: flags, Getenv: env{"SUPPORT_BOT_HALT_SECRET": "s3cret"}.get})
	ctx := context.Background()
	for _, agent := range []*ownership.Agent{flagAgent(), webhookAgent(wh.URL())} {
		if err := r.Drill(ctx, agent); err != nil {
			t.Fatalf("%s drill: %v", agent.Halt.Adapter, err)
		}
		if err := r.Do(ctx, request(agent, incidents.ActionHalt, "s-8812")); err != nil {
			t.Fatalf("%s halt: %v", agent.Halt.Adapter, err)
		}
		ok, err := r.Verify(ctx, request(agent, incidents.ActionHalt, "s-8812"))
		if err != nil || !ok {
			t.Errorf("%s verify: %v %v, want true", agent.Halt.Adapter, ok, err)
		}
	}
	if got, _ := flags.Halted("support-bot", "s-8812"); !got {
		t.Error("flag not raised")
	}
	if _, sessions := wh.State("support-bot"); len(sessions) != 1 {
		t.Errorf("webhook sessions %v, want [s-8812]", sessions)
	}
}

func TestRegistryErrors(t *testing.T) {
	lister := halt.NewRegistry(halt.Config{Getenv: env{}.get})
	agent := func(adapter string) *ownership.Agent {
		return &ownership.Agent{Name: "support-bot", Halt: ownership.HaltSpec{Adapter: adapter,
			Settings: map[string]string{"url": "http://127.0.0.1:1"}}}
	}
	tests := []struct {
		name string
		r    incidents.HaltRequest
		code string
		want string
	}{
		{"ErrNoAgent", incidents.HaltRequest{Action: incidents.ActionHalt}, incidents.EINVALID, "No agent"},
		{"ErrNoAdapter", request(agent(""), incidents.ActionHalt), incidents.EINVALID, "`halt:`"},
		{"ErrUnknownAdapter", request(agent("pigeon"), incidents.ActionHalt), incidents.EINVALID, "use one of"},
		{"ErrFlagWithoutStore", request(agent("flag"), incidents.ActionHalt), incidents.EUNAVAILABLE, "kill-flag store"},
		{"ErrUnknownAction", request(agent("webhook"), "pause"), incidents.EINVALID, "use halt, restrict, throttle or resume"},
		{"ErrSessionsOnWholeAgentAdapter", request(agent("unleash"), incidents.ActionResume, "s-1"), incidents.EINVALID,
			"resume the whole agent"},
		{"ErrUnreachable", request(agent("kubernetes"), incidents.ActionHalt), incidents.EINVALID, "halt.namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertErr(t, lister.Do(context.Background(), tt.r), tt.code, tt.want)
			_, err := lister.Verify(context.Background(), tt.r)
			assertErr(t, err, tt.code, tt.want)
		})
	}
	assertErr(t, lister.Drill(context.Background(), nil), incidents.EINVALID, "No agent")
	err := lister.Drill(context.Background(), &ownership.Agent{Name: "support-bot",
		Halt: ownership.HaltSpec{Adapter: "webhook", Settings: map[string]string{"url": "http://127.0.0.1:1", "secret_env": "S"}}})
	assertErr(t, err, incidents.EINVALID, "$S")
}

// The loader's table (Specs) and the registry's adapters are one list: an
// adapter reins can pull is one a config may name, and the other way round.
func TestSpecsNameEveryAdapter(t *testing.T) {
	r := halt.NewRegistry(halt.Config{Flags: halt.NewFlags(halttest.NewFlagStore(), nil)})
	var names []string
	for _, s := range halt.Specs() {
		names = append(names, s.Name)
		if _, ok := r.Adapter(s.Name); !ok {
			t.Errorf("spec %s has no adapter", s.Name)
		}
	}
	if got, want := strings.Join(names, ","), "flag,webhook,launchdarkly,unleash,kubernetes"; got != want {
		t.Errorf("Specs() names %s, want %s", got, want)
	}
}

func TestRegistrySessionScoped(t *testing.T) {
	r := halt.NewRegistry(halt.Config{Flags: halt.NewFlags(halttest.NewFlagStore(), nil)})
	tests := []struct {
		adapter string
		want    bool
	}{
		{"flag", true}, {"webhook", true}, {"launchdarkly", false}, {"unleash", false}, {"kubernetes", false}, {"pigeon", false},
	}
	for _, tt := range tests {
		t.Run(tt.adapter, func(t *testing.T) {
			agent := &ownership.Agent{Name: "support-bot", Halt: ownership.HaltSpec{Adapter: tt.adapter}}
			if got := r.SessionScoped(agent); got != tt.want {
				t.Errorf("SessionScoped(%s) = %v, want %v", tt.adapter, got, tt.want)
			}
		})
	}
}
