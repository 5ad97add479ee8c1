package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/jobs"
)

// locker runs fn unless the name is held elsewhere.
type locker struct{ held map[string]bool }

func (l locker) TryLock(ctx context.Context, name string, fn func(context.Context) error) (bool, error) {
	if l.held[name] {
		return false, nil
	}
	return true, fn(ctx)
}

func newRunner(held ...string) *jobs.Runner {
	l := locker{held: map[string]bool{}}
	for _, h := range held {
		l.held[h] = true
	}
	now := func() time.Time { return time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC) }
	return jobs.New(context.Background(), l, now, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// A job that panics is recovered on its own: the run reports it as an
// error and the next job runs as usual.
func TestRunOnceRecoversEachJob(t *testing.T) {
	r := newRunner()
	ran, err := r.RunOnce(jobs.Job{Name: "boom", Run: func(context.Context, time.Time) error { panic("nil map") }})
	if err == nil || !strings.Contains(err.Error(), "nil map") {
		t.Fatalf("panicking job: ran %v, err %v; want the panic as its error", ran, err)
	}
	var at time.Time
	if ran, err := r.RunOnce(jobs.Job{Name: "next", Run: func(_ context.Context, now time.Time) error { at = now; return nil }}); !ran || err != nil {
		t.Fatalf("the next job: ran %v, err %v", ran, err)
	}
	if at.Hour() != 9 {
		t.Errorf("the job ran at %v, want the runner's clock", at)
	}
}

// A job another replica holds does not run here, and that is no error.
func TestRunOnceSkipsAJobLockedElsewhere(t *testing.T) {
	r := newRunner("job:held")
	called := false
	ran, err := r.RunOnce(jobs.Job{Name: "held", Run: func(context.Context, time.Time) error { called = true; return nil }})
	if ran || err != nil || called {
		t.Errorf("locked job: ran %v, err %v, called %v; want skipped quietly", ran, err, called)
	}
}

// Each run has its own deadline: a job's Timeout, else DefaultTimeout.
func TestRunOnceGivesEachJobItsDeadline(t *testing.T) {
	r := newRunner()
	_, err := r.RunOnce(jobs.Job{Name: "slow", Timeout: 10 * time.Millisecond, Run: func(ctx context.Context, _ time.Time) error {
		<-ctx.Done()
		return ctx.Err()
	}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow job: %v, want its own deadline exceeded", err)
	}
}

// Drills are one job per agent with a drill schedule; the fixed list names
// every job once with a schedule cron accepts.
func TestListAndDrillsSchedule(t *testing.T) {
	reg := incidentstest.Registry()
	reg.Agents["billing-agent"].Drill = "0 10 * * 2"
	d := jobs.Drills(reg, nil)
	if len(d) != 1 || d[0].Name != "drill:billing-agent" || d[0].Schedule != "0 10 * * 2" {
		t.Fatalf("drills: %+v", d)
	}
	r := newRunner()
	seen := map[string]bool{}
	for _, j := range append(jobs.List(domain{}, domain{}, domain{}, domain{}, nil, nil), d...) {
		if seen[j.Name] {
			t.Errorf("job %s listed twice", j.Name)
		}
		seen[j.Name] = true
		if _, err := r.Add(j); err != nil {
			t.Errorf("job %s: schedule %q: %v", j.Name, j.Schedule, err)
		}
	}
	if len(seen) != 10 {
		t.Errorf("%d jobs, want the 9 fixed ones and the drill", len(seen))
	}
}

// domain is a Domain and Sessions that does nothing: the list is built, not run.
type domain struct{}

func (domain) NudgeStalledChecklists(context.Context, time.Time) (int, error) { return 0, nil }
func (domain) RemindPostmortems(context.Context, time.Time) (int, error)      { return 0, nil }
func (domain) AuditOwnership(context.Context, time.Time) error                { return nil }
func (domain) Escalate(context.Context, time.Time) (int, error)               { return 0, nil }
func (domain) EndProbations(context.Context, time.Time) error                 { return nil }
func (domain) FinishInterruptedHalts(context.Context, time.Time) (int, error) { return 0, nil }
func (domain) PruneIdempotencyKeys(context.Context, time.Time) (int64, error) { return 0, nil }
func (domain) EnforceRetention(context.Context, time.Time) (int, error)       { return 0, nil }
func (domain) RunDrill(context.Context, string, time.Time) (*incidents.DrillResult, error) {
	return nil, nil
}
