package halting

import (
	"context"
	"fmt"
	"strings"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
)

// AnnounceWaiting posts the queue in the agent's incident channel (once a
// minute) with a timeline entry, and pages the kill authority once per
// incident: a storm of breaches makes one page, not one per session.
func (s *Policy) AnnounceWaiting(ctx context.Context, w incidents.AutoHaltWaiting) error {
	ag, err := s.core.LookupAgent(w.Agent)
	if err != nil {
		return err
	}
	actor := incidents.PolicyActor(ag.Name, "escalation")
	now := s.core.Now()
	text := w.Text(now)
	err = s.core.RetryTx(ctx, func(q incidents.Queries) error {
		inc, _, err := s.haltIncident(ctx, q, incidents.HaltCommand{Action: incidents.ActionHalt, IncidentID: w.IncidentID, Actor: actor}, ag)
		if err != nil {
			return err
		}
		key := fmt.Sprintf("inc-%d/auto_halt_queue/%d", inc.ID, now.Unix()/60)
		queued := true
		if s.core.Chat() != nil {
			msg := incidents.Message{Style: incidents.StyleWarning, Title: text, Mention: incidents.Mentionable(ag.KillAuthority.Users, ag.KillAuthority.Usergroups),
				Fields: []incidents.Field{{Label: "By", Value: actor.String()}, {Label: "Waiting", Value: fmt.Sprint(w.Waiting)}}}
			if queued, err = s.core.EnqueueOnce(ctx, q, inc.ID, incidents.KindPost, key, msg); err != nil {
				return err
			}
		}
		if queued {
			if err := incidents.AppendEvent(ctx, q, inc.ID, now, incidents.EventAutoHalt, actor, text, map[string]any{
				"outcome": incidents.AutoHaltQueued, "waiting": w.Waiting, "limit": w.Limit, "overflow": w.Overflow}); err != nil {
				return err
			}
		}
		if s.core.Pager() == nil {
			return nil
		}
		return s.core.Enqueue(ctx, q, inc.ID, outbox.LaneUrgent, incidents.KindQueuePage, fmt.Sprintf("inc-%d/page/auto-halt-queue", inc.ID),
			incidents.QueuePagePayload{Summary: text, Waiting: w.Waiting})
	})
	if err != nil {
		return fmt.Errorf("announce the automatic-halt queue of %s: %w", ag.Name, err)
	}
	s.core.Kick()
	return nil
}

// RecordLeave records on the agent's incident that a person with kill
// authority said to leave a breaching session running.
func (s *Policy) RecordLeave(ctx context.Context, agent, session string, actor incidents.Actor, breaches int) error {
	ag, err := s.core.LookupAgent(agent)
	if err != nil {
		return err
	}
	text := fmt.Sprintf("%s said to leave session %s of %s running: %d waiting breach(es) will not be acted on. To halt it after all: /agent kill %s %s",
		actor.String(), session, ag.Name, breaches, ag.Name, session)
	err = s.core.RetryTx(ctx, func(q incidents.Queries) error {
		inc, _, err := s.haltIncident(ctx, q, incidents.HaltCommand{Action: incidents.ActionHalt, Actor: actor}, ag)
		if err != nil {
			return err
		}
		if s.core.Chat() != nil {
			msg := incidents.Message{Style: incidents.StyleInfo, Title: text}
			key := fmt.Sprintf("inc-%d/leave/%s/%d", inc.ID, strings.ReplaceAll(session, "/", "_"), s.core.Now().UnixNano())
			if err := s.core.Enqueue(ctx, q, inc.ID, outbox.LaneChat, incidents.KindPost, key, msg); err != nil {
				return err
			}
		}
		return incidents.AppendEvent(ctx, q, inc.ID, s.core.Now(), incidents.EventAutoHalt, actor, text, map[string]any{
			"outcome": "left", "session": session, "breaches": breaches})
	})
	if err != nil {
		return fmt.Errorf("record leave of session %s of %s: %w", session, ag.Name, err)
	}
	s.core.Kick()
	return nil
}
