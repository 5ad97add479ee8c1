package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sqlstore"
	"github.com/reins-oss/reins/migrations"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// t0 is the tests' "now": microsecond precision, as both stores keep.
var t0 = time.Date(2026, 3, 14, 9, 26, 53, 589793000, time.UTC)

var ctx = context.Background()

// each runs fn on a fresh store of each dialect, in parallel with other
// tests: creating a PostgreSQL database takes about a second.
func each(t *testing.T, fn func(t *testing.T, s *sqlstore.Store)) {
	t.Helper()
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *sqlx.DB, d migrations.Dialect) {
		fn(t, sqlstore.New(db, d))
	})
}

// open opens an incident for agent or fails the test.
func open(t *testing.T, q incidents.Queries, agent, key string) *incidents.Incident {
	t.Helper()
	inc := &incidents.Incident{Agent: agent, GroupKey: key, Title: agent + " misbehaves", Severity: incidents.SeverityCritical,
		Source: "alertmanager", CreatedAt: t0, StartedAt: t0.Add(-time.Minute), LastAlertAt: t0}
	if _, err := q.OpenIncident(ctx, inc); err != nil {
		t.Fatalf("OpenIncident(%s): %v", agent, err)
	}
	return inc
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := incidents.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
}

func TestInTxCommits(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		var id int64
		err := s.InTx(ctx, func(q incidents.Queries) error {
			inc := open(t, q, "support-bot", "")
			id = inc.ID
			return q.AppendEvent(ctx, &incidents.Event{IncidentID: id, At: t0, Kind: incidents.EventIncidentOpened})
		})
		if err != nil {
			t.Fatal(err)
		}
		evs, err := s.FindEvents(ctx, id)
		if err != nil || len(evs) != 1 {
			t.Fatalf("FindEvents after commit = %d events, %v; want 1", len(evs), err)
		}
	})
}

func TestInTxRollsBack(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		boom := errors.New("boom")
		err := s.InTx(ctx, func(q incidents.Queries) error {
			open(t, q, "support-bot", "")
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v, want the error of fn", err)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Error("InTx swallowed a panic")
				}
			}()
			_ = s.InTx(ctx, func(q incidents.Queries) error {
				open(t, q, "support-bot", "")
				panic("boom")
			})
		}()
		got, err := s.FindIncidents(ctx, incidents.IncidentFilter{})
		if err != nil || len(got) != 0 {
			t.Errorf("FindIncidents after rollbacks = %d, %v; want none", len(got), err)
		}
	})
}

func TestTryLock(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		inner := "not run"
		ran, err := s.TryLock(ctx, "nudge", func(ctx context.Context) error {
			again, err := s.TryLock(ctx, "nudge", func(context.Context) error { return nil })
			switch {
			case err != nil:
				inner = err.Error()
			case again:
				inner = "ran while held"
			default:
				inner = "skipped"
			}
			other, err := s.TryLock(ctx, "drill", func(context.Context) error { return nil })
			if err != nil || !other {
				inner += ", other lock blocked"
			}
			return nil
		})
		if err != nil || !ran {
			t.Fatalf("TryLock = %v, %v; want ran", ran, err)
		}
		if inner != "skipped" {
			t.Errorf("second holder: %s, want skipped", inner)
		}
		ran, err = s.TryLock(ctx, "nudge", func(context.Context) error { return errors.New("job failed") })
		if !ran || err == nil {
			t.Errorf("TryLock after release = %v, %v; want ran with the job's error", ran, err)
		}
	})
}

func TestTryLockConcurrent(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		var mu sync.Mutex
		running, most := 0, 0
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				_, err := s.TryLock(ctx, "audit", func(context.Context) error {
					mu.Lock()
					running++
					most = max(most, running)
					mu.Unlock()
					time.Sleep(20 * time.Millisecond)
					mu.Lock()
					running--
					mu.Unlock()
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if most != 1 {
			t.Errorf("%d holders at once, want 1", most)
		}
	})
}

func TestPing(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		if err := s.Ping(ctx); err != nil {
			t.Errorf("Ping on a migrated store: %v", err)
		}
	})
}

func TestPingErrPending(t *testing.T) {
	db, d, err := migrations.Connect(ctx, dbtest.EmptyURL(t, migrations.SQLite))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wantCode(t, sqlstore.New(db, d).Ping(ctx), incidents.EUNAVAILABLE)
}

func TestRemember(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		for i, want := range []bool{true, false, false} {
			got, err := s.Remember(ctx, "slack:Ev042", t0)
			if err != nil || got != want {
				t.Errorf("Remember #%d = %v, %v; want %v", i+1, got, err, want)
			}
		}
		if got, err := s.Remember(ctx, "slack:Ev043", t0); err != nil || !got {
			t.Errorf("Remember(other key) = %v, %v; want true", got, err)
		}
	})
}

// Keys seen before the cut go, a thousand per statement until none is left;
// later ones stay, and a pruned key is new again.
func TestPruneIdempotencyKeys(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		const old = 2500 // three statements' worth
		err := s.InTx(ctx, func(q incidents.Queries) error {
			for i := range old {
				if _, err := q.Remember(ctx, fmt.Sprintf("pagerduty:webhook:old-%d", i), t0.Add(-8*24*time.Hour)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		cut := t0.Add(-7 * 24 * time.Hour)
		for _, k := range []struct {
			key string
			at  time.Time
		}{{"slack:event:Ev1", cut.Add(-time.Second)}, {"slack:event:Ev2", cut}, {"job/audit_ownership/2026-12-07", t0}} {
			if _, err := s.Remember(ctx, k.key, k.at); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.PruneIdempotencyKeys(ctx, cut)
		if err != nil || n != old+1 {
			t.Fatalf("PruneIdempotencyKeys = %d, %v; want %d", n, err, old+1)
		}
		for key, want := range map[string]bool{"slack:event:Ev1": true, "pagerduty:webhook:old-7": true,
			"slack:event:Ev2": false, "job/audit_ownership/2026-12-07": false} {
			if first, err := s.Remember(ctx, key, t0); err != nil || first != want {
				t.Errorf("after the prune, Remember(%s) = %v, %v; want %v", key, first, err, want)
			}
		}
		if n, err := s.PruneIdempotencyKeys(ctx, cut); n != 0 || err != nil {
			t.Errorf("second prune = %d, %v; want 0", n, err)
		}
	})
}

func TestRememberConcurrent(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		var mu sync.Mutex
		firsts := 0
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				first, err := s.Remember(ctx, "pagerduty:webhook-1", t0)
				if err != nil {
					t.Error(err)
				}
				if first {
					mu.Lock()
					firsts++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if firsts != 1 {
			t.Errorf("%d callers saw the key first, want 1", firsts)
		}
	})
}

// TestDeadlockIsRetryable makes PostgreSQL detect a deadlock between two
// transactions: the loser's error must say it is worth retrying.
func TestDeadlockIsRetryable(t *testing.T) {
	t.Parallel()
	db := dbtest.Postgres(t)
	s := sqlstore.New(db, migrations.Postgres)
	a, b := open(t, s, "a", ""), open(t, s, "b", "")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	ready := make(chan struct{}, 2)
	for i, order := range [][]int64{{a.ID, b.ID}, {b.ID, a.ID}} {
		wg.Go(func() {
			errs[i] = s.InTx(ctx, func(q incidents.Queries) error {
				if _, err := q.FindIncident(ctx, order[0]); err != nil { // locks the row
					return err
				}
				ready <- struct{}{}
				for len(ready) < 2 && ctx.Err() == nil {
					time.Sleep(time.Millisecond) // both hold their first row
				}
				_, err := q.FindIncident(ctx, order[1])
				return err
			})
		})
	}
	wg.Wait()
	var failed error
	for _, err := range errs {
		if err != nil {
			failed = err
		}
	}
	if failed == nil {
		t.Fatal("no transaction failed: the deadlock did not happen")
	}
	var r interface{ Retryable() bool }
	if !errors.As(failed, &r) || !r.Retryable() {
		t.Errorf("deadlock error %v is not marked retryable", failed)
	}
	wantCode(t, failed, incidents.EUNAVAILABLE)
}

// TestInTxManySenders runs more concurrent transactions than the pool has
// connections, on a store whose statements are not prepared yet: no
// transaction may wait for a second connection.
func TestInTxManySenders(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			var wg sync.WaitGroup
			for i := range 48 {
				wg.Go(func() {
					if err := ingestOne(s, int64(i)); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("48 concurrent transactions did not finish in 30s: the pool is deadlocked")
		}
	})
}
