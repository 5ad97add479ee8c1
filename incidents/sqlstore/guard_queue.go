package sqlstore

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents/guard"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/migrations"
)

// markUnjudged marks the sessions that grew by judged steps as to be judged
// (guard_judgements), in the transaction that stored the steps: one
// statement for the batch. since moves with each write: a session written
// again is judged again by that write's own request (which rebuilds what a
// lost judgement left), so only a mark no request followed goes stale.
func (q *queries) markUnjudged(ctx context.Context, totals []sessions.Totals, judged map[sessions.Key]bool) error {
	if len(judged) == 0 {
		return nil
	}
	var b strings.Builder
	args := make([]any, 0, 4*len(judged))
	b.WriteString(`INSERT INTO guard_judgements (agent, session_id, steps, since) VALUES `)
	now := q.t(time.Now())
	n := 0
	for _, t := range totals {
		if !judged[t.Key()] {
			continue
		}
		if n > 0 {
			b.WriteString(", ")
		}
		n++
		b.WriteString("(?, ?, ?, ?)")
		args = append(args, t.Agent, t.Session, t.Steps, now)
	}
	b.WriteString(` ON CONFLICT (agent, session_id) DO UPDATE SET steps = excluded.steps, since = excluded.since`)
	if _, err := q.x.ExecContext(ctx, q.x.Rebind(b.String()), args...); err != nil {
		return wrap(err, "mark %d sessions to be judged", n)
	}
	return nil
}

// RecordJudgement stores the breaches a judgement found (each once per
// agent, SLA and session: b.ID is set on those that are new, left 0 on
// repeats) and clears the judged sessions' marks, in one transaction.
func (s *Store) RecordJudgement(ctx context.Context, breaches []guard.Breach, judged []guard.Judged) error {
	if len(breaches) == 0 && len(judged) == 0 {
		return nil
	}
	if len(breaches) > 0 {
		// On its way to a halt: not queued behind the intake's writes.
		ctx = urgent(ctx)
	}
	err := s.queries.write(ctx, len(breaches) > 0, func(q *queries) error {
		for i := range breaches {
			b := &breaches[i]
			b.At = orNow(b.At)
			var ids []int64
			var claimed any
			if !b.ClaimedUntil.IsZero() {
				claimed = q.t(b.ClaimedUntil)
			}
			if err := q.sel(ctx, &ids, `INSERT INTO guard_breaches (agent, sla, metric, session_id, value, threshold,
				detail, step_id, step_n, action, dry_run, outcome, incident_id, at, claimed_until)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, ?, ?)
				ON CONFLICT (agent, sla, session_id) DO NOTHING RETURNING id`,
				b.Agent, b.RepeatKey(), b.Metric, b.Session, b.Value, b.Threshold, b.Detail, b.Step, b.StepN, b.Action,
				b.DryRun, q.t(b.At), claimed); err != nil {
				return wrap(err, "record breach of %s by session %s", b.SLA, b.Session)
			}
			b.ID = 0
			if len(ids) > 0 {
				b.ID = ids[0]
			}
		}
		for start := 0; start < len(judged); start += 200 {
			chunk := judged[start:min(start+200, len(judged))]
			var w strings.Builder
			args := make([]any, 0, 3*len(chunk))
			for i, j := range chunk {
				if i > 0 {
					w.WriteString(" OR ")
				}
				w.WriteString("(agent = ? AND session_id = ? AND steps <= ?)")
				args = append(args, j.Agent, j.Session, j.Steps)
			}
			if _, err := q.x.ExecContext(ctx, q.x.Rebind(`DELETE FROM guard_judgements WHERE `+w.String()), args...); err != nil {
				return wrap(err, "clear %d judged sessions", len(chunk))
			}
		}
		return nil
	})
	return err
}

// Unjudged returns sessions marked to be judged since before before (a
// crash between storing their steps and judging them), oldest first.
func (q *queries) Unjudged(ctx context.Context, before time.Time, limit int) ([]guard.Judged, error) {
	var rows []struct {
		Agent   string `db:"agent"`
		Session string `db:"session_id"`
		Steps   int64  `db:"steps"`
	}
	if err := q.sel(ctx, &rows, `SELECT agent, session_id, steps FROM guard_judgements WHERE since < ?
		ORDER BY since LIMIT ?`, q.t(before), limit); err != nil {
		return nil, wrap(err, "find sessions not judged")
	}
	out := make([]guard.Judged, len(rows))
	for i, r := range rows {
		out[i] = guard.Judged{Agent: r.Agent, Session: r.Session, Steps: r.Steps}
	}
	return out, nil
}

// claimBreaches leases the waiting breaches that are due, in the order
// they crossed; on PostgreSQL SKIP LOCKED lets replicas share them.
const claimBreaches = `UPDATE guard_breaches SET claimed_until = ?
WHERE id IN (
	SELECT id FROM guard_breaches
	WHERE outcome = '' AND (claimed_until IS NULL OR claimed_until <= ?) AND (due_at IS NULL OR due_at <= ?)
	ORDER BY at, id
	LIMIT ?%s)
RETURNING ` + breachCols

// ClaimBreaches leases up to limit waiting breaches that are due until
// now+lease, in crossing order.
func (q *queries) ClaimBreaches(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]guard.Breach, error) {
	lock := ""
	if q.s.d == migrations.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var rows []breachRow
	err := q.write(ctx, false, func(q *queries) error {
		return q.sel(ctx, &rows, strings.Replace(claimBreaches, "%s", lock, 1),
			q.t(now.Add(lease)), q.t(now), q.t(now), limit)
	})
	if err != nil {
		return nil, wrap(err, "claim waiting breaches")
	}
	out := breaches(rows)
	sortBreaches(out)
	return out, nil
}

// DeferBreach hands a claimed breach back to wait until due (the agent's
// automatic-halt budget frees then), with the incident its alert joined.
func (q *queries) DeferBreach(ctx context.Context, id, incident int64, due time.Time) error {
	return q.write(ctx, false, func(q *queries) error {
		res, err := q.exec(ctx, `UPDATE guard_breaches SET due_at = ?, claimed_until = NULL,
			incident_id = CASE WHEN ? <> 0 THEN ? ELSE incident_id END WHERE id = ? AND outcome = ''`,
			q.t(due), incident, incident, id)
		if err != nil {
			return wrap(err, "defer breach %d", id)
		}
		return mustAffect(res, "waiting breach")
	})
}

// WaitingBreaches returns agent's breaches not acted on yet, in crossing
// order (agent "" for all).
func (q *queries) WaitingBreaches(ctx context.Context, agent string, limit int) ([]guard.Breach, error) {
	var rows []breachRow
	var err error
	if agent == "" {
		err = q.sel(ctx, &rows, `SELECT `+breachCols+` FROM guard_breaches WHERE outcome = '' ORDER BY at, id LIMIT ?`, limit)
	} else {
		err = q.sel(ctx, &rows, `SELECT `+breachCols+` FROM guard_breaches WHERE outcome = '' AND agent = ?
			ORDER BY at, id LIMIT ?`, agent, limit)
	}
	if err != nil {
		return nil, wrap(err, "find waiting breaches of %q", agent)
	}
	return breaches(rows), nil
}

// LeaveSession ends the waiting breaches of one session with outcome
// "left", recording who said so, and says how many there were.
func (q *queries) LeaveSession(ctx context.Context, agent, session, by string) (int, error) {
	var n int64
	err := q.write(ctx, false, func(q *queries) error {
		res, err := q.exec(ctx, `UPDATE guard_breaches SET outcome = ?, left_by = ?, claimed_until = NULL
			WHERE agent = ? AND session_id = ? AND outcome = ''`, guard.OutcomeLeft, by, agent, session)
		if err != nil {
			return wrap(err, "leave session %s of %s", session, agent)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// sortBreaches puts breaches in crossing order: RETURNING's is unspecified.
func sortBreaches(list []guard.Breach) {
	slices.SortFunc(list, func(a, b guard.Breach) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.ID, b.ID))
	})
}
