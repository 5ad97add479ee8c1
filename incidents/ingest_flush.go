package incidents

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// flushIntakes writes back, once each, the incidents the intakes of one
// transaction changed, and queues one debounced summary update per incident
// that changed in a way the summary shows. The intakes ran one after
// another, each starting from the incident as the one before left it, so
// what they added is the union absorb takes.
//
// A copy whose stored version has not moved is written with one
// conditional UPDATE. Otherwise something else changed the row since it
// was read (a delivery worker recording the channel, a concurrent intake on
// another replica): it is read again, locking it on PostgreSQL, and only
// what the intakes added is applied, so that change is not overwritten.
// It returns the summary updates it queued, for the caller to remember
// once the transaction commits.
func (s *Service) flushIntakes(ctx context.Context, q Queries, ins []*intake, now time.Time) ([]summaryKey, error) {
	pending := map[int64]*Incident{}
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
	for _, id := range sortedKeys(pending) {
		inc := pending[id]
		if !created[id] {
			// Nothing outside this transaction can have seen a new incident.
			ok, err := q.UpdateIncidentIfVersion(ctx, inc)
			if err != nil {
				return nil, fmt.Errorf("update incident %d: %w", id, err)
			} else if ok {
				continue
			}
			fresh, err := q.FindIncident(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("reload incident %d: %w", id, err)
			}
			absorb(fresh, inc)
			inc = fresh
		}
		if err := q.UpdateIncident(ctx, inc); err != nil {
			return nil, fmt.Errorf("update incident %d: %w", id, err)
		}
	}
	if s.chat == nil {
		return nil, nil
	}
	bucket := now.Truncate(summaryDebounce)
	var queued []summaryKey
	for _, id := range sortedKeys(changed) {
		k := summaryKey{incident: id, bucket: bucket.Unix()}
		if created[id] || s.summaries.has(k) {
			continue // post_summary reads a new incident when it is delivered
		}
		key := fmt.Sprintf("inc-%d/update_summary/%d", id, k.bucket)
		if err := s.enqueueAt(ctx, q, id, LaneRefresh, KindUpdateSummary, key, nil, bucket.Add(summaryDebounce)); err != nil {
			return nil, err
		}
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
