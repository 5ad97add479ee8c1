package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/migrations"
)

const incidentCols = `id, agent, unowned, group_key, title, severity, status, source, sessions, links,
	slack_channel_id, slack_channel_name, summary_ts, checklist_ts, postmortem_ts,
	pagerduty_key, paged_at, acked_at, acked_by,
	created_at, started_at, last_alert_at, resolved_at, resolved_by, version`

type incidentRow struct {
	ID               int64  `db:"id"`
	Agent            string `db:"agent"`
	Unowned          bool   `db:"unowned"`
	GroupKey         string `db:"group_key"`
	Title            string `db:"title"`
	Severity         string `db:"severity"`
	Status           string `db:"status"`
	Source           string `db:"source"`
	Sessions         string `db:"sessions"`
	Links            string `db:"links"`
	SlackChannelID   string `db:"slack_channel_id"`
	SlackChannelName string `db:"slack_channel_name"`
	SummaryTS        string `db:"summary_ts"`
	ChecklistTS      string `db:"checklist_ts"`
	PostmortemTS     string `db:"postmortem_ts"`
	PagerDutyKey     string `db:"pagerduty_key"`
	PagedAt          dbTime `db:"paged_at"`
	AckedAt          dbTime `db:"acked_at"`
	AckedBy          string `db:"acked_by"`
	CreatedAt        dbTime `db:"created_at"`
	StartedAt        dbTime `db:"started_at"`
	LastAlertAt      dbTime `db:"last_alert_at"`
	ResolvedAt       dbTime `db:"resolved_at"`
	ResolvedBy       string `db:"resolved_by"`
	Version          int64  `db:"version"`
}

func (r *incidentRow) load(inc *incidents.Incident) error {
	*inc = incidents.Incident{
		ID: r.ID, Agent: r.Agent, Unowned: r.Unowned, GroupKey: r.GroupKey, Title: r.Title,
		Severity: r.Severity, Status: r.Status, Source: r.Source,
		SlackChannelID: r.SlackChannelID, SlackChannelName: r.SlackChannelName,
		SummaryTS: r.SummaryTS, ChecklistTS: r.ChecklistTS, PostmortemTS: r.PostmortemTS,
		PagerDutyKey: r.PagerDutyKey, PagedAt: r.PagedAt.ptr(), AckedAt: r.AckedAt.ptr(), AckedBy: r.AckedBy,
		CreatedAt: r.CreatedAt.T, StartedAt: r.StartedAt.T, LastAlertAt: r.LastAlertAt.T,
		ResolvedAt: r.ResolvedAt.ptr(), ResolvedBy: r.ResolvedBy, Version: r.Version,
	}
	if err := unjs(r.Sessions, &inc.Sessions, "incident sessions"); err != nil {
		return err
	}
	return unjs(r.Links, &inc.Links, "incident links")
}

// findIncident loads the one incident matching where, or ENOTFOUND for what.
// lock is "" or q.forUpdate().
func (q *queries) findIncident(ctx context.Context, lock, what, where string, args ...any) (*incidents.Incident, error) {
	var r incidentRow
	err := q.get(ctx, &r, `SELECT `+incidentCols+` FROM incidents WHERE `+where+lock, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(what)
	} else if err != nil {
		return nil, wrap(err, "find %s", what)
	}
	inc := &incidents.Incident{}
	if err := r.load(inc); err != nil {
		return nil, fmt.Errorf("find %s: %w", what, err)
	}
	return inc, nil
}

// insertIncidents inserts incidents, each unless one is open and grouping
// for its agent and key already.
var insertIncidents = &bulk{cols: "isbssssssssssssttsttt", text: `WITH v (n, agent, unowned, group_key, title, severity, source,
	sessions, links, slack_channel_id, slack_channel_name, summary_ts, checklist_ts, postmortem_ts,
	pagerduty_key, paged_at, acked_at, acked_by, created_at, started_at, last_alert_at) AS (VALUES %s)
INSERT INTO incidents (agent, unowned, group_key, grouping, title, severity, status, source,
	sessions, links, slack_channel_id, slack_channel_name, summary_ts, checklist_ts, postmortem_ts,
	pagerduty_key, paged_at, acked_at, acked_by, created_at, started_at, last_alert_at, version)
SELECT agent, unowned, group_key, TRUE, title, severity, 'open', source,
	sessions, links, slack_channel_id, slack_channel_name, summary_ts, checklist_ts, postmortem_ts,
	pagerduty_key, paged_at, acked_at, acked_by, created_at, started_at, last_alert_at, 1
FROM v WHERE n IS NOT NULL ORDER BY n
ON CONFLICT (agent, group_key) WHERE status = 'open' AND grouping DO NOTHING
RETURNING id, agent, group_key`}

// OpenIncident inserts inc as the open incident collecting alerts for its
// agent and group key, or loads the one that already does into inc.
//
// It looks first and inserts only when nothing is open, so a storm of alerts
// for one incident costs one indexed read each and burns no IDs (the numbers
// users see stay consecutive). Racing inserts meet on the unique partial
// index: the losers do nothing and read the winner's row.
//
// Unlike FindIncident it does not lock the row inside a transaction: every
// alert of a storm goes through here, and a lock held to commit would queue
// them all behind one another (measured: 50 ms per alert at 32 senders on
// PostgreSQL instead of 1.5 ms). A caller about to change the incident calls
// FindIncident in the same transaction, which locks and re-reads it.
func (q *queries) OpenIncident(ctx context.Context, inc *incidents.Incident) (bool, error) {
	what := fmt.Sprintf("open incident for %s", inc.Agent)
	for range 3 {
		got, err := q.findIncident(ctx, "", what, `agent = ? AND group_key = ? AND status = 'open' AND grouping`,
			inc.Agent, inc.GroupKey)
		if err == nil {
			*inc = *got
			return false, nil
		} else if incidents.ErrorCode(err) != incidents.ENOTFOUND {
			return false, err
		}
		created, err := q.InsertIncidents(ctx, []*incidents.Incident{inc})
		if err != nil || created[0] {
			return err == nil, err
		}
		// Lost the race: the winner's row is there now (READ COMMITTED reads
		// it), unless it was resolved in between; then try again.
	}
	return false, fmt.Errorf("open incident for %s: the open incident kept changing; try again", inc.Agent)
}

// InsertIncidents inserts each of incs as the open incident collecting
// alerts for its agent and group key, unless one is open already, and
// reports which it inserted, in one statement per maxBulkRows. IDs follow
// the order of incs. No two may share agent and group key.
func (q *queries) InsertIncidents(ctx context.Context, incs []*incidents.Incident) ([]bool, error) {
	created := make([]bool, len(incs))
	type key struct{ agent, group string }
	for start := 0; start < len(incs); {
		chunk := incs[start:min(len(incs), start+maxBulkRows)]
		index := make(map[key]int, len(chunk))
		n, args := insertIncidents.args(len(chunk), func(i int, dst []any) []any {
			inc := chunk[i]
			inc.CreatedAt = orNow(inc.CreatedAt)
			if inc.StartedAt.IsZero() || inc.StartedAt.After(inc.CreatedAt) {
				inc.StartedAt = inc.CreatedAt
			}
			if inc.LastAlertAt.IsZero() {
				inc.LastAlertAt = inc.CreatedAt
			}
			index[key{inc.Agent, inc.GroupKey}] = start + i
			return append(dst, i, inc.Agent, inc.Unowned, inc.GroupKey, inc.Title, inc.Severity, inc.Source,
				js(inc.Sessions), js(inc.Links), inc.SlackChannelID, inc.SlackChannelName, inc.SummaryTS,
				inc.ChecklistTS, inc.PostmortemTS, inc.PagerDutyKey, q.nt(inc.PagedAt), q.nt(inc.AckedAt), inc.AckedBy,
				q.t(inc.CreatedAt), q.t(inc.StartedAt), q.t(inc.LastAlertAt))
		})
		err := q.writeRows(ctx, q.text(insertIncidents, n), args, func(rows *sql.Rows) error {
			var id int64
			var k key
			if err := rows.Scan(&id, &k.agent, &k.group); err != nil {
				return err
			}
			i, ok := index[k]
			if !ok || created[i] {
				return fmt.Errorf("inserted an incident for %s, which was not asked for once", k.agent)
			}
			created[i] = true
			inc := incs[i]
			inc.ID, inc.Status, inc.Version = id, incidents.StatusOpen, 1
			inc.ResolvedAt, inc.ResolvedBy = nil, ""
			inc.CreatedAt = inc.CreatedAt.UTC().Truncate(time.Microsecond)
			inc.StartedAt = inc.StartedAt.UTC().Truncate(time.Microsecond)
			inc.LastAlertAt = inc.LastAlertAt.UTC().Truncate(time.Microsecond)
			return nil
		})

		if err != nil {
			return nil, wrap(err, "open incident for %s", chunk[0].Agent)
		}
		start += len(chunk)
	}
	return created, nil
}

// StopGrouping makes the incident stop collecting new alerts.
func (q *queries) StopGrouping(ctx context.Context, id int64) error {
	return q.write(ctx, false, func(q *queries) error {
		res, err := q.exec(ctx, `UPDATE incidents SET grouping = ?, version = version + 1 WHERE id = ?`, false, id)
		if err != nil {
			return wrap(err, "stop grouping incident #%d", id)
		}
		return mustAffect(res, fmt.Sprintf("incident #%d", id))
	})
}

// FindIncident returns the incident with id. Inside a transaction on
// PostgreSQL the row stays locked until commit (see forUpdate).
func (q *queries) FindIncident(ctx context.Context, id int64) (*incidents.Incident, error) {
	return q.findIncident(ctx, q.forUpdate(), fmt.Sprintf("incident #%d", id), `id = ?`, id)
}

// FindIncidentByChannel returns the incident whose Slack channel is channelID
// (the newest, should a channel ever have been reused).
func (q *queries) FindIncidentByChannel(ctx context.Context, channelID string) (*incidents.Incident, error) {
	if channelID == "" {
		return nil, notFound("incident for an empty channel ID")
	}
	return q.findIncident(ctx, q.forUpdate(), "incident for this channel",
		`id = (SELECT max(id) FROM incidents WHERE slack_channel_id = ?)`, channelID)
}

// FindIncidentByPagerKey returns the incident paged with dedupKey.
func (q *queries) FindIncidentByPagerKey(ctx context.Context, dedupKey string) (*incidents.Incident, error) {
	if dedupKey == "" {
		return nil, notFound("incident for an empty PagerDuty key")
	}
	return q.findIncident(ctx, q.forUpdate(), fmt.Sprintf("incident with PagerDuty key %q", dedupKey),
		`id = (SELECT max(id) FROM incidents WHERE pagerduty_key = ?)`, dedupKey)
}

// FindGroupingIncidents returns the open incidents that collect the alerts
// of agents (group key ""), at most one an agent, in one query.
func (q *queries) FindGroupingIncidents(ctx context.Context, agents []string) ([]*incidents.Incident, error) {
	if len(agents) == 0 {
		return nil, nil
	}
	query := `SELECT ` + incidentCols + ` FROM incidents
		WHERE agent IN (SELECT value FROM json_each(?)) AND group_key = '' AND status = 'open' AND grouping`
	var list any = js(agents)
	if q.s.d == migrations.Postgres {
		query = `SELECT ` + incidentCols + ` FROM incidents
			WHERE agent = ANY(?) AND group_key = '' AND status = 'open' AND grouping`
		list = pq.StringArray(agents)
	}
	var rows []incidentRow
	if err := q.sel(ctx, &rows, query, list); err != nil {
		return nil, wrap(err, "find the open incidents of %d agents", len(agents))
	}
	out := make([]*incidents.Incident, len(rows))
	for i := range rows {
		out[i] = &incidents.Incident{}
		if err := rows[i].load(out[i]); err != nil {
			return nil, fmt.Errorf("find the open incidents of %d agents: %w", len(agents), err)
		}
	}
	return out, nil
}

// FindIncidents returns incidents matching f, newest first.
func (q *queries) FindIncidents(ctx context.Context, f incidents.IncidentFilter) ([]*incidents.Incident, error) {
	var where []string
	var args []any
	if f.Agent != "" {
		where, args = append(where, "agent = ?"), append(args, f.Agent)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	query := `SELECT ` + incidentCols + ` FROM incidents`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	query += ` ORDER BY id DESC LIMIT ? OFFSET ?`
	args = append(args, limit, max(f.Offset, 0))
	var rows []incidentRow
	if err := q.sel(ctx, &rows, query, args...); err != nil {
		return nil, wrap(err, "find incidents")
	}
	out := make([]*incidents.Incident, len(rows))
	for i := range rows {
		out[i] = &incidents.Incident{}
		if err := rows[i].load(out[i]); err != nil {
			return nil, fmt.Errorf("find incidents: %w", err)
		}
	}
	return out, nil
}

const updateIncident = `UPDATE incidents SET agent = ?, unowned = ?, group_key = ?, title = ?, severity = ?,
	status = ?, source = ?, sessions = ?, links = ?, slack_channel_id = ?, slack_channel_name = ?,
	summary_ts = ?, checklist_ts = ?, postmortem_ts = ?, pagerduty_key = ?, paged_at = ?, acked_at = ?,
	acked_by = ?, started_at = ?, last_alert_at = ?, resolved_at = ?, resolved_by = ?,
	version = version + 1
WHERE id = ?`

// UpdateIncident writes every mutable field of inc and bumps its Version.
// It does not compare versions: a read-modify-write belongs in InTx, where
// the read locks the row on PostgreSQL.
func (q *queries) UpdateIncident(ctx context.Context, inc *incidents.Incident) error {
	ok, err := q.updateIncident(ctx, inc, "")
	if err == nil && !ok {
		err = notFound(fmt.Sprintf("incident #%d", inc.ID))
	}
	return err
}

// intakeRows and updateIntake write what intake changes in the incidents of
// a VALUES list vi, each where the version still matches; padding rows of
// NULLs match nothing.
const (
	intakeKinds  = "iissstss"
	intakeRows   = `vi (id, version, sessions, links, severity, last_alert_at, pagerduty_key, title) AS (VALUES %s)`
	updateIntake = `UPDATE incidents SET sessions = vi.sessions, links = vi.links, severity = vi.severity, title = vi.title,
	last_alert_at = vi.last_alert_at, pagerduty_key = vi.pagerduty_key, version = incidents.version + 1
FROM vi
WHERE incidents.id = vi.id AND incidents.version = vi.version
RETURNING incidents.id, incidents.version`
)

var updateIntakeFields = &bulk{cols: intakeKinds, text: "WITH " + intakeRows + "\n" + updateIntake}

// writeIntake is updateIntakeFields, appendEvents and enqueueOutboxes in
// one statement, for PostgreSQL, whose CTEs may write.
var writeIntake = &bulk{cols: intakeKinds, more: []string{eventKinds, outboxKinds},
	text: "WITH " + intakeRows + ",\n" + eventRows + ",\n" + outboxRows + ",\n" +
		"e AS (" + insertEvents + "),\no AS (" + insertOutbox + ")\n" + updateIntake}

// intakeArgs appends inc as a row of intakeRows.
func (q *queries) intakeArgs(dst []any, inc *incidents.Incident) []any {
	return append(dst, inc.ID, inc.Version, js(inc.Sessions), js(inc.Links), inc.Severity, q.t(inc.LastAlertAt), inc.PagerDutyKey, inc.Title)
}

// UpdateIntakeFields writes Sessions, Links, Severity, LastAlertAt,
// PagerDutyKey and Title (the unrouted incident's names its agents) of each incident whose stored version is still its Version,
// and reports which.
func (q *queries) UpdateIntakeFields(ctx context.Context, incs []*incidents.Incident) ([]bool, error) {
	written := make([]bool, len(incs))
	for start := 0; start < len(incs); {
		chunk := incs[start:min(len(incs), start+maxBulkRows)]
		n, args := updateIntakeFields.args(len(chunk), func(i int, dst []any) []any { return q.intakeArgs(dst, chunk[i]) })
		if err := q.scanWritten(ctx, q.text(updateIntakeFields, n), args, chunk, written[start:]); err != nil {
			return nil, err
		}
		start += len(chunk)
	}
	return written, nil
}

// WriteIntake ends an intake: UpdateIntakeFields(incs), AppendEvents(events)
// and EnqueueOutbox(items...). On PostgreSQL, when each fits one statement,
// that is one statement: a batch of new alerts pays one round trip for all
// three.
func (q *queries) WriteIntake(ctx context.Context, incs []*incidents.Incident, events []*incidents.Event, items []*outbox.Item) ([]bool, error) {
	if q.s.d != migrations.Postgres || max(len(incs), len(events), len(items)) > maxBulkRows {
		written, err := q.UpdateIntakeFields(ctx, incs)
		if err != nil {
			return nil, err
		}
		if err := q.AppendEvents(ctx, events); err != nil {
			return nil, err
		}
		return written, q.enqueueOutboxes(ctx, items)
	}
	if err := validItems(items); err != nil {
		return nil, err
	}
	n := paddedSize(max(len(incs), len(events), len(items)))
	args := padded(nil, len(intakeKinds), n, len(incs), func(i int, dst []any) []any { return q.intakeArgs(dst, incs[i]) })
	args = padded(args, len(eventKinds), n, len(events), func(i int, dst []any) []any { return q.eventArgs(dst, i, events[i]) })
	args = padded(args, len(outboxKinds), n, len(items), func(i int, dst []any) []any { return q.outboxArgs(dst, i, items[i]) })
	written := make([]bool, len(incs))
	if err := q.scanWritten(ctx, q.text(writeIntake, n), args, incs, written); err != nil {
		return nil, err
	}
	return written, nil
}

// scanWritten runs query, which returns the id and new version of each of
// incs it wrote, and marks them in written.
func (q *queries) scanWritten(ctx context.Context, query string, args []any, incs []*incidents.Incident, written []bool) error {
	index := make(map[int64]int, len(incs))
	for i, inc := range incs {
		index[inc.ID] = i
	}
	err := q.writeRows(ctx, query, args, func(rows *sql.Rows) error {
		var id, version int64
		if err := rows.Scan(&id, &version); err != nil {
			return err
		}
		i, ok := index[id]
		if !ok || written[i] {
			return fmt.Errorf("updated incident #%d, which was not asked for once", id)
		}
		written[i], incs[i].Version = true, version
		return nil
	})
	if err != nil && len(incs) > 0 {
		return insertErr(err, incs[0].ID, "write intake of %d incidents, the first #%d", len(incs), incs[0].ID)
	}
	return err
}

func (q *queries) updateIncident(ctx context.Context, inc *incidents.Incident, cond string, condArgs ...any) (bool, error) {
	var versions []int64
	args := []any{inc.Agent, inc.Unowned, inc.GroupKey, inc.Title,
		inc.Severity, inc.Status, inc.Source, js(inc.Sessions), js(inc.Links), inc.SlackChannelID,
		inc.SlackChannelName, inc.SummaryTS, inc.ChecklistTS, inc.PostmortemTS, inc.PagerDutyKey,
		q.nt(inc.PagedAt), q.nt(inc.AckedAt), inc.AckedBy, q.t(inc.StartedAt), q.t(inc.LastAlertAt),
		q.nt(inc.ResolvedAt), inc.ResolvedBy, inc.ID}
	err := q.write(ctx, false, func(q *queries) error {
		return q.sel(ctx, &versions, updateIncident+cond+" RETURNING version", append(args, condArgs...)...)
	})
	if unique(err) {
		return false, &incidents.Error{Code: incidents.ECONFLICT, Message: fmt.Sprintf(
			"Another open incident already collects alerts for %s; resolve it first.", inc.Agent)}
	} else if err != nil {
		return false, wrap(err, "update incident #%d", inc.ID)
	}
	if len(versions) == 0 {
		return false, nil
	}
	inc.Version = versions[0]
	return true, nil
}
