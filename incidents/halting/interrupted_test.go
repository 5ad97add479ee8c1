package halting_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
)

// A process killed between recording a halt and recording its result leaves
// the halt "requested". The job settles it once no live process can still
// be running it: by reading it back, or as superseded by a later verified
// halt of the same target, so the session is never counted halted twice.
func TestFinishInterruptedHalts(t *testing.T) {
	interrupted := func(env *incidentstest.Env) *incidents.Halt {
		t.Helper()
		h := &incidents.Halt{IncidentID: 1, Agent: "support-bot", Action: incidents.ActionHalt, Sessions: []string{"s-7"},
			Reason: "steps_per_session", Actor: incidents.PolicyActor("support-bot", "steps_per_session"),
			Adapter: "webhook", Status: incidents.HaltRequested, RequestedAt: env.Clock.Now()}
		if err := env.Store.CreateHalt(ctx, h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	statusOf := func(t *testing.T, env *incidentstest.Env, id int64) *incidents.Halt {
		t.Helper()
		halts, err := env.Store.FindHalts(ctx, "support-bot", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range halts {
			if h.ID == id {
				return h
			}
		}
		t.Fatalf("halt %d not found", id)
		return nil
	}
	settle := func(t *testing.T, env *incidentstest.Env) int {
		t.Helper()
		n, err := env.Halting.FinishInterruptedHalts(ctx, env.Clock.Now())
		if err != nil {
			t.Fatalf("FinishInterruptedHalts: %v", err)
		}
		return n
	}

	t.Run("TookEffect", func(t *testing.T) {
		env := incidentstest.NewEnv()
		incidentstest.Ingest(t, env, incidentstest.Alert())
		h := interrupted(env)
		if n := settle(t, env); n != 0 {
			t.Fatalf("settled %d halts still within the time a halt may take, want 0", n)
		}
		env.Clock.Advance(2 * time.Minute)
		if n := settle(t, env); n != 1 {
			t.Fatalf("settled %d, want 1", n)
		}
		got := statusOf(t, env, h.ID)
		if got.Status != incidents.HaltVerified || got.FinishedAt == nil {
			t.Errorf("halt %d: status %q finished %v, want verified with a finish time", h.ID, got.Status, got.FinishedAt)
		}
		if len(env.Halter.Requests()) != 0 {
			t.Errorf("the adapter was asked to halt again %d times: a read-back is enough", len(env.Halter.Requests()))
		}
		if kinds := incidentstest.EventKinds(t, env, 1); !slices.Contains(kinds, incidents.EventHaltVerified) {
			t.Errorf("timeline %v lacks halt_verified", kinds)
		}
		if n := settle(t, env); n != 0 {
			t.Errorf("settled %d on a second run, want 0", n)
		}
	})
	t.Run("DidNotTakeEffect", func(t *testing.T) {
		env := incidentstest.NewEnv()
		env.Halter.VerifyFunc = func(context.Context, incidents.HaltRequest) (bool, error) { return false, nil }
		incidentstest.Ingest(t, env, incidentstest.Alert())
		h := interrupted(env)
		env.Clock.Advance(2 * time.Minute)
		if n := settle(t, env); n != 1 {
			t.Fatalf("settled %d, want 1", n)
		}
		got := statusOf(t, env, h.ID)
		if got.Status != incidents.HaltFailed || !strings.Contains(got.Error, "interrupted") {
			t.Errorf("halt %d: status %q error %q, want failed, saying it was interrupted", h.ID, got.Status, got.Error)
		}
		if kinds := incidentstest.EventKinds(t, env, 1); !slices.Contains(kinds, incidents.EventHaltFailed) {
			t.Errorf("timeline %v lacks halt_failed", kinds)
		}
	})
	t.Run("SupersededByALaterHalt", func(t *testing.T) {
		env := incidentstest.NewEnv()
		incidentstest.Ingest(t, env, incidentstest.Alert())
		h := interrupted(env)
		env.Clock.Advance(30 * time.Second)
		later := &incidents.Halt{IncidentID: 1, Agent: "support-bot", Action: incidents.ActionHalt, Sessions: []string{"s-7"},
			Reason: "steps_per_session", Actor: h.Actor, Adapter: "webhook", Status: incidents.HaltVerified,
			RequestedAt: env.Clock.Now()}
		if err := env.Store.CreateHalt(ctx, later); err != nil {
			t.Fatal(err)
		}
		env.Clock.Advance(2 * time.Minute)
		if n := settle(t, env); n != 1 {
			t.Fatalf("settled %d, want 1", n)
		}
		got := statusOf(t, env, h.ID)
		if got.Status != incidents.HaltFailed || !strings.Contains(got.Error, "verified since") {
			t.Errorf("halt %d: status %q error %q, want failed as superseded", h.ID, got.Status, got.Error)
		}
		if env.Halter.Verifies() != 0 {
			t.Errorf("read back %d times: a later verified halt settles it", env.Halter.Verifies())
		}
	})
}
