package incidents

import (
	"context"
	"fmt"
	"strings"

	"github.com/reins-oss/reins/incidents/outbox"
)

// AnnounceWaiting posts the queue in the agent's incident channel (once a
// minute) with a timeline entry, and pages the kill authority once per
// incident: a storm of breaches makes one page, not one per session.
func (s *Service) AnnounceWaiting(ctx context.Context, w AutoHaltWaiting) error {
	ag, err := s.LookupAgent(w.Agent)
	if err != nil {
		return err
	}
	actor := PolicyActor(ag.Name, "escalation")
	now := s.clock.Now()
	text := w.Text(now)
	err = s.RetryTx(ctx, func(q Queries) error {
		inc, _, err := s.haltIncident(ctx, q, HaltCommand{Action: ActionHalt, IncidentID: w.IncidentID, Actor: actor}, ag)
		if err != nil {
			return err
		}
		key := fmt.Sprintf("inc-%d/auto_halt_queue/%d", inc.ID, now.Unix()/60)
		queued := true
		if s.chat != nil {
			msg := Message{Style: StyleWarning, Title: text, Mention: Mentionable(ag.KillAuthority.Users, ag.KillAuthority.Usergroups),
				Fields: []Field{{Label: "By", Value: actor.String()}, {Label: "Waiting", Value: fmt.Sprint(w.Waiting)}}}
			if queued, err = s.EnqueueOnce(ctx, q, inc.ID, KindPost, key, msg); err != nil {
				return err
			}
		}
		if queued {
			if err := AppendEvent(ctx, q, inc.ID, now, EventAutoHalt, actor, text, map[string]any{
				"outcome": AutoHaltQueued, "waiting": w.Waiting, "limit": w.Limit, "overflow": w.Overflow}); err != nil {
				return err
			}
		}
		if s.pager == nil {
			return nil
		}
		return s.Enqueue(ctx, q, inc.ID, outbox.LaneUrgent, KindQueuePage, fmt.Sprintf("inc-%d/page/auto-halt-queue", inc.ID),
			QueuePagePayload{Summary: text, Waiting: w.Waiting})
	})
	if err != nil {
		return fmt.Errorf("announce the automatic-halt queue of %s: %w", ag.Name, err)
	}
	s.Kick()
	return nil
}

// RecordLeave records on the agent's incident that a person with kill
// authority said to leave a breaching session running.
func (s *Service) RecordLeave(ctx context.Context, agent, session string, actor Actor, breaches int) error {
	ag, err := s.LookupAgent(agent)
	if err != nil {
		return err
	}
	text := fmt.Sprintf("%s said to leave session %s of %s running: %d waiting breach(es) will not be acted on. To halt it after all: /agent kill %s %s",
		actor.String(), session, ag.Name, breaches, ag.Name, session)
	err = s.RetryTx(ctx, func(q Queries) error {
		inc, _, err := s.haltIncident(ctx, q, HaltCommand{Action: ActionHalt, Actor: actor}, ag)
		if err != nil {
			return err
		}
		if s.chat != nil {
			msg := Message{Style: StyleInfo, Title: text}
			key := fmt.Sprintf("inc-%d/leave/%s/%d", inc.ID, strings.ReplaceAll(session, "/", "_"), s.clock.Now().UnixNano())
			if err := s.Enqueue(ctx, q, inc.ID, outbox.LaneChat, KindPost, key, msg); err != nil {
				return err
			}
		}
		return AppendEvent(ctx, q, inc.ID, s.clock.Now(), EventAutoHalt, actor, text, map[string]any{
			"outcome": "left", "session": session, "breaches": breaches})
	})
	if err != nil {
		return fmt.Errorf("record leave of session %s of %s: %w", session, ag.Name, err)
	}
	s.Kick()
	return nil
}
