package sqlstore_test

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sqlstore"
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
