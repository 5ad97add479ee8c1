package incidentstest

import (
	"context"
	"slices"
	"time"

	"github.com/reins-oss/reins/incidents"
)

func (t *tx) CreateHalt(ctx context.Context, h *incidents.Halt) error {
	d, done, err := t.begin("CreateHalt")
	if err != nil {
		return err
	}
	defer done()
	h.ID = d.nextID("halts")
	d.halts = append(d.halts, cloneHalt(*h))
	return nil
}

func (t *tx) UpdateHalt(ctx context.Context, h *incidents.Halt) error {
	d, done, err := t.begin("UpdateHalt")
	if err != nil {
		return err
	}
	defer done()
	for i := range d.halts {
		if d.halts[i].ID == h.ID {
			d.halts[i] = cloneHalt(*h)
			return nil
		}
	}
	return notFound("Halt")
}

func (t *tx) FindHalts(ctx context.Context, agent string, incidentID int64) ([]*incidents.Halt, error) {
	d, done, err := t.begin("FindHalts")
	if err != nil {
		return nil, err
	}
	defer done()
	var out []*incidents.Halt
	for i := len(d.halts) - 1; i >= 0; i-- {
		h := d.halts[i]
		if (agent == "" || h.Agent == agent) && (incidentID == 0 || h.IncidentID == incidentID) {
			c := cloneHalt(h)
			out = append(out, &c)
		}
	}
	return out, nil
}

func (t *tx) SetKillFlag(ctx context.Context, f incidents.KillFlag) error {
	d, done, err := t.begin("SetKillFlag")
	if err != nil {
		return err
	}
	defer done()
	d.flags[[2]string{f.Agent, f.Session}] = f
	return nil
}

func (t *tx) KillFlags(ctx context.Context) ([]incidents.KillFlag, error) {
	d, done, err := t.begin("KillFlags")
	if err != nil {
		return nil, err
	}
	defer done()
	var out []incidents.KillFlag
	for _, f := range d.flags {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b incidents.KillFlag) int {
		if a.Agent != b.Agent {
			return compare(a.Agent, b.Agent)
		}
		return compare(a.Session, b.Session)
	})
	return out, nil
}

func (t *tx) AppendAudit(ctx context.Context, e *incidents.AuditEntry) error {
	d, done, err := t.begin("AppendAudit")
	if err != nil {
		return err
	}
	defer done()
	e.ID = d.nextID("audit")
	d.audit = append(d.audit, *e)
	return nil
}

func (t *tx) FindAudit(ctx context.Context, agent string, limit int) ([]*incidents.AuditEntry, error) {
	d, done, err := t.begin("FindAudit")
	if err != nil {
		return nil, err
	}
	defer done()
	var out []*incidents.AuditEntry
	for i := len(d.audit) - 1; i >= 0 && (limit <= 0 || len(out) < limit); i-- {
		if agent == "" || d.audit[i].Agent == agent {
			c := d.audit[i]
			out = append(out, &c)
		}
	}
	return out, nil
}

func (t *tx) RecordDrill(ctx context.Context, r *incidents.DrillResult) error {
	d, done, err := t.begin("RecordDrill")
	if err != nil {
		return err
	}
	defer done()
	r.ID = d.nextID("drills")
	d.drills = append(d.drills, *r)
	return nil
}

func (t *tx) LastDrills(ctx context.Context) (map[string]*incidents.DrillResult, error) {
	d, done, err := t.begin("LastDrills")
	if err != nil {
		return nil, err
	}
	defer done()
	out := map[string]*incidents.DrillResult{}
	for _, r := range d.drills {
		if cur, ok := out[r.Agent]; !ok || !r.At.Before(cur.At) {
			c := r
			out[r.Agent] = &c
		}
	}
	return out, nil
}

func (t *tx) Remember(ctx context.Context, key string, at time.Time) (bool, error) {
	d, done, err := t.begin("Remember")
	if err != nil {
		return false, err
	}
	defer done()
	if _, ok := d.remembered[key]; ok {
		return false, nil
	}
	d.remembered[key] = at
	return true, nil
}

func (t *tx) PruneIdempotencyKeys(ctx context.Context, before time.Time) (int64, error) {
	d, done, err := t.begin("PruneIdempotencyKeys")
	if err != nil {
		return 0, err
	}
	defer done()
	var n int64
	for k, at := range d.remembered {
		if at.Before(before) {
			delete(d.remembered, k)
			n++
		}
	}
	return n, nil
}

func cloneHalt(h incidents.Halt) incidents.Halt {
	h.Sessions = slices.Clone(h.Sessions)
	h.Allow = slices.Clone(h.Allow)
	h.FinishedAt = cloneTime(h.FinishedAt)
	h.ProbationUntil = cloneTime(h.ProbationUntil)
	return h
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (t *tx) AddResumeApproval(ctx context.Context, a *incidents.ResumeApproval) (bool, error) {
	d, done, err := t.begin("AddResumeApproval")
	if err != nil {
		return false, err
	}
	defer done()
	for _, x := range d.approvals {
		if x.HaltID == a.HaltID && x.Target == a.Target && x.Actor.ID == a.Actor.ID && x.Actor.Kind == a.Actor.Kind {
			return false, nil
		}
	}
	a.ID = d.nextID("resume_approvals")
	d.approvals = append(d.approvals, approval{ResumeApproval: *a})
	return true, nil
}

func (t *tx) ResumeApprovals(ctx context.Context, haltID int64, target string) ([]incidents.ResumeApproval, error) {
	d, done, err := t.begin("ResumeApprovals")
	if err != nil {
		return nil, err
	}
	defer done()
	var out []incidents.ResumeApproval
	for _, x := range d.approvals {
		if x.HaltID == haltID && x.Target == target && x.resumedBy == 0 {
			out = append(out, x.ResumeApproval)
		}
	}
	return out, nil
}

func (t *tx) UseResumeApprovals(ctx context.Context, haltID int64, target string, resumedBy int64) error {
	d, done, err := t.begin("UseResumeApprovals")
	if err != nil {
		return err
	}
	defer done()
	for i := range d.approvals {
		if d.approvals[i].HaltID == haltID && d.approvals[i].Target == target && d.approvals[i].resumedBy == 0 {
			d.approvals[i].resumedBy = resumedBy
		}
	}
	return nil
}

// approval is a stored resume approval with the resume that used it.
type approval struct {
	incidents.ResumeApproval
	resumedBy int64
}
