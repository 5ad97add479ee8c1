package incidents

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/ownership"
)

// KindQueuePage pages the kill authority, once per incident, that breaching
// sessions of its agent wait for the automatic-halt budget; payload:
// queuePagePayload. Its dedup key is the incident's with "/auto-halt-queue"
// appended: a page of its own, not a repeat PagerDuty folds into the first.
const KindQueuePage = "page_queue"

type queuePagePayload struct {
	Summary string `json:"summary"`
	Waiting int    `json:"waiting"`
}

// AutoHaltWaiting is the news that breaching sessions of an agent wait for
// its max_auto_halts_per_minute (the guard's queue).
type AutoHaltWaiting struct {
	Agent      string
	IncidentID int64 // the incident of the breaches (0: the agent's open one)
	Waiting    int   // sessions waiting
	Limit      int
	RetryAt    time.Time
	Overflow   string // ownership.OverflowHaltAgent | ownership.OverflowQueue
}

// Text says how many sessions of which agent wait, why, and what happens.
func (w AutoHaltWaiting) Text(now time.Time) string {
	what := fmt.Sprintf("by escalation.overflow: %s reins halts the whole of %s", ownership.OverflowHaltAgent, w.Agent)
	if w.Overflow == ownership.OverflowQueue {
		what = fmt.Sprintf("by escalation.overflow: %s reins halts them in the order they crossed as the budget frees (next in %s)",
			ownership.OverflowQueue, w.RetryAt.Sub(now).Round(time.Second))
	}
	return fmt.Sprintf("%d breaching sessions of %s are waiting to be halted: max_auto_halts_per_minute (%d) is spent; %s. None is dropped. To halt the agent now: /agent kill %s",
		w.Waiting, w.Agent, w.Limit, what, w.Agent)
}

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
			queuePagePayload{Summary: text, Waiting: w.Waiting})
	})
	if err != nil {
		return fmt.Errorf("announce the automatic-halt queue of %s: %w", ag.Name, err)
	}
	s.Kick()
	return nil
}

// deliverQueuePage pages that breaches wait for the automatic-halt budget.
func (s *Service) deliverQueuePage(ctx context.Context, it *outbox.Item) error {
	inc, page, err := s.pageFor(ctx, it, "trigger")
	if err != nil {
		return err
	}
	var p queuePagePayload
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
