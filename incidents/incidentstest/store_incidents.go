package incidentstest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
)

func notFound(what string) error { return incidents.Errorf(incidents.ENOTFOUND, "%s not found.", what) }

func (t *tx) OpenIncident(ctx context.Context, inc *incidents.Incident) (bool, error) {
	d, done, err := t.begin("OpenIncident")
	if err != nil {
		return false, err
	}
	defer done()
	if cur, ok := d.groupingIncident(inc.Agent, inc.GroupKey); ok {
		*inc = cloneIncident(cur)
		return false, nil
	}
	return d.insertIncident(inc), nil
}

func (t *tx) InsertIncidents(ctx context.Context, incs []*incidents.Incident) ([]bool, error) {
	d, done, err := t.begin("InsertIncidents")
	if err != nil {
		return nil, err
	}
	defer done()
	created := make([]bool, len(incs))
	for i, inc := range incs {
		if _, ok := d.groupingIncident(inc.Agent, inc.GroupKey); !ok {
			created[i] = d.insertIncident(inc)
		}
	}
	return created, nil
}

// groupingIncident returns the open incident collecting alerts for agent and key.
func (d *data) groupingIncident(agent, key string) (incidents.Incident, bool) {
	for id, cur := range d.incidents {
		if d.grouping[id] && cur.Agent == agent && cur.GroupKey == key && cur.Status == incidents.StatusOpen {
			return cur, true
		}
	}
	return incidents.Incident{}, false
}

func (d *data) insertIncident(inc *incidents.Incident) bool {
	inc.ID = d.nextID("incidents")
	if inc.Status == "" {
		inc.Status = incidents.StatusOpen
	}
	inc.Version = 1
	d.incidents[inc.ID] = cloneIncident(*inc)
	d.grouping[inc.ID] = true
	return true
}

func (t *tx) StopGrouping(ctx context.Context, id int64) error {
	d, done, err := t.begin("StopGrouping")
	if err != nil {
		return err
	}
	defer done()
	if _, ok := d.incidents[id]; !ok {
		return notFound("Incident")
	}
	d.grouping[id] = false
	return nil
}

func (t *tx) FindIncident(ctx context.Context, id int64) (*incidents.Incident, error) {
	d, done, err := t.begin("FindIncident")
	if err != nil {
		return nil, err
	}
	defer done()
	inc, ok := d.incidents[id]
	if !ok {
		return nil, notFound("Incident")
	}
	c := cloneIncident(inc)
	return &c, nil
}

func (t *tx) findIncidentBy(method string, match func(incidents.Incident) bool) (*incidents.Incident, error) {
	d, done, err := t.begin(method)
	if err != nil {
		return nil, err
	}
	defer done()
	for _, inc := range d.incidents {
		if match(inc) {
			c := cloneIncident(inc)
			return &c, nil
		}
	}
	return nil, notFound("Incident")
}

func (t *tx) FindIncidentByChannel(ctx context.Context, channelID string) (*incidents.Incident, error) {
	return t.findIncidentBy("FindIncidentByChannel", func(i incidents.Incident) bool {
		return channelID != "" && i.SlackChannelID == channelID
	})
}

func (t *tx) FindIncidentByPagerKey(ctx context.Context, dedupKey string) (*incidents.Incident, error) {
	return t.findIncidentBy("FindIncidentByPagerKey", func(i incidents.Incident) bool {
		return dedupKey != "" && i.PagerDutyKey == dedupKey
	})
}

func (t *tx) FindIncidents(ctx context.Context, f incidents.IncidentFilter) ([]*incidents.Incident, error) {
	d, done, err := t.begin("FindIncidents")
	if err != nil {
		return nil, err
	}
	defer done()
	var out []*incidents.Incident
	for _, inc := range d.incidents {
		if (f.Agent == "" || inc.Agent == f.Agent) && (f.Status == "" || inc.Status == f.Status) {
			c := cloneIncident(inc)
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *incidents.Incident) int { return int(b.ID - a.ID) })
	limit := f.Limit
	if limit == 0 {
		limit = 100
	}
	if f.Offset >= len(out) {
		return nil, nil
	}
	out = out[f.Offset:]
	return out[:min(limit, len(out))], nil
}

func (t *tx) FindGroupingIncidents(ctx context.Context, agents []string) ([]*incidents.Incident, error) {
	d, done, err := t.begin("FindGroupingIncidents")
	if err != nil {
		return nil, err
	}
	defer done()
	var out []*incidents.Incident
	for id, inc := range d.incidents {
		if d.grouping[id] && inc.GroupKey == "" && inc.Status == incidents.StatusOpen && slices.Contains(agents, inc.Agent) {
			c := cloneIncident(inc)
			out = append(out, &c)
		}
	}
	return out, nil
}

// UpdateIncident checks Version like an optimistic UPDATE … WHERE version = $n:
// a stale copy gets ECONFLICT.
func (t *tx) UpdateIncident(ctx context.Context, inc *incidents.Incident) error {
	d, done, err := t.begin("UpdateIncident")
	if err != nil {
		return err
	}
	defer done()
	cur, ok := d.incidents[inc.ID]
	if !ok {
		return notFound("Incident")
	}
	if cur.Version != inc.Version {
		return incidents.Errorf(incidents.ECONFLICT, "Incident #%d changed meanwhile.", inc.ID)
	}
	inc.Version++
	d.incidents[inc.ID] = cloneIncident(*inc)
	if inc.Status != incidents.StatusOpen {
		d.grouping[inc.ID] = false
	}
	return nil
}

// WriteIntake writes the fields intake changes of each incident whose
// Version still matches, then the events and outbox items; see
// incidents.Queries.
func (t *tx) WriteIntake(ctx context.Context, incs []*incidents.Incident, events []*incidents.Event, items []*outbox.Item) ([]bool, error) {
	d, done, err := t.begin("WriteIntake")
	if err != nil {
		return nil, err
	}
	defer done()
	written := make([]bool, len(incs))
	for i, inc := range incs {
		cur, ok := d.incidents[inc.ID]
		if !ok || cur.Version != inc.Version {
			continue
		}
		cur.Sessions, cur.Links = slices.Clone(inc.Sessions), slices.Clone(inc.Links)
		cur.Severity, cur.LastAlertAt, cur.PagerDutyKey, cur.Title = inc.Severity, inc.LastAlertAt, inc.PagerDutyKey, inc.Title
		cur.Version++
		inc.Version = cur.Version
		d.incidents[inc.ID] = cur
		written[i] = true
	}
	for _, e := range events {
		d.appendEvent(*e)
	}
	t.s.calls[OutboxRows] += len(items)
	for _, item := range items {
		c := *item
		d.enqueue(&c)
	}
	return written, nil
}

func (d *data) recordAlert(a *incidents.Alert) string {
	for i, cur := range d.alerts {
		if cur.IncidentID == a.IncidentID && cur.Fingerprint == a.Fingerprint {
			prev := cur.Status
			cur.Status, cur.Summary, cur.EndsAt, cur.ReceivedAt = a.Status, a.Summary, a.EndsAt, a.ReceivedAt
			if !a.StartsAt.IsZero() {
				cur.StartsAt = a.StartsAt
			}
			cur.Count++
			d.alerts[i] = cloneAlert(cur)
			a.ID, a.Count = cur.ID, cur.Count
			return prev
		}
	}
	a.ID = d.nextID("alerts")
	a.Count = 1
	d.alerts = append(d.alerts, cloneAlert(*a))
	return ""
}

// RecordAlerts records each alert in turn; see incidents.AlertStore.
func (t *tx) RecordAlerts(ctx context.Context, alerts []*incidents.Alert) ([]string, error) {
	d, done, err := t.begin("RecordAlerts")
	if err != nil {
		return nil, err
	}
	defer done()
	prev := make([]string, len(alerts))
	for i, a := range alerts {
		prev[i] = d.recordAlert(a)
	}
	return prev, nil
}

// RecordRepeats is RecordAlerts for pure repeats in their agents' open,
// grouping incidents last alerted at or after FreshSince; see
// incidents.Queries.
func (t *tx) RecordRepeats(ctx context.Context, reps []incidents.Repeat) ([]bool, error) {
	d, done, err := t.begin("RecordRepeats")
	if err != nil {
		return nil, err
	}
	defer done()
	seen := map[[2]string]bool{}
	ok := make([]bool, len(reps))
	for k, r := range reps {
		key := [2]string{r.Alert.Agent, r.Alert.Fingerprint}
		if seen[key] {
			return nil, fmt.Errorf("record repeats: alert %q for %q given twice", key[1], key[0])
		}
		seen[key] = true
		ok[k] = d.recordRepeat(r.Alert, r.FreshSince)
	}
	return ok, nil
}

func (d *data) recordRepeat(a *incidents.Alert, freshSince time.Time) bool {
	var incID int64
	for id, cur := range d.incidents {
		if d.grouping[id] && cur.Agent == a.Agent && cur.GroupKey == "" && cur.Status == incidents.StatusOpen &&
			!cur.LastAlertAt.Before(freshSince) {
			incID = id
		}
	}
	if incID == 0 {
		return false
	}
	for i, cur := range d.alerts {
		if cur.IncidentID != incID || cur.Fingerprint != a.Fingerprint {
			continue
		}
		if cur.Status != a.Status || cur.Title != a.Title || cur.Summary != a.Summary || cur.Severity != a.Severity ||
			!slices.Equal(cur.Sessions, a.Sessions) || !slices.Equal(cur.Links, a.Links) {
			return false
		}
		cur.EndsAt, cur.ReceivedAt = a.EndsAt, a.ReceivedAt
		cur.Labels, cur.Annotations, cur.Details = a.Labels, a.Annotations, a.Details
		if !a.StartsAt.IsZero() {
			cur.StartsAt = a.StartsAt
		}
		cur.Count++
		d.alerts[i] = cloneAlert(cur)
		a.ID, a.IncidentID, a.Count = cur.ID, incID, cur.Count
		return true
	}
	return false
}

func (t *tx) FindAlerts(ctx context.Context, incidentID int64) ([]*incidents.Alert, error) {
	d, done, err := t.begin("FindAlerts")
	if err != nil {
		return nil, err
	}
	defer done()
	var out []*incidents.Alert
	for _, a := range d.alerts {
		if a.IncidentID == incidentID {
			c := cloneAlert(a)
			out = append(out, &c)
		}
	}
	return out, nil
}

func (t *tx) AppendEvent(ctx context.Context, e *incidents.Event) error {
	d, done, err := t.begin("AppendEvent")
	if err != nil {
		return err
	}
	defer done()
	e.ID = d.appendEvent(*e)
	return nil
}

func (d *data) appendEvent(e incidents.Event) int64 {
	e.ID = d.nextID("events")
	e.Data = slices.Clone(e.Data)
	d.events = append(d.events, e)
	return e.ID
}

func (t *tx) FindEvents(ctx context.Context, incidentID int64) ([]*incidents.Event, error) {
	d, done, err := t.begin("FindEvents")
	if err != nil {
		return nil, err
	}
	defer done()
	var out []*incidents.Event
	for _, e := range d.events {
		if e.IncidentID == incidentID {
			c := e
			c.Data = slices.Clone(e.Data)
			out = append(out, &c)
		}
	}
	slices.SortStableFunc(out, func(a, b *incidents.Event) int { return a.At.Compare(b.At) })
	return out, nil
}

func cloneIncident(i incidents.Incident) incidents.Incident {
	i.Sessions = slices.Clone(i.Sessions)
	i.Links = slices.Clone(i.Links)
	i.PagedAt = cloneTime(i.PagedAt)
	i.AckedAt = cloneTime(i.AckedAt)
	i.ResolvedAt = cloneTime(i.ResolvedAt)
	return i
}

func cloneAlert(a incidents.Alert) incidents.Alert {
	a.Sessions = slices.Clone(a.Sessions)
	a.Links = slices.Clone(a.Links)
	if a.Labels != nil {
		a.Labels = mapsClone(a.Labels)
	}
	if a.Annotations != nil {
		a.Annotations = mapsClone(a.Annotations)
	}
	a.Details = slices.Clone(a.Details)
	a.EndsAt = cloneTime(a.EndsAt)
	return a
}

func mapsClone(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}
