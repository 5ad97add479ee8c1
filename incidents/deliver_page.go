package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/ownership"
)

const (
	maxPageSummary = 1024 // Events v2 limit
	maxPageLinks   = 10
	pageSource     = "reins"
)

// RepagePayload is the payload of a KindRepage item.
type RepagePayload struct {
	HaltID int64  `json:"halt_id"`
	Error  string `json:"error"`
}

// pageHandlers registers the outbox kinds of the urgent lane: PagerDuty.
func (s *pageSteps) pageHandlers(handle func(kind string, h outbox.Handler)) {
	handle(KindPage, s.deliverPage)
	handle(KindRepage, s.deliverRepage)
	handle(KindQueuePage, s.deliverQueuePage)
	handle(KindPageResolve, s.deliverPageResolve)
	handle(KindPageAck, s.deliverPageAck) // ack.go
}

var errNoPager = outbox.Permanent(errors.New("PagerDuty is not configured"))

const KindPage = "page" // PagerDuty trigger to the kill authority

// deliverPage sends the trigger. It never waits for the Slack channel: the
// page carries the reins incident link, and the channel link once known.
func (s *pageSteps) deliverPage(ctx context.Context, it *outbox.Item) error {
	inc, page, err := s.pageFor(ctx, it, "trigger")
	if err != nil {
		return err
	}
	if err := s.pager.Send(ctx, page); err != nil {
		return fmt.Errorf("page for incident %d: %w", inc.ID, err)
	}
	s.log.Info("page sent", "incident", inc.ID, "agent", inc.Agent, "dedup_key", page.DedupKey)
	return s.UpdateIncident(ctx, inc.ID, func(q Queries, inc *Incident) (bool, error) {
		if inc.PagedAt != nil {
			return false, nil // delivered before a crash
		}
		now := s.clock.Now()
		inc.PagedAt = &now
		return true, AppendEvent(ctx, q, inc.ID, now, EventPaged, System,
			"Paged the kill authority of "+inc.Agent+" in PagerDuty", map[string]any{"dedup_key": page.DedupKey})
	})
}

const KindRepage = "repage" // trigger again, "HALT FAILED"; payload: RepagePayload

// deliverRepage triggers again on the same dedup key after a failed halt, so
// PagerDuty keeps one incident and the acknowledgement sync still matches.
func (s *pageSteps) deliverRepage(ctx context.Context, it *outbox.Item) error {
	inc, page, err := s.pageFor(ctx, it, "trigger")
	if err != nil {
		return err
	}
	var p RepagePayload
	if len(it.Payload) > 0 {
		if err := json.Unmarshal(it.Payload, &p); err != nil {
			return outbox.Permanent(fmt.Errorf("decode repage %s: %w", it.Key, err))
		}
	}
	page.Summary = Clip("HALT FAILED "+page.Summary, maxPageSummary)
	page.Severity = SeverityCritical
	page.Details["halt_error"] = p.Error
	page.Details["halt_id"] = p.HaltID
	if err := s.pager.Send(ctx, page); err != nil {
		return fmt.Errorf("re-page for incident %d: %w", inc.ID, err)
	}
	s.log.Info("page sent", "incident", inc.ID, "agent", inc.Agent, "dedup_key", page.DedupKey, "repage", true)
	return s.RetryTx(ctx, func(q Queries) error {
		return AppendEvent(ctx, q, inc.ID, s.clock.Now(), EventPaged, System,
			"Re-paged the kill authority of "+inc.Agent+": halt failed", map[string]any{"dedup_key": page.DedupKey, "halt_id": p.HaltID})
	})
}

const KindPageResolve = "page_resolve" // PagerDuty resolve

func (s *pageSteps) deliverPageResolve(ctx context.Context, it *outbox.Item) error {
	inc, page, err := s.pageFor(ctx, it, "resolve")
	if err != nil {
		return err
	}
	if err := s.pager.Send(ctx, Page{Action: "resolve", RoutingKey: page.RoutingKey, DedupKey: page.DedupKey}); err != nil {
		return fmt.Errorf("resolve page of incident %d: %w", inc.ID, err)
	}
	return nil
}

// pageFor loads the item's incident and builds its page.
func (s *pageSteps) pageFor(ctx context.Context, it *outbox.Item, action string) (*Incident, Page, error) {
	if s.pager == nil {
		return nil, Page{}, errNoPager
	}
	inc, err := s.store.FindIncident(ctx, it.IncidentID)
	if err != nil {
		return nil, Page{}, fmt.Errorf("load incident %d: %w", it.IncidentID, err)
	}
	reg := s.Registry()
	var ag *ownership.Agent
	if !inc.Unowned {
		ag = FindAgent(reg, inc.Agent)
	}
	key := s.routingKey(reg, ag)
	if key == "" {
		return nil, Page{}, outbox.Permanent(fmt.Errorf("no PagerDuty routing key for %s: set the variable named by "+
			"pagerduty.routing_key_env of the agent or its team, or PAGERDUTY_ROUTING_KEY", inc.Agent))
	}
	page := s.buildPage(inc, ag, reg, action, key)
	if recs := s.SessionRecordsOf(ctx, inc, true); len(recs) > 0 {
		page.Details["session_totals"] = sessionPageDetails(recs)
	}
	return inc, page, nil
}

// routingKey follows docs/config.md: the agent's key, else its team's, else the default.
func (s *pageSteps) routingKey(reg *ownership.Registry, ag *ownership.Agent) string {
	if env := pageRouteEnv(reg, ag); env != "" {
		if key := s.cfg.Getenv(env); key != "" {
			return key
		}
	}
	return s.cfg.DefaultRoutingKey
}

func pageRouteEnv(reg *ownership.Registry, ag *ownership.Agent) string {
	env, _ := reg.PageRoute(ag)
	return env
}

func (s *pageSteps) buildPage(inc *Incident, ag *ownership.Agent, reg *ownership.Registry, action, key string) Page {
	dedup := inc.PagerDutyKey
	if dedup == "" {
		dedup = PagerKey(inc.ID)
	}
	reinsLink := s.IncidentLink(inc.ID)
	links := []Link{reinsLink}
	details := map[string]any{
		"agent":    inc.Agent,
		"incident": inc.ID,
		"title":    inc.Title,
		"sessions": inc.Sessions,
		"reins":    reinsLink.URL,
	}
	// Pages never wait for Slack, so the channel may not exist yet: the link
	// goes through reins, which redirects to the channel once it does.
	links = append(links, s.pageChannelLink(inc))
	if inc.SlackChannelID != "" {
		details["channel"] = "#" + inc.SlackChannelName
	}
	if inc.IsTest() {
		details["test"] = "a test alert opened this incident (reins test-alert): not a real problem"
	}
	page := Page{Action: action, RoutingKey: key, DedupKey: dedup, Source: pageSource, Component: inc.Agent,
		Severity: inc.Severity, Details: details,
		Summary: Clip(fmt.Sprintf("[reins #%d] %s: %s", inc.ID, inc.Agent, inc.Title), maxPageSummary)}
	if ag != nil {
		page.Group = ag.Team
		ka := ag.KillAuthority
		details["kill_authority"] = slices.Concat(ka.Users, ka.Usergroups)
		if ka.OnCall != "" {
			details["kill_authority_on_call"] = ka.OnCall
		}
		if ag.Runbook != "" {
			details["runbook"] = ag.Runbook
		}
	} else {
		details["owner"] = "none: the agent is not in reins.yaml"
	}
	for _, l := range SessionLinks(ag, inc.Sessions) {
		if l.URL != "" && len(links) < maxPageLinks {
			links = append(links, Link{Text: "Session " + l.Text, URL: l.URL})
		}
	}
	// The alerts' own links (their *_url annotations, the source's links),
	// sessions first: an alert may name its session only by session_url.
	alertLinks := slices.Clone(inc.Links)
	slices.SortStableFunc(alertLinks, func(a, b Link) int {
		return cmpBool(!strings.Contains(strings.ToLower(a.Text), "session"), !strings.Contains(strings.ToLower(b.Text), "session"))
	})
	if ag != nil && ag.Runbook != "" {
		alertLinks = append(alertLinks, Link{Text: "Runbook", URL: ag.Runbook})
	}
	for _, l := range alertLinks {
		if l.URL == "" || len(links) >= maxPageLinks || slices.ContainsFunc(links, func(x Link) bool { return x.URL == l.URL }) {
			continue
		}
		links = append(links, l)
	}
	page.Links = links
	return page
}

// pageChannelLink is the incident channel's link as pages carry it. Without
// Slack there will be no channel: the link says so and opens the incident
// in reins instead.
func (s *pageSteps) pageChannelLink(inc *Incident) Link {
	if s.chat == nil {
		return Link{Text: "No Slack channel (Slack is not configured): incident in reins", URL: s.IncidentLink(inc.ID).URL}
	}
	text := "Slack channel"
	if inc.SlackChannelName != "" {
		text += " #" + inc.SlackChannelName
	}
	return Link{Text: text, URL: fmt.Sprintf("%s/incidents/%d/slack", strings.TrimRight(s.cfg.PublicURL, "/"), inc.ID)}
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// KindQueuePage pages the kill authority, once per incident, that breaching
// sessions of its agent wait for the automatic-halt budget; payload:
// QueuePagePayload. Its dedup key is the incident's with "/auto-halt-queue"
// appended: a page of its own, not a repeat PagerDuty folds into the first.
const KindQueuePage = "page_queue"

// QueuePagePayload is the payload of a KindQueuePage item.
type QueuePagePayload struct {
	Summary string `json:"summary"`
	Waiting int    `json:"waiting"`
}

// deliverQueuePage pages that breaches wait for the automatic-halt budget.
func (s *pageSteps) deliverQueuePage(ctx context.Context, it *outbox.Item) error {
	inc, page, err := s.pageFor(ctx, it, "trigger")
	if err != nil {
		return err
	}
	var p QueuePagePayload
	if err := json.Unmarshal(it.Payload, &p); err != nil {
		return outbox.Permanent(fmt.Errorf("decode %s: %w", it.Key, err))
	}
	page.DedupKey += "/auto-halt-queue"
	page.Severity = SeverityCritical
	page.Summary = Clip(fmt.Sprintf("[reins #%d] %s", inc.ID, p.Summary), maxPageSummary)
	page.Details["waiting_sessions"] = p.Waiting
	if err := s.pager.Send(ctx, page); err != nil {
		return fmt.Errorf("queue page for incident %d: %w", inc.ID, err)
	}
	return s.RetryTx(ctx, func(q Queries) error {
		return AppendEvent(ctx, q, inc.ID, s.clock.Now(), EventPaged, System,
			"Paged the kill authority of "+inc.Agent+": breaching sessions wait for the automatic-halt budget",
			map[string]any{"dedup_key": page.DedupKey, "waiting": p.Waiting})
	})
}
