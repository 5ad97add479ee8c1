package sqlstore

import (
	"context"
	"time"

	"github.com/reins-oss/reins/incidents/guard"
)

var _ guard.Store = (*Store)(nil)

const breachCols = `id, agent, sla, metric, session_id, value, threshold, detail, step_id, step_n, action, dry_run,
	outcome, incident_id, at, due_at`

type breachRow struct {
	ID         int64   `db:"id"`
	Agent      string  `db:"agent"`
	SLA        string  `db:"sla"`
	Metric     string  `db:"metric"`
	Session    string  `db:"session_id"`
	Value      float64 `db:"value"`
	Threshold  float64 `db:"threshold"`
	Detail     string  `db:"detail"`
	Step       string  `db:"step_id"`
	StepN      int64   `db:"step_n"`
	Action     string  `db:"action"`
	DryRun     bool    `db:"dry_run"`
	Outcome    string  `db:"outcome"`
	IncidentID int64   `db:"incident_id"`
	At         dbTime  `db:"at"`
	Due        dbTime  `db:"due_at"`
}

func (r breachRow) breach() guard.Breach {
	sla, repeat := guard.SplitRepeat(r.SLA)
	return guard.Breach{ID: r.ID, Agent: r.Agent, SLA: sla, Repeat: repeat, Metric: r.Metric, Session: r.Session, Value: r.Value,
		Threshold: r.Threshold, Detail: r.Detail, Step: r.Step, StepN: r.StepN, Action: r.Action, DryRun: r.DryRun,
		Outcome: r.Outcome, IncidentID: r.IncidentID, At: r.At.T, Due: r.Due.T}
}

// InsertBreach stores b unless its (agent, SLA, session) breached before.
func (q *queries) InsertBreach(ctx context.Context, b *guard.Breach) (bool, error) {
	b.At = orNow(b.At)
	var ids []int64
	err := q.write(ctx, false, func(q *queries) error {
		return q.sel(ctx, &ids, `INSERT INTO guard_breaches (agent, sla, metric, session_id, value, threshold,
			detail, step_id, step_n, action, dry_run, outcome, incident_id, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, ?)
			ON CONFLICT (agent, sla, session_id) DO NOTHING RETURNING id`,
			b.Agent, b.RepeatKey(), b.Metric, b.Session, b.Value, b.Threshold, b.Detail, b.Step, b.StepN, b.Action,
			b.DryRun, q.t(b.At))
	})
	if err != nil {
		return false, wrap(err, "record breach of %s by session %s", b.SLA, b.Session)
	}
	if len(ids) == 0 {
		return false, nil
	}
	b.ID = ids[0]
	return true, nil
}

// SetBreachOutcome records what was done about a breach.
func (q *queries) SetBreachOutcome(ctx context.Context, id, incident int64, outcome string) error {
	return q.write(ctx, false, func(q *queries) error {
		res, err := q.exec(ctx, `UPDATE guard_breaches SET outcome = ?, incident_id = ?, claimed_until = NULL WHERE id = ?`,
			outcome, incident, id)
		if err != nil {
			return wrap(err, "record outcome of breach %d", id)
		}
		return mustAffect(res, "breach")
	})
}

// FindBreaches returns breaches at or after since, newest first.
func (q *queries) FindBreaches(ctx context.Context, agent string, since time.Time, limit int) ([]guard.Breach, error) {
	if limit <= 0 {
		limit = 1000
	}
	var rows []breachRow
	var err error
	if agent == "" {
		err = q.sel(ctx, &rows, `SELECT `+breachCols+` FROM guard_breaches WHERE at >= ?
			ORDER BY at DESC, id DESC LIMIT ?`, q.t(since), limit)
	} else {
		err = q.sel(ctx, &rows, `SELECT `+breachCols+` FROM guard_breaches WHERE agent = ? AND at >= ?
			ORDER BY at DESC, id DESC LIMIT ?`, agent, q.t(since), limit)
	}
	if err != nil {
		return nil, wrap(err, "find breaches of %q", agent)
	}
	return breaches(rows), nil
}

// SessionBreaches returns the breaches of one session, oldest first.
func (q *queries) SessionBreaches(ctx context.Context, agent, session string) ([]guard.Breach, error) {
	var rows []breachRow
	if err := q.sel(ctx, &rows, `SELECT `+breachCols+` FROM guard_breaches WHERE agent = ? AND session_id = ? ORDER BY id`,
		agent, session); err != nil {
		return nil, wrap(err, "find breaches of session %s of %s", session, agent)
	}
	return breaches(rows), nil
}

// PendingBreaches returns breaches recorded but not acted on, oldest first.
func (q *queries) PendingBreaches(ctx context.Context, limit int) ([]guard.Breach, error) {
	var rows []breachRow
	if err := q.sel(ctx, &rows, `SELECT `+breachCols+` FROM guard_breaches WHERE outcome = '' ORDER BY id LIMIT ?`,
		limit); err != nil {
		return nil, wrap(err, "find breaches not acted on")
	}
	return breaches(rows), nil
}

func breaches(rows []breachRow) []guard.Breach {
	out := make([]guard.Breach, len(rows))
	for i, r := range rows {
		out[i] = r.breach()
	}
	return out
}
