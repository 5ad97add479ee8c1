package main

import (
	"context"
	"time"

	"github.com/robfig/cron/v3"
)

// Scheduled jobs. Every job body lives in the domain and takes `now`; here
// each is wrapped in a cluster-wide lock so replicas firing the same minute
// run it once, and "locked elsewhere" is a normal outcome.
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

func (m *Main) startJobs(ctx context.Context) {
	logger := cron.VerbosePrintfLogger(slogPrintf{m})
	m.cron = cron.New(cron.WithLocation(time.UTC),
		cron.WithChain(cron.Recover(logger), cron.SkipIfStillRunning(logger)))
	m.jobCtx = ctx
	m.addJob(scheduleNudges, "nudge_checklists", func(ctx context.Context, now time.Time) error {
		_, err := m.Service.NudgeStalledChecklists(ctx, now)
		return err
	})
	m.addJob(schedulePostmortems, "remind_postmortems", func(ctx context.Context, now time.Time) error {
		_, err := m.Service.RemindPostmortems(ctx, now)
		return err
	})
	m.addJob(scheduleAudit, "ownership_audit", m.Service.AuditOwnership)
	m.addJob(scheduleEscalation, "dead_man_escalation", func(ctx context.Context, now time.Time) error {
		_, err := m.Service.Escalate(ctx, now)
		return err
	})
	m.addJob(scheduleProbation, "end_probations", m.Service.EndProbations)
	m.addJob(scheduleInterrupted, "finish_interrupted_halts", func(ctx context.Context, now time.Time) error {
		_, err := m.Service.FinishInterruptedHalts(ctx, now)
		return err
	})
	m.addJob(scheduleRetention, "session_retention", func(ctx context.Context, now time.Time) error {
		_, err := m.Sessions.EnforceRetention(ctx, now)
		return err
	})
	m.addJob(scheduleHeldSpans, "held_spans", func(ctx context.Context, now time.Time) error {
		return m.sweepHeldSpans(ctx)
	})
	m.addJob(scheduleKeyPrune, "prune_idempotency_keys", func(ctx context.Context, now time.Time) error {
		n, err := m.Service.PruneIdempotencyKeys(ctx, now)
		if n > 0 {
			m.Log.Debug("pruned idempotency keys", "rows", n)
		}
		return err
	})
	m.scheduleDrills()
	m.cron.Start()
}

// addJob schedules fn under the named lock.
func (m *Main) addJob(spec, name string, fn func(ctx context.Context, now time.Time) error) (cron.EntryID, error) {
	id, err := m.cron.AddFunc(spec, func() {
		ctx, cancel := context.WithTimeout(m.jobCtx, 10*time.Minute)
		defer cancel()
		ran, err := m.Store.TryLock(ctx, "job:"+name, func(ctx context.Context) error {
			return fn(ctx, m.Clock.Now())
		})
		switch {
		case err != nil:
			m.Log.Error("scheduled job failed", "job", name, "err", err)
		case !ran:
			m.Log.Debug("scheduled job running elsewhere", "job", name)
		}
	})
	if err != nil {
		m.Log.Error("schedule job", "job", name, "spec", spec, "err", err)
	}
	return id, err
}

// scheduleDrills (re)creates one cron entry per agent with a drill schedule;
// called at start and after every config reload.
func (m *Main) scheduleDrills() {
	if m.cron == nil {
		return
	}
	m.drillMu.Lock()
	defer m.drillMu.Unlock()
	for _, id := range m.drillEntries {
		m.cron.Remove(id)
	}
	m.drillEntries = m.drillEntries[:0]
	for name, a := range m.Registry.Current().Agents {
		if a.Drill == "" {
			continue
		}
		agent := name
		id, err := m.addJob(a.Drill, "drill:"+agent, func(ctx context.Context, now time.Time) error {
			_, err := m.Service.RunDrill(ctx, agent, now)
			return err
		})
		if err == nil {
			m.drillEntries = append(m.drillEntries, id)
		}
	}
}

// slogPrintf adapts the logger to cron's Printf-style logger.
type slogPrintf struct{ m *Main }

func (s slogPrintf) Printf(format string, args ...any) {
	s.m.Log.Debug("cron", "msg", format, "args", args)
}
