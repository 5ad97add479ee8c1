package incidents

import (
	"encoding/json"
	"time"
)

// Outbox lanes: pages never wait behind Slack cosmetics.
const (
	LaneUrgent = "urgent" // pages and re-pages
	LaneChat   = "chat"   // channel, summary, invites, bookmarks, thread posts
	// LaneRefresh holds in-place summary updates. They are idempotent and read
	// the incident when delivered, so they need no order, and a debounced
	// update waiting for its time must not hold back the next checklist item.
	LaneRefresh = "refresh"
)

// Outbox states.
const (
	OutboxPending = "pending"
	OutboxDone    = "done"
	OutboxDead    = "dead" // given up on, visibly
)

// OutboxItem is a side effect recorded in the same transaction as the change
// that caused it, delivered after commit by a worker. Handlers read the current
// incident at delivery time, so the payload carries only what the change knew.
type OutboxItem struct {
	ID            int64
	IncidentID    int64 // 0 when not about an incident (drill reports, audits)
	Lane          string
	Kind          string          // what to do, see delivery
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

// LaneBacklog is the pending work of one lane, for metrics.
type LaneBacklog struct {
	Lane    string
	Pending int
	Oldest  *time.Time // CreatedAt of the oldest pending item
}
