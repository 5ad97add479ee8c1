package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/words"
	"github.com/reins-oss/reins/migrations"
)

// The Slack side's state (bot.StateStore): pending confirmations, requests
// already handled and bursts of refused kills. It lives here, not in process
// memory, so that whichever replica Slack's next request reaches can finish
// what another began.

// SaveConfirmation keeps a pending confirmation under token until expires.
//
// Its commit is not waited for on disk, as a single-use mark's is not
// (lazyCommit): a confirmation only asks the user to click, and the click
// that takes it (TakeConfirmation) and the halt it causes are durable
// commits, which flush it first. A power loss can forget a confirmation
// nobody has clicked yet, whose click is then answered "expired" and whose
// kill the user runs again: nothing is halted, or left halted, by it. Each
// kill's confirmation was an fsync of its own on the 2 halt workers, which
// held a burst's confirmations to a few hundred a second (issue 25).
func (s *Store) SaveConfirmation(ctx context.Context, token, userID string, payload []byte, expires time.Time) error {
	q := &s.queries
	args := []any{token, userID, string(payload), q.t(time.Now()), q.t(expires)}
	var err error
	if s.d == migrations.Postgres {
		// set_config(…, true) is local to the statement's own implicit
		// transaction: one round trip, as for the marks.
		err = q.write(ctx, false, func(q *queries) error {
			_, err := q.exec(ctx, `INSERT INTO slack_confirmations (token, user_id, payload, created_at, expires_at)
				SELECT ?::text, ?::text, ?::text, ?::timestamptz, ?::timestamptz
				FROM (SELECT set_config('synchronous_commit', 'off', true)) AS lazy`, args...)
			return err
		})
	} else {
		n := 0
		err = s.lazyCommit(ctx, `INSERT INTO slack_confirmations (token, user_id, payload, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?) RETURNING token`, args, func(string) { n++ })
		if err == nil && n != 1 {
			err = fmt.Errorf("insert returned %d rows, want 1", n)
		}
	}
	return wrapErr(err, "save confirmation")
}

// FindConfirmation returns who asked for the confirmation and its payload;
// used says a click already took it. Unknown or expired: ENOTFOUND.
func (q *queries) FindConfirmation(ctx context.Context, token string, now time.Time) (userID string, payload []byte, used bool, err error) {
	var r struct {
		UserID  string `db:"user_id"`
		Payload string `db:"payload"`
		UsedAt  dbTime `db:"used_at"`
	}
	err = q.get(ctx, &r, `SELECT user_id, payload, used_at FROM slack_confirmations
		WHERE token = ? AND expires_at > ?`, token, q.t(now))
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, false, notFound("confirmation")
	} else if err != nil {
		return "", nil, false, wrap(err, "find confirmation")
	}
	return r.UserID, []byte(r.Payload), r.UsedAt.Valid, nil
}

// TakeConfirmation marks the confirmation used by userID, who must be the
// one who asked. It is one conditional UPDATE, so of any number of clicks on
// any number of replicas exactly one gets true.
func (q *queries) TakeConfirmation(ctx context.Context, token, userID string, now time.Time) (bool, error) {
	var taken bool
	err := q.write(ctx, false, func(q *queries) error {
		res, err := q.exec(ctx, `UPDATE slack_confirmations SET used_at = ?, used_by = ?
			WHERE token = ? AND user_id = ? AND used_at IS NULL AND expires_at > ?`,
			q.t(now), userID, token, userID, q.t(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		taken = n == 1
		return err
	})
	return taken, wrapErr(err, "take confirmation")
}

// FirstRequest records a Slack request's key until expires and says whether
// this is the first time it is seen (one atomic insert). On the database,
// concurrent calls share one statement and its commit (marks.go).
func (q *queries) FirstRequest(ctx context.Context, key string, expires time.Time) (bool, error) {
	if q.tx == nil {
		return q.s.firstRequest(ctx, key, expires)
	}
	var first bool
	err := q.write(ctx, false, func(q *queries) error {
		res, err := q.exec(ctx, `INSERT INTO slack_requests (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`,
			key, q.t(expires))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		first = n == 1
		return err
	})
	return first, wrapErr(err, "remember slack request")
}

// CountRefusal audits a refusal once per burst. The first refusal under key
// (who, what, which agent) appends e to the audit log; each further one
// within window of the burst's last refusal adds one to the burst and
// rewrites that same row's detail with the count, so a user hammering
// `/agent kill` leaves one row, not thousands. It returns the burst's count.
func (q *queries) CountRefusal(ctx context.Context, key string, e *incidents.AuditEntry, window time.Duration) (int, error) {
	e.At = orNow(e.At)
	attempts := 1
	err := q.write(ctx, true, func(q *queries) error {
		var b struct {
			AuditID  int64  `db:"audit_id"`
			Detail   string `db:"detail"`
			FirstAt  dbTime `db:"first_at"`
			Attempts int    `db:"attempts"`
		}
		err := q.get(ctx, &b, `SELECT audit_id, detail, first_at, attempts FROM refusal_bursts
			WHERE key = ? AND last_at >= ?`+q.forUpdate(), key, q.t(e.At.Add(-window)))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := q.AppendAudit(ctx, e); err != nil {
				return err
			}
			_, err = q.exec(ctx, `INSERT INTO refusal_bursts (key, audit_id, detail, first_at, last_at, attempts)
				VALUES (?, ?, ?, ?, ?, 1)
				ON CONFLICT (key) DO UPDATE SET audit_id = excluded.audit_id, detail = excluded.detail,
					first_at = excluded.first_at, last_at = excluded.last_at, attempts = 1`,
				key, e.ID, e.Detail, q.t(e.At), q.t(e.At))
			return err
		case err != nil:
			return err
		}
		attempts = b.Attempts + 1
		e.ID = b.AuditID
		if _, err := q.exec(ctx, `UPDATE refusal_bursts SET last_at = ?, attempts = ? WHERE key = ?`,
			q.t(e.At), attempts, key); err != nil {
			return err
		}
		detail := fmt.Sprintf("%s (%s from %s to %s UTC)", b.Detail, words.Count(attempts, "attempt"),
			b.FirstAt.T.UTC().Format(time.TimeOnly), e.At.UTC().Format(time.TimeOnly))
		_, err = q.exec(ctx, `UPDATE audit_log SET detail = ? WHERE id = ?`, detail, b.AuditID)
		return err
	})
	return attempts, wrapErr(err, "audit refused %s of %s", e.Action, e.Agent)
}

// PruneSlackState deletes confirmations and request keys that expired before
// now, and refusal bursts idle for a day. It returns how many rows went.
func (q *queries) PruneSlackState(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	err := q.write(ctx, false, func(q *queries) error {
		for _, del := range []struct {
			query string
			at    time.Time
		}{
			{`DELETE FROM slack_confirmations WHERE expires_at <= ?`, now},
			{`DELETE FROM slack_requests WHERE expires_at <= ?`, now},
			{`DELETE FROM refusal_bursts WHERE last_at <= ?`, now.Add(-24 * time.Hour)},
		} {
			res, err := q.exec(ctx, del.query, q.t(del.at))
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	return total, wrapErr(err, "prune slack state")
}

// wrapErr is wrap that keeps nil nil.
func wrapErr(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return wrap(err, format, args...)
}
