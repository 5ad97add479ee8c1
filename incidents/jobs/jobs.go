// Package jobs runs reins' scheduled jobs: a list of small jobs, each a
// name, a schedule and what it does at a given time. The bodies live in the
// use cases (nudges, reminders, the audit, the dead-man, probations,
// retention, held spans, key pruning, drills); here each run is wrapped on
// its own: a cluster-wide lock, so replicas firing the same minute run it
// once ("locked elsewhere" is a normal outcome), a timeout, its duration in
// the log, and a recover, so one job's panic neither stops the others nor
// the process.
package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// DefaultTimeout bounds a run whose job names no timeout.
const DefaultTimeout = 10 * time.Minute

// Job is one scheduled job.
type Job struct {
	Name     string // its lock is "job:"+Name; a drill is "drill:<agent>"
	Schedule string // a cron spec or "@every 30s"
	Run      func(ctx context.Context, now time.Time) error
	Timeout  time.Duration // 0: DefaultTimeout
}

// Locker runs fn only if no replica holds name (the store's advisory lock).
type Locker interface {
	TryLock(ctx context.Context, name string, fn func(ctx context.Context) error) (ran bool, err error)
}

// Runner runs jobs on their schedules.
type Runner struct {
	ctx  context.Context
	cron *cron.Cron
	lock Locker
	now  func() time.Time
	log  *slog.Logger

	mu     sync.Mutex
	groups map[string][]cron.EntryID // Replace's groups (the drills)
}

// New returns a Runner whose runs derive from ctx. Start it once its jobs are added.
func New(ctx context.Context, lock Locker, now func() time.Time, log *slog.Logger) *Runner {
	r := &Runner{ctx: ctx, lock: lock, now: now, log: log, groups: map[string][]cron.EntryID{}}
	// SkipIfStillRunning: a slow run is never overlapped by the next one.
	r.cron = cron.New(cron.WithLocation(time.UTC), cron.WithChain(cron.SkipIfStillRunning(cron.VerbosePrintfLogger(printf{log}))))
	return r
}

// Cron is the schedule, for tests that run an entry by hand.
func (r *Runner) Cron() *cron.Cron { return r.cron }

// Add schedules j.
func (r *Runner) Add(j Job) (cron.EntryID, error) {
	id, err := r.cron.AddFunc(j.Schedule, func() { r.RunOnce(j) })
	if err != nil {
		r.log.Error("schedule job", "job", j.Name, "spec", j.Schedule, "err", err)
	}
	return id, err
}

// Replace schedules jobs in place of the group's previous ones (the drills,
// after a config reload).
func (r *Runner) Replace(group string, jobs []Job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range r.groups[group] {
		r.cron.Remove(id)
	}
	ids := r.groups[group][:0]
	for _, j := range jobs {
		if id, err := r.Add(j); err == nil {
			ids = append(ids, id)
		}
	}
	r.groups[group] = ids
}

// Start starts the schedule.
func (r *Runner) Start() { r.cron.Start() }

// Stop stops the schedule; the context is done when running jobs finished.
func (r *Runner) Stop() context.Context { return r.cron.Stop() }

// RunOnce runs j now under its lock, timed and recovered on its own, and
// reports whether it ran here and what it returned.
func (r *Runner) RunOnce(j Job) (ran bool, err error) {
	timeout := j.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(r.ctx, timeout)
	defer cancel()
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
			r.log.Error("scheduled job panicked", "job", j.Name, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	ran, err = r.lock.TryLock(ctx, "job:"+j.Name, func(ctx context.Context) error {
		return j.Run(ctx, r.now())
	})
	switch {
	case err != nil:
		r.log.Error("scheduled job failed", "job", j.Name, "took", time.Since(start), "err", err)
	case !ran:
		r.log.Debug("scheduled job running elsewhere", "job", j.Name)
	default:
		r.log.Debug("scheduled job done", "job", j.Name, "took", time.Since(start))
	}
	return ran, err
}

// printf adapts the logger to cron's Printf-style logger.
type printf struct{ log *slog.Logger }

func (p printf) Printf(format string, args ...any) { p.log.Debug("cron", "msg", format, "args", args) }
