package bot

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

// mayResolve decides whether actor may resolve inc from Slack: resolving
// closes the incident and its PagerDuty page, so it needs a role on the
// agent: kill authority, RACI responsible or accountable, or having declared
// or acknowledged the incident. When refused, text says who can.
func (h *Handler) mayResolve(ctx context.Context, actor incidents.Actor, inc *incidents.Incident) (ok bool, text string, err error) {
	ag := h.svc.Registry().Agent(inc.Agent)
	if ag == nil {
		// An agent reins does not know has no roles to check: whoever works
		// the incident in its channel may close it.
		return true, "", nil
	}
	raci := slices.Concat(ag.RACI.Responsible, ag.RACI.Accountable)
	if slices.Contains(raci, actor.ID) {
		return true, "", nil
	}
	declarer, acker, err := h.openerAndAcker(ctx, inc)
	if err != nil {
		return false, "", err
	}
	if declarer != "" && declarer == actor.ID {
		return true, "", nil
	}
	if h.inPeople(ctx, actor.ID, raci) || h.isAcker(ctx, actor, acker) {
		return true, "", nil
	}
	var dec ownership.Decision
	if h.auth != nil {
		dec = h.auth.Authorize(ctx, ag, actor.ID)
	} else if dec, _, err = h.svc.CheckAuthority(ctx, actor, ag.Name, "resolve"); err != nil {
		return false, "", err
	}
	if dec.Allowed {
		return true, "", nil
	}

	var who []string
	if len(dec.Holders) > 0 {
		who = append(who, "kill authority now: "+mentions(dec.Holders, maxSummaryHolders))
	}
	if len(ag.RACI.Responsible) > 0 {
		who = append(who, "responsible: "+peopleOrChannels(ag.RACI.Responsible))
	}
	if len(ag.RACI.Accountable) > 0 {
		who = append(who, "accountable: "+peopleOrChannels(ag.RACI.Accountable))
	}
	if declarer != "" {
		who = append(who, "declared by "+Mention(declarer))
	}
	if acker != "" {
		who = append(who, "acknowledged by "+Escape(acker))
	}
	text = fmt.Sprintf(":no_entry: You may not resolve incident #%d: resolving needs a role on *%s* (kill authority, RACI responsible or accountable, or having declared or acknowledged the incident).",
		inc.ID, Escape(ag.Name))
	if len(who) > 0 {
		text += "\nAsk one of them: " + strings.Join(who, "; ") + "."
	} else {
		text += "\nNobody holds such a role right now: add people to `raci` or `kill_authority` for this agent in reins.yaml."
	}
	if h.auth != nil {
		// CheckAuthority audits its own refusals; the Authorizer does not.
		h.auditRefusal(ctx, incidents.HaltCommand{Action: "resolve", Agent: ag.Name, Actor: actor}, "no role on the agent")
	}
	return false, text + "\nThis attempt has been recorded in the audit log.", nil
}

// openerAndAcker reads from the timeline who declared the incident by hand
// (a Slack user ID) and who acknowledged its page (as PagerDuty names them).
func (h *Handler) openerAndAcker(ctx context.Context, inc *incidents.Incident) (declarer, acker string, err error) {
	events, err := h.svc.Timeline(ctx, inc.ID)
	if err != nil {
		return "", "", err
	}
	for _, e := range events {
		switch {
		case e.Kind == incidents.EventIncidentOpened && e.Actor.Kind == incidents.ActorSlack && declarer == "":
			declarer = e.Actor.ID
		case e.Kind == incidents.EventAcknowledged && acker == "":
			acker = e.Actor.ID
		}
	}
	if acker == "" {
		acker = inc.AckedBy
	}
	return declarer, acker, nil
}

// inPeople says whether user is among people: user IDs, e-mails and user
// groups, resolved through Slack when the Web API is set up.
func (h *Handler) inPeople(ctx context.Context, user string, people []string) bool {
	if h.chat == nil {
		return false
	}
	for _, p := range people {
		switch {
		case groupID.MatchString(p):
			if members, err := h.chat.dir.UsergroupMembers(ctx, p); err == nil && slices.Contains(members, user) {
				return true
			}
		case strings.Contains(p, "@"):
			if id, err := h.chat.dir.UserByEmail(ctx, p); err == nil && id == user {
				return true
			}
		}
	}
	return false
}

// isAcker says whether actor is who acknowledged the page. PagerDuty names
// the acknowledger by name or e-mail, so both are compared.
func (h *Handler) isAcker(ctx context.Context, actor incidents.Actor, acker string) bool {
	if acker == "" || acker == "PagerDuty" {
		return false
	}
	if acker == actor.ID || (actor.Name != "" && strings.EqualFold(acker, actor.Name)) {
		return true
	}
	if h.chat == nil {
		return false
	}
	email, err := h.chat.dir.EmailOfUser(ctx, actor.ID)
	return err == nil && email != "" && strings.EqualFold(email, acker)
}
