package halting_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
)

var (
	alice = incidents.Actor{Kind: incidents.ActorSlack, ID: "U01ALICE", Name: "alice"}
	eve   = incidents.Actor{Kind: incidents.ActorSlack, ID: "U09EVE"}
)

func TestHaltRefused(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())

	_, err := env.Halting.Halt(ctx, incidentstest.HaltCmd(eve))
	if incidents.ErrorCode(err) != incidents.EFORBIDDEN {
		t.Fatalf("got %v, want EFORBIDDEN", err)
	}
	if msg := incidents.ErrorMessage(err); !strings.Contains(msg, "U01ALICE") {
		t.Errorf("refusal %q does not say who holds authority", msg)
	}
	if got := len(env.Halter.Requests()); got != 0 {
		t.Errorf("halter called %d times, want never", got)
	}
	if got := incidentstest.Audit(t, env); !slices.Equal(got, []string{"kill_refused"}) {
		t.Errorf("audit: got %v, want [kill_refused]", got)
	}
	if kinds := incidentstest.EventKinds(t, env, 1); !slices.Contains(kinds, incidents.EventHaltRefused) {
		t.Errorf("timeline %v lacks halt_refused", kinds)
	}
}

func TestCheckAuthority(t *testing.T) {
	tests := []struct {
		name        string
		actor       incidents.Actor
		agent       string
		wantAllowed bool
		wantCode    string
		wantAudit   []string
	}{
		{name: "OK", actor: alice, agent: "support-bot", wantAllowed: true},
		{name: "OKByAlias", actor: alice, agent: "support-bot-v2", wantAllowed: true},
		{name: "Refused", actor: eve, agent: "support-bot", wantAudit: []string{"resume_refused"}},
		{name: "ErrUnknownAgent", actor: alice, agent: "billing-agnet", wantCode: incidents.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := incidentstest.NewEnv()
			d, ag, err := env.Halting.CheckAuthority(ctx, tt.actor, tt.agent, incidents.ActionResume)
			if code := incidents.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("error: got %v, want code %q", err, tt.wantCode)
			}
			if tt.wantCode == incidents.ENOTFOUND {
				if msg := incidents.ErrorMessage(err); !strings.Contains(msg, "billing-agent") {
					t.Errorf("message %q does not suggest billing-agent", msg)
				}
				return
			}
			if d.Allowed != tt.wantAllowed || ag == nil || ag.Name != "support-bot" {
				t.Errorf("got allowed %v agent %v, want %v support-bot", d.Allowed, ag, tt.wantAllowed)
			}
			if got := incidentstest.Audit(t, env); !slices.Equal(got, tt.wantAudit) {
				t.Errorf("audit: got %v, want %v", got, tt.wantAudit)
			}
		})
	}
}

func TestHaltVerified(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())
	env.Halter.DoFunc = func(ctx context.Context, r incidents.HaltRequest) error {
		env.Clock.Advance(840 * time.Millisecond)
		return nil
	}

	h, err := env.Halting.Halt(ctx, incidentstest.HaltCmd(alice))
	if err != nil {
		t.Fatalf("Halt: %v", err)
	}
	if h.Status != incidents.HaltVerified || h.Attempts != 1 || h.IncidentID != 1 || h.TimeToHalt() != 840*time.Millisecond {
		t.Errorf("got %+v, want verified in one attempt on incident 1 in 840 ms", h)
	}
	reqs := env.Halter.Requests()
	if len(reqs) != 1 || reqs[0].Agent.Name != "support-bot" || reqs[0].HaltID != h.ID || reqs[0].Reason != "looping on refunds" {
		t.Errorf("halter requests: got %+v", reqs)
	}
	want := []incidents.EventKind{incidents.EventIncidentOpened, incidents.EventAlertFired,
		incidents.EventHaltRequested, incidents.EventHaltVerified}
	if got := incidentstest.EventKinds(t, env, 1); !slices.Equal(got, want) {
		t.Errorf("timeline: got %v, want %v", got, want)
	}
	if got := incidentstest.Audit(t, env); !slices.Equal(got, []string{"kill"}) {
		t.Errorf("audit: got %v, want [kill]", got)
	}
	incidentstest.Drain(t, env, outbox.LaneChat)
	var posted string
	for _, c := range env.Chat.CallsTo("Post") {
		if c.Channel == "C001" {
			posted = c.Message.Title
		}
	}
	if want := "🛑 support-bot halted by alice — verified in 840 ms"; posted != want {
		t.Errorf("channel post: got %q, want %q", posted, want)
	}
	if got := incidentstest.OutboxKeys(env, incidents.KindRepage); len(got) != 0 {
		t.Errorf("re-pages: got %v, want none", got)
	}
}

func TestHaltFailed(t *testing.T) {
	tests := []struct {
		name         string
		do           func(ctx context.Context, r incidents.HaltRequest) error
		verify       func(ctx context.Context, r incidents.HaltRequest) (bool, error)
		wantAttempts int
		wantError    string
	}{
		{name: "AdapterFails", wantAttempts: 3, wantError: "failed 3 times",
			do: func(ctx context.Context, r incidents.HaltRequest) error { return errors.New("connection refused") }},
		{name: "AdapterHangs", wantAttempts: 3, wantError: "deadline exceeded",
			do: func(ctx context.Context, r incidents.HaltRequest) error { <-ctx.Done(); return ctx.Err() }},
		// A missing secret fails the same way every time: not retried.
		{name: "MissingSecretIsNotRetried", wantAttempts: 1, wantError: "SUPPORT_BOT_HALT_SECRET, which is empty",
			do: func(ctx context.Context, r incidents.HaltRequest) error {
				return incidents.Errorf(incidents.EINVALID, "The webhook adapter reads $SUPPORT_BOT_HALT_SECRET, which is empty.")
			}},
		{name: "VerifyDisagrees", wantAttempts: 1, wantError: "still reports running",
			verify: func(ctx context.Context, r incidents.HaltRequest) (bool, error) { return false, nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := incidentstest.NewEnv(func(_ *incidents.Deps, c *incidents.Config) { c.HaltTimeout = 50 * time.Millisecond })
			env.Halter.DoFunc, env.Halter.VerifyFunc = tt.do, tt.verify
			incidentstest.Ingest(t, env, incidentstest.Alert())

			h, err := env.Halting.Halt(ctx, incidentstest.HaltCmd(alice))
			if err != nil {
				t.Fatalf("Halt: got error %v, want the failure in the Halt", err)
			}
			if h.Status != incidents.HaltFailed || h.Attempts != tt.wantAttempts || !strings.Contains(h.Error, tt.wantError) {
				t.Errorf("got %+v, want failed after %d attempts with %q", h, tt.wantAttempts, tt.wantError)
			}
			kinds := incidentstest.EventKinds(t, env, 1)
			if !slices.Contains(kinds, incidents.EventHaltFailed) || slices.Contains(kinds, incidents.EventHaltVerified) {
				t.Errorf("timeline: got %v, want halt_failed and never halt_verified", kinds)
			}
			if got := incidentstest.OutboxKeys(env, incidents.KindRepage); len(got) != 1 {
				t.Errorf("re-pages: got %v, want one", got)
			}
			incidentstest.Drain(t, env, outbox.LaneUrgent)
			pages := env.Pager.Pages()
			if len(pages) != 2 || !strings.HasPrefix(pages[1].Summary, "HALT FAILED") || pages[1].DedupKey != "reins-1" {
				t.Errorf("pages: got %+v, want the page then a HALT FAILED re-page", pages)
			}
			incidentstest.Drain(t, env, outbox.LaneChat)
			for _, c := range env.Chat.CallsTo("Post") {
				if strings.Contains(c.Message.Title, "verified") {
					t.Errorf("posted %q for a failed halt", c.Message.Title)
				}
			}
		})
	}
}

func TestHaltBreakGlass(t *testing.T) {
	env := incidentstest.NewEnv()
	root := incidents.Actor{Kind: incidents.ActorCLI, ID: "root"}
	h, err := env.Halting.Halt(ctx, incidentstest.HaltCmd(root, func(c *incidents.HaltCommand) { c.BreakGlass = true }))
	if err != nil || h.Status != incidents.HaltVerified {
		t.Fatalf("Halt: got %+v, %v; want verified", h, err)
	}
	entries, _ := env.Store.FindAudit(ctx, "support-bot", 0)
	if len(entries) != 1 || entries[0].Action != "kill" || !strings.Contains(entries[0].Detail, "break-glass") {
		t.Errorf("audit: got %+v, want one break-glass kill", entries)
	}
	inc := incidentstest.FindIncident(t, env, h.IncidentID)
	if inc.Title != "Halt requested for support-bot" || inc.Source != "manual" {
		t.Errorf("incident opened by the halt: got %q from %q", inc.Title, inc.Source)
	}
	if got := incidentstest.OutboxKeys(env, incidents.KindPage); len(got) != 1 {
		t.Errorf("pages queued: got %v, want one", got)
	}
}

func TestHaltInvalid(t *testing.T) {
	carol := incidents.Actor{Kind: incidents.ActorSlack, ID: "U03CAROL"}
	tests := []struct {
		name     string
		cmd      incidents.HaltCommand
		wantCode string
	}{
		{name: "ErrSessionsOnKubernetes", wantCode: incidents.EINVALID, cmd: incidentstest.HaltCmd(carol, func(c *incidents.HaltCommand) {
			c.Agent, c.Sessions = "billing-agent", []string{"s-1"}
		})},
		{name: "ErrUnknownAction", wantCode: incidents.EINVALID, cmd: incidentstest.HaltCmd(alice, func(c *incidents.HaltCommand) { c.Action = "pause" })},
		{name: "ErrUnknownAgent", wantCode: incidents.ENOTFOUND, cmd: incidentstest.HaltCmd(alice, func(c *incidents.HaltCommand) { c.Agent = "nobody" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := incidentstest.NewEnv()
			_, err := env.Halting.Halt(ctx, tt.cmd)
			if code := incidents.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("got %v, want %s", err, tt.wantCode)
			}
			if len(env.Halter.Requests()) != 0 || len(env.Store.Incidents()) != 0 {
				t.Errorf("an invalid command reached the halter or opened an incident")
			}
		})
	}
}

func TestResumeWithoutIncident(t *testing.T) {
	env := incidentstest.NewEnv()
	h, err := env.Halting.Halt(ctx, incidentstest.HaltCmd(alice, func(c *incidents.HaltCommand) { c.Action = incidents.ActionResume }))
	if err != nil || h.Status != incidents.HaltVerified || h.IncidentID != 0 {
		t.Fatalf("got %+v, %v; want a verified resume outside any incident", h, err)
	}
	if n := len(env.Store.Incidents()); n != 0 {
		t.Errorf("a resume opened %d incidents", n)
	}
}
