package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents"
)

// CreateChecklist stores c and its items in one transaction; ECONFLICT when
// the incident already has a checklist (it is resumed, never restarted).
func (q *queries) CreateChecklist(ctx context.Context, c *incidents.Checklist) error {
	c.CreatedAt = orNow(c.CreatedAt)
	if c.LastActivityAt.IsZero() {
		c.LastActivityAt = c.CreatedAt
	}
	return q.write(ctx, true, func(q *queries) error {
		// DO NOTHING rather than a failing insert: on PostgreSQL a failed
		// statement would abort the caller's whole transaction.
		var ids []int64
		err := q.sel(ctx, &ids, `INSERT INTO checklists (incident_id, created_at, created_by, last_activity_at,
			nudge_count, last_nudged_at, snoozed_until, reminders_stopped) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (incident_id) DO NOTHING RETURNING incident_id`,
			c.IncidentID, q.t(c.CreatedAt), actorJSON(c.CreatedBy), q.t(c.LastActivityAt), c.NudgeCount,
			q.nt(c.LastNudgedAt), q.nt(c.SnoozedUntil), c.RemindersStopped)
		if err != nil {
			return insertErr(err, c.IncidentID, "create checklist of incident #%d", c.IncidentID)
		}
		if len(ids) == 0 {
			return &incidents.Error{Code: incidents.ECONFLICT,
				Message: fmt.Sprintf("Incident #%d already has a checklist.", c.IncidentID)}
		}
		return q.insertItems(ctx, c)
	})
}

// insertItems writes every item in one statement.
func (q *queries) insertItems(ctx context.Context, c *incidents.Checklist) error {
	if len(c.Items) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO checklist_items (incident_id, key, position, question, check_text, owner, link,
		posted_ts, choice, details, answered_by, answered_at) VALUES `)
	args := make([]any, 0, 12*len(c.Items))
	for i, it := range c.Items {
		if it.Position == 0 {
			it.Position = i + 1
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, c.IncidentID, it.Key, it.Position, it.Question, it.Check, it.Owner, it.Link,
			it.PostedTS, it.Choice, it.Details, answeredBy(it.AnsweredBy), q.nt(it.AnsweredAt))
	}
	if _, err := q.exec(ctx, b.String(), args...); err != nil {
		if unique(err) {
			return &incidents.Error{Code: incidents.EINVALID,
				Message: fmt.Sprintf("The checklist of incident #%d names an item twice.", c.IncidentID)}
		}
		return wrap(err, "create checklist items of incident #%d", c.IncidentID)
	}
	return nil
}

func answeredBy(a *incidents.Actor) string {
	if a == nil {
		return ""
	}
	return actorJSON(*a)
}

type checklistRow struct {
	IncidentID       int64  `db:"incident_id"`
	CreatedAt        dbTime `db:"created_at"`
	CreatedBy        string `db:"created_by"`
	LastActivityAt   dbTime `db:"last_activity_at"`
	NudgeCount       int    `db:"nudge_count"`
	LastNudgedAt     dbTime `db:"last_nudged_at"`
	SnoozedUntil     dbTime `db:"snoozed_until"`
	RemindersStopped bool   `db:"reminders_stopped"`
}

type itemRow struct {
	IncidentID int64  `db:"incident_id"`
	Key        string `db:"key"`
	Position   int    `db:"position"`
	Question   string `db:"question"`
	Check      string `db:"check_text"`
	Owner      string `db:"owner"`
	Link       string `db:"link"`
	PostedTS   string `db:"posted_ts"`
	Choice     string `db:"choice"`
	Details    string `db:"details"`
	AnsweredBy string `db:"answered_by"`
	AnsweredAt dbTime `db:"answered_at"`
}

const checklistCols = `c.incident_id, c.created_at, c.created_by, c.last_activity_at, c.nudge_count,
	c.last_nudged_at, c.snoozed_until, c.reminders_stopped`

const itemCols = `incident_id, key, position, question, check_text, owner, link, posted_ts, choice,
	details, answered_by, answered_at`

func (r *checklistRow) checklist() (*incidents.Checklist, error) {
	by, err := unactor(r.CreatedBy, "checklist creator")
	if err != nil {
		return nil, err
	}
	return &incidents.Checklist{IncidentID: r.IncidentID, CreatedAt: r.CreatedAt.T, CreatedBy: by,
		LastActivityAt: r.LastActivityAt.T, NudgeCount: r.NudgeCount, LastNudgedAt: r.LastNudgedAt.ptr(),
		SnoozedUntil: r.SnoozedUntil.ptr(), RemindersStopped: r.RemindersStopped}, nil
}

func (r *itemRow) item() (*incidents.ChecklistItem, error) {
	it := &incidents.ChecklistItem{Key: r.Key, Position: r.Position, Question: r.Question, Check: r.Check,
		Owner: r.Owner, Link: r.Link, PostedTS: r.PostedTS, Choice: r.Choice, Details: r.Details,
		AnsweredAt: r.AnsweredAt.ptr()}
	if r.AnsweredBy != "" {
		a, err := unactor(r.AnsweredBy, "checklist answerer")
		if err != nil {
			return nil, err
		}
		it.AnsweredBy = &a
	}
	return it, nil
}

// FindChecklist returns the incident's checklist with its items in order.
func (q *queries) FindChecklist(ctx context.Context, incidentID int64) (*incidents.Checklist, error) {
	var r checklistRow
	err := q.get(ctx, &r, `SELECT `+checklistCols+` FROM checklists c WHERE c.incident_id = ?`+q.forUpdate(), incidentID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(fmt.Sprintf("checklist for incident #%d", incidentID))
	} else if err != nil {
		return nil, wrap(err, "find checklist of incident #%d", incidentID)
	}
	out, err := q.withItems(ctx, []checklistRow{r}, `incident_id = ?`, incidentID)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// withItems builds checklists from rows and the items selected by where.
func (q *queries) withItems(ctx context.Context, rows []checklistRow, where string, args ...any) ([]*incidents.Checklist, error) {
	var items []itemRow
	err := q.sel(ctx, &items, `SELECT `+itemCols+` FROM checklist_items WHERE `+where+`
		ORDER BY incident_id, position, key`, args...)
	if err != nil {
		return nil, wrap(err, "find checklist items")
	}
	out := make([]*incidents.Checklist, len(rows))
	byID := make(map[int64]*incidents.Checklist, len(rows))
	for i := range rows {
		c, err := rows[i].checklist()
		if err != nil {
			return nil, err
		}
		out[i], byID[c.IncidentID] = c, c
	}
	for i := range items {
		c := byID[items[i].IncidentID]
		if c == nil {
			continue
		}
		it, err := items[i].item()
		if err != nil {
			return nil, err
		}
		c.Items = append(c.Items, it)
	}
	return out, nil
}

// UpdateChecklist writes the reminder state and each item's answer and
// PostedTS, in one transaction.
func (q *queries) UpdateChecklist(ctx context.Context, c *incidents.Checklist) error {
	return q.write(ctx, true, func(q *queries) error {
		res, err := q.exec(ctx, `UPDATE checklists SET last_activity_at = ?, nudge_count = ?, last_nudged_at = ?,
			snoozed_until = ?, reminders_stopped = ? WHERE incident_id = ?`,
			q.t(c.LastActivityAt), c.NudgeCount, q.nt(c.LastNudgedAt), q.nt(c.SnoozedUntil),
			c.RemindersStopped, c.IncidentID)
		if err != nil {
			return wrap(err, "update checklist of incident #%d", c.IncidentID)
		}
		if err := mustAffect(res, fmt.Sprintf("checklist for incident #%d", c.IncidentID)); err != nil {
			return err
		}
		for _, it := range c.Items {
			res, err := q.exec(ctx, `UPDATE checklist_items SET posted_ts = ?, choice = ?, details = ?,
				answered_by = ?, answered_at = ? WHERE incident_id = ? AND key = ?`,
				it.PostedTS, it.Choice, it.Details, answeredBy(it.AnsweredBy), q.nt(it.AnsweredAt), c.IncidentID, it.Key)
			if err != nil {
				return wrap(err, "update checklist item %q of incident #%d", it.Key, c.IncidentID)
			}
			if err := mustAffect(res, fmt.Sprintf("checklist item %q in incident #%d", it.Key, c.IncidentID)); err != nil {
				return err
			}
		}
		return nil
	})
}

// unfinished selects checklists of open incidents with an unanswered item.
const unfinished = `c.incident_id IN (SELECT i.id FROM incidents i WHERE i.status = 'open')
	AND EXISTS (SELECT 1 FROM checklist_items u WHERE u.incident_id = c.incident_id AND u.choice = '')`

// FindUnfinishedChecklists returns the checklists of open incidents that
// still have unanswered items, for the nudge job; snoozed and stopped ones
// included, the job decides.
func (q *queries) FindUnfinishedChecklists(ctx context.Context) ([]*incidents.Checklist, error) {
	var rows []checklistRow
	err := q.sel(ctx, &rows, `SELECT `+checklistCols+` FROM checklists c WHERE `+unfinished+` ORDER BY c.incident_id`)
	if err != nil {
		return nil, wrap(err, "find unfinished checklists")
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return q.withItems(ctx, rows, `incident_id IN (SELECT c.incident_id FROM checklists c WHERE `+unfinished+`)`)
}

// SavePostmortemAnswer upserts the answer to a.Key.
func (q *queries) SavePostmortemAnswer(ctx context.Context, a *incidents.PostmortemAnswer) error {
	a.At = orNow(a.At)
	return q.write(ctx, false, func(q *queries) error {
		_, err := q.exec(ctx, `INSERT INTO postmortem_answers (incident_id, key, text, actor, at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (incident_id, key) DO UPDATE SET text = excluded.text, actor = excluded.actor, at = excluded.at`,
			a.IncidentID, a.Key, a.Text, actorJSON(a.Actor), q.t(a.At))
		if err != nil {
			return insertErr(err, a.IncidentID, "save postmortem answer %q of incident #%d", a.Key, a.IncidentID)
		}
		return nil
	})
}

// FindPostmortemAnswers returns the incident's answers in the order given.
func (q *queries) FindPostmortemAnswers(ctx context.Context, incidentID int64) ([]*incidents.PostmortemAnswer, error) {
	var rows []struct {
		IncidentID int64  `db:"incident_id"`
		Key        string `db:"key"`
		Text       string `db:"text"`
		Actor      string `db:"actor"`
		At         dbTime `db:"at"`
	}
	err := q.sel(ctx, &rows, `SELECT incident_id, key, text, actor, at FROM postmortem_answers
		WHERE incident_id = ? ORDER BY at, key`, incidentID)
	if err != nil {
		return nil, wrap(err, "find postmortem answers of incident #%d", incidentID)
	}
	out := make([]*incidents.PostmortemAnswer, len(rows))
	for i, r := range rows {
		actor, err := unactor(r.Actor, "postmortem answerer")
		if err != nil {
			return nil, err
		}
		out[i] = &incidents.PostmortemAnswer{IncidentID: r.IncidentID, Key: r.Key, Text: r.Text, Actor: actor, At: r.At.T}
	}
	return out, nil
}

// SavePostmortemDoc upserts the incident's rendered postmortem.
func (q *queries) SavePostmortemDoc(ctx context.Context, d *incidents.PostmortemDoc) error {
	d.RenderedAt = orNow(d.RenderedAt)
	return q.write(ctx, false, func(q *queries) error {
		_, err := q.exec(ctx, `INSERT INTO postmortem_docs (incident_id, markdown, rendered_at, finished, posted_ts,
			remind_count, last_reminded_at) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (incident_id) DO UPDATE SET markdown = excluded.markdown, rendered_at = excluded.rendered_at,
				finished = excluded.finished, posted_ts = excluded.posted_ts, remind_count = excluded.remind_count,
				last_reminded_at = excluded.last_reminded_at`,
			d.IncidentID, d.Markdown, q.t(d.RenderedAt), d.Finished, d.PostedTS, d.RemindCount, q.nt(d.LastRemindedAt))
		if err != nil {
			return insertErr(err, d.IncidentID, "save postmortem of incident #%d", d.IncidentID)
		}
		return nil
	})
}

// FindPostmortemDoc returns the incident's postmortem document.
func (q *queries) FindPostmortemDoc(ctx context.Context, incidentID int64) (*incidents.PostmortemDoc, error) {
	var r struct {
		IncidentID     int64  `db:"incident_id"`
		Markdown       string `db:"markdown"`
		RenderedAt     dbTime `db:"rendered_at"`
		Finished       bool   `db:"finished"`
		PostedTS       string `db:"posted_ts"`
		RemindCount    int    `db:"remind_count"`
		LastRemindedAt dbTime `db:"last_reminded_at"`
	}
	err := q.get(ctx, &r, `SELECT incident_id, markdown, rendered_at, finished, posted_ts, remind_count,
		last_reminded_at FROM postmortem_docs WHERE incident_id = ?`, incidentID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(fmt.Sprintf("postmortem for incident #%d", incidentID))
	} else if err != nil {
		return nil, wrap(err, "find postmortem of incident #%d", incidentID)
	}
	return &incidents.PostmortemDoc{IncidentID: r.IncidentID, Markdown: r.Markdown, RenderedAt: r.RenderedAt.T,
		Finished: r.Finished, PostedTS: r.PostedTS, RemindCount: r.RemindCount, LastRemindedAt: r.LastRemindedAt.ptr()}, nil
}

// PruneIdempotencyKeys deletes the keys seen before before, a thousand per
// statement, so a large backlog never holds the SQLite writer for long.
func (q *queries) PruneIdempotencyKeys(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := q.write(ctx, false, func(q *queries) error {
			res, err := q.exec(ctx, `DELETE FROM idempotency_keys WHERE key IN
				(SELECT key FROM idempotency_keys WHERE seen_at < ? LIMIT 1000)`, q.t(before))
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, wrap(err, "prune idempotency keys")
		}
		total += n
		if n < 1000 {
			return total, nil
		}
	}
}

// Remember records key and says whether this is the first time it is seen.
func (q *queries) Remember(ctx context.Context, key string, at time.Time) (bool, error) {
	var first bool
	err := q.write(ctx, false, func(q *queries) error {
		res, err := q.exec(ctx, `INSERT INTO idempotency_keys (key, seen_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`,
			key, q.t(orNow(at)))
		if err != nil {
			return wrap(err, "remember %q", key)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return wrap(err, "remember %q", key)
		}
		first = n == 1
		return nil
	})
	return first, err
}
