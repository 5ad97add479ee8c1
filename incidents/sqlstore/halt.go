package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/reins-oss/reins/incidents"
)

// CreateHalt records h and sets h.ID.
func (q *queries) CreateHalt(ctx context.Context, h *incidents.Halt) error {
	h.RequestedAt = orNow(h.RequestedAt)
	var ids []int64
	err := q.write(ctx, false, func(q *queries) error {
		return q.sel(ctx, &ids, `INSERT INTO halts (incident_id, agent, action, sessions, allow, rate, probation_until,
			reason, actor, adapter, status, attempts, error, requested_at, finished_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			RETURNING id`,
			h.IncidentID, h.Agent, h.Action, js(h.Sessions), js(h.Allow), h.Rate, q.nt(h.ProbationUntil),
			h.Reason, actorJSON(h.Actor), h.Adapter,
			h.Status, h.Attempts, h.Error, q.t(h.RequestedAt), q.nt(h.FinishedAt))
	})
	if err != nil {
		return wrap(err, "record %s of %s", h.Action, h.Agent)
	}
	h.ID = ids[0]
	return nil
}

// UpdateHalt writes the outcome of h: adapter, status, attempts, error, finish.
func (q *queries) UpdateHalt(ctx context.Context, h *incidents.Halt) error {
	return q.write(ctx, false, func(q *queries) error {
		res, err := q.exec(ctx, `UPDATE halts SET adapter = ?, status = ?, attempts = ?, error = ?, finished_at = ?
			WHERE id = ?`, h.Adapter, h.Status, h.Attempts, h.Error, q.nt(h.FinishedAt), h.ID)
		if err != nil {
			return wrap(err, "update halt %d", h.ID)
		}
		return mustAffect(res, fmt.Sprintf("halt %d", h.ID))
	})
}

type haltRow struct {
	ID          int64  `db:"id"`
	IncidentID  int64  `db:"incident_id"`
	Agent       string `db:"agent"`
	Action      string `db:"action"`
	Sessions    string `db:"sessions"`
	Allow       string `db:"allow"`
	Rate        int    `db:"rate"`
	Probation   dbTime `db:"probation_until"`
	Reason      string `db:"reason"`
	Actor       string `db:"actor"`
	Adapter     string `db:"adapter"`
	Status      string `db:"status"`
	Attempts    int    `db:"attempts"`
	Error       string `db:"error"`
	RequestedAt dbTime `db:"requested_at"`
	FinishedAt  dbTime `db:"finished_at"`
}

// FindHalts returns halts, newest first; agent "" and incidentID 0 match all.
func (q *queries) FindHalts(ctx context.Context, agent string, incidentID int64) ([]*incidents.Halt, error) {
	where, args := []string{"1 = 1"}, []any{}
	if agent != "" {
		where, args = append(where, "agent = ?"), append(args, agent)
	}
	if incidentID != 0 {
		where, args = append(where, "incident_id = ?"), append(args, incidentID)
	}
	var rows []haltRow
	err := q.sel(ctx, &rows, `SELECT id, incident_id, agent, action, sessions, allow, rate, probation_until, reason, actor, adapter, status,
		attempts, error, requested_at, finished_at FROM halts WHERE `+strings.Join(where, " AND ")+`
		ORDER BY requested_at DESC, id DESC`, args...)
	if err != nil {
		return nil, wrap(err, "find halts of %q", agent)
	}
	out := make([]*incidents.Halt, len(rows))
	for i, r := range rows {
		h := &incidents.Halt{ID: r.ID, IncidentID: r.IncidentID, Agent: r.Agent, Action: r.Action, Reason: r.Reason,
			Adapter: r.Adapter, Status: r.Status, Attempts: r.Attempts, Error: r.Error,
			RequestedAt: r.RequestedAt.T, FinishedAt: r.FinishedAt.ptr(), Rate: r.Rate, ProbationUntil: r.Probation.ptr()}
		if err := unjs(r.Sessions, &h.Sessions, "halt sessions"); err != nil {
			return nil, err
		}
		if err := unjs(r.Allow, &h.Allow, "halt allow-list"); err != nil {
			return nil, err
		}
		if h.Actor, err = unactor(r.Actor, "halt actor"); err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// SetKillFlag upserts the flag for (f.Agent, f.Session).
func (q *queries) SetKillFlag(ctx context.Context, f incidents.KillFlag) error {
	f.UpdatedAt = orNow(f.UpdatedAt)
	return q.write(ctx, false, func(q *queries) error {
		c := f.Containment()
		_, err := q.exec(ctx, `INSERT INTO kill_flags (agent, session, halted, mode, allow, rate, reason, actor, incident_id, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (agent, session) DO UPDATE SET halted = excluded.halted, mode = excluded.mode,
				allow = excluded.allow, rate = excluded.rate, reason = excluded.reason,
				actor = excluded.actor, incident_id = excluded.incident_id, updated_at = excluded.updated_at`,
			f.Agent, f.Session, c.Mode == incidents.ModeHalted, c.Mode, js(c.Allow), c.Rate, f.Reason, actorJSON(f.Actor),
			f.IncidentID, q.t(f.UpdatedAt))
		if err != nil {
			return wrap(err, "set kill flag of %s", f.Agent)
		}
		return nil
	})
}

// KillFlags returns every flag, by agent then session ("" first).
func (q *queries) KillFlags(ctx context.Context) ([]incidents.KillFlag, error) {
	var rows []struct {
		Agent      string `db:"agent"`
		Session    string `db:"session"`
		Halted     bool   `db:"halted"`
		Mode       string `db:"mode"`
		Allow      string `db:"allow"`
		Rate       int    `db:"rate"`
		Reason     string `db:"reason"`
		Actor      string `db:"actor"`
		IncidentID int64  `db:"incident_id"`
		UpdatedAt  dbTime `db:"updated_at"`
	}
	err := q.sel(ctx, &rows, `SELECT agent, session, halted, mode, allow, rate, reason, actor, incident_id, updated_at
		FROM kill_flags ORDER BY agent, session`)
	if err != nil {
		return nil, wrap(err, "read kill flags")
	}
	out := make([]incidents.KillFlag, len(rows))
	for i, r := range rows {
		actor, err := unactor(r.Actor, "kill flag actor")
		if err != nil {
			return nil, err
		}
		out[i] = incidents.KillFlag{Agent: r.Agent, Session: r.Session, Halted: r.Halted, Mode: r.Mode, Rate: r.Rate,
			Reason: r.Reason, Actor: actor, IncidentID: r.IncidentID, UpdatedAt: r.UpdatedAt.T}
		if err := unjs(r.Allow, &out[i].Allow, "kill flag allow-list"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AppendAudit records e and sets e.ID.
func (q *queries) AppendAudit(ctx context.Context, e *incidents.AuditEntry) error {
	e.At = orNow(e.At)
	var ids []int64
	err := q.write(ctx, false, func(q *queries) error {
		return q.sel(ctx, &ids, `INSERT INTO audit_log (at, actor, action, agent, allowed, detail)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			q.t(e.At), actorJSON(e.Actor), e.Action, e.Agent, e.Allowed, e.Detail)
	})
	if err != nil {
		return wrap(err, "audit %s of %s", e.Action, e.Agent)
	}
	e.ID = ids[0]
	return nil
}

// FindAudit returns up to limit entries (0: 100), newest first; agent ""
// means all.
func (q *queries) FindAudit(ctx context.Context, agent string, limit int) ([]*incidents.AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	where, args := "", []any{}
	if agent != "" {
		where, args = "WHERE agent = ?", append(args, agent)
	}
	var rows []struct {
		ID      int64  `db:"id"`
		At      dbTime `db:"at"`
		Actor   string `db:"actor"`
		Action  string `db:"action"`
		Agent   string `db:"agent"`
		Allowed bool   `db:"allowed"`
		Detail  string `db:"detail"`
	}
	err := q.sel(ctx, &rows, `SELECT id, at, actor, action, agent, allowed, detail FROM audit_log `+where+`
		ORDER BY at DESC, id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, wrap(err, "read audit log")
	}
	out := make([]*incidents.AuditEntry, len(rows))
	for i, r := range rows {
		actor, err := unactor(r.Actor, "audit actor")
		if err != nil {
			return nil, err
		}
		out[i] = &incidents.AuditEntry{ID: r.ID, At: r.At.T, Actor: actor, Action: r.Action, Agent: r.Agent,
			Allowed: r.Allowed, Detail: r.Detail}
	}
	return out, nil
}

// RecordDrill records d and sets d.ID.
func (q *queries) RecordDrill(ctx context.Context, d *incidents.DrillResult) error {
	d.At = orNow(d.At)
	var ids []int64
	err := q.write(ctx, false, func(q *queries) error {
		return q.sel(ctx, &ids, `INSERT INTO drills (agent, adapter, at, ok, error, actor)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			d.Agent, d.Adapter, q.t(d.At), d.OK, d.Error, actorJSON(d.Actor))
	})
	if err != nil {
		return wrap(err, "record drill of %s", d.Agent)
	}
	d.ID = ids[0]
	return nil
}

// LastDrills returns the newest drill of each agent.
func (q *queries) LastDrills(ctx context.Context) (map[string]*incidents.DrillResult, error) {
	var rows []struct {
		ID      int64  `db:"id"`
		Agent   string `db:"agent"`
		Adapter string `db:"adapter"`
		At      dbTime `db:"at"`
		OK      bool   `db:"ok"`
		Error   string `db:"error"`
		Actor   string `db:"actor"`
	}
	err := q.sel(ctx, &rows, `SELECT d.id, d.agent, d.adapter, d.at, d.ok, d.error, d.actor FROM drills d
		WHERE NOT EXISTS (SELECT 1 FROM drills n WHERE n.agent = d.agent
			AND (n.at > d.at OR (n.at = d.at AND n.id > d.id)))`)
	if err != nil {
		return nil, wrap(err, "read last drills")
	}
	out := make(map[string]*incidents.DrillResult, len(rows))
	for _, r := range rows {
		actor, err := unactor(r.Actor, "drill actor")
		if err != nil {
			return nil, err
		}
		out[r.Agent] = &incidents.DrillResult{ID: r.ID, Agent: r.Agent, Adapter: r.Adapter, At: r.At.T, OK: r.OK,
			Error: r.Error, Actor: actor}
	}
	return out, nil
}

// AddResumeApproval records a unless that person already approved lifting
// the same containment of the same target.
func (q *queries) AddResumeApproval(ctx context.Context, a *incidents.ResumeApproval) (bool, error) {
	a.ApprovedAt = orNow(a.ApprovedAt)
	var ids []int64
	err := q.write(ctx, false, func(q *queries) error {
		return q.sel(ctx, &ids, `INSERT INTO resume_approvals (agent, session, halt_id, actor_id, actor, approved_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (halt_id, session, actor_id) DO NOTHING RETURNING id`,
			a.Agent, a.Target, a.HaltID, approverID(a.Actor), actorJSON(a.Actor), q.t(a.ApprovedAt))
	})
	if err != nil {
		return false, wrap(err, "record resume approval of %s by %s", a.Agent, a.Actor.ID)
	}
	if len(ids) == 0 {
		return false, nil
	}
	a.ID = ids[0]
	return true, nil
}

// approverID tells people apart: the same ID through two channels (Slack,
// the CLI) is two people only if the kinds differ.
func approverID(a incidents.Actor) string { return a.Kind + ":" + a.ID }

// ResumeApprovals returns the unused approvals of lifting haltID of target.
func (q *queries) ResumeApprovals(ctx context.Context, haltID int64, target string) ([]incidents.ResumeApproval, error) {
	var rows []struct {
		ID         int64  `db:"id"`
		Agent      string `db:"agent"`
		Session    string `db:"session"`
		HaltID     int64  `db:"halt_id"`
		Actor      string `db:"actor"`
		ApprovedAt dbTime `db:"approved_at"`
	}
	err := q.sel(ctx, &rows, `SELECT id, agent, session, halt_id, actor, approved_at FROM resume_approvals
		WHERE halt_id = ? AND session = ? AND resumed_by = 0 ORDER BY approved_at, id`, haltID, target)
	if err != nil {
		return nil, wrap(err, "read resume approvals of halt %d", haltID)
	}
	out := make([]incidents.ResumeApproval, len(rows))
	for i, r := range rows {
		actor, err := unactor(r.Actor, "resume approval actor")
		if err != nil {
			return nil, err
		}
		out[i] = incidents.ResumeApproval{ID: r.ID, Agent: r.Agent, Target: r.Session, HaltID: r.HaltID, Actor: actor,
			ApprovedAt: r.ApprovedAt.T}
	}
	return out, nil
}

// UseResumeApprovals marks the unused approvals of haltID of target as used
// by resume resumedBy.
func (q *queries) UseResumeApprovals(ctx context.Context, haltID int64, target string, resumedBy int64) error {
	return q.write(ctx, false, func(q *queries) error {
		_, err := q.exec(ctx, `UPDATE resume_approvals SET resumed_by = ? WHERE halt_id = ? AND session = ? AND resumed_by = 0`,
			resumedBy, haltID, target)
		return wrapErr(err, "use resume approvals of halt %d", haltID)
	})
}
