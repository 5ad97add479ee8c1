package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
)

// The Slack line: degraded with since when and how many wait while a
// replica probes; fine (and saying so) when the row is stale; absent when
// nothing is recorded.
func TestDeliveryChecks(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 14, 5, 30, 0, time.UTC)
	s := incidentstest.NewStore()
	if got := deliveryChecks(ctx, s, now); len(got) != 0 {
		t.Fatalf("no outage: %+v", got)
	}
	for i, lane := range []string{outbox.LaneChat, outbox.LaneChat, outbox.LaneRefresh, outbox.LaneUrgent} {
		it, _ := outbox.NewItem(int64(i+1), lane, "post", "k"+string(rune('a'+i)), nil, now, now)
		if _, err := s.EnqueueOutbox(ctx, it); err != nil {
			t.Fatal(err)
		}
	}
	since := time.Date(2026, 12, 7, 14, 2, 0, 0, time.UTC)
	if err := s.SaveOutage(ctx, outbox.Outage{Destination: "slack", Since: since, FailedAt: now.Add(-2 * time.Second),
		NextProbeAt: now.Add(time.Second), LastError: "unavailable: post message: slack server error: 500"}); err != nil {
		t.Fatal(err)
	}
	got := deliveryChecks(ctx, s, now)
	want := "Slack unreachable since 14:02 UTC (3m30s), 3 deliveries waiting; probed 2s ago: unavailable: post message: slack server error: 500"
	if len(got) != 1 || got[0].Part != "slack delivery" || got[0].OK || got[0].Detail != want {
		t.Fatalf("deliveryChecks = %+v, want one degraded line %q", got, want)
	}
	got = deliveryChecks(ctx, s, now.Add(10*time.Minute))
	if len(got) != 1 || !got[0].OK || !strings.Contains(got[0].Detail, "no replica has seen it fail since") {
		t.Errorf("stale outage = %+v, want an ok line saying no replica sees it fail", got)
	}
}
