package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/reins-oss/reins/incidents"
)

// recordAlert is one upsert. SET expressions read the row as it was, so
// previous_status keeps the status before this receipt and RETURNING hands
// it back: new, repeat or change is known without a read-then-write race.
const recordAlert = `INSERT INTO alerts (incident_id, source, fingerprint, agent, status, previous_status,
	title, summary, severity, sessions, links, labels, annotations, details,
	starts_at, ends_at, received_at, received_count)
VALUES (?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
ON CONFLICT (incident_id, fingerprint) DO UPDATE SET
	previous_status = alerts.status,
	status = excluded.status,
	agent = excluded.agent,
	title = excluded.title,
	summary = excluded.summary,
	severity = excluded.severity,
	sessions = excluded.sessions,
	links = excluded.links,
	labels = excluded.labels,
	annotations = excluded.annotations,
	details = excluded.details,
	starts_at = excluded.starts_at,
	ends_at = excluded.ends_at,
	received_at = excluded.received_at,
	received_count = alerts.received_count + 1
RETURNING id, previous_status, received_count`

// RecordAlert inserts a, or updates the incident's alert with its
// fingerprint, and returns the status it had before ("" when new). a.ID and
// a.Count are filled in.
func (q *queries) RecordAlert(ctx context.Context, a *incidents.Alert) (string, error) {
	a.ReceivedAt = orNow(a.ReceivedAt)
	if a.StartsAt.IsZero() {
		a.StartsAt = a.ReceivedAt
	}
	var rows []struct {
		ID       int64  `db:"id"`
		Previous string `db:"previous_status"`
		Count    int    `db:"received_count"`
	}
	err := q.write(ctx, false, func(q *queries) error {
		return q.sel(ctx, &rows, recordAlert, a.IncidentID, a.Source, a.Fingerprint, a.Agent, a.Status,
			a.Title, a.Summary, a.Severity, js(a.Sessions), js(a.Links), js(a.Labels), js(a.Annotations),
			raw(a.Details), q.t(a.StartsAt), q.nt(a.EndsAt), q.t(a.ReceivedAt))
	})
	if err != nil {
		return "", insertErr(err, a.IncidentID, "record alert %q on incident #%d", a.Fingerprint, a.IncidentID)
	}
	if len(rows) != 1 {
		return "", fmt.Errorf("record alert %q on incident #%d: upsert returned %d rows", a.Fingerprint, a.IncidentID, len(rows))
	}
	a.ID, a.Count = rows[0].ID, rows[0].Count
	return rows[0].Previous, nil
}

// recordRepeat is recordAlert for a pure repeat, in one statement that
// skips the incident: the WHERE holds every field intake would merge into
// the incident, compared as RecordAlert stores them, so a receipt that
// brings anything new matches no row and takes the full path.
const recordRepeat = `UPDATE alerts SET
	previous_status = status,
	agent = ?,
	labels = ?,
	annotations = ?,
	details = ?,
	starts_at = ?,
	ends_at = ?,
	received_at = ?,
	received_count = received_count + 1
WHERE fingerprint = ? AND status = ? AND title = ? AND summary = ? AND severity = ? AND sessions = ? AND links = ?
	AND incident_id = (SELECT id FROM incidents
		WHERE agent = ? AND group_key = '' AND status = 'open' AND grouping AND last_alert_at >= ?)
RETURNING id, incident_id, received_count`

// RecordRepeat updates a as RecordAlert would when it is a pure repeat in
// its agent's open, grouping incident last alerted at or after freshSince;
// otherwise it changes nothing and returns ok false. a.ID, a.IncidentID and
// a.Count are filled in when ok.
func (q *queries) RecordRepeat(ctx context.Context, a *incidents.Alert, freshSince time.Time) (int64, bool, error) {
	a.ReceivedAt = orNow(a.ReceivedAt)
	if a.StartsAt.IsZero() {
		a.StartsAt = a.ReceivedAt
	}
	var rows []struct {
		ID         int64 `db:"id"`
		IncidentID int64 `db:"incident_id"`
		Count      int   `db:"received_count"`
	}
	err := q.write(ctx, false, func(q *queries) error {
		return q.sel(ctx, &rows, recordRepeat, a.Agent, js(a.Labels), js(a.Annotations), raw(a.Details),
			q.t(a.StartsAt), q.nt(a.EndsAt), q.t(a.ReceivedAt),
			a.Fingerprint, a.Status, a.Title, a.Summary, a.Severity, js(a.Sessions), js(a.Links),
			a.Agent, q.t(freshSince))
	})
	if err != nil {
		return 0, false, wrap(err, "record repeat of alert %q for %q", a.Fingerprint, a.Agent)
	}
	switch len(rows) {
	case 0:
		return 0, false, nil
	case 1:
		a.ID, a.IncidentID, a.Count = rows[0].ID, rows[0].IncidentID, rows[0].Count
		return rows[0].IncidentID, true, nil
	}
	return 0, false, fmt.Errorf("record repeat of alert %q for %q: update matched %d rows", a.Fingerprint, a.Agent, len(rows))
}

const alertCols = `id, incident_id, source, fingerprint, agent, status, title, summary, severity,
	sessions, links, labels, annotations, details, starts_at, ends_at, received_at, received_count`

type alertRow struct {
	ID          int64  `db:"id"`
	IncidentID  int64  `db:"incident_id"`
	Source      string `db:"source"`
	Fingerprint string `db:"fingerprint"`
	Agent       string `db:"agent"`
	Status      string `db:"status"`
	Title       string `db:"title"`
	Summary     string `db:"summary"`
	Severity    string `db:"severity"`
	Sessions    string `db:"sessions"`
	Links       string `db:"links"`
	Labels      string `db:"labels"`
	Annotations string `db:"annotations"`
	Details     string `db:"details"`
	StartsAt    dbTime `db:"starts_at"`
	EndsAt      dbTime `db:"ends_at"`
	ReceivedAt  dbTime `db:"received_at"`
	Count       int    `db:"received_count"`
}

func (r *alertRow) alert() (*incidents.Alert, error) {
	a := &incidents.Alert{
		ID: r.ID, IncidentID: r.IncidentID, Source: r.Source, Fingerprint: r.Fingerprint, Agent: r.Agent,
		Status: r.Status, Title: r.Title, Summary: r.Summary, Severity: r.Severity, Details: unraw(r.Details),
		StartsAt: r.StartsAt.T, EndsAt: r.EndsAt.ptr(), ReceivedAt: r.ReceivedAt.T, Count: r.Count,
	}
	for _, f := range []struct {
		text string
		dst  any
	}{{r.Sessions, &a.Sessions}, {r.Links, &a.Links}, {r.Labels, &a.Labels}, {r.Annotations, &a.Annotations}} {
		if err := unjs(f.text, f.dst, "alert "+r.Fingerprint); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// FindAlerts returns the incident's alerts in the order they first arrived.
func (q *queries) FindAlerts(ctx context.Context, incidentID int64) ([]*incidents.Alert, error) {
	var rows []alertRow
	if err := q.sel(ctx, &rows, `SELECT `+alertCols+` FROM alerts WHERE incident_id = ? ORDER BY id`, incidentID); err != nil {
		return nil, wrap(err, "find alerts of incident #%d", incidentID)
	}
	out := make([]*incidents.Alert, len(rows))
	for i := range rows {
		a, err := rows[i].alert()
		if err != nil {
			return nil, fmt.Errorf("find alerts of incident #%d: %w", incidentID, err)
		}
		out[i] = a
	}
	return out, nil
}

// AppendEvent adds e to its incident's timeline and sets e.ID.
func (q *queries) AppendEvent(ctx context.Context, e *incidents.Event) error {
	e.At = orNow(e.At)
	var ids []int64
	err := q.write(ctx, false, func(q *queries) error {
		return q.sel(ctx, &ids, `INSERT INTO events (incident_id, at, kind, actor, text, data)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			e.IncidentID, q.t(e.At), string(e.Kind), actorJSON(e.Actor), e.Text, raw(e.Data))
	})
	if err != nil {
		return insertErr(err, e.IncidentID, "append %s event to incident #%d", e.Kind, e.IncidentID)
	}
	e.ID = ids[0]
	return nil
}

type eventRow struct {
	ID         int64  `db:"id"`
	IncidentID int64  `db:"incident_id"`
	At         dbTime `db:"at"`
	Kind       string `db:"kind"`
	Actor      string `db:"actor"`
	Text       string `db:"text"`
	Data       string `db:"data"`
}

// FindEvents returns the incident's timeline, oldest first.
func (q *queries) FindEvents(ctx context.Context, incidentID int64) ([]*incidents.Event, error) {
	var rows []eventRow
	err := q.sel(ctx, &rows, `SELECT id, incident_id, at, kind, actor, text, data FROM events
		WHERE incident_id = ? ORDER BY at, id`, incidentID)
	if err != nil {
		return nil, wrap(err, "find timeline of incident #%d", incidentID)
	}
	out := make([]*incidents.Event, len(rows))
	for i, r := range rows {
		actor, err := unactor(r.Actor, "event actor")
		if err != nil {
			return nil, fmt.Errorf("find timeline of incident #%d: %w", incidentID, err)
		}
		out[i] = &incidents.Event{ID: r.ID, IncidentID: r.IncidentID, At: r.At.T, Kind: incidents.EventKind(r.Kind),
			Actor: actor, Text: r.Text, Data: unraw(r.Data)}
	}
	return out, nil
}
