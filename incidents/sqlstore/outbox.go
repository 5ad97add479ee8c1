package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/migrations"
)

// EnqueueOutbox adds each item whose Key is not queued yet, in a statement
// per maxBulkRows (a key given twice is queued once), fills in the ID and
// State of those it adds, and returns how many it added.
func (q *queries) EnqueueOutbox(ctx context.Context, items ...*outbox.Item) (int, error) {
	if err := validItems(items); err != nil {
		return 0, err
	}
	queued := 0
	for start := 0; start < len(items); {
		chunk := items[start:min(len(items), start+maxBulkRows)]
		n, args := enqueueReturning.args(len(chunk), func(i int, dst []any) []any { return q.outboxArgs(dst, i, chunk[i]) })
		var added []struct {
			ID  int64  `db:"id"`
			Key string `db:"key"`
		}
		err := q.write(ctx, false, func(q *queries) error {
			return q.sel(ctx, &added, q.text(enqueueReturning, n), args...)
		})
		if err != nil {
			return queued, wrap(err, "enqueue %d outbox items, the first %s %q", len(chunk), chunk[0].Kind, chunk[0].Key)
		}
		ids := make(map[string]int64, len(added))
		for _, r := range added {
			ids[r.Key] = r.ID
		}
		for _, it := range chunk {
			if id, ok := ids[it.Key]; ok {
				it.ID, it.State, it.Attempts = id, outbox.Pending, 0
				delete(ids, it.Key) // a key given twice: the first one was added
			}
		}
		queued += len(added)
		start += len(chunk)
	}
	return queued, nil
}

// enqueueOutboxes is EnqueueOutbox for intake, which needs neither the IDs
// nor the count: it skips RETURNING.
func (q *queries) enqueueOutboxes(ctx context.Context, items []*outbox.Item) error {
	if err := validItems(items); err != nil {
		return err
	}
	for start := 0; start < len(items); {
		chunk := items[start:min(len(items), start+maxBulkRows)]
		n, args := enqueueQuiet.args(len(chunk), func(i int, dst []any) []any { return q.outboxArgs(dst, i, chunk[i]) })
		err := q.write(ctx, false, func(q *queries) error {
			_, err := q.exec(ctx, q.text(enqueueQuiet, n), args...)
			return err
		})
		if err != nil {
			return wrap(err, "enqueue %d outbox items, the first %s %q", len(chunk), chunk[0].Kind, chunk[0].Key)
		}
		start += len(chunk)
	}
	return nil
}

func validItems(items []*outbox.Item) error {
	for _, it := range items {
		if it.Key == "" || it.Lane == "" || it.Kind == "" {
			return &incidents.Error{Code: incidents.EINVALID,
				Message: fmt.Sprintf("Outbox item %q needs a key, a lane and a kind.", it.Key)}
		}
	}
	return nil
}

// outboxRows and insertOutbox insert the rows of a VALUES list vo.
const (
	outboxKinds  = "iisssstt"
	outboxRows   = `vo (n, incident_id, lane, kind, key, payload, next_attempt_at, created_at) AS (VALUES %s)`
	insertOutbox = `INSERT INTO outbox (incident_id, lane, kind, key, payload, state, attempts, next_attempt_at, created_at)
SELECT incident_id, lane, kind, key, payload, 'pending', 0, next_attempt_at, created_at
FROM vo WHERE n IS NOT NULL ORDER BY n
ON CONFLICT (key) DO NOTHING`
)

var (
	enqueueReturning = &bulk{cols: outboxKinds, text: "WITH " + outboxRows + "\n" + insertOutbox + "\nRETURNING id, key"}
	enqueueQuiet     = &bulk{cols: outboxKinds, text: "WITH " + outboxRows + "\n" + insertOutbox}
)

// outboxArgs appends it as the i-th row of outboxRows.
func (q *queries) outboxArgs(dst []any, i int, it *outbox.Item) []any {
	it.CreatedAt = orNow(it.CreatedAt)
	if it.NextAttemptAt.IsZero() {
		it.NextAttemptAt = it.CreatedAt
	}
	return append(dst, i, it.IncidentID, it.Lane, it.Kind, it.Key, raw(it.Payload), q.t(it.NextAttemptAt), q.t(it.CreatedAt))
}

// claimOutbox leases due items. An item waits while an earlier item of its
// incident and lane is pending (leased or backing off), so one incident's
// side effects happen in the order they were queued; items of no incident
// (0) wait for nothing. On PostgreSQL, SKIP LOCKED lets replicas claim side
// by side, each taking rows the others have not locked.
const claimOutbox = `UPDATE outbox SET locked_until = ?
WHERE id IN (
	SELECT o.id FROM outbox o
	WHERE o.lane = ? AND o.state = 'pending' AND o.next_attempt_at <= ?
		AND (o.locked_until IS NULL OR o.locked_until <= ?)
		AND (o.incident_id = 0 OR NOT EXISTS (
			SELECT 1 FROM outbox e
			WHERE e.incident_id = o.incident_id AND e.lane = o.lane AND e.state = 'pending' AND e.id < o.id))
	ORDER BY o.next_attempt_at, o.id
	LIMIT ?%s)
RETURNING ` + outboxCols

const outboxCols = `id, incident_id, lane, kind, key, payload, state, attempts, next_attempt_at,
	locked_until, last_error, created_at, done_at`

type outboxRow struct {
	ID            int64  `db:"id"`
	IncidentID    int64  `db:"incident_id"`
	Lane          string `db:"lane"`
	Kind          string `db:"kind"`
	Key           string `db:"key"`
	Payload       string `db:"payload"`
	State         string `db:"state"`
	Attempts      int    `db:"attempts"`
	NextAttemptAt dbTime `db:"next_attempt_at"`
	LockedUntil   dbTime `db:"locked_until"`
	LastError     string `db:"last_error"`
	CreatedAt     dbTime `db:"created_at"`
	DoneAt        dbTime `db:"done_at"`
}

// ClaimOutbox leases up to limit due items of lane until now+lease, oldest
// due first.
func (q *queries) ClaimOutbox(ctx context.Context, lane string, now time.Time, lease time.Duration, limit int) ([]*outbox.Item, error) {
	if limit <= 0 {
		return nil, nil
	}
	lock := ""
	if q.s.d == migrations.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var rows []outboxRow
	err := q.write(ctx, false, func(q *queries) error {
		return q.sel(ctx, &rows, fmt.Sprintf(claimOutbox, lock),
			q.t(now.Add(lease)), lane, q.t(now), q.t(now), limit)
	})
	if err != nil {
		return nil, wrap(err, "claim %s outbox items", lane)
	}
	// RETURNING order is unspecified: hand items out in queue order.
	slices.SortFunc(rows, func(a, b outboxRow) int {
		return cmp.Or(a.NextAttemptAt.T.Compare(b.NextAttemptAt.T), cmp.Compare(a.ID, b.ID))
	})
	out := make([]*outbox.Item, len(rows))
	for i, r := range rows {
		out[i] = &outbox.Item{ID: r.ID, IncidentID: r.IncidentID, Lane: r.Lane, Kind: r.Kind, Key: r.Key,
			Payload: unraw(r.Payload), State: r.State, Attempts: r.Attempts, NextAttemptAt: r.NextAttemptAt.T,
			LockedUntil: r.LockedUntil.ptr(), LastError: r.LastError, CreatedAt: r.CreatedAt.T, DoneAt: r.DoneAt.ptr()}
	}
	return out, nil
}

// CompleteOutbox marks the item delivered.
func (q *queries) CompleteOutbox(ctx context.Context, id int64, now time.Time) error {
	return q.setOutbox(ctx, id, "complete",
		`UPDATE outbox SET state = 'done', done_at = ?, locked_until = NULL WHERE id = ?`, q.t(now), id)
}

// RetryOutbox records a failed attempt and releases the item until next.
func (q *queries) RetryOutbox(ctx context.Context, id int64, next time.Time, lastErr string) error {
	return q.setOutbox(ctx, id, "retry",
		`UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, locked_until = NULL, last_error = ?
		WHERE id = ?`, q.t(next), lastErr, id)
}

// BuryOutbox records the last failed attempt and gives up on the item: it
// stays, dead, for inspection.
func (q *queries) BuryOutbox(ctx context.Context, id int64, now time.Time, lastErr string) error {
	return q.setOutbox(ctx, id, "bury",
		`UPDATE outbox SET state = 'dead', attempts = attempts + 1, done_at = ?, locked_until = NULL,
		last_error = ? WHERE id = ?`, q.t(now), lastErr, id)
}

func (q *queries) setOutbox(ctx context.Context, id int64, verb, query string, args ...any) error {
	return q.write(ctx, false, func(q *queries) error {
		res, err := q.exec(ctx, query, args...)
		if err != nil {
			return wrap(err, "%s outbox item %d", verb, id)
		}
		return mustAffect(res, fmt.Sprintf("outbox item %d", id))
	})
}

// OutboxBacklog returns the pending work of each lane, by name; the known
// lanes are always present so their gauges drop to zero when drained.
func (q *queries) OutboxBacklog(ctx context.Context) ([]outbox.LaneBacklog, error) {
	var rows []struct {
		Lane    string `db:"lane"`
		Pending int    `db:"pending"`
		Oldest  dbTime `db:"oldest"`
	}
	err := q.sel(ctx, &rows, `SELECT lane, count(*) AS pending, min(created_at) AS oldest
		FROM outbox WHERE state = 'pending' GROUP BY lane ORDER BY lane`)
	if err != nil {
		return nil, wrap(err, "outbox backlog")
	}
	byLane := map[string]outbox.LaneBacklog{
		outbox.LaneChat:    {Lane: outbox.LaneChat},
		outbox.LaneRefresh: {Lane: outbox.LaneRefresh},
		outbox.LaneUrgent:  {Lane: outbox.LaneUrgent},
	}
	for _, r := range rows {
		byLane[r.Lane] = outbox.LaneBacklog{Lane: r.Lane, Pending: r.Pending, Oldest: r.Oldest.ptr()}
	}
	out := make([]outbox.LaneBacklog, 0, len(byLane))
	for _, b := range byLane {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b outbox.LaneBacklog) int { return cmp.Compare(a.Lane, b.Lane) })
	return out, nil
}

// DeferOutbox hands a claimed item back with its last error and its
// attempts unchanged; a zero until keeps its due time (its place in the
// queue).
func (q *queries) DeferOutbox(ctx context.Context, id int64, until time.Time, lastErr string) error {
	if until.IsZero() {
		return q.setOutbox(ctx, id, "defer",
			`UPDATE outbox SET locked_until = NULL, last_error = ? WHERE id = ?`, lastErr, id)
	}
	return q.setOutbox(ctx, id, "defer",
		`UPDATE outbox SET locked_until = NULL, next_attempt_at = ?, last_error = ? WHERE id = ?`, q.t(until), lastErr, id)
}

// SaveOutage records a failing destination, keeping the since of an outage
// already recorded.
func (q *queries) SaveOutage(ctx context.Context, o outbox.Outage) error {
	return q.write(ctx, false, func(q *queries) error {
		_, err := q.exec(ctx, `INSERT INTO delivery_outages (destination, since, failed_at, next_probe_at, last_error)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (destination) DO UPDATE SET failed_at = excluded.failed_at,
				next_probe_at = excluded.next_probe_at, last_error = excluded.last_error`,
			o.Destination, q.t(o.Since), q.t(o.FailedAt), q.t(o.NextProbeAt), o.LastError)
		return wrapErr(err, "record the outage of %s", o.Destination)
	})
}

// ClearOutage forgets a destination's outage.
func (q *queries) ClearOutage(ctx context.Context, destination string) error {
	return q.write(ctx, false, func(q *queries) error {
		_, err := q.exec(ctx, `DELETE FROM delivery_outages WHERE destination = ?`, destination)
		return wrapErr(err, "clear the outage of %s", destination)
	})
}

// Outages returns the recorded outages by destination.
func (q *queries) Outages(ctx context.Context) ([]outbox.Outage, error) {
	var rows []struct {
		Destination string `db:"destination"`
		Since       dbTime `db:"since"`
		FailedAt    dbTime `db:"failed_at"`
		NextProbeAt dbTime `db:"next_probe_at"`
		LastError   string `db:"last_error"`
	}
	if err := q.sel(ctx, &rows, `SELECT destination, since, failed_at, next_probe_at, last_error
		FROM delivery_outages ORDER BY destination`); err != nil {
		return nil, wrap(err, "delivery outages")
	}
	out := make([]outbox.Outage, len(rows))
	for i, r := range rows {
		out[i] = outbox.Outage{Destination: r.Destination, Since: r.Since.T, FailedAt: r.FailedAt.T,
			NextProbeAt: r.NextProbeAt.T, LastError: r.LastError}
	}
	return out, nil
}
