package jobs

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

// Schedules. A new job is one entry in List (or its own list, like Drills)
// with its schedule here.
const (
	scheduleNudges      = "@every 1m"
	schedulePostmortems = "@every 15m"
	scheduleAudit       = "0 9 * * 1" // Mondays 09:00 UTC, posted to the governance channel
	scheduleRetention   = "@every 1h" // sessions.retention is days: hourly is precise enough
	// scheduleKeyPrune deletes idempotency keys past incidents.IdempotencyKeep
	// (a week): a few hours late changes nothing.
	scheduleKeyPrune = "@every 6h"
	// scheduleEscalation runs the dead-man: auto_halt_after is minutes, so
	// half a minute late at most.
	scheduleEscalation = "@every 30s"
	// scheduleHeldSpans joins spans a race left waiting for a session that
	// is known, and refuses those past telemetry.hold.max_age.
	scheduleHeldSpans = "@every 10s"
	// scheduleProbation returns targets whose probation ended quietly to
	// running (the resume gate, docs/containment.md).
	scheduleProbation = "@every 20s"
	// scheduleInterrupted settles halts a stopped process left "requested":
	// soon after the longest a halt can take (about 40 s by default).
	scheduleInterrupted = "@every 15s"
)

// Reminders is what the jobs ask of the aftermath (*aftermath.Reminders): the
// nudges of stalled checklists and unfinished postmortems.
type Reminders interface {
	NudgeStalledChecklists(ctx context.Context, now time.Time) (int, error)
	RemindPostmortems(ctx context.Context, now time.Time) (int, error)
}

// Halts is what the jobs ask of the halts (*halting.Policy): the dead-man,
// the probations that ended, the halts a stopped process left unfinished.
type Halts interface {
	Escalate(ctx context.Context, now time.Time) (int, error)
	EndProbations(ctx context.Context, now time.Time) error
	FinishInterruptedHalts(ctx context.Context, now time.Time) (int, error)
}

// Driller drills an agent's kill switch (*halting.Drills).
type Driller interface {
	RunDrill(ctx context.Context, agent string, now time.Time) (*incidents.DrillResult, error)
}

// Domain is what the jobs ask of the other incident use cases (*incidents.Service).
type Domain interface {
	AuditOwnership(ctx context.Context, now time.Time) error
	PruneIdempotencyKeys(ctx context.Context, now time.Time) (int64, error)
}

// Sessions is what the jobs ask of the session record (*sessions.Service).
type Sessions interface {
	EnforceRetention(ctx context.Context, now time.Time) (int, error)
}

// List is every fixed job. heldSpans joins and refuses held spans (it
// reaches the OTLP intake's refusal log, so the caller builds it).
func List(d Domain, h Halts, r Reminders, s Sessions, heldSpans func(ctx context.Context) error, log *slog.Logger) []Job {
	return []Job{
		{Name: "nudge_checklists", Schedule: scheduleNudges, Run: discardCount(r.NudgeStalledChecklists)},
		{Name: "remind_postmortems", Schedule: schedulePostmortems, Run: discardCount(r.RemindPostmortems)},
		{Name: "ownership_audit", Schedule: scheduleAudit, Run: d.AuditOwnership},
		{Name: "dead_man_escalation", Schedule: scheduleEscalation, Run: discardCount(h.Escalate)},
		{Name: "end_probations", Schedule: scheduleProbation, Run: h.EndProbations},
		{Name: "finish_interrupted_halts", Schedule: scheduleInterrupted, Run: discardCount(h.FinishInterruptedHalts)},
		{Name: "session_retention", Schedule: scheduleRetention, Run: discardCount(s.EnforceRetention)},
		{Name: "held_spans", Schedule: scheduleHeldSpans, Run: func(ctx context.Context, _ time.Time) error {
			return heldSpans(ctx)
		}},
		{Name: "prune_idempotency_keys", Schedule: scheduleKeyPrune, Run: func(ctx context.Context, now time.Time) error {
			n, err := d.PruneIdempotencyKeys(ctx, now)
			if n > 0 {
				log.Debug("pruned idempotency keys", "rows", n)
			}
			return err
		}},
	}
}

// Drills is one job per agent with a drill schedule, in name order.
func Drills(reg *ownership.Registry, d Driller) []Job {
	var out []Job
	for _, name := range slices.Sorted(maps.Keys(reg.Agents)) {
		a := reg.Agents[name]
		if a.Drill == "" {
			continue
		}
		agent := name
		out = append(out, Job{Name: "drill:" + agent, Schedule: a.Drill, Run: func(ctx context.Context, now time.Time) error {
			_, err := d.RunDrill(ctx, agent, now)
			return err
		}})
	}
	return out
}

func discardCount[N int | int64](fn func(context.Context, time.Time) (N, error)) func(context.Context, time.Time) error {
	return func(ctx context.Context, now time.Time) error {
		_, err := fn(ctx, now)
		return err
	}
}
