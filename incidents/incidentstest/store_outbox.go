package incidentstest

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents/outbox"
)

// EnqueueOutbox treats Key as unique over every state, like a unique index,
// and fills in the ID and State of the items it adds.
func (t *tx) EnqueueOutbox(ctx context.Context, items ...*outbox.Item) (int, error) {
	d, done, err := t.begin("EnqueueOutbox")
	if err != nil {
		return 0, err
	}
	defer done()
	t.s.calls[OutboxRows] += len(items)
	queued := 0
	for _, item := range items {
		if d.enqueue(item) {
			queued++
		}
	}
	return queued, nil
}

func (d *data) enqueue(item *outbox.Item) bool {
	for _, it := range d.outbox {
		if it.Key == item.Key {
			return false
		}
	}
	item.ID = d.nextID("outbox")
	if item.State == "" {
		item.State = outbox.Pending
	}
	d.outbox = append(d.outbox, cloneOutbox(*item))
	return true
}

// ClaimOutbox follows the contract: due, not leased, and first pending of its
// incident and lane.
func (t *tx) ClaimOutbox(ctx context.Context, lane string, now time.Time, lease time.Duration, limit int) ([]*outbox.Item, error) {
	d, done, err := t.begin("ClaimOutbox")
	if err != nil {
		return nil, err
	}
	defer done()
	blocked := map[int64]bool{}
	var out []*outbox.Item
	for i := range d.outbox {
		it := &d.outbox[i]
		if it.Lane != lane || it.State != outbox.Pending {
			continue
		}
		if it.IncidentID != 0 {
			if blocked[it.IncidentID] {
				continue
			}
			blocked[it.IncidentID] = true
		}
		if it.NextAttemptAt.After(now) || (it.LockedUntil != nil && it.LockedUntil.After(now)) {
			continue
		}
		until := now.Add(lease)
		it.LockedUntil = &until
		c := cloneOutbox(*it)
		out = append(out, &c)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

func (t *tx) updateOutbox(method string, id int64, fn func(it *outbox.Item)) error {
	d, done, err := t.begin(method)
	if err != nil {
		return err
	}
	defer done()
	for i := range d.outbox {
		if d.outbox[i].ID == id {
			it := cloneOutbox(d.outbox[i])
			fn(&it)
			it.LockedUntil = nil
			d.outbox[i] = it
			return nil
		}
	}
	return notFound("Outbox item")
}

func (t *tx) CompleteOutbox(ctx context.Context, id int64, now time.Time) error {
	return t.updateOutbox("CompleteOutbox", id, func(it *outbox.Item) {
		it.State, it.DoneAt = outbox.Done, &now
	})
}

func (t *tx) RetryOutbox(ctx context.Context, id int64, next time.Time, lastErr string) error {
	return t.updateOutbox("RetryOutbox", id, func(it *outbox.Item) {
		it.Attempts++
		it.NextAttemptAt, it.LastError = next, lastErr
	})
}

func (t *tx) BuryOutbox(ctx context.Context, id int64, now time.Time, lastErr string) error {
	return t.updateOutbox("BuryOutbox", id, func(it *outbox.Item) {
		it.Attempts++
		it.State, it.DoneAt, it.LastError = outbox.Dead, &now, lastErr
	})
}

func (t *tx) OutboxBacklog(ctx context.Context) ([]outbox.LaneBacklog, error) {
	d, done, err := t.begin("OutboxBacklog")
	if err != nil {
		return nil, err
	}
	defer done()
	byLane := map[string]*outbox.LaneBacklog{}
	for _, it := range d.outbox {
		if it.State != outbox.Pending {
			continue
		}
		b, ok := byLane[it.Lane]
		if !ok {
			b = &outbox.LaneBacklog{Lane: it.Lane}
			byLane[it.Lane] = b
		}
		b.Pending++
		if b.Oldest == nil || it.CreatedAt.Before(*b.Oldest) {
			at := it.CreatedAt
			b.Oldest = &at
		}
	}
	var out []outbox.LaneBacklog
	for _, b := range byLane {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b outbox.LaneBacklog) int {
		if a.Lane < b.Lane {
			return -1
		}
		return 1
	})
	return out, nil
}

func cloneOutbox(it outbox.Item) outbox.Item {
	it.Payload = slices.Clone(it.Payload)
	it.LockedUntil = cloneTime(it.LockedUntil)
	it.DoneAt = cloneTime(it.DoneAt)
	return it
}

func (t *tx) DeferOutbox(ctx context.Context, id int64, until time.Time, lastErr string) error {
	return t.updateOutbox("DeferOutbox", id, func(it *outbox.Item) {
		it.LastError = lastErr
		if !until.IsZero() {
			it.NextAttemptAt = until
		}
	})
}

func (t *tx) SaveOutage(ctx context.Context, o outbox.Outage) error {
	d, done, err := t.begin("SaveOutage")
	if err != nil {
		return err
	}
	defer done()
	for i, had := range d.outages {
		if had.Destination == o.Destination {
			o.Since = had.Since
			d.outages[i] = o
			return nil
		}
	}
	d.outages = append(d.outages, o)
	slices.SortFunc(d.outages, func(a, b outbox.Outage) int { return strings.Compare(a.Destination, b.Destination) })
	return nil
}

func (t *tx) ClearOutage(ctx context.Context, destination string) error {
	d, done, err := t.begin("ClearOutage")
	if err != nil {
		return err
	}
	defer done()
	d.outages = slices.DeleteFunc(d.outages, func(o outbox.Outage) bool { return o.Destination == destination })
	return nil
}

func (t *tx) Outages(ctx context.Context) ([]outbox.Outage, error) {
	d, done, err := t.begin("Outages")
	if err != nil {
		return nil, err
	}
	defer done()
	return slices.Clone(d.outages), nil
}
