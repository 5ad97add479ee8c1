package intake

import (
	"context"
	"fmt"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/ownership"
)

// batch is what the intakes sharing one transaction share: the open
// incident per agent as the calls so far left it, and the alert rows and
// timeline events they decided on but have not written yet. Deferring those
// writes to the end of the batch turns a round trip per alert into a few
// per batch, which is most of what a storm of new alerts costs on
// PostgreSQL.
type batch struct {
	open map[string]*incidents.Incident
	// opened holds the agents whose incident the batch opened and no call
	// has claimed yet: the first to use it records the opening.
	opened map[string]bool
	alerts []pendingAlert
	events []*incidents.Event
	outbox []*outbox.Item
}

// pendingAlert is a firing alert an intake merged into its incident and
// has yet to record.
type pendingAlert struct {
	in *intake
	a  *incidents.Alert
}

func newBatch() *batch {
	return &batch{open: map[string]*incidents.Incident{}, opened: map[string]bool{}}
}

// prefetch loads, in one query, the open incidents of the agents the calls'
// alerts may open or join, so that each call does not look its agent's up
// on its own, and opens, in one more, those of the agents that have none,
// each from the agent's first alert. Alerts already recorded as pure
// repeats and recoveries (which look up the incident holding their
// fingerprint, and never open one) need none.
func (b *batch) prefetch(ctx context.Context, q incidents.IncidentStore, calls []*ingestCall, now time.Time) error {
	type opener struct {
		ag *ownership.Agent
		a  *incidents.Alert
	}
	var names []string
	first := map[string]opener{} // each agent's first alert
	for _, c := range calls {
		for i := range c.alerts {
			a := &c.alerts[i]
			if (c.repeats != nil && c.repeats[i] != 0) || a.Status == incidents.AlertResolved {
				continue
			}
			if ag, name := agentOf(c.reg, a); first[name].a == nil {
				names = append(names, name)
				first[name] = opener{ag, a}
			}
		}
	}
	if len(names) == 0 {
		return nil
	}
	found, err := q.FindGroupingIncidents(ctx, names)
	if err != nil {
		return err
	}
	for _, inc := range found {
		b.open[inc.Agent] = inc
	}
	var missing []*incidents.Incident
	for _, name := range names {
		if o := first[name]; b.open[name] == nil {
			normaliseAlert(o.a, now)
			missing = append(missing, newIncident(name, o.ag, o.a, now))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	// Another writer may have opened one meanwhile: its agent's first call
	// then finds it as OpenIncident does.
	created, err := q.InsertIncidents(ctx, missing)
	if err != nil {
		return err
	}
	for i, inc := range missing {
		if created[i] {
			b.open[inc.Agent] = inc
			b.opened[inc.Agent] = true
		}
	}
	return nil
}

// event queues a timeline event for the end of the batch.
func (b *batch) event(incID int64, at time.Time, kind incidents.EventKind, text string, data any) {
	b.events = append(b.events, incidents.NewEvent(incID, at, kind, incidents.System, text, data))
}

// writeAlerts records the pending alerts in one RecordAlerts, then counts
// each and queues its alert_fired event as recording it on its own would
// have. A recovery calls it first, so that alerts are recorded in the order
// they came whatever path each takes.
func (b *batch) writeAlerts(ctx context.Context, q incidents.AlertStore) error {
	if len(b.alerts) == 0 {
		return nil
	}
	list := make([]*incidents.Alert, len(b.alerts))
	for i, p := range b.alerts {
		list[i] = p.a
	}
	prev, err := q.RecordAlerts(ctx, list)
	if err != nil {
		return fmt.Errorf("record %d alerts: %w", len(list), err)
	}
	for i, p := range b.alerts {
		a, in := p.a, p.in
		in.count(prev[i], a.Status)
		if prev[i] == incidents.AlertFiring {
			continue
		}
		text := "Alert fired: " + a.Title
		if prev[i] == incidents.AlertResolved {
			text = "Alert fired again: " + a.Title
		}
		b.event(a.IncidentID, in.now, incidents.EventAlertFired, text, alertData(a))
		in.changed[a.IncidentID] = true
	}
	b.alerts = b.alerts[:0]
	return nil
}
