package intake

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/incidents/words"
	"github.com/reins-oss/reins/ownership"
)

// Limits that keep one incident's row bounded however large the storm.
const (
	maxSessions = 200
	maxLinks    = 20
	// lastAlertStep is how stale LastAlertAt may get before a pure repeat
	// writes it: the group window is hours, so a minute is invisible, and a
	// storm of repeats then costs two statements per alert, not three.
	lastAlertStep = time.Minute
	defaultWindow = 4 * time.Hour
)

// Ingest records a batch of normalised alerts in one transaction: each alert
// joins its agent's open incident (or opens one), and the timeline events and
// outbox rows it causes commit with it. A storm of repeats costs no messages:
// only new alerts and status changes touch the timeline, and summary updates
// are debounced per incident.
//
// A resolved alert that no open incident knows is dropped: a recovery never
// opens an incident.
func (s *Service) Ingest(ctx context.Context, alerts []incidents.Alert) (incidents.IngestResult, error) {
	if slices.ContainsFunc(alerts, func(a incidents.Alert) bool { return a.Test }) {
		return s.ingestWithTests(ctx, alerts)
	}
	reg := s.core.Registry()
	alerts, err := s.route(ctx, reg, alerts)
	if err != nil {
		return incidents.IngestResult{}, err
	}
	in, err := s.ingestGrouped(ctx, reg, alerts)
	if err != nil {
		return incidents.IngestResult{}, err
	}
	for _, inc := range in.opened {
		if kind, _ := incidents.Collector(inc.Agent); kind != "overflow" {
			s.openings.add(inc.Source, s.core.Now())
		}
		s.core.IncidentOpened(inc.ID, inc.Agent, !inc.Unowned, "source", inc.Source, "severity", inc.Severity)
	}
	if in.due {
		// Only work due now is worth waking the workers for: in a storm of
		// repeats a kick per webhook had every worker polling the outbox in
		// vain, competing with intake for the store.
		s.core.Kick()
	}
	return in.res, nil
}

// ingestWithTests ingests a batch holding test alerts: those open their own
// incidents (ingestTests), the others go the usual way.
func (s *Service) ingestWithTests(ctx context.Context, alerts []incidents.Alert) (incidents.IngestResult, error) {
	var tests, real []incidents.Alert
	for _, a := range alerts {
		if a.Test {
			tests = append(tests, a)
		} else {
			real = append(real, a)
		}
	}
	res, err := s.ingestTests(ctx, tests)
	if err != nil || len(real) == 0 {
		return res, err
	}
	more, err := s.Ingest(ctx, real)
	res.Incidents = append(res.Incidents, more.Incidents...)
	res.Opened += more.Opened
	res.New += more.New
	res.Repeated += more.Repeated
	res.Changed += more.Changed
	return res, err
}

// ingestIn records alerts with q, inside a transaction the caller commits
// after flushing the intake (see flushIntakes). b holds the open incidents
// earlier calls in the same transaction left, by agent, and receives this
// call's, with the writes it leaves pending.
// repeats, when not nil, holds per alert the incident the batch's
// RecordRepeats recorded it in as a pure repeat, or 0.
func (s *Service) ingestIn(ctx context.Context, q incidents.Queries, reg *ownership.Registry, now time.Time, alerts []incidents.Alert, repeats []int64, b *batch) (*intake, error) {
	in := &intake{s: s, q: q, reg: reg, now: now, b: b,
		open: map[string]*incidents.Incident{}, byID: map[int64]*incidents.Incident{}, created: map[int64]bool{}, dirty: map[int64]*incidents.Incident{},
		changed: map[int64]bool{}, candidates: map[string][]*incidents.Incident{}, prints: map[int64]map[string]bool{}, loaded: map[int64]bool{}}
	for i := range alerts {
		a := alerts[i]
		var repeatedIn int64
		if repeats != nil {
			repeatedIn = repeats[i]
		}
		if err := in.add(ctx, &a, repeatedIn); err != nil {
			return nil, fmt.Errorf("ingest alert %q for %q: %w", a.Fingerprint, a.Agent, err)
		}
	}
	for name, inc := range in.open {
		b.open[name] = inc
	}
	return in, nil
}

// intake is the state of one Ingest transaction.
type intake struct {
	s   *Service
	q   incidents.Queries
	reg *ownership.Registry
	now time.Time

	open       map[string]*incidents.Incident // agent -> incident collecting its alerts
	byID       map[int64]*incidents.Incident  // every incident this call touched
	created    map[int64]bool                 // opened in this call
	dirty      map[int64]*incidents.Incident  // to write back at the end
	changed    map[int64]bool                 // summary needs an update
	candidates map[string][]*incidents.Incident
	prints     map[int64]map[string]bool // fingerprints per incident, for recoveries
	loaded     map[int64]bool            // prints holds every stored fingerprint
	// b is shared by the calls of one transaction (see ingestGrouped).
	b *batch

	res    incidents.IngestResult
	opened []*incidents.Incident
	due    bool // queued outbox work that is due at once
}

// add records a; repeatedIn is the incident a was already recorded in as a
// pure repeat, or 0.
func (in *intake) add(ctx context.Context, a *incidents.Alert, repeatedIn int64) error {
	ag, name := agentOf(in.reg, a)
	normaliseAlert(a, in.now)
	if a.Status == incidents.AlertResolved {
		return in.recovery(ctx, name, a)
	}
	if repeatedIn != 0 {
		in.repeated(repeatedIn, a.Fingerprint)
		return nil
	}
	inc, err := in.incidentFor(ctx, name, ag, a)
	if err != nil {
		return err
	}
	a.IncidentID = inc.ID
	in.remember(inc.ID, a.Fingerprint)
	in.b.alerts = append(in.b.alerts, pendingAlert{in: in, a: a})
	in.merge(inc, a)
	return nil
}

// recovery records a resolved alert in the open incident that has it.
func (in *intake) recovery(ctx context.Context, name string, a *incidents.Alert) error {
	if err := in.b.writeAlerts(ctx, in.q); err != nil {
		return err
	}
	inc, err := in.incidentWith(ctx, name, a.Fingerprint)
	if err == nil && inc == nil && a.Route == "" {
		// A storm sent the firing alert to its source's overflow incident,
		// not its agent's, under the fingerprint route gives collected
		// alerts: its recovery belongs there too.
		fp := a.Agent + "|" + a.Fingerprint
		if inc, err = in.incidentWith(ctx, incidents.OverflowName(a.Source), fp); inc != nil {
			a.Fingerprint, a.Route = fp, incidents.OverflowName(a.Source)
		}
	}
	if err != nil || inc == nil {
		return err
	}
	a.IncidentID = inc.ID
	prevs, err := in.q.RecordAlerts(ctx, []*incidents.Alert{a})
	if err != nil {
		return fmt.Errorf("record recovery in incident %d: %w", inc.ID, err)
	}
	prev := prevs[0]
	in.track(inc.ID)
	in.count(prev, a.Status)
	if prev != incidents.AlertFiring {
		return nil
	}
	in.b.event(inc.ID, in.now, incidents.EventAlertResolved, "Alert recovered: "+a.Title, alertData(a))
	in.changed[inc.ID] = true
	in.merge(inc, a)
	if in.s.core.Chat() == nil {
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte(a.Fingerprint))
	key := fmt.Sprintf("inc-%d/recovered/%x/%d", inc.ID, h.Sum64(), a.ReceivedAt.UnixNano())
	in.due = true
	return in.s.core.Enqueue(ctx, in.q, inc.ID, outbox.LaneChat, incidents.KindPost, key, incidents.Message{
		ThreadTS: incidents.ThreadOfSummary, Style: incidents.StyleSuccess, Title: "Alert recovered: " + a.Title, Text: a.Summary,
	})
}

// incidentWith finds the open incident of agent name holding fingerprint.
func (in *intake) incidentWith(ctx context.Context, name, fingerprint string) (*incidents.Incident, error) {
	cands, ok := in.candidates[name]
	if !ok {
		found, err := in.q.FindIncidents(ctx, incidents.IncidentFilter{Agent: name, Status: incidents.StatusOpen})
		if err != nil {
			return nil, fmt.Errorf("find open incidents of %s: %w", name, err)
		}
		cands = found
		in.candidates[name] = cands
	}
	for _, c := range cands {
		c = in.canon(c)
		if !in.loaded[c.ID] {
			alerts, err := in.q.FindAlerts(ctx, c.ID)
			if err != nil {
				return nil, fmt.Errorf("find alerts of incident %d: %w", c.ID, err)
			}
			for _, a := range alerts {
				in.remember(c.ID, a.Fingerprint)
			}
			in.loaded[c.ID] = true
		}
		if in.prints[c.ID][fingerprint] {
			return c, nil
		}
	}
	return nil, nil
}

// canon returns the copy of inc this call already works on, so that every
// change to one incident lands in one struct, written once by flush.
func (in *intake) canon(inc *incidents.Incident) *incidents.Incident {
	if cur, ok := in.byID[inc.ID]; ok {
		return cur
	}
	in.byID[inc.ID] = inc
	return inc
}

func (in *intake) remember(incID int64, fingerprint string) {
	if in.prints[incID] == nil {
		in.prints[incID] = map[string]bool{}
	}
	in.prints[incID][fingerprint] = true
}

// incidentFor returns the incident collecting alerts for agent name, opening
// one when there is none or the open one has been quiet longer than the
// group window.
func (in *intake) incidentFor(ctx context.Context, name string, ag *ownership.Agent, a *incidents.Alert) (*incidents.Incident, error) {
	if inc, ok := in.open[name]; ok {
		return inc, nil
	}
	if known, ok := in.b.open[name]; ok && in.now.Sub(known.LastAlertAt) <= in.window() {
		// The batch read or opened it, or an earlier call in this
		// transaction wrote back what it changed: the same row OpenIncident
		// would load, without a query of its own.
		inc := in.canon(cloneIncident(known))
		in.open[name] = inc
		in.track(inc.ID)
		if in.b.opened[name] {
			// The batch opened it for this alert, the first for its agent.
			delete(in.b.opened, name)
			in.started(inc, name, ag, a)
		}
		return inc, nil
	}
	inc := newIncident(name, ag, a, in.now)
	created, err := in.q.OpenIncident(ctx, inc)
	if err != nil {
		return nil, fmt.Errorf("open incident for %s: %w", name, err)
	}
	if !created && in.now.Sub(inc.LastAlertAt) > in.window() {
		if err := in.q.StopGrouping(ctx, inc.ID); err != nil {
			return nil, fmt.Errorf("stop grouping incident %d: %w", inc.ID, err)
		}
		old := inc.ID
		inc = newIncident(name, ag, a, in.now)
		if created, err = in.q.OpenIncident(ctx, inc); err != nil {
			return nil, fmt.Errorf("open incident for %s after #%d: %w", name, old, err)
		} else if !created {
			return nil, fmt.Errorf("incident %d still collects alerts for %s after it stopped grouping", inc.ID, name)
		}
	}
	inc = in.canon(inc)
	if created {
		in.started(inc, name, ag, a)
	}
	in.open[name] = inc
	in.track(inc.ID)
	return inc, nil
}

// started records that alert a opened inc for agent name: the incident is
// written back at the end of the batch with the PagerDuty key opening sets,
// and its event and outbox rows with the batch's.
func (in *intake) started(inc *incidents.Incident, name string, ag *ownership.Agent, a *incidents.Alert) {
	text := fmt.Sprintf("Incident opened for %s by %s: %s", name, words.Article(a.Source+" alert"), inc.Title)
	events, items := in.s.core.Opening(inc, ag, incidents.System, text)
	in.b.events = append(in.b.events, events...)
	in.b.outbox = append(in.b.outbox, items...)
	in.dirty[inc.ID] = inc
	in.created[inc.ID] = true
	in.due = true
	in.opened = append(in.opened, inc)
	in.res.Opened++
	if cands, ok := in.candidates[name]; ok {
		in.candidates[name] = append([]*incidents.Incident{inc}, cands...)
	}
}

func (in *intake) window() time.Duration { return groupWindow(in.reg) }

func groupWindow(reg *ownership.Registry) time.Duration {
	if reg != nil && reg.Alerts.GroupWindow > 0 {
		return reg.Alerts.GroupWindow
	}
	return defaultWindow
}

// agentOf returns the registry's agent an alert names (nil when unknown) and
// the name its incident goes under: its Route when set (see Service.route),
// else the agent's name, else its source's unrouted incident.
func agentOf(reg *ownership.Registry, a *incidents.Alert) (*ownership.Agent, string) {
	if a.Route != "" {
		return nil, a.Route
	}
	if ag := incidents.FindAgent(reg, a.Agent); ag != nil {
		return ag, ag.Name
	}
	return nil, incidents.UnroutedName(a.Source)
}

func (in *intake) track(id int64) {
	if !slices.Contains(in.res.Incidents, id) {
		in.res.Incidents = append(in.res.Incidents, id)
	}
}

func (in *intake) count(prev, status string) {
	switch {
	case prev == "":
		in.res.New++
	case prev == status:
		in.res.Repeated++
	default:
		in.res.Changed++
	}
}

// unroutedTitle names the unknown agents in the title of the unrouted
// incident, so every place that shows the title (CLI, API, web view, page,
// channel) says which agent is missing from reins.yaml, not only Slack's
// summary.
func unroutedTitle(source string, names []string) string {
	return "Alerts from " + source + " for agents not in reins.yaml: " + strings.Join(names, ", ")
}

// unknownName is how an alert named its agent, for the unrouted incident.
func unknownName(a *incidents.Alert) string {
	if n := strings.TrimSpace(a.Agent); n != "" {
		return incidents.Clip(n, 64)
	}
	return "(no agent label)"
}

// addUnroutedName adds the alert's unknown agent to the unrouted incident's
// title when it is not named yet; false when the title did not change.
func addUnroutedName(inc *incidents.Incident, a *incidents.Alert) bool {
	kind, source := incidents.Collector(inc.Agent)
	if kind != "unrouted" {
		return false
	}
	prefix := unroutedTitle(source, nil)
	rest, ok := strings.CutPrefix(inc.Title, prefix)
	if !ok {
		return false // an incident from before titles named the agents
	}
	var names []string
	if rest != "" {
		names = strings.Split(rest, ", ")
	}
	name := unknownName(a)
	if slices.Contains(names, name) || strings.HasSuffix(rest, "…") {
		return false
	}
	title := unroutedTitle(source, append(names, name))
	if len([]rune(title)) > incidents.MaxTitle {
		if strings.HasSuffix(rest, ", and more") {
			return false
		}
		title = incidents.Clip(unroutedTitle(source, names)+", and more", incidents.MaxTitle)
	}
	inc.Title = title
	return true
}

// merge folds the alert into the incident and marks it dirty only when a
// field users see changed, or LastAlertAt is more than a step behind.
func (in *intake) merge(inc *incidents.Incident, a *incidents.Alert) {
	changed := a.Status == incidents.AlertFiring && addUnroutedName(inc, a)
	for _, id := range a.Sessions {
		if id != "" && !slices.Contains(inc.Sessions, id) && len(inc.Sessions) < maxSessions {
			inc.Sessions = append(inc.Sessions, id)
			changed = true
		}
	}
	for _, l := range a.Links {
		if l.URL != "" && !slices.ContainsFunc(inc.Links, func(x incidents.Link) bool { return x.URL == l.URL }) && len(inc.Links) < maxLinks {
			inc.Links = append(inc.Links, l)
			changed = true
		}
	}
	if a.Status == incidents.AlertFiring && severityRank(a.Severity) > severityRank(inc.Severity) {
		inc.Severity = a.Severity
		changed = true
	}
	if changed && !in.created[inc.ID] {
		in.changed[inc.ID] = true
	}
	if changed || a.ReceivedAt.Sub(inc.LastAlertAt) >= lastAlertStep {
		if a.ReceivedAt.After(inc.LastAlertAt) {
			inc.LastAlertAt = a.ReceivedAt
		}
		in.dirty[inc.ID] = inc
	}
}

// absorb adds to dst what alerts contributed to src: sessions, links, a
// higher severity, a later last alert.
func absorb(dst, src *incidents.Incident) {
	for _, id := range src.Sessions {
		if !slices.Contains(dst.Sessions, id) && len(dst.Sessions) < maxSessions {
			dst.Sessions = append(dst.Sessions, id)
		}
	}
	for _, l := range src.Links {
		if !slices.ContainsFunc(dst.Links, func(x incidents.Link) bool { return x.URL == l.URL }) && len(dst.Links) < maxLinks {
			dst.Links = append(dst.Links, l)
		}
	}
	if severityRank(src.Severity) > severityRank(dst.Severity) {
		dst.Severity = src.Severity
	}
	if src.LastAlertAt.After(dst.LastAlertAt) {
		dst.LastAlertAt = src.LastAlertAt
	}
}

func cloneIncident(inc *incidents.Incident) *incidents.Incident {
	c := *inc
	c.Sessions = slices.Clone(inc.Sessions)
	c.Links = slices.Clone(inc.Links)
	return &c
}

func normaliseAlert(a *incidents.Alert, now time.Time) {
	if a.ReceivedAt.IsZero() {
		a.ReceivedAt = now
	}
	if a.StartsAt.IsZero() || a.StartsAt.After(a.ReceivedAt) {
		a.StartsAt = a.ReceivedAt
	}
	if a.Status != incidents.AlertResolved {
		a.Status = incidents.AlertFiring
	}
	a.Severity = normaliseSeverity(a.Severity)
	if strings.TrimSpace(a.Title) == "" {
		a.Title = incidents.FirstNonEmpty(a.Summary, "Alert from "+a.Source)
	}
}

func newIncident(name string, ag *ownership.Agent, a *incidents.Alert, now time.Time) *incidents.Incident {
	title := a.Title
	switch kind, source := incidents.Collector(name); kind {
	case "unrouted":
		title = unroutedTitle(source, []string{unknownName(a)})
	case "overflow":
		title = "Alert storm: " + source + " opened more new incidents this minute than alerts.max_new_incidents_per_minute allows"
	}
	return &incidents.Incident{
		Agent:       name,
		Unowned:     ag == nil,
		Title:       incidents.Clip(title, incidents.MaxTitle),
		Severity:    a.Severity,
		Source:      a.Source,
		Sessions:    slices.Clone(a.Sessions[:min(len(a.Sessions), maxSessions)]),
		Links:       slices.Clone(a.Links[:min(len(a.Links), maxLinks)]),
		CreatedAt:   now,
		StartedAt:   a.StartsAt,
		LastAlertAt: a.ReceivedAt,
	}
}

// Declare opens an incident by hand for a registered agent, or returns the
// agent's open incident with created false.
func (s *Service) Declare(ctx context.Context, actor incidents.Actor, agent, title string) (*incidents.Incident, bool, error) {
	ag, err := s.core.LookupAgent(agent)
	if err != nil {
		return nil, false, err
	}
	title = strings.TrimSpace(title)
	if title == "" {
		title = "Incident declared for " + ag.Name
	}
	var inc *incidents.Incident
	var created bool
	err = s.core.RetryTx(ctx, func(q incidents.Queries) error {
		inc, created, err = s.core.OpenManual(ctx, q, ag, actor, title, fmt.Sprintf("Declared by %s: %s", actor, title))
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("declare incident for %s: %w", ag.Name, err)
	}
	if created {
		s.core.IncidentOpened(inc.ID, inc.Agent, true, "source", "declared", "by", actor.String())
		s.core.Kick()
	}
	return inc, created, nil
}

func alertData(a *incidents.Alert) map[string]any {
	return map[string]any{"source": a.Source, "fingerprint": a.Fingerprint, "severity": a.Severity,
		"sessions": a.Sessions, "summary": a.Summary, "starts_at": a.StartsAt}
}

func severityRank(sev string) int {
	switch sev {
	case incidents.SeverityCritical:
		return 4
	case incidents.SeverityError:
		return 3
	case incidents.SeverityWarning:
		return 2
	case incidents.SeverityInfo:
		return 1
	}
	return 0
}

// normaliseSeverity maps anything outside the Events v2 vocabulary to error:
// an alert about an agent is worth a page unless it says otherwise.
func normaliseSeverity(sev string) string {
	sev = strings.ToLower(strings.TrimSpace(sev))
	if severityRank(sev) == 0 {
		return incidents.SeverityError
	}
	return sev
}

// Service is the intake's use cases: alerts in (Ingest, the test alert) and
// incidents declared by hand (Declare). It holds what only the intake keeps:
// the group commit, the summary and receipt memos, and the openings per
// source it caps.
type Service struct {
	core      *incidents.Core
	group     ingestGroup // merges concurrent Ingest calls into one transaction
	summaries summaryMemo // summary updates queued in the current bucket
	receipts  receiptMemo // alerts received before, worth trying as pure repeats
	openings  openingLog  // incidents opened from alerts in the last minute, per source
}

// New returns the intake of the use cases core serves.
func New(core *incidents.Core) *Service { return &Service{core: core} }
