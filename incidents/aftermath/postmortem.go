package aftermath

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/ownership"
)

// Postmortem assembles the postmortem of an incident from stored data.
func (s *Service) Postmortem(ctx context.Context, id int64) (*incidents.Postmortem, error) {
	pm, err := s.assemble(ctx, s.core.Store(), id)
	if err != nil {
		return nil, fmt.Errorf("assemble postmortem of incident %d: %w", id, err)
	}
	return pm, nil
}

// assemble reads through q, so a transaction can render what it is about to
// commit.
func (s *Service) assemble(ctx context.Context, q incidents.Queries, id int64) (*incidents.Postmortem, error) {
	inc, err := q.FindIncident(ctx, id)
	if err != nil {
		return nil, err
	}
	alerts, err := q.FindAlerts(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load alerts: %w", err)
	}
	events, err := q.FindEvents(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load timeline: %w", err)
	}
	halts, err := q.FindHalts(ctx, "", id)
	if err != nil {
		return nil, fmt.Errorf("load halts: %w", err)
	}
	c, err := q.FindChecklist(ctx, id)
	if err != nil && incidents.ErrorCode(err) != incidents.ENOTFOUND {
		return nil, fmt.Errorf("load checklist: %w", err)
	}
	answers, err := q.FindPostmortemAnswers(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load postmortem answers: %w", err)
	}
	var ag *ownership.Agent
	if !inc.Unowned {
		ag = incidents.FindAgent(s.core.Registry(), inc.Agent)
	}
	pm := &incidents.Postmortem{ID: inc.ID, Agent: inc.Agent, Unowned: inc.Unowned, Title: inc.Title, Severity: inc.Severity,
		Status: inc.Status, Source: inc.Source, ResolvedBy: inc.ResolvedBy, GeneratedAt: s.core.Now().UTC(),
		Sessions: incidents.SessionLinks(ag, inc.Sessions)}
	// Empty lists, not null, for JSON readers.
	pm.Detection, pm.SLAs, pm.Timeline, pm.Halts = []incidents.DetectedAlert{}, []incidents.SLACheck{}, []incidents.TimelineEntry{}, []incidents.PostmortemHalt{}
	pm.BlastRadius, pm.Answers, pm.ActionItems = []incidents.BlastAnswer{}, []incidents.QuestionAnswer{}, []incidents.ActionItem{}
	fillTimes(pm, inc, alerts, halts)
	fillDetection(pm, alerts, ag)
	for _, e := range events {
		pm.Timeline = append(pm.Timeline, incidents.TimelineEntry{At: e.At.UTC(), Kind: e.Kind, Actor: incidents.ActorLabel(e.Actor), Text: e.Text})
	}
	for _, h := range slices.Backward(halts) { // the store gives newest first
		pm.Halts = append(pm.Halts, postmortemHalt(h))
	}
	if c != nil {
		pm.BlastRadius = blastAnswers(c)
	}
	fillAnswers(pm, answers)
	fillLinks(pm, inc, ag, s.core.Config().PublicURL)
	pm.Record = sessionRecordDocs(s.core.SessionRecordsOf(ctx, inc, false), ag)
	return pm, nil
}

func fillTimes(pm *incidents.Postmortem, inc *incidents.Incident, alerts []*incidents.Alert, halts []*incidents.Halt) {
	t := &pm.Times
	t.Opened, t.Detected = inc.CreatedAt.UTC(), inc.CreatedAt.UTC()
	if !inc.StartedAt.IsZero() && inc.StartedAt.Before(t.Detected) {
		t.Detected = inc.StartedAt.UTC()
	}
	for _, a := range alerts {
		if !a.StartsAt.IsZero() && a.StartsAt.Before(t.Detected) {
			t.Detected = a.StartsAt.UTC()
		}
	}
	t.Paged, t.Acknowledged, t.Resolved = utcPtr(inc.PagedAt), utcPtr(inc.AckedAt), utcPtr(inc.ResolvedAt)
	for _, h := range halts {
		if h.Action == incidents.ActionHalt && h.Status == incidents.HaltVerified && h.FinishedAt != nil &&
			(t.Halted == nil || h.FinishedAt.Before(*t.Halted)) {
			t.Halted = utcPtr(h.FinishedAt)
		}
	}
	opened := t.Opened
	pm.Durations = incidents.PostmortemDurations{Detect: spanOf(t.Detected, &opened), Page: spanOf(opened, t.Paged),
		Halt: spanOf(t.Detected, t.Halted), Resolve: spanOf(opened, t.Resolved)}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// detection lists the alerts, oldest first, and pairs each SLA of the
// agent with the value an alert reported for its metric.
func fillDetection(pm *incidents.Postmortem, alerts []*incidents.Alert, ag *ownership.Agent) {
	sorted := slices.Clone(alerts)
	slices.SortStableFunc(sorted, func(a, b *incidents.Alert) int { return a.StartsAt.Compare(b.StartsAt) })
	observed := map[string]string{}
	bySLA := map[string]string{} // reins' own breach alerts: label sla, detail value
	for _, a := range sorted {
		d := incidents.DetectedAlert{Source: a.Source, Title: a.Title, Summary: a.Summary, Severity: a.Severity, Status: a.Status,
			StartsAt: a.StartsAt.UTC(), Count: a.Count, Sessions: a.Sessions}
		if len(a.Details) > 0 {
			_ = json.Unmarshal(a.Details, &d.Values) // details that are not an object have no named values
		}
		for k, v := range d.Values {
			observed[k] = fmt.Sprint(v)
		}
		for k, v := range a.Labels {
			if _, ok := observed[k]; !ok {
				observed[k] = v
			}
		}
		if name, v := a.Labels["sla"], d.Values["value"]; name != "" && v != nil {
			bySLA[name] = fmt.Sprint(v)
		}
		pm.Detection = append(pm.Detection, d)
	}
	if ag == nil {
		return
	}
	for _, sla := range ag.SLAs {
		seen, ok := bySLA[sla.Label()]
		if !ok {
			seen = observed[sla.Metric]
		}
		pm.SLAs = append(pm.SLAs, incidents.SLACheck{Name: sla.Label(), Metric: sla.Metric, Limit: sla.Limit(), Observed: seen})
	}
}

func postmortemHalt(h *incidents.Halt) incidents.PostmortemHalt {
	ph := incidents.PostmortemHalt{Action: h.Action, Sessions: h.Sessions, Adapter: h.Adapter, Actor: incidents.ActorLabel(h.Actor),
		Reason: h.Reason, Result: h.Status, Error: h.Error, RequestedAt: h.RequestedAt.UTC(), FinishedAt: utcPtr(h.FinishedAt),
		Allow: h.Allow, Rate: h.Rate, Probation: utcPtr(h.ProbationUntil)}
	if incidents.IsContainAction(h.Action) && h.Status == incidents.HaltVerified {
		d := incidents.Span(h.TimeToHalt())
		ph.VerifiedAfter = &d
	}
	return ph
}

func blastAnswers(c *incidents.Checklist) []incidents.BlastAnswer {
	out := make([]incidents.BlastAnswer, 0, len(c.Items))
	for _, it := range c.Items {
		b := incidents.BlastAnswer{Key: it.Key, Position: it.Position, Question: it.Question, Check: it.Check, Owner: it.Owner,
			Link: it.Link, Choice: it.Choice, Details: it.Details, AnsweredAt: utcPtr(it.AnsweredAt)}
		if it.AnsweredBy != nil {
			b.AnsweredBy = incidents.ActorLabel(*it.AnsweredBy)
		}
		out = append(out, b)
	}
	return out
}

func fillAnswers(pm *incidents.Postmortem, answers []*incidents.PostmortemAnswer) {
	for _, q := range incidents.PostmortemQuestions() {
		a := incidents.AnswerFor(answers, q.Key)
		if a == nil || strings.TrimSpace(a.Text) == "" {
			continue
		}
		pm.Answers = append(pm.Answers, incidents.QuestionAnswer{Key: q.Key, Question: q.Question, Text: a.Text,
			By: incidents.ActorLabel(a.Actor), At: a.At.UTC()})
		if q.Key == incidents.QuestionActionItems && len(incidents.ParseActionItems(a.Text)) > 0 {
			pm.ActionItems = incidents.ParseActionItems(a.Text)
		}
	}
}

func fillLinks(pm *incidents.Postmortem, inc *incidents.Incident, ag *ownership.Agent, publicURL string) {
	l := &pm.Links
	if inc.SlackChannelID != "" {
		l.SlackChannel = "https://slack.com/app_redirect?channel=" + url.QueryEscape(inc.SlackChannelID)
		l.SlackChannelName = inc.SlackChannelName
	}
	l.PagerDutyKey = inc.PagerDutyKey
	if ag != nil {
		l.Runbook = ag.Runbook
		pm.Team, pm.Description = ag.Team, ag.Description
	}
	if publicURL != "" {
		l.Reins = fmt.Sprintf("%s/incidents/%d", strings.TrimRight(publicURL, "/"), inc.ID)
	}
	l.Alerts = inc.Links
}

func spanOf(from time.Time, to *time.Time) *incidents.Span {
	if to == nil || to.Before(from) {
		return nil
	}
	d := incidents.Span(to.Sub(from))
	return &d
}

func sessionRecordDocs(recs []sessions.Record, ag *ownership.Agent) []incidents.SessionRecordDoc {
	out := []incidents.SessionRecordDoc{}
	for _, r := range recs {
		d := incidents.SessionRecordDoc{Totals: r.Totals, Link: r.Link, BlastCalls: []sessions.Step{},
			Outside: sessions.Outside(r.Steps, ag), Errors: []sessions.Step{}}
		if d.Outside == nil {
			d.Outside = []sessions.Step{}
		}
		for _, st := range r.Steps {
			if st.System != "" {
				d.BlastCalls = append(d.BlastCalls, st)
			}
			if st.Error {
				d.Errors = append(d.Errors, st)
			}
		}
		out = append(out, d)
	}
	return out
}
