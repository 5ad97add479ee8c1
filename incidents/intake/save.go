package intake

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
)

// flushIntakes ends the intakes of one transaction: it records the alerts
// they left pending in b, queues one debounced summary update per incident
// that changed in a way the summary shows, and writes back once each
// incident they changed with b's events and outbox rows. The intakes ran
// one after another, each starting from the incident as the one before left
// it, so what they added is the union absorb takes.
//
// The copies whose stored version has not moved are written with one
// conditional UPDATE for them all, new incidents too. Otherwise something
// else changed the row since it was read (a delivery worker recording the channel, a
// concurrent intake on another replica): it is read again, locking it on
// PostgreSQL, and only what the intakes added is applied, so that change is
// not overwritten. It returns the summary updates it queued, for the caller
// to remember once the transaction commits.
func (s *Service) flushIntakes(ctx context.Context, q incidents.Queries, b *batch, ins []*intake, now time.Time) ([]summaryKey, error) {
	if err := b.writeAlerts(ctx, q); err != nil {
		return nil, err
	}
	pending := map[int64]*incidents.Incident{}
	created := map[int64]bool{}
	changed := map[int64]bool{}
	for _, in := range ins {
		for id := range in.created {
			created[id] = true
		}
		for id, inc := range in.dirty {
			if cur, ok := pending[id]; ok {
				absorb(cur, inc)
			} else {
				pending[id] = inc
			}
		}
		for id := range in.changed {
			changed[id] = true
		}
	}
	queued, err := s.queueSummaryUpdates(b, created, changed, now)
	if err != nil {
		return nil, err
	}
	// One conditional write for every incident, a new one too for the
	// PagerDuty key opening it set, with the batch's events and outbox rows.
	list := make([]*incidents.Incident, 0, len(pending))
	for _, id := range slices.Sorted(maps.Keys(pending)) {
		list = append(list, pending[id])
	}
	if len(list) == 0 && len(b.events) == 0 && len(b.outbox) == 0 {
		return queued, nil
	}
	written, err := q.WriteIntake(ctx, list, b.events, b.outbox)
	if err != nil {
		return nil, fmt.Errorf("write intake of %d incidents: %w", len(list), err)
	}
	for i, inc := range list {
		if written[i] {
			continue
		}
		if !created[inc.ID] {
			// Something else changed the row since it was read: read it
			// again, locked, and apply only what the alerts added.
			fresh, err := q.FindIncident(ctx, inc.ID)
			if err != nil {
				return nil, fmt.Errorf("reload incident %d: %w", inc.ID, err)
			}
			absorb(fresh, inc)
			inc = fresh
		}
		if err := q.UpdateIncident(ctx, inc); err != nil {
			return nil, fmt.Errorf("update incident %d: %w", inc.ID, err)
		}
	}
	return queued, nil
}

// queueSummaryUpdates queues in b one debounced summary update for each
// changed incident that has none in its bucket yet, and returns them.
func (s *Service) queueSummaryUpdates(b *batch, created, changed map[int64]bool, now time.Time) ([]summaryKey, error) {
	if s.core.Chat() == nil {
		return nil, nil
	}
	bucket := now.Truncate(incidents.SummaryDebounce)
	var queued []summaryKey
	for _, id := range slices.Sorted(maps.Keys(changed)) {
		k := summaryKey{incident: id, bucket: bucket.Unix()}
		if created[id] || s.summaries.has(k) {
			continue // post_summary reads a new incident when it is delivered
		}
		key := fmt.Sprintf("inc-%d/update_summary/%d", id, k.bucket)
		item, err := s.core.OutboxItem(id, outbox.LaneRefresh, incidents.KindUpdateSummary, key, nil, bucket.Add(incidents.SummaryDebounce))
		if err != nil {
			return nil, err
		}
		b.outbox = append(b.outbox, item)
		queued = append(queued, k)
	}
	return queued, nil
}

// summaryKey is one debounced summary update: an incident and its bucket.
type summaryKey struct {
	incident int64
	bucket   int64 // unix seconds of the bucket's start
}

// summaryMemo remembers the summary updates this process queued in the
// current bucket, so a storm that changes an incident in every batch pays
// the outbox insert once per bucket, not once per batch: the insert would
// find the key taken anyway. Only committed keys are remembered; another
// replica keeps its own memo and the outbox's unique key still decides.
type summaryMemo struct {
	mu     sync.Mutex
	bucket int64
	keys   map[int64]bool // incidents queued in bucket
}

func (m *summaryMemo) has(k summaryKey) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bucket == k.bucket && m.keys[k.incident]
}

func (m *summaryMemo) add(keys []summaryKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		if k.bucket > m.bucket {
			m.bucket, m.keys = k.bucket, map[int64]bool{}
		}
		if k.bucket == m.bucket {
			m.keys[k.incident] = true
		}
	}
}
