package halting_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/ownership"
)

const tokenReason = "tokens_per_session 210,000 > 200,000 at step 37"

func autoCmd(mods ...func(*incidents.AutoHaltCommand)) incidents.AutoHaltCommand {
	c := incidents.AutoHaltCommand{Agent: "support-bot", SLA: "tokens_per_session", Action: ownership.OnBreachHaltSession,
		Fallback: ownership.OnBreachAlert, Sessions: []string{"s-8812"}, Reason: tokenReason}
	for _, m := range mods {
		m(&c)
	}
	return c
}

// channelPosts are the titles posted to incident 1's channel.
func channelPosts(t *testing.T, env *incidentstest.Env) []string {
	t.Helper()
	incidentstest.Drain(t, env, outbox.LaneChat)
	var out []string
	for _, c := range env.Chat.CallsTo("Post") {
		if c.Channel == "C001" {
			out = append(out, c.Message.Title)
		}
	}
	return out
}

func TestPolicyActorString(t *testing.T) {
	if got := incidents.PolicyActor("support-bot", "tokens_per_session").String(); got != "policy:support-bot/tokens_per_session" {
		t.Errorf("got %q", got)
	}
}

func TestAutoHaltSession(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())

	out, err := env.Policy.AutoHalt(ctx, autoCmd())
	if err != nil {
		t.Fatalf("AutoHalt: %v", err)
	}
	if out.Action != ownership.OnBreachHaltSession || out.Halt == nil || out.Halt.Status != incidents.HaltVerified {
		t.Fatalf("got %+v, want a verified session halt", out)
	}
	h := out.Halt
	if h.Actor.String() != "policy:support-bot/tokens_per_session" || !slices.Equal(h.Sessions, []string{"s-8812"}) || h.IncidentID != 1 {
		t.Errorf("halt: got actor %s sessions %v incident %d", h.Actor, h.Sessions, h.IncidentID)
	}
	reqs := env.Halter.Requests()
	if len(reqs) != 1 || !slices.Equal(reqs[0].Sessions, []string{"s-8812"}) || reqs[0].Actor.Kind != incidents.ActorPolicy {
		t.Errorf("halter: got %+v", reqs)
	}
	want := "reins halted session s-8812 of support-bot automatically: " + tokenReason + ". To resume: `/agent resume support-bot session s-8812` in Slack or `reins resume support-bot s-8812` on the reins host"
	if out.Note != want {
		t.Errorf("note: got %q, want %q", out.Note, want)
	}
	if posts := channelPosts(t, env); !slices.Contains(posts, "🛑 "+want) {
		t.Errorf("channel: got %q, want %q", posts, "🛑 "+want)
	}
	events, err := env.Store.FindEvents(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var verified *incidents.Event
	for _, e := range events {
		if e.Kind == incidents.EventHaltVerified {
			verified = e
		}
	}
	if verified == nil || verified.Actor.String() != "policy:support-bot/tokens_per_session" || !strings.Contains(verified.Text, want) {
		t.Errorf("timeline: got %+v", verified)
	}
	if got := incidentstest.Audit(t, env); !slices.Equal(got, []string{"kill"}) {
		t.Errorf("audit: got %v, want [kill] (no authority check, so no refusal)", got)
	}
}

func TestAutoHaltAgentOpensIncident(t *testing.T) {
	env := incidentstest.NewEnv()
	out, err := env.Policy.AutoHalt(ctx, autoCmd(func(c *incidents.AutoHaltCommand) {
		c.Action, c.Sessions = ownership.OnBreachHaltAgent, nil
	}))
	if err != nil || out.Action != ownership.OnBreachHaltAgent || out.Halt == nil || len(out.Halt.Sessions) != 0 || out.Halt.IncidentID != 1 {
		t.Fatalf("got %+v, %v; want a whole-agent halt on a new incident", out, err)
	}
	if !strings.HasSuffix(out.Note, "To resume: `/agent resume support-bot` in Slack or `reins resume support-bot` on the reins host") {
		t.Errorf("note: %q", out.Note)
	}
}

func TestAutoHaltFailedRepages(t *testing.T) {
	env := incidentstest.NewEnv(func(_ *incidents.Deps, c *incidents.Config) { c.HaltTimeout = 50 * time.Millisecond })
	env.Halter.VerifyFunc = func(context.Context, incidents.HaltRequest) (bool, error) { return false, nil }
	incidentstest.Ingest(t, env, incidentstest.Alert())
	out, err := env.Policy.AutoHalt(ctx, autoCmd())
	if err != nil || out.Halt == nil || out.Halt.Status != incidents.HaltFailed {
		t.Fatalf("got %+v, %v; want a failed halt", out, err)
	}
	if got := incidentstest.OutboxKeys(env, incidents.KindRepage); len(got) != 1 {
		t.Errorf("re-pages: got %v, want one, as for a person's halt", got)
	}
	if !strings.Contains(out.Note, "FAILED") {
		t.Errorf("note: %q", out.Note)
	}
}

func TestAutoHaltNotRun(t *testing.T) {
	tests := []struct {
		name        string
		setup       func(t *testing.T, env *incidentstest.Env)
		cmd         incidents.AutoHaltCommand
		wantAction  string
		wantHalts   int // adapter calls made by AutoHalt
		wantNote    string
		wantPage    bool
		wantSession []string
		silent      bool // nothing said in the incident: a repeat would be noise
	}{
		{name: "DryRun", cmd: autoCmd(func(c *incidents.AutoHaltCommand) { c.DryRun = true }),
			wantAction: incidents.AutoHaltDryRun,
			wantNote:   "Dry run: reins would have halted session s-8812 of support-bot automatically: " + tokenReason + ". Nothing was halted"},
		{name: "NoSessionAdapterFallsBackToAlert",
			cmd: autoCmd(func(c *incidents.AutoHaltCommand) {
				c.Agent, c.SLA = "billing-agent", "cost_per_session"
			}),
			wantAction: ownership.OnBreachAlert,
			wantNote:   "reins did not halt session s-8812 of billing-agent: its kubernetes adapter cannot stop one session and the SLA's fallback is alert"},
		{name: "NoSessionAdapterFallsBackToAgent",
			cmd: autoCmd(func(c *incidents.AutoHaltCommand) {
				c.Agent, c.SLA, c.Fallback = "billing-agent", "cost_per_session", ownership.OnBreachHaltAgent
			}),
			wantAction: ownership.OnBreachHaltAgent, wantHalts: 1,
			wantNote: "reins halted billing-agent automatically: " + tokenReason + " (its kubernetes adapter cannot stop one session, so by the SLA's fallback reins halts the whole agent). To resume: `/agent resume billing-agent` in Slack or `reins resume billing-agent` on the reins host"},
		// An adapter that cannot do a rung is never sent a stronger or
		// weaker action in silence: the SLA's fallback decides, said so.
		{name: "RungUnsupportedFallsBackToAlert",
			cmd: autoCmd(func(c *incidents.AutoHaltCommand) {
				c.Agent, c.SLA, c.Action, c.Allow = "billing-agent", "cost_per_session", ownership.OnBreachRestrict, []string{"kb.read"}
			}),
			wantAction: ownership.OnBreachAlert,
			wantNote:   "reins did not restrict session s-8812 of billing-agent: its kubernetes adapter cannot restrict and the SLA's fallback is alert"},
		{name: "RungUnsupportedFallsBackToHaltAgent",
			cmd: autoCmd(func(c *incidents.AutoHaltCommand) {
				c.Agent, c.SLA, c.Action, c.Rate, c.Fallback = "billing-agent", "cost_per_session", ownership.OnBreachThrottle, 6, ownership.OnBreachHaltAgent
			}),
			wantAction: ownership.OnBreachHaltAgent, wantHalts: 1,
			wantNote: "reins halted billing-agent automatically: " + tokenReason + " (its kubernetes adapter cannot throttle, so by the SLA's fallback reins does halt_agent instead)"},
		{name: "SessionAlreadyHaltedByHalt",
			setup: func(t *testing.T, env *incidentstest.Env) {
				if _, err := env.Halting.Halt(ctx, incidentstest.HaltCmd(alice, func(c *incidents.HaltCommand) { c.Sessions = []string{"s-8812"} })); err != nil {
					t.Fatal(err)
				}
			},
			cmd: autoCmd(), wantAction: incidents.AutoHaltAlreadyHalted, wantHalts: 1, silent: true,
			wantNote: "session s-8812 of support-bot is already halted: reins did not halt it again"},
		{name: "AgentAlreadyHalted",
			setup: func(t *testing.T, env *incidentstest.Env) {
				if _, err := env.Halting.Halt(ctx, incidentstest.HaltCmd(alice)); err != nil {
					t.Fatal(err)
				}
			},
			cmd: autoCmd(), wantAction: incidents.AutoHaltAlreadyHalted, wantHalts: 1, silent: true},
		{name: "SessionKillFlagSet",
			setup: func(t *testing.T, env *incidentstest.Env) {
				if err := env.Store.SetKillFlag(ctx, incidents.KillFlag{Agent: "support-bot", Session: "s-8812", Halted: true}); err != nil {
					t.Fatal(err)
				}
			},
			cmd: autoCmd(), wantAction: incidents.AutoHaltAlreadyHalted, silent: true},
		{name: "OnlyTheSessionsNotYetHalted",
			setup: func(t *testing.T, env *incidentstest.Env) {
				if err := env.Store.SetKillFlag(ctx, incidents.KillFlag{Agent: "support-bot", Session: "s-8812", Halted: true}); err != nil {
					t.Fatal(err)
				}
			},
			cmd:        autoCmd(func(c *incidents.AutoHaltCommand) { c.Sessions = []string{"s-8812", "s-9"} }),
			wantAction: ownership.OnBreachHaltSession, wantHalts: 1, wantSession: []string{"s-9"}},
		{name: "RateLimitedPages",
			setup:      rateLimit,
			cmd:        autoCmd(func(c *incidents.AutoHaltCommand) { c.Sessions = []string{"s-new"} }),
			wantAction: incidents.AutoHaltRateLimited, wantHalts: 2, wantPage: true,
			wantNote: "reins did not halt session s-new of support-bot: 2 automatic halts of support-bot in the last minute reached max_auto_halts_per_minute"},
		{name: "RateLimitedFallbackHaltsAgent",
			setup: rateLimit,
			cmd: autoCmd(func(c *incidents.AutoHaltCommand) {
				c.Sessions, c.Fallback = []string{"s-new"}, ownership.OnBreachHaltAgent
			}),
			wantAction: ownership.OnBreachHaltAgent, wantHalts: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := incidentstest.NewEnv()
			incidentstest.Ingest(t, env, incidentstest.Alert(func(a *incidents.Alert) { a.Agent = tt.cmd.Agent }))
			if tt.setup != nil {
				tt.setup(t, env)
			}
			out, err := env.Policy.AutoHalt(ctx, tt.cmd)
			if err != nil {
				t.Fatalf("AutoHalt: %v", err)
			}
			if out.Action != tt.wantAction {
				t.Errorf("action: got %q, want %q (%+v)", out.Action, tt.wantAction, out)
			}
			if got := len(env.Halter.Requests()); got != tt.wantHalts {
				t.Errorf("adapter calls: got %d, want %d", got, tt.wantHalts)
			}
			if tt.wantSession != nil && (out.Halt == nil || !slices.Equal(out.Halt.Sessions, tt.wantSession)) {
				t.Errorf("halt: got %+v, want sessions %v", out.Halt, tt.wantSession)
			}
			if !strings.HasPrefix(out.Note, tt.wantNote) {
				t.Errorf("note: got %q, want prefix %q", out.Note, tt.wantNote)
			}
			posts := channelPosts(t, env)
			said := slices.ContainsFunc(posts, func(p string) bool { return tt.wantNote != "" && strings.Contains(p, tt.wantNote) })
			if tt.wantNote != "" && said == tt.silent {
				t.Errorf("channel: got %q; want a post saying %q: %v", posts, tt.wantNote, !tt.silent)
			}
			noted := slices.Contains(incidentstest.EventKinds(t, env, 1), incidents.EventAutoHalt)
			if out.Halt == nil && noted == tt.silent {
				t.Errorf("timeline %v: want auto_halt: %v", incidentstest.EventKinds(t, env, 1), !tt.silent)
			}
			pages := incidentstest.OutboxKeys(env, incidents.KindPage)
			if got := slices.ContainsFunc(pages, func(k string) bool { return strings.Contains(k, "auto-halt-limit") }); got != tt.wantPage {
				t.Errorf("page: got %v, want %v", pages, tt.wantPage)
			}
		})
	}
}

// rateLimit sets support-bot's cap to 2 and spends it.
func rateLimit(t *testing.T, env *incidentstest.Env) {
	t.Helper()
	reg := env.Registry.Current()
	reg.Agents["support-bot"].Escalation.MaxAutoHaltsPerMinute = 2
	for _, id := range []string{"s-1", "s-2"} {
		out, err := env.Policy.AutoHalt(ctx, autoCmd(func(c *incidents.AutoHaltCommand) { c.Sessions = []string{id} }))
		if err != nil || out.Halt == nil {
			t.Fatalf("spend the limit: %+v, %v", out, err)
		}
	}
}

// Past the limit, one note and one page a minute, however many breaches.
func TestAutoHaltRateLimitedSaysSoOnceAMinute(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())
	rateLimit(t, env)
	for _, id := range []string{"s-3", "s-4", "s-5"} {
		out, err := env.Policy.AutoHalt(ctx, autoCmd(func(c *incidents.AutoHaltCommand) { c.Sessions = []string{id} }))
		if err != nil || out.Action != incidents.AutoHaltRateLimited {
			t.Fatalf("%s: got %+v, %v", id, out, err)
		}
	}
	n := 0
	for _, k := range incidentstest.EventKinds(t, env, 1) {
		if k == incidents.EventAutoHalt {
			n++
		}
	}
	if n != 1 {
		t.Errorf("auto_halt events: got %d, want 1", n)
	}
	if pages := incidentstest.OutboxKeys(env, incidents.KindPage); len(pages) != 2 { // the incident's own page and one for the limit
		t.Errorf("pages: got %v", pages)
	}
}

func TestAutoHaltRateLimitIsPerMinute(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())
	rateLimit(t, env)
	env.Clock.Advance(61 * time.Second)
	out, err := env.Policy.AutoHalt(ctx, autoCmd(func(c *incidents.AutoHaltCommand) { c.Sessions = []string{"s-3"} }))
	if err != nil || out.Action != ownership.OnBreachHaltSession {
		t.Fatalf("a minute later: got %+v, %v; want a halt", out, err)
	}
}

func TestAutoHaltInvalid(t *testing.T) {
	env := incidentstest.NewEnv()
	for name, cmd := range map[string]incidents.AutoHaltCommand{
		"UnknownAction":   autoCmd(func(c *incidents.AutoHaltCommand) { c.Action = "alert" }),
		"NoSessions":      autoCmd(func(c *incidents.AutoHaltCommand) { c.Sessions = nil }),
		"NoSLA":           autoCmd(func(c *incidents.AutoHaltCommand) { c.SLA = "" }),
		"UnknownAgentIsX": autoCmd(func(c *incidents.AutoHaltCommand) { c.Agent = "nobody" }),
	} {
		if _, err := env.Policy.AutoHalt(ctx, cmd); err == nil {
			t.Errorf("%s: got no error", name)
		}
	}
	if n := len(env.Halter.Requests()); n != 0 {
		t.Errorf("adapter called %d times", n)
	}
}

// Two breaches of one session at once halt it once.
func TestAutoHaltConcurrentOnce(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())
	outs := make(chan string, 4)
	for range 4 {
		go func() {
			out, err := env.Policy.AutoHalt(ctx, autoCmd())
			if err != nil {
				outs <- err.Error()
				return
			}
			outs <- out.Action
		}()
	}
	var got []string
	for range 4 {
		got = append(got, <-outs)
	}
	slices.Sort(got)
	want := []string{incidents.AutoHaltAlreadyHalted, incidents.AutoHaltAlreadyHalted, incidents.AutoHaltAlreadyHalted, ownership.OnBreachHaltSession}
	if !slices.Equal(got, want) || len(env.Halter.Requests()) != 1 {
		t.Errorf("got %v with %d adapter calls, want %v and 1", got, len(env.Halter.Requests()), want)
	}
}

// Without Slack the instructions are the shell's: no "/agent resume" a
// person has nowhere to type.
func TestAutoHaltWithoutSlackSaysTheCLI(t *testing.T) {
	env := incidentstest.NewEnv(func(d *incidents.Deps, _ *incidents.Config) { d.Chat = nil })
	incidentstest.Ingest(t, env, incidentstest.Alert())
	out, err := env.Policy.AutoHalt(ctx, autoCmd())
	if err != nil || out.Halt == nil || out.Halt.Status != incidents.HaltVerified {
		t.Fatalf("AutoHalt: %+v, %v", out, err)
	}
	want := "To resume: `reins resume support-bot s-8812`"
	if !strings.HasSuffix(out.Note, want) || strings.Contains(out.Note, "/agent") {
		t.Errorf("note: got %q, want it to end %q", out.Note, want)
	}
	events, err := env.Store.FindEvents(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if strings.Contains(e.Text, "/agent") {
			t.Errorf("timeline without Slack says %q", e.Text)
		}
	}
}
