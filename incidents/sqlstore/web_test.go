package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sqlstore"
)

func TestFindDrillsSinceOldestFirst(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC)
		for i, ok := range []bool{true, false, true, true} {
			d := &incidents.DrillResult{Agent: "support-bot", Adapter: "webhook", At: t0.AddDate(0, 0, 7*i), OK: ok,
				Actor: incidents.System}
			if !ok {
				d.Error = "timeout"
			}
			if err := s.RecordDrill(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RecordDrill(ctx, &incidents.DrillResult{Agent: "other", At: t0.AddDate(0, 0, 8), OK: true}); err != nil {
			t.Fatal(err)
		}
		got, err := s.FindDrills(ctx, "support-bot", t0.AddDate(0, 0, 7))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].OK || got[0].Error != "timeout" || !got[0].At.Equal(t0.AddDate(0, 0, 7)) ||
			!got[2].At.Equal(t0.AddDate(0, 0, 21)) || got[1].Actor != incidents.System {
			t.Fatalf("drills since week 2: %+v", got)
		}
	})
}

func TestWebKeyFirstStoredWins(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		a, err := s.WebKey(ctx, "session", "first")
		if err != nil || a != "first" {
			t.Fatalf("WebKey = %q, %v", a, err)
		}
		if b, err := s.WebKey(ctx, "session", "second"); err != nil || b != "first" {
			t.Fatalf("a second replica got %q, %v; want the first key", b, err)
		}
	})
}
