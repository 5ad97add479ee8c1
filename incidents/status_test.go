package incidents_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
)

func TestStatusAfterHalts(t *testing.T) {
	type step struct {
		action   string
		sessions []string
		fail     bool
	}
	tests := []struct {
		name         string
		steps        []step
		wantHalted   bool
		wantSessions []string
	}{
		{name: "Running"},
		{name: "Halted", steps: []step{{action: incidents.ActionHalt}}, wantHalted: true},
		{name: "Resumed", steps: []step{{action: incidents.ActionHalt}, {action: incidents.ActionResume}}},
		{name: "FailedHaltIsNotHalted", steps: []step{{action: incidents.ActionHalt, fail: true}}},
		{name: "FailedResumeStaysHalted", steps: []step{{action: incidents.ActionHalt}, {action: incidents.ActionResume, fail: true}},
			wantHalted: true},
		{name: "Sessions", steps: []step{{action: incidents.ActionHalt, sessions: []string{"s-1", "s-2"}},
			{action: incidents.ActionResume, sessions: []string{"s-1"}}}, wantSessions: []string{"s-2"}},
		{name: "AgentResumeClearsSessions", steps: []step{{action: incidents.ActionHalt, sessions: []string{"s-1"}},
			{action: incidents.ActionHalt}, {action: incidents.ActionResume}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := incidentstest.NewEnv(func(_ *incidents.Deps, c *incidents.Config) { c.HaltAttempts = 1 })
			for _, st := range tt.steps {
				env.Halter.DoFunc = func(ctx context.Context, r incidents.HaltRequest) error {
					if st.fail {
						return errors.New("boom")
					}
					return nil
				}
				if _, err := env.Halting.Halt(ctx, incidentstest.HaltCmd(alice, func(c *incidents.HaltCommand) {
					c.Action, c.Sessions = st.action, st.sessions
				})); err != nil {
					t.Fatalf("Halt: %v", err)
				}
			}
			got, err := env.Service.Status(ctx, "support-bot-v2")
			if err != nil || len(got) != 1 {
				t.Fatalf("Status: got %d statuses, %v", len(got), err)
			}
			st := got[0]
			if st.Halted != tt.wantHalted || !slices.Equal(st.HaltedSessions, tt.wantSessions) {
				t.Errorf("got halted %v sessions %v, want %v %v", st.Halted, st.HaltedSessions, tt.wantHalted, tt.wantSessions)
			}
			if (st.LastHalt != nil) != (len(tt.steps) > 0) {
				t.Errorf("LastHalt: got %+v", st.LastHalt)
			}
			if !slices.Equal(st.Holders, []string{"U01ALICE", "U02BOB"}) {
				t.Errorf("holders: got %v", st.Holders)
			}
		})
	}
}

func TestStatusAll(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())
	got, err := env.Service.Status(ctx, "")
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	var names []string
	for _, st := range got {
		names = append(names, st.Agent.Name)
		if wantOpen := st.Agent.Name == "support-bot"; (len(st.OpenIncidents) == 1) != wantOpen {
			t.Errorf("%s: got %d open incidents", st.Agent.Name, len(st.OpenIncidents))
		}
	}
	if want := []string{"billing-agent", "orphan-agent", "support-bot"}; !slices.Equal(names, want) {
		t.Errorf("agents: got %v, want %v", names, want)
	}
	if _, err := env.Service.Status(ctx, "nobody"); incidents.ErrorCode(err) != incidents.ENOTFOUND {
		t.Errorf("unknown agent: got %v, want ENOTFOUND", err)
	}
}

func TestWho(t *testing.T) {
	env := incidentstest.NewEnv()
	info, err := env.Service.Who(ctx, "support-bot")
	if err != nil {
		t.Fatalf("Who: %v", err)
	}
	if info.Agent.Name != "support-bot" || info.Team == nil || info.Team.Name != "support-ai" ||
		!slices.Equal(info.Holders, []string{"U01ALICE", "U02BOB"}) {
		t.Errorf("got %+v", info)
	}
	if _, err := env.Service.Who(ctx, "suport-bot"); incidents.ErrorCode(err) != incidents.ENOTFOUND {
		t.Errorf("misspelt agent: got %v, want ENOTFOUND", err)
	}
}
