package halting_test

import (
	"slices"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/ownership"
)

// deadManEnv is an Env whose support-bot has a 10-minute dead-man on
// critical incidents, with incident 1 opened by a critical alert.
func deadManEnv(t *testing.T, mods ...func(*incidents.Alert)) *incidentstest.Env {
	t.Helper()
	env := incidentstest.NewEnv()
	env.Registry.Current().Agents["support-bot"].Escalation = ownership.Escalation{
		AutoHaltAfter: 10 * time.Minute, Severities: []string{"critical"}, MaxAutoHaltsPerMinute: 20}
	incidentstest.Ingest(t, env, incidentstest.Alert(mods...))
	return env
}

func escalate(t *testing.T, env *incidentstest.Env) int {
	t.Helper()
	n, err := env.Policy.Escalate(ctx, env.Clock.Now())
	if err != nil {
		t.Fatalf("Escalate: %v", err)
	}
	return n
}

func TestEscalateHaltsUnacknowledged(t *testing.T) {
	env := deadManEnv(t)
	env.Clock.Advance(9*time.Minute + 59*time.Second)
	if n := escalate(t, env); n != 0 || len(env.Halter.Requests()) != 0 {
		t.Fatalf("before 10 min: escalated %d, halts %d; want none", n, len(env.Halter.Requests()))
	}
	env.Clock.Advance(time.Second)
	if n := escalate(t, env); n != 1 {
		t.Fatalf("after 10 min: escalated %d, want 1", n)
	}
	reqs := env.Halter.Requests()
	if len(reqs) != 1 || len(reqs[0].Sessions) != 0 || reqs[0].IncidentID != 1 {
		t.Fatalf("halter: got %+v, want one whole-agent halt on incident 1", reqs)
	}
	halts, err := env.Store.FindHalts(ctx, "support-bot", 1)
	if err != nil || len(halts) != 1 {
		t.Fatalf("halts: %v %v", halts, err)
	}
	h := halts[0]
	if h.Actor.String() != "policy:support-bot/escalation" || h.Status != incidents.HaltVerified ||
		h.Reason != "nobody with kill authority acknowledged within 10m" {
		t.Errorf("halt: got actor %s status %s reason %q", h.Actor, h.Status, h.Reason)
	}
	kinds := incidentstest.EventKinds(t, env, 1)
	if i, j := slices.Index(kinds, incidents.EventEscalated), slices.Index(kinds, incidents.EventHaltRequested); i < 0 || j < i {
		t.Errorf("timeline %v: want escalated recorded before the halt request", kinds)
	}
	posts := channelPosts(t, env)
	want := "🛑 reins halted support-bot automatically: nobody with kill authority acknowledged within 10m. To resume: `/agent resume support-bot` in Slack or `reins resume support-bot` on the reins host"
	if !slices.Contains(posts, want) {
		t.Errorf("channel: got %q, want %q", posts, want)
	}

	// Not twice: not on the next run, nor a minute later.
	env.Clock.Advance(time.Minute)
	if n := escalate(t, env); n != 0 || len(env.Halter.Requests()) != 1 {
		t.Errorf("second run: escalated %d, halts %d; want 0 and still 1", n, len(env.Halter.Requests()))
	}
}

func TestEscalateSkipped(t *testing.T) {
	tests := []struct {
		name  string
		alert func(*incidents.Alert)
		act   func(t *testing.T, env *incidentstest.Env)
	}{
		{name: "PagerDutyAck", act: func(t *testing.T, env *incidentstest.Env) {
			inc := incidentstest.FindIncident(t, env, 1)
			if err := env.Service.PagerAcknowledged(ctx, inc.PagerDutyKey, "dave@example.com", env.Clock.Now()); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "SlackAckByKillAuthority", act: func(t *testing.T, env *incidentstest.Env) {
			if _, err := env.Service.Acknowledge(ctx, alice, 1); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "HaltOnTheIncident", act: func(t *testing.T, env *incidentstest.Env) {
			if _, err := env.Halting.Halt(ctx, incidentstest.HaltCmd(alice, func(c *incidents.HaltCommand) { c.Sessions = []string{"s-8812"} })); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "SeverityNotListed", alert: func(a *incidents.Alert) { a.Severity = incidents.SeverityWarning }},
		{name: "AgentWithoutDeadMan", act: func(t *testing.T, env *incidentstest.Env) {
			env.Registry.Current().Agents["support-bot"].Escalation.AutoHaltAfter = 0
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mods []func(*incidents.Alert)
			if tt.alert != nil {
				mods = append(mods, tt.alert)
			}
			env := deadManEnv(t, mods...)
			if tt.act != nil {
				tt.act(t, env)
			}
			before := len(env.Halter.Requests())
			env.Clock.Advance(11 * time.Minute)
			if n := escalate(t, env); n != 0 {
				t.Errorf("escalated %d, want 0", n)
			}
			if got := len(env.Halter.Requests()); got != before {
				t.Errorf("halts: got %d, want %d", got, before)
			}
			if slices.Contains(incidentstest.EventKinds(t, env, 1), incidents.EventEscalated) {
				t.Error("timeline has escalated")
			}
		})
	}
}

// A Slack acknowledgement by someone without kill authority does not stop
// the dead-man.
func TestEscalateAckWithoutAuthority(t *testing.T) {
	env := deadManEnv(t)
	if _, err := env.Service.Acknowledge(ctx, eve, 1); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(10 * time.Minute)
	if n := escalate(t, env); n != 1 || len(env.Halter.Requests()) != 1 {
		t.Fatalf("escalated %d with %d halts, want 1 and 1", n, len(env.Halter.Requests()))
	}
	events, _ := env.Store.FindEvents(ctx, 1)
	var texts []string
	for _, e := range events {
		if e.Kind == incidents.EventEscalated {
			texts = append(texts, e.Actor.String()+": "+e.Text)
		}
	}
	want := []string{"policy:support-bot/escalation: Escalated by policy: nobody with kill authority acknowledged this critical incident within 10m"}
	if !slices.Equal(texts, want) {
		t.Errorf("escalated events: got %q, want %q", texts, want)
	}
}
