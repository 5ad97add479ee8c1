package incidentstest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
)

var ctx = context.Background()

func TestInTxRollsBack(t *testing.T) {
	s := incidentstest.NewStore()
	boom := errors.New("boom")
	err := s.InTx(ctx, func(q incidents.Queries) error {
		if _, err := q.OpenIncident(ctx, &incidents.Incident{Agent: "a"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx: got %v, want boom", err)
	}
	if got := len(s.Incidents()); got != 0 {
		t.Errorf("incidents after rollback: got %d, want 0", got)
	}
}

func TestOpenIncidentGroups(t *testing.T) {
	s := incidentstest.NewStore()
	first := &incidents.Incident{Agent: "a"}
	if created, err := s.OpenIncident(ctx, first); err != nil || !created {
		t.Fatalf("first: got %v, %v", created, err)
	}
	again := &incidents.Incident{Agent: "a"}
	if created, _ := s.OpenIncident(ctx, again); created || again.ID != first.ID {
		t.Errorf("second: got created %v #%d, want #%d loaded", created, again.ID, first.ID)
	}
	if err := s.StopGrouping(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	third := &incidents.Incident{Agent: "a"}
	if created, _ := s.OpenIncident(ctx, third); !created || third.ID == first.ID {
		t.Errorf("after StopGrouping: got created %v #%d, want a new incident", created, third.ID)
	}
}

func TestUpdateIncidentStaleVersion(t *testing.T) {
	s := incidentstest.NewStore()
	inc := &incidents.Incident{Agent: "a"}
	s.OpenIncident(ctx, inc)
	stale := *inc
	if err := s.UpdateIncident(ctx, inc); err != nil {
		t.Fatalf("UpdateIncident: %v", err)
	}
	if err := s.UpdateIncident(ctx, &stale); incidents.ErrorCode(err) != incidents.ECONFLICT {
		t.Errorf("stale update: got %v, want ECONFLICT", err)
	}
}

func TestClaimOutboxOrderAndLease(t *testing.T) {
	s := incidentstest.NewStore()
	now := incidentstest.Epoch
	for _, it := range []outbox.Item{
		{IncidentID: 1, Lane: outbox.LaneChat, Kind: "a", Key: "1/a", NextAttemptAt: now},
		{IncidentID: 1, Lane: outbox.LaneChat, Kind: "b", Key: "1/b", NextAttemptAt: now},
		{IncidentID: 2, Lane: outbox.LaneChat, Kind: "a", Key: "2/a", NextAttemptAt: now.Add(time.Minute)},
		{IncidentID: 1, Lane: outbox.LaneUrgent, Kind: "page", Key: "1/page", NextAttemptAt: now},
	} {
		if n, err := s.EnqueueOutbox(ctx, &it); err != nil || n != 1 {
			t.Fatalf("EnqueueOutbox(%s): %v %v", it.Key, n, err)
		}
	}
	if n, _ := s.EnqueueOutbox(ctx, &outbox.Item{Key: "1/a", Lane: outbox.LaneChat}); n != 0 {
		t.Error("a duplicate key was queued")
	}
	keys := func(items []*outbox.Item) []string {
		var out []string
		for _, it := range items {
			out = append(out, it.Key)
		}
		return out
	}
	got, _ := s.ClaimOutbox(ctx, outbox.LaneChat, now, time.Minute, 10)
	if k := keys(got); len(k) != 1 || k[0] != "1/a" {
		t.Fatalf("first claim: got %v, want [1/a] (1/b waits behind it, 2/a is not due)", k)
	}
	if again, _ := s.ClaimOutbox(ctx, outbox.LaneChat, now, time.Minute, 10); len(again) != 0 {
		t.Errorf("claim while leased: got %v, want nothing", keys(again))
	}
	s.CompleteOutbox(ctx, got[0].ID, now)
	got, _ = s.ClaimOutbox(ctx, outbox.LaneChat, now.Add(time.Minute), time.Minute, 10)
	if k := keys(got); len(k) != 2 || k[0] != "1/b" || k[1] != "2/a" {
		t.Errorf("second claim: got %v, want [1/b 2/a]", k)
	}
}
