package incidents

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// batch is what the intakes sharing one transaction share: the open
// incident per agent as the calls so far left it, and the alert rows and
// timeline events they decided on but have not written yet. Deferring those
// writes to the end of the batch turns a round trip per alert into a few
// per batch, which is most of what a storm of new alerts costs on
// PostgreSQL.
type batch struct {
	open   map[string]*Incident
	absent map[string]bool // agents the prefetch found no open incident for
	alerts []pendingAlert
	events []*Event
	outbox []*OutboxItem
}

// pendingAlert is a firing alert an intake merged into its incident and
// has yet to record.
type pendingAlert struct {
	in *intake
	a  *Alert
}

func newBatch() *batch { return &batch{open: map[string]*Incident{}, absent: map[string]bool{}} }

// prefetch loads, in one query, the open incidents of the agents the calls'
// alerts may open or join, so that each call does not look its agent's up
// on its own, and an agent found without one gets its incident inserted
// without a second look. Alerts already recorded as pure repeats and
// recoveries (which look up the incident holding their fingerprint) need
// none.
func (b *batch) prefetch(ctx context.Context, q Queries, calls []*ingestCall) error {
	var names []string
	for _, c := range calls {
		for i := range c.alerts {
			a := &c.alerts[i]
			if (c.repeats != nil && c.repeats[i] != 0) || a.Status == AlertResolved {
				continue
			}
			if _, name := agentOf(c.reg, a.Agent); !slices.Contains(names, name) {
				names = append(names, name)
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
	for _, name := range names {
		b.absent[name] = true
	}
	for _, inc := range found {
		b.open[inc.Agent] = inc
		delete(b.absent, inc.Agent)
	}
	return nil
}

// event queues a timeline event for the end of the batch.
func (b *batch) event(incID int64, at time.Time, kind EventKind, text string, data any) {
	b.events = append(b.events, &Event{IncidentID: incID, At: at, Kind: kind, Actor: System, Text: text, Data: jsonData(data)})
}

// writeAlerts records the pending alerts in one RecordAlerts, then counts
// each and queues its alert_fired event as recording it on its own would
// have. A recovery calls it first, so that alerts are recorded in the order
// they came whatever path each takes.
func (b *batch) writeAlerts(ctx context.Context, q Queries) error {
	if len(b.alerts) == 0 {
		return nil
	}
	list := make([]*Alert, len(b.alerts))
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
		if prev[i] == AlertFiring {
			continue
		}
		text := "Alert fired: " + a.Title
		if prev[i] == AlertResolved {
			text = "Alert fired again: " + a.Title
		}
		b.event(a.IncidentID, in.now, EventAlertFired, text, alertData(a))
		in.changed[a.IncidentID] = true
	}
	b.alerts = b.alerts[:0]
	return nil
}

// writeRest writes the events and outbox rows the batch's intakes queued.
func (b *batch) writeRest(ctx context.Context, q Queries) error {
	if len(b.events) > 0 {
		if err := q.AppendEvents(ctx, b.events); err != nil {
			return fmt.Errorf("append %d events: %w", len(b.events), err)
		}
		b.events = b.events[:0]
	}
	if len(b.outbox) > 0 {
		if err := q.EnqueueOutboxes(ctx, b.outbox); err != nil {
			return fmt.Errorf("queue %d outbox items: %w", len(b.outbox), err)
		}
		b.outbox = b.outbox[:0]
	}
	return nil
}
