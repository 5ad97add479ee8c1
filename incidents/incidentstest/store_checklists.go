package incidentstest

import (
	"context"
	"slices"

	"github.com/reins-oss/reins/incidents"
)

func (t *tx) CreateChecklist(ctx context.Context, c *incidents.Checklist) error {
	d, done, err := t.begin("CreateChecklist")
	if err != nil {
		return err
	}
	defer done()
	if _, ok := d.checklists[c.IncidentID]; ok {
		return incidents.Errorf(incidents.ECONFLICT, "Incident #%d already has a checklist.", c.IncidentID)
	}
	d.checklists[c.IncidentID] = cloneChecklist(*c)
	return nil
}

func (t *tx) FindChecklist(ctx context.Context, incidentID int64) (*incidents.Checklist, error) {
	d, done, err := t.begin("FindChecklist")
	if err != nil {
		return nil, err
	}
	defer done()
	c, ok := d.checklists[incidentID]
	if !ok {
		return nil, notFound("Checklist")
	}
	out := cloneChecklist(c)
	return &out, nil
}

func (t *tx) UpdateChecklist(ctx context.Context, c *incidents.Checklist) error {
	d, done, err := t.begin("UpdateChecklist")
	if err != nil {
		return err
	}
	defer done()
	if _, ok := d.checklists[c.IncidentID]; !ok {
		return notFound("Checklist")
	}
	d.checklists[c.IncidentID] = cloneChecklist(*c)
	return nil
}

func (t *tx) FindUnfinishedChecklists(ctx context.Context) ([]*incidents.Checklist, error) {
	d, done, err := t.begin("FindUnfinishedChecklists")
	if err != nil {
		return nil, err
	}
	defer done()
	var out []*incidents.Checklist
	for id, c := range d.checklists {
		if d.incidents[id].Status != incidents.StatusOpen || c.Next() == nil {
			continue
		}
		cc := cloneChecklist(c)
		out = append(out, &cc)
	}
	slices.SortFunc(out, func(a, b *incidents.Checklist) int { return int(a.IncidentID - b.IncidentID) })
	return out, nil
}

func (t *tx) SavePostmortemAnswer(ctx context.Context, a *incidents.PostmortemAnswer) error {
	d, done, err := t.begin("SavePostmortemAnswer")
	if err != nil {
		return err
	}
	defer done()
	for i := range d.answers {
		if d.answers[i].IncidentID == a.IncidentID && d.answers[i].Key == a.Key {
			d.answers[i] = *a
			return nil
		}
	}
	d.answers = append(d.answers, *a)
	return nil
}

func (t *tx) FindPostmortemAnswers(ctx context.Context, incidentID int64) ([]*incidents.PostmortemAnswer, error) {
	d, done, err := t.begin("FindPostmortemAnswers")
	if err != nil {
		return nil, err
	}
	defer done()
	var out []*incidents.PostmortemAnswer
	for _, a := range d.answers {
		if a.IncidentID == incidentID {
			c := a
			out = append(out, &c)
		}
	}
	return out, nil
}

func (t *tx) SavePostmortemDoc(ctx context.Context, doc *incidents.PostmortemDoc) error {
	d, done, err := t.begin("SavePostmortemDoc")
	if err != nil {
		return err
	}
	defer done()
	c := *doc
	c.LastRemindedAt = cloneTime(doc.LastRemindedAt)
	d.docs[doc.IncidentID] = c
	return nil
}

func (t *tx) FindPostmortemDoc(ctx context.Context, incidentID int64) (*incidents.PostmortemDoc, error) {
	d, done, err := t.begin("FindPostmortemDoc")
	if err != nil {
		return nil, err
	}
	defer done()
	doc, ok := d.docs[incidentID]
	if !ok {
		return nil, notFound("Postmortem")
	}
	doc.LastRemindedAt = cloneTime(doc.LastRemindedAt)
	return &doc, nil
}

func cloneChecklist(c incidents.Checklist) incidents.Checklist {
	c.LastNudgedAt = cloneTime(c.LastNudgedAt)
	c.SnoozedUntil = cloneTime(c.SnoozedUntil)
	items := make([]*incidents.ChecklistItem, len(c.Items))
	for i, it := range c.Items {
		ci := *it
		ci.AnsweredAt = cloneTime(it.AnsweredAt)
		if it.AnsweredBy != nil {
			a := *it.AnsweredBy
			ci.AnsweredBy = &a
		}
		items[i] = &ci
	}
	c.Items = items
	return c
}
