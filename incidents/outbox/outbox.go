// Package outbox delivers the side effects the domain records: an item is
// written in the transaction of the change that caused it, then claimed
// under a lease by a worker on any replica, handed to the handler of its
// kind, and completed, retried with backoff, or buried visibly. The package
// knows lanes, leases and retries; what an item does is the handler's
// business (incidents registers one per kind). See docs/architecture.md.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Lanes: pages never wait behind Slack cosmetics.
const (
	LaneUrgent = "urgent" // pages and re-pages
	LaneChat   = "chat"   // channel, summary, invites, bookmarks, thread posts
	// LaneRefresh holds in-place summary updates. They are idempotent and read
	// the incident when delivered, so they need no order, and a debounced
	// update waiting for its time must not hold back the next checklist item.
	LaneRefresh = "refresh"
)

// States.
const (
	Pending = "pending"
	Done    = "done"
	Dead    = "dead" // given up on, visibly
)

// Item is a side effect recorded in the same transaction as the change that
// caused it, delivered after commit by a worker. Handlers read the current
// state at delivery time, so the payload carries only what the change knew.
type Item struct {
	ID            int64
	IncidentID    int64 // 0 when not about an incident (drill reports, audits)
	Lane          string
	Kind          string          // what to do: the handler registered for it
	Key           string          // idempotency key: enqueueing the same key twice queues once
	Payload       json.RawMessage // kind-specific
	State         string
	Attempts      int
	NextAttemptAt time.Time
	LockedUntil   *time.Time
	LastError     string
	CreatedAt     time.Time
	DoneAt        *time.Time
}

// NewItem is the pending item for one side effect, its payload encoded as
// JSON ({} when nil), queued at now and due at due.
func NewItem(incidentID int64, lane, kind, key string, payload any, due, now time.Time) (*Item, error) {
	raw := []byte(`{}`)
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return nil, fmt.Errorf("encode %s payload for %s: %w", kind, key, err)
		}
		raw = b
	}
	return &Item{IncidentID: incidentID, Lane: lane, Kind: kind, Key: key, Payload: raw,
		State: Pending, NextAttemptAt: due, CreatedAt: now}, nil
}

// LaneBacklog is the pending work of one lane, for metrics.
type LaneBacklog struct {
	Lane    string
	Pending int
	Oldest  *time.Time // CreatedAt of the oldest pending item
}

// Store is the outbox's role of the store. Enqueueing happens inside the
// transaction of the change (the store's InTx), the rest on the database.
type Store interface {
	// EnqueueOutbox adds each of items whose Key is not queued yet (a key
	// given twice is queued once), in as few statements as the store can,
	// fills in the ID and State of those it adds, and says how many it added.
	EnqueueOutbox(ctx context.Context, items ...*Item) (queued int, err error)
	// ClaimOutbox leases up to limit due items of lane until now+lease. An item
	// is due when pending, NextAttemptAt <= now, not leased, and no earlier
	// pending item of the same incident and lane exists (in-order delivery).
	// On PostgreSQL it uses FOR UPDATE SKIP LOCKED so replicas share the work.
	ClaimOutbox(ctx context.Context, lane string, now time.Time, lease time.Duration, limit int) ([]*Item, error)
	CompleteOutbox(ctx context.Context, id int64, now time.Time) error
	// RetryOutbox records a failed attempt and when to try next.
	RetryOutbox(ctx context.Context, id int64, next time.Time, lastErr string) error
	// BuryOutbox gives up on an item: state dead, kept for inspection.
	BuryOutbox(ctx context.Context, id int64, now time.Time, lastErr string) error
	OutboxBacklog(ctx context.Context) ([]LaneBacklog, error)
	// DeferOutbox hands a claimed item back with its last error and no
	// attempt counted: the failure was its destination's (an outage, a
	// rate limit), not the item's. A zero until keeps its due time, so it
	// keeps its place in the queue; otherwise it is due at until.
	DeferOutbox(ctx context.Context, id int64, until time.Time, lastErr string) error
	// SaveOutage records that a destination is failing. A destination
	// already recorded keeps its Since; the rest is replaced.
	SaveOutage(ctx context.Context, o Outage) error
	// ClearOutage forgets a destination's outage: it answered again.
	ClearOutage(ctx context.Context, destination string) error
	// Outages returns the recorded outages, by destination.
	Outages(ctx context.Context) ([]Outage, error)
}

// Outage is a destination (Slack) failing every delivery, as the replicas
// that saw it recorded it. doctor and /readyz read it from the store.
type Outage struct {
	Destination string
	Since       time.Time // the first failure of this outage
	FailedAt    time.Time // the last failed probe
	NextProbeAt time.Time // when the replica that failed last probes again
	LastError   string
}

// RetryAfterError asks delivery to wait at least After before trying again
// (Slack's 429 Retry-After, PagerDuty's 429).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return fmt.Sprintf("retry after %s: %v", e.After, e.Err) }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// UnavailableError marks a failure of the destination as a whole rather
// than of the item: a 5xx, a refused or timed-out connection, a rate limit.
// In a lane with a destination (Config.Destinations) it opens the
// destination's circuit: the item keeps its place and attempts, and the
// lane waits for one probe at a time. After is the destination's
// Retry-After, 0 when it gave none.
type UnavailableError struct {
	After time.Duration
	Err   error
}

func (e *UnavailableError) Error() string { return "unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Unavailable wraps err as an UnavailableError that asks to wait after
// (0: the probe interval).
func Unavailable(err error, after time.Duration) error {
	return &UnavailableError{After: after, Err: err}
}

// PermanentError marks a delivery failure that retrying cannot fix (Slack
// channel_not_found after archive, PagerDuty 400 invalid routing key).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError.
func Permanent(err error) error { return &PermanentError{Err: err} }
