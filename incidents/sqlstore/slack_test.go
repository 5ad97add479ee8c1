package sqlstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sqlstore"
	"github.com/reins-oss/reins/migrations"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// A confirmation is read by any replica, taken by exactly one of many
// concurrent clicks (and only by who asked), then reads as used until it
// expires; pruning removes it after that.
func TestConfirmationsSingleUse(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		exp := t0.Add(10 * time.Minute)
		if err := s.SaveConfirmation(ctx, "tok1", "U01", []byte(`{"agent":"support-bot"}`), exp); err != nil {
			t.Fatal(err)
		}
		user, payload, used, err := s.FindConfirmation(ctx, "tok1", t0)
		if err != nil || user != "U01" || string(payload) != `{"agent":"support-bot"}` || used {
			t.Fatalf("FindConfirmation = %q %s %v %v", user, payload, used, err)
		}
		if ok, err := s.TakeConfirmation(ctx, "tok1", "U02", t0); ok || err != nil {
			t.Fatalf("someone else took it: %v %v", ok, err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				ok, err := s.TakeConfirmation(ctx, "tok1", "U01", t0.Add(time.Second))
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("%d clicks took the confirmation, want 1", n)
		}
		if _, _, used, err := s.FindConfirmation(ctx, "tok1", t0.Add(time.Minute)); !used || err != nil {
			t.Fatalf("after the take: used %v, err %v", used, err)
		}
		_, _, _, err = s.FindConfirmation(ctx, "tok1", exp)
		wantCode(t, err, incidents.ENOTFOUND)
		if ok, _ := s.TakeConfirmation(ctx, "tok1", "U01", exp); ok {
			t.Fatal("an expired confirmation was taken")
		}
		if n, err := s.PruneSlackState(ctx, exp.Add(time.Second)); n != 1 || err != nil {
			t.Fatalf("PruneSlackState = %d, %v; want 1 row", n, err)
		}
	})
}

func TestFirstRequest(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		exp := t0.Add(6 * time.Minute)
		for i, want := range []bool{true, false, false} {
			if got, err := s.FirstRequest(ctx, "sig:abc", exp); got != want || err != nil {
				t.Fatalf("call %d: FirstRequest = %v, %v; want %v", i, got, err, want)
			}
		}
		if n, err := s.PruneSlackState(ctx, exp.Add(-time.Second)); n != 0 || err != nil {
			t.Fatalf("pruned %d live keys (%v)", n, err)
		}
		if n, err := s.PruneSlackState(ctx, exp); n != 1 || err != nil {
			t.Fatalf("PruneSlackState = %d, %v; want 1", n, err)
		}
		if got, _ := s.FirstRequest(ctx, "sig:abc", exp.Add(time.Hour)); !got {
			t.Fatal("a pruned key still counts as seen")
		}
	})
}

// A burst of refusals is one audit row whose detail carries the count; a
// refusal after the window starts a new row.
func TestCountRefusal(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		refuse := func(at time.Time) int {
			t.Helper()
			e := &incidents.AuditEntry{At: at, Actor: ana, Action: "kill_refused", Agent: "support-bot", Detail: "not kill authority"}
			n, err := s.CountRefusal(ctx, "U01|kill|support-bot", e, time.Minute)
			if err != nil || e.ID == 0 {
				t.Fatalf("CountRefusal = %d, %v (ID %d)", n, err, e.ID)
			}
			return n
		}
		for i := range 5 {
			if n := refuse(t0.Add(time.Duration(i) * 10 * time.Second)); n != i+1 {
				t.Fatalf("refusal %d counted %d", i+1, n)
			}
		}
		audit, err := s.FindAudit(ctx, "support-bot", 0)
		if err != nil || len(audit) != 1 {
			t.Fatalf("audit rows after one burst: %d (%v), want 1", len(audit), err)
		}
		if !strings.Contains(audit[0].Detail, "5 attempts") || audit[0].Allowed || audit[0].Actor != ana {
			t.Fatalf("burst row = %+v", audit[0])
		}
		if n := refuse(t0.Add(10 * time.Minute)); n != 1 {
			t.Fatalf("a refusal after the window counted %d, want a new burst", n)
		}
		if audit, _ := s.FindAudit(ctx, "support-bot", 0); len(audit) != 2 {
			t.Fatalf("audit rows after two bursts: %d, want 2", len(audit))
		}
	})
}

// Issue 25 item 7: concurrent marks share statements (marks.go), yet each
// key is first exactly once across two replicas (two pools on one
// database), with every key sent by several requests at once on both.
func TestFirstRequestGroupedStaysSingleUseAcrossReplicas(t *testing.T) {
	for _, d := range []migrations.Dialect{migrations.SQLite, migrations.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			var u string
			if d == migrations.SQLite {
				u = dbtest.SQLiteURL(t)
			} else {
				u = dbtest.PostgresURL(t)
			}
			var replicas [2]*sqlstore.Store
			for i := range replicas {
				db, dd, err := migrations.Connect(ctx, u)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				replicas[i] = sqlstore.New(db, dd)
			}
			const keys, sends = 300, 4 // each key: 2 requests on each replica
			var firsts [keys]atomic.Int32
			var wg sync.WaitGroup
			for k := range keys {
				for j := range sends {
					wg.Go(func() {
						got, err := replicas[j%2].FirstRequest(ctx, fmt.Sprintf("sig:%d", k), t0.Add(6*time.Minute))
						if err != nil {
							t.Error(err)
						}
						if got {
							firsts[k].Add(1)
						}
					})
				}
			}
			wg.Wait()
			for k := range keys {
				if n := firsts[k].Load(); n != 1 {
					t.Errorf("key %d was first %d times, want 1", k, n)
				}
			}
			if n, err := replicas[0].PruneSlackState(ctx, t0.Add(6*time.Minute)); n != keys || err != nil {
				t.Fatalf("PruneSlackState = %d, %v; want %d rows, one per key", n, err, keys)
			}
		})
	}
}

// A request sent once is never taken for a replay, whatever the callers
// sharing its batch do: here some of them give up mid-statement. (A batch
// run under its first caller's context, cut short after its rows were
// committed, had the rest retried alone, find their own keys and drop
// their requests as replays, without a word to their users.)
func TestFirstRequestNeverAReplayForAKeySentOnce(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		var dropped, failed atomic.Int32
		for round := range 100 {
			var wg sync.WaitGroup
			for k := range 64 {
				wg.Go(func() {
					c := ctx
					if k%4 == 0 {
						var cancel context.CancelFunc
						c, cancel = context.WithTimeout(ctx, time.Duration(rand.IntN(400))*time.Microsecond)
						defer cancel()
					}
					first, err := s.FirstRequest(c, fmt.Sprintf("once:%d:%d", round, k), t0.Add(6*time.Minute))
					switch {
					case err != nil:
						failed.Add(1)
					case !first:
						dropped.Add(1)
					}
				})
			}
			wg.Wait()
		}
		if n := dropped.Load(); n != 0 {
			t.Fatalf("%d requests sent once were taken for replays (%d failed, as their callers gave up)", n, failed.Load())
		}
	})
}
