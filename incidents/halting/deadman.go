package halting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

// Escalate is the dead-man (docs/config.md, `escalation`): each open
// incident of an agent with escalation.auto_halt_after, of a listed severity,
// opened longer ago than that and acknowledged by nobody with kill authority,
// has its agent halted by policy, once. Run it under the cluster lock: the
// "once" is an escalated event written before the halt is attempted, so
// every replica and every restart sees it. It returns the incidents it
// escalated.
func (s *Policy) Escalate(ctx context.Context, now time.Time) (int, error) {
	reg := s.core.Registry()
	n := 0
	var errs []error
	for offset := 0; ; offset += incidents.PageSize {
		open, err := s.core.Store().FindIncidents(ctx, incidents.IncidentFilter{Status: incidents.StatusOpen, Limit: incidents.PageSize, Offset: offset})
		if err != nil {
			return n, fmt.Errorf("find open incidents: %w", err)
		}
		for _, inc := range open {
			ag := reg.Agents[inc.Agent]
			if inc.Unowned || ag == nil || !deadManDue(ag, inc, now) {
				continue
			}
			done, err := s.escalate(ctx, ag, inc, now)
			if err != nil {
				// One incident's failure must not keep the others' agents running.
				errs = append(errs, fmt.Errorf("escalate incident %d: %w", inc.ID, err))
			}
			if done {
				n++
			}
		}
		if len(open) < incidents.PageSize {
			return n, errors.Join(errs...)
		}
	}
}

func deadManDue(ag *ownership.Agent, inc *incidents.Incident, now time.Time) bool {
	e := ag.Escalation
	sev := e.Severities
	if len(sev) == 0 {
		sev = ownership.DefaultEscalationSeverities
	}
	return e.AutoHaltAfter > 0 && slices.Contains(sev, inc.Severity) && now.Sub(inc.CreatedAt) >= e.AutoHaltAfter
}

// escalate halts inc's agent unless someone with kill authority took the
// incident or it was escalated before.
func (s *Policy) escalate(ctx context.Context, ag *ownership.Agent, inc *incidents.Incident, now time.Time) (bool, error) {
	events, err := s.core.Store().FindEvents(ctx, inc.ID)
	if err != nil {
		return false, fmt.Errorf("load timeline: %w", err)
	}
	if slices.ContainsFunc(events, func(e *incidents.Event) bool { return e.Kind == incidents.EventEscalated }) {
		return false, nil
	}
	halts, err := s.core.Store().FindHalts(ctx, ag.Name, inc.ID)
	if err != nil {
		return false, fmt.Errorf("load halts: %w", err)
	}
	if len(halts) > 0 || s.acknowledgedByAuthority(ctx, ag, events) {
		return false, nil
	}
	after := shortDuration(ag.Escalation.AutoHaltAfter)
	reason := "nobody with kill authority acknowledged within " + after
	actor := incidents.PolicyActor(ag.Name, incidents.EscalationSLA)
	recorded := false
	err = s.core.RetryTx(ctx, func(q incidents.Queries) error {
		recorded = false
		evs, err := q.FindEvents(ctx, inc.ID)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(evs, func(e *incidents.Event) bool { return e.Kind == incidents.EventEscalated }) {
			return nil
		}
		recorded = true
		return incidents.AppendEvent(ctx, q, inc.ID, now, incidents.EventEscalated, actor,
			fmt.Sprintf("Escalated by policy: nobody with kill authority acknowledged this %s incident within %s", inc.Severity, after),
			map[string]any{"auto_halt_after": after, "severity": inc.Severity})
	})
	if err != nil || !recorded {
		return false, err
	}
	out, err := s.AutoHalt(ctx, incidents.AutoHaltCommand{Agent: ag.Name, SLA: incidents.EscalationSLA, Action: ownership.OnBreachHaltAgent,
		Fallback: ownership.OnBreachAlert, IncidentID: inc.ID, Reason: reason})
	if err != nil {
		return true, err
	}
	s.core.Log().Warn("dead-man escalation", "incident", inc.ID, "agent", ag.Name, "outcome", out.Action, "after", after)
	return true, nil
}

// acknowledgedByAuthority says whether the timeline shows someone who may
// halt the agent took the incident: a PagerDuty acknowledgement (the page
// goes to the kill authority's escalation policy), an acknowledgement from
// the API or CLI (their callers hold break-glass authority), or any action
// in Slack by a person holding kill authority now.
func (s *Policy) acknowledgedByAuthority(ctx context.Context, ag *ownership.Agent, events []*incidents.Event) bool {
	asked := map[string]bool{}
	for _, e := range events {
		switch {
		case e.Kind == incidents.EventAcknowledged && e.Actor.Kind != incidents.ActorSlack:
			return true
		case e.Actor.Kind != incidents.ActorSlack || e.Actor.ID == "" || e.Kind == incidents.EventHaltRefused:
			continue
		case asked[e.Actor.ID]:
			continue
		}
		asked[e.Actor.ID] = true
		if s.core.Authority() != nil && s.core.Authority().Authorize(ctx, ag, e.Actor.ID).Allowed {
			return true
		}
	}
	return false
}

// shortDuration writes 10m rather than 10m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
