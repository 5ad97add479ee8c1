package main

import (
	"context"
	"fmt"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/incidents/sqlstore"
)

// deliveryChecks is the delivery part of /readyz?verbose=1 and `reins
// doctor`: one line per destination (Slack) whose deliveries the outbox holds
// back because it fails, "Slack unreachable since 14:02 UTC, 7 deliveries
// waiting". It reads the outage the replicas record in the store, so doctor
// (another process) and every replica say the same. Nothing is said while
// delivery flows, and nothing when the store cannot be read: the database
// line says that. Kept apart from health, which checks parts and settings.
func deliveryChecks(ctx context.Context, s outbox.OutageReader, now time.Time) []healthCheck {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	reports, err := outbox.Reports(ctx, s, incidents.Destinations(), now)
	if err != nil {
		return nil
	}
	var out []healthCheck
	for _, r := range reports {
		out = append(out, outageCheck(r, now))
	}
	return out
}

// outageCheck is the line of one recorded outage.
func outageCheck(r outbox.OutageReport, now time.Time) healthCheck {
	name := destinationName(r.Destination)
	waiting := fmt.Sprintf("%d deliveries waiting", r.Waiting)
	if r.Waiting == 1 {
		waiting = "1 delivery waiting"
	}
	part := r.Destination + " delivery"
	if !r.Live {
		// No replica has probed for a while: the one that recorded the
		// outage stopped before Slack answered it; the others deliver.
		return healthCheck{part, true, fmt.Sprintf("%s last failed at %s and no replica has seen it fail since; %s",
			name, clockTime(r.FailedAt, now), waiting)}
	}
	detail := fmt.Sprintf("%s unreachable since %s (%s), %s; probed %s ago: %s",
		name, clockTime(r.Since, now), now.Sub(r.Since).Round(time.Second), waiting,
		max(now.Sub(r.FailedAt), 0).Round(time.Second), r.LastError)
	return healthCheck{part, false, detail}
}

// destinationName is how people call a destination: "Slack" for "slack".
func destinationName(d string) string {
	if d == incidents.DestinationSlack {
		return "Slack"
	}
	return d
}

// clockTime is t as people read it here: 14:02 UTC today, with the date on
// another day.
func clockTime(t, now time.Time) string {
	t, now = t.UTC(), now.UTC()
	if t.YearDay() == now.YearDay() && t.Year() == now.Year() {
		return t.Format("15:04 UTC")
	}
	return t.Format("2006-01-02 15:04 UTC")
}

// doctorDeliveryChecks is deliveryChecks for `reins doctor`, on the database
// it opens read-only; none when it cannot open it.
func doctorDeliveryChecks(ctx context.Context, m *Main) []healthCheck {
	db, d, err := m.openDB(ctx)
	if err != nil {
		return nil
	}
	defer db.Close()
	return deliveryChecks(ctx, sqlstore.New(db, d), time.Now())
}
