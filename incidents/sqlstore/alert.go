package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/reins-oss/reins/incidents"
)

// recordAlerts upserts alerts. SET expressions read the row as it was, so
// previous_status keeps the status before this receipt and RETURNING hands
// it back: new, repeat or change is known without a read-then-write race.
var recordAlerts = &bulk{cols: "iissssssssssssttt", text: `WITH v (n, incident_id, source, fingerprint, agent, status,
	title, summary, severity, sessions, links, labels, annotations, details, starts_at, ends_at, received_at) AS (VALUES %s)
INSERT INTO alerts (incident_id, source, fingerprint, agent, status, previous_status,
	title, summary, severity, sessions, links, labels, annotations, details,
	starts_at, ends_at, received_at, received_count)
SELECT incident_id, source, fingerprint, agent, status, '', title, summary, severity, sessions, links,
	labels, annotations, details, starts_at, ends_at, received_at, 1
FROM v WHERE n IS NOT NULL ORDER BY n
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
RETURNING id, incident_id, fingerprint, previous_status, received_count`}

// RecordAlerts inserts each alert in turn, or updates the incident's alert
// with its fingerprint, and returns the status each had before ("" when
// new); IDs and Counts are filled in. It uses as few statements as it can: one upsert may not touch a row twice, so a statement ends where
// an alert's key comes again, or at maxBulkRows.
func (q *queries) RecordAlerts(ctx context.Context, alerts []*incidents.Alert) ([]string, error) {
	prev := make([]string, len(alerts))
	for start := 0; start < len(alerts); {
		run := map[alertKey]bool{}
		end := start
		for ; end < len(alerts) && end-start < maxBulkRows; end++ {
			k := alertKey{alerts[end].IncidentID, alerts[end].Fingerprint}
			if run[k] {
				break
			}
			run[k] = true
		}
		if err := q.recordAlertChunk(ctx, alerts[start:end], prev[start:end]); err != nil {
			return nil, err
		}
		start = end
	}
	return prev, nil
}

// alertKey is an alert's unique key.
type alertKey struct {
	incident    int64
	fingerprint string
}

// recordAlertChunk records alerts, whose keys all differ, in one upsert and
// puts each one's previous status in prev.
func (q *queries) recordAlertChunk(ctx context.Context, alerts []*incidents.Alert, prev []string) error {
	index := make(map[alertKey]int, len(alerts))
	n, args := recordAlerts.args(len(alerts), func(i int, dst []any) []any {
		a := alerts[i]
		a.ReceivedAt = orNow(a.ReceivedAt)
		if a.StartsAt.IsZero() {
			a.StartsAt = a.ReceivedAt
		}
		index[alertKey{a.IncidentID, a.Fingerprint}] = i
		return append(dst, i, a.IncidentID, a.Source, a.Fingerprint, a.Agent, a.Status,
			a.Title, a.Summary, a.Severity, js(a.Sessions), js(a.Links), js(a.Labels), js(a.Annotations),
			raw(a.Details), q.t(a.StartsAt), q.nt(a.EndsAt), q.t(a.ReceivedAt))
	})
	first := alerts[0]
	found := 0
	err := q.writeRows(ctx, q.text(recordAlerts, n), args, func(rows *sql.Rows) error {
		var (
			id, incident int64
			fingerprint  string
			previous     string
			count        int
		)
		if err := rows.Scan(&id, &incident, &fingerprint, &previous, &count); err != nil {
			return err
		}
		i, ok := index[alertKey{incident, fingerprint}]
		if !ok {
			return fmt.Errorf("upsert returned alert %q of incident #%d, which was not asked for", fingerprint, incident)
		}
		alerts[i].ID, alerts[i].Count, prev[i] = id, count, previous
		found++
		return nil
	})
	if err != nil {
		return insertErr(err, first.IncidentID, "record alert %q on incident #%d", first.Fingerprint, first.IncidentID)
	}
	if found != len(alerts) {
		return fmt.Errorf("record alert %q on incident #%d: upsert of %d alerts returned %d rows",
			first.Fingerprint, first.IncidentID, len(alerts), found)
	}
	return nil
}

// recordRepeats is recordAlert for pure repeats, many in one statement that
// skips the incidents: the WHERE holds every field intake would merge into
// the incident, compared as RecordAlerts stores them, so a receipt that
// brings anything new matches no row and takes the full path. The VALUES
// rows are filled in by recordRepeatsQuery; v.fresh is the oldest
// last_alert_at the incident may have. r finds each alert's incident first,
// so alerts are looked up by their whole unique key.
var recordRepeats = &bulk{cols: "sssstttssssssst", text: `WITH v (agent, labels, annotations, details, starts_at, ends_at, received_at,
	fingerprint, status, title, summary, severity, sessions, links, fresh) AS (VALUES %s),
r AS (SELECT v.*, (SELECT id FROM incidents WHERE incidents.agent = v.agent AND group_key = ''
		AND incidents.status = 'open' AND grouping AND last_alert_at >= v.fresh) AS incident_id
	FROM v)
UPDATE alerts SET
	previous_status = alerts.status,
	agent = r.agent,
	labels = r.labels,
	annotations = r.annotations,
	details = r.details,
	starts_at = r.starts_at,
	ends_at = r.ends_at,
	received_at = r.received_at,
	received_count = alerts.received_count + 1
FROM r
WHERE alerts.incident_id = r.incident_id AND alerts.fingerprint = r.fingerprint AND alerts.status = r.status
	AND alerts.title = r.title AND alerts.summary = r.summary AND alerts.severity = r.severity
	AND alerts.sessions = r.sessions AND alerts.links = r.links
RETURNING alerts.id, alerts.incident_id, alerts.agent, alerts.fingerprint, alerts.received_count`}

// repeatRow is one alert recordRepeats updated.
type repeatRow struct {
	ID, IncidentID     int64
	Agent, Fingerprint string
	Count              int
}

// repeatRows runs recordRepeats and scans what it returns by hand: a storm
// runs it once per batch, and sqlx's reflection was a visible part of that.
func (q *queries) repeatRows(ctx context.Context, query string, args []any) ([]repeatRow, error) {
	var out []repeatRow
	err := q.writeRows(ctx, query, args, func(rows *sql.Rows) error {
		var r repeatRow
		if err := rows.Scan(&r.ID, &r.IncidentID, &r.Agent, &r.Fingerprint, &r.Count); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// RecordRepeats records each of reps as RecordAlerts would when it is a pure
// repeat in its agent's open, grouping incident last alerted at or after its
// FreshSince, and changes nothing for the others. It reports which were
// recorded and fills in their ID, IncidentID and Count. Each alert's Agent
// and Fingerprint must differ from every other's.
func (q *queries) RecordRepeats(ctx context.Context, reps []incidents.Repeat) ([]bool, error) {
	ok := make([]bool, len(reps))
	type key struct{ agent, fingerprint string }
	index := make(map[key]int, len(reps))
	for i, r := range reps {
		a := r.Alert
		a.ReceivedAt = orNow(a.ReceivedAt)
		if a.StartsAt.IsZero() {
			a.StartsAt = a.ReceivedAt
		}
		k := key{a.Agent, a.Fingerprint}
		if _, dup := index[k]; dup {
			return nil, fmt.Errorf("record repeats: alert %q for %q given twice", a.Fingerprint, a.Agent)
		}
		index[k] = i
	}
	all := reps
	for len(reps) > 0 {
		chunk := reps[:min(len(reps), maxBulkRows)]
		reps = reps[len(chunk):]
		n, args := recordRepeats.args(len(chunk), func(i int, dst []any) []any {
			r := chunk[i]
			a := r.Alert
			return append(dst, a.Agent, js(a.Labels), js(a.Annotations), raw(a.Details),
				q.t(a.StartsAt), q.nt(a.EndsAt), q.t(a.ReceivedAt),
				a.Fingerprint, a.Status, a.Title, a.Summary, a.Severity, js(a.Sessions), js(a.Links), q.t(r.FreshSince))
		})
		rows, err := q.repeatRows(ctx, q.text(recordRepeats, n), args)
		if err != nil {
			return nil, wrap(err, "record %d repeats, the first alert %q for %q", len(chunk), chunk[0].Alert.Fingerprint, chunk[0].Alert.Agent)
		}
		for _, row := range rows {
			i, found := index[key{row.Agent, row.Fingerprint}]
			if !found || ok[i] {
				return nil, fmt.Errorf("record repeats: updated alert %q for %q, which was not asked for once", row.Fingerprint, row.Agent)
			}
			ok[i] = true
			a := all[i].Alert
			a.ID, a.IncidentID, a.Count = row.ID, row.IncidentID, row.Count
		}
	}
	return ok, nil
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

// AppendEvents adds events to their incidents' timelines, in their order,
// in a statement per maxBulkRows. Their IDs are not filled in.
func (q *queries) AppendEvents(ctx context.Context, events []*incidents.Event) error {
	for start := 0; start < len(events); {
		chunk := events[start:min(len(events), start+maxBulkRows)]
		n, args := appendEvents.args(len(chunk), func(i int, dst []any) []any { return q.eventArgs(dst, i, chunk[i]) })
		err := q.write(ctx, false, func(q *queries) error {
			_, err := q.exec(ctx, q.text(appendEvents, n), args...)
			return err
		})
		if err != nil {
			return insertErr(err, chunk[0].IncidentID, "append %d events, the first %s to incident #%d", len(chunk), chunk[0].Kind, chunk[0].IncidentID)
		}
		start += len(chunk)
	}
	return nil
}

// eventRows and insertEvents insert the rows of a VALUES list ve.
const (
	eventKinds   = "iitssss"
	eventRows    = `ve (n, incident_id, at, kind, actor, text, data) AS (VALUES %s)`
	insertEvents = `INSERT INTO events (incident_id, at, kind, actor, text, data)
SELECT incident_id, at, kind, actor, text, data FROM ve WHERE n IS NOT NULL ORDER BY n`
)

var appendEvents = &bulk{cols: eventKinds, text: "WITH " + eventRows + "\n" + insertEvents}

// eventArgs appends e as the i-th row of eventRows.
func (q *queries) eventArgs(dst []any, i int, e *incidents.Event) []any {
	e.At = orNow(e.At)
	return append(dst, i, e.IncidentID, q.t(e.At), string(e.Kind), actorJSON(e.Actor), e.Text, raw(e.Data))
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
