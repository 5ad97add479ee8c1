package sqlstore_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/incidents/sqlstore"
)

func enqueue(t *testing.T, s *sqlstore.Store, incidentID int64, lane, key string) *outbox.Item {
	t.Helper()
	item := &outbox.Item{IncidentID: incidentID, Lane: lane, Kind: "post", Key: key,
		Payload: json.RawMessage(`{"k":"` + key + `"}`), CreatedAt: t0, NextAttemptAt: t0}
	added, err := s.EnqueueOutbox(ctx, item)
	if err != nil || added != 1 {
		t.Fatalf("EnqueueOutbox(%s) = %v, %v; want added", key, added, err)
	}
	return item
}

// claim returns the keys claimed from lane at now.
func claim(t *testing.T, s *sqlstore.Store, lane string, now time.Time, limit int) []string {
	t.Helper()
	items, err := s.ClaimOutbox(ctx, lane, now, time.Minute, limit)
	if err != nil {
		t.Fatalf("ClaimOutbox(%s): %v", lane, err)
	}
	keys := []string{}
	for _, it := range items {
		keys = append(keys, it.Key)
	}
	return keys
}

func TestEnqueueOutbox(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		item := enqueue(t, s, 0, outbox.LaneChat, "drill-report:1")
		if item.ID == 0 || item.State != outbox.Pending {
			t.Errorf("enqueued item = ID %d state %q; want an ID, pending", item.ID, item.State)
		}
		dup := &outbox.Item{Lane: outbox.LaneChat, Kind: "post", Key: "drill-report:1"}
		added, err := s.EnqueueOutbox(ctx, dup)
		if err != nil || added != 0 {
			t.Errorf("EnqueueOutbox(same key) = %v, %v; want false, nil", added, err)
		}
		_, err = s.EnqueueOutbox(ctx, &outbox.Item{Lane: outbox.LaneChat, Kind: "post"})
		wantCode(t, err, incidents.EINVALID)
	})
}

func TestClaimOutboxInOrder(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		a, b := open(t, s, "a", ""), open(t, s, "b", "")
		a1 := enqueue(t, s, a.ID, outbox.LaneChat, "a1")
		enqueue(t, s, a.ID, outbox.LaneChat, "a2")
		enqueue(t, s, b.ID, outbox.LaneChat, "b1")
		enqueue(t, s, 0, outbox.LaneChat, "z1")
		enqueue(t, s, 0, outbox.LaneChat, "z2")
		enqueue(t, s, a.ID, outbox.LaneUrgent, "page-a")

		if got, want := claim(t, s, outbox.LaneChat, t0, 10), []string{"a1", "b1", "z1", "z2"}; !reflect.DeepEqual(got, want) {
			t.Errorf("first claim = %v, want %v (a2 waits for a1)", got, want)
		}
		if got, want := claim(t, s, outbox.LaneUrgent, t0, 10), []string{"page-a"}; !reflect.DeepEqual(got, want) {
			t.Errorf("urgent claim = %v, want %v (lanes do not wait for each other)", got, want)
		}
		if got := claim(t, s, outbox.LaneChat, t0, 10); len(got) != 0 {
			t.Errorf("claim while leased = %v, want nothing", got)
		}
		if err := s.CompleteOutbox(ctx, a1.ID, t0); err != nil {
			t.Fatal(err)
		}
		if got, want := claim(t, s, outbox.LaneChat, t0, 10), []string{"a2"}; !reflect.DeepEqual(got, want) {
			t.Errorf("claim after a1 done = %v, want %v", got, want)
		}
	})
}

func TestClaimOutboxLeaseExpires(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		enqueue(t, s, 0, outbox.LaneUrgent, "page")
		items, err := s.ClaimOutbox(ctx, outbox.LaneUrgent, t0, time.Minute, 1)
		if err != nil || len(items) != 1 {
			t.Fatalf("claim = %d, %v", len(items), err)
		}
		if lu := items[0].LockedUntil; lu == nil || !lu.Equal(t0.Add(time.Minute)) {
			t.Errorf("LockedUntil = %v, want %v", lu, t0.Add(time.Minute))
		}
		if got := claim(t, s, outbox.LaneUrgent, t0.Add(59*time.Second), 1); len(got) != 0 {
			t.Errorf("claim within the lease = %v, want nothing", got)
		}
		// The worker died: once the lease runs out another worker takes it.
		if got := claim(t, s, outbox.LaneUrgent, t0.Add(61*time.Second), 1); !reflect.DeepEqual(got, []string{"page"}) {
			t.Errorf("claim after the lease = %v, want [page]", got)
		}
	})
}

func TestRetryAndBuryOutbox(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		inc := open(t, s, "a", "")
		first := enqueue(t, s, inc.ID, outbox.LaneChat, "first")
		enqueue(t, s, inc.ID, outbox.LaneChat, "second")
		claim(t, s, outbox.LaneChat, t0, 10)
		next := t0.Add(30 * time.Second)
		if err := s.RetryOutbox(ctx, first.ID, next, "ratelimited"); err != nil {
			t.Fatal(err)
		}
		if got := claim(t, s, outbox.LaneChat, t0.Add(10*time.Second), 10); len(got) != 0 {
			t.Errorf("claim while first backs off = %v, want nothing (second waits, in order)", got)
		}
		items, err := s.ClaimOutbox(ctx, outbox.LaneChat, next, time.Minute, 10)
		if err != nil || len(items) != 1 || items[0].Key != "first" {
			t.Fatalf("claim when due = %v, %v; want first", items, err)
		}
		if items[0].Attempts != 1 || items[0].LastError != "ratelimited" {
			t.Errorf("retried item = attempts %d error %q; want 1, ratelimited", items[0].Attempts, items[0].LastError)
		}
		if err := s.BuryOutbox(ctx, first.ID, next, "channel_not_found"); err != nil {
			t.Fatal(err)
		}
		if got := claim(t, s, outbox.LaneChat, next, 10); !reflect.DeepEqual(got, []string{"second"}) {
			t.Errorf("claim after burying first = %v, want [second]", got)
		}
		backlog, err := s.OutboxBacklog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []outbox.LaneBacklog{{Lane: outbox.LaneChat, Pending: 1, Oldest: &t0},
			{Lane: outbox.LaneRefresh}, {Lane: outbox.LaneUrgent}}
		if !reflect.DeepEqual(backlog, want) {
			t.Errorf("OutboxBacklog = %+v, want %+v", backlog, want)
		}
		wantCode(t, s.CompleteOutbox(ctx, 404, t0), incidents.ENOTFOUND)
		wantCode(t, s.RetryOutbox(ctx, 404, t0, "x"), incidents.ENOTFOUND)
		wantCode(t, s.BuryOutbox(ctx, 404, t0, "x"), incidents.ENOTFOUND)
	})
}

// TestClaimOutboxConcurrent has workers claim and complete side by side:
// every item is delivered exactly once.
func TestClaimOutboxConcurrent(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		const n = 60
		for i := range n {
			enqueue(t, s, 0, outbox.LaneChat, fmt.Sprintf("item-%02d", i))
		}
		var mu sync.Mutex
		var got []string
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				for {
					items, err := s.ClaimOutbox(ctx, outbox.LaneChat, t0, time.Hour, 4)
					if err != nil {
						t.Error(err)
						return
					}
					if len(items) == 0 {
						return
					}
					for _, it := range items {
						mu.Lock()
						got = append(got, it.Key)
						mu.Unlock()
						if err := s.CompleteOutbox(ctx, it.ID, t0); err != nil {
							t.Error(err)
						}
					}
				}
			})
		}
		wg.Wait()
		slices.Sort(got)
		if len(got) != n || len(slices.Compact(slices.Clone(got))) != n {
			t.Errorf("delivered %d items (%d distinct), want %d once each", len(got), len(slices.Compact(got)), n)
		}
	})
}

// An item deferred for its destination's outage keeps its attempts and due
// time, so it is claimed again first, in its place.
func TestDeferOutboxKeepsPlace(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		a := enqueue(t, s, 0, outbox.LaneChat, "a")
		enqueue(t, s, 0, outbox.LaneChat, "b")
		if got := claim(t, s, outbox.LaneChat, t0, 1); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("claimed %v", got)
		}
		if err := s.DeferOutbox(ctx, a.ID, time.Time{}, "unavailable: 500"); err != nil {
			t.Fatal(err)
		}
		items, err := s.ClaimOutbox(ctx, outbox.LaneChat, t0, time.Minute, 1)
		if err != nil || len(items) != 1 {
			t.Fatalf("claim after defer: %v, %v", items, err)
		}
		if it := items[0]; it.Key != "a" || it.Attempts != 0 || !it.NextAttemptAt.Equal(t0) || it.LastError != "unavailable: 500" {
			t.Errorf("after defer: %+v; want a, no attempt counted, due as before, with its error", it)
		}
		// Deferred until a time (a rate limit's Retry-After): b goes first.
		if err := s.DeferOutbox(ctx, a.ID, t0.Add(2*time.Second), "unavailable: 429"); err != nil {
			t.Fatal(err)
		}
		if got := claim(t, s, outbox.LaneChat, t0.Add(time.Second), 5); !slices.Equal(got, []string{"b"}) {
			t.Errorf("claimed %v a second later, want [b] while a waits its Retry-After", got)
		}
		items, err = s.ClaimOutbox(ctx, outbox.LaneChat, t0.Add(2*time.Second), time.Minute, 5)
		if err != nil || len(items) != 1 || items[0].Key != "a" || items[0].Attempts != 0 {
			t.Errorf("claim after the Retry-After = %+v, %v; want a with no attempt counted", items, err)
		}
	})
}

// An outage keeps its first failure across saves and is gone once cleared.
func TestOutages(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		if got, err := s.Outages(ctx); err != nil || len(got) != 0 {
			t.Fatalf("Outages on a new store = %v, %v", got, err)
		}
		first := outbox.Outage{Destination: "slack", Since: t0, FailedAt: t0, NextProbeAt: t0.Add(3 * time.Second), LastError: "500"}
		if err := s.SaveOutage(ctx, first); err != nil {
			t.Fatal(err)
		}
		later := outbox.Outage{Destination: "slack", Since: t0.Add(time.Minute), FailedAt: t0.Add(time.Minute),
			NextProbeAt: t0.Add(time.Minute + 2*time.Second), LastError: "429"}
		if err := s.SaveOutage(ctx, later); err != nil {
			t.Fatal(err)
		}
		got, err := s.Outages(ctx)
		want := later
		want.Since = t0
		if err != nil || len(got) != 1 || !reflect.DeepEqual(utcOutage(got[0]), want) {
			t.Fatalf("Outages = %+v, %v; want %+v", got, err, want)
		}
		if err := s.ClearOutage(ctx, "slack"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Outages(ctx); err != nil || len(got) != 0 {
			t.Errorf("Outages after ClearOutage = %v, %v", got, err)
		}
	})
}

func utcOutage(o outbox.Outage) outbox.Outage {
	o.Since, o.FailedAt, o.NextProbeAt = o.Since.UTC(), o.FailedAt.UTC(), o.NextProbeAt.UTC()
	return o
}
