package aftermath

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/incidents/words"
	"github.com/reins-oss/reins/ownership"
)

// maxSessionsInQuestion keeps a blast-radius question readable when an
// incident names many sessions; the link and the summary list them all.
const maxSessionsInQuestion = 5

// standardItems are the checklist items every incident gets after the
// agent's own blast-radius systems (docs/architecture.md, checklist), in order.
var standardItems = []struct{ Key, Question string }{
	{"std:containment", "Containment: every halt verified; anything still running (queued jobs, crons, sub-agents, retries)?"},
	{"std:sessions", "Sessions and end users affected (count, list)."},
	{"std:tool_calls", "Tool calls made, especially any outside the agent's allowed scope."},
	{"std:irreversible", "Irreversible external effects (messages sent, payments, records changed or deleted) and the compensations owed."},
	{"std:data_exposure", "Data exposure: personal data, credentials or internal URLs in outputs or tool calls, and who received them."},
	{"std:spend", "Spend: tokens and money per session and in total, against budget."},
	{"std:propagation", "Propagation: downstream agents or systems that consumed the output; memory or vector-store writes to quarantine."},
	{"std:credentials", "Credentials the agent held that must be rotated."},
	{"std:people", "People who saw or acted on wrong output."},
	{"std:provenance", "Input provenance: untrusted content that preceded the deviation (possible injection), preserved and quarantined."},
	{"std:evidence", "Evidence preserved: session and trace links captured before retention expires."},
	{"std:communications", "Communications: who must be told, and whether disclosure is required."},
}

var validChoices = map[string]bool{
	incidents.ChoiceNoImpact: true, incidents.ChoiceImpactFound: true, incidents.ChoiceUnknown: true, incidents.ChoiceNotApplicable: true,
}

// StartChecklist creates the incident's blast-radius checklist and posts its
// thread, or, when it exists, resumes it: nothing is recreated, and the next
// unanswered item is shown again (posted if it never was, refreshed if it was).
func (s *Service) StartChecklist(ctx context.Context, actor incidents.Actor, incidentID int64) (*incidents.Checklist, error) {
	var c *incidents.Checklist
	// The sessions' evidence is read before the transaction: reading it may
	// pull from a trace tool, which writes.
	var recs []sessions.Record
	if inc, err := s.core.Store().FindIncident(ctx, incidentID); err == nil {
		recs = s.core.SessionRecordsOf(ctx, inc, true)
	}
	err := s.core.RetryTx(ctx, func(q incidents.Queries) error {
		inc, err := q.FindIncident(ctx, incidentID)
		if err != nil {
			return err
		}
		now := s.core.Now()
		c, err = q.FindChecklist(ctx, inc.ID)
		switch {
		case err == nil:
			return s.enqueueResume(ctx, q, inc, c, actor, now)
		case incidents.ErrorCode(err) != incidents.ENOTFOUND:
			return fmt.Errorf("load checklist of incident %d: %w", inc.ID, err)
		}
		c = s.newChecklist(inc, actor, now)
		s.addSessionEvidence(c, inc, recs)
		if err := q.CreateChecklist(ctx, c); err != nil {
			return fmt.Errorf("create checklist of incident %d: %w", inc.ID, err)
		}
		if _, err := appendEventID(ctx, q, inc.ID, now, incidents.EventChecklistStarted, actor,
			fmt.Sprintf("%s started the blast-radius checklist (%s)", incidents.ActorLabel(actor), words.Count(len(c.Items), "item")),
			map[string]any{"items": len(c.Items)}); err != nil {
			return err
		}
		return s.enqueueChecklistStart(ctx, q, inc, c)
	})
	if err != nil {
		return nil, fmt.Errorf("start checklist of incident %d: %w", incidentID, err)
	}
	s.core.Kick()
	return c, nil
}

func (s *Service) enqueueChecklistStart(ctx context.Context, q outbox.Store, inc *incidents.Incident, c *incidents.Checklist) error {
	if s.core.Chat() == nil {
		return nil
	}
	if err := s.core.Enqueue(ctx, q, inc.ID, outbox.LaneChat, incidents.KindPostChecklistParent, fmt.Sprintf("inc-%d/checklist/parent", inc.ID), nil); err != nil {
		return err
	}
	if next := c.Next(); next != nil {
		return s.core.Enqueue(ctx, q, inc.ID, outbox.LaneChat, incidents.KindPostChecklistItem,
			fmt.Sprintf("inc-%d/checklist/post/%s", inc.ID, next.Key), incidents.ChecklistItemPayload{Item: next.Key})
	}
	return nil
}

// enqueueResume shows the thread again: the parent's progress refreshed and
// the next unanswered item posted, or refreshed when it already was, so a
// resume never duplicates a message. Keys carry the time so each resume acts.
func (s *Service) enqueueResume(ctx context.Context, q outbox.Store, inc *incidents.Incident, c *incidents.Checklist, actor incidents.Actor, now time.Time) error {
	if s.core.Chat() == nil {
		return nil
	}
	stamp := fmt.Sprintf("%d/%s", now.UnixNano(), actor.ID)
	if err := s.core.Enqueue(ctx, q, inc.ID, outbox.LaneChat, incidents.KindPostChecklistParent,
		fmt.Sprintf("inc-%d/checklist/parent/resume/%s", inc.ID, stamp), nil); err != nil {
		return err
	}
	next := c.Next()
	if next == nil {
		return nil
	}
	return s.core.Enqueue(ctx, q, inc.ID, outbox.LaneChat, incidents.KindPostChecklistItem,
		fmt.Sprintf("inc-%d/checklist/post/%s/resume/%s", inc.ID, next.Key, stamp), incidents.ChecklistItemPayload{Item: next.Key})
}

// newChecklist builds the items: one per blast-radius system of the agent
// (none when the agent is unowned or gone from the registry), then the
// standard items.
func (s *Service) newChecklist(inc *incidents.Incident, actor incidents.Actor, now time.Time) *incidents.Checklist {
	c := &incidents.Checklist{IncidentID: inc.ID, CreatedAt: now, CreatedBy: actor, LastActivityAt: now}
	var ag *ownership.Agent
	if !inc.Unowned {
		ag = incidents.FindAgent(s.core.Registry(), inc.Agent)
	}
	if ag != nil {
		seen := map[string]bool{}
		for _, b := range ag.BlastRadius {
			key := "blast:" + incidents.Slug(b.System)
			if seen[key] {
				key = fmt.Sprintf("%s-%d", key, len(c.Items)+1)
			}
			seen[key] = true
			c.Items = append(c.Items, &incidents.ChecklistItem{Key: key, Position: len(c.Items) + 1,
				Question: blastQuestion(inc.Agent, b, inc.Sessions), Check: b.Check, Owner: b.Owner,
				Link: fillSessions(b.Link, inc.Sessions)})
		}
	}
	for _, std := range standardItems {
		c.Items = append(c.Items, &incidents.ChecklistItem{Key: std.Key, Position: len(c.Items) + 1, Question: std.Question})
	}
	return c
}

// blastQuestion asks whether the agent changed something in one system
// during the incident's sessions.
func blastQuestion(agent string, b ownership.BlastItem, sessions []string) string {
	verb := "write to"
	if len(b.Access) > 0 && !containsFold(b.Access, "write") {
		verb = "use " + strings.Join(b.Access, "/") + " on"
		if len(b.Access) == 1 && strings.EqualFold(b.Access[0], "send") {
			verb = "send through"
		}
	}
	return fmt.Sprintf("Did %s %s %s %s?", agent, verb, b.System, sessionPhrase(sessions))
}

func containsFold(list []string, want string) bool {
	for _, v := range list {
		if strings.EqualFold(v, want) {
			return true
		}
	}
	return false
}

func sessionPhrase(sessions []string) string {
	switch {
	case len(sessions) == 0:
		return "during this incident"
	case len(sessions) == 1:
		return "during session " + sessions[0]
	case len(sessions) <= maxSessionsInQuestion:
		return "during sessions " + strings.Join(sessions, ", ")
	}
	return fmt.Sprintf("during sessions %s and %d more", strings.Join(sessions[:maxSessionsInQuestion], ", "),
		len(sessions)-maxSessionsInQuestion)
}

// fillSessions puts the incident's first session into a link template (a
// template takes one session; the sessions section links every one). A
// template that needs a session the incident does not have gives no link:
// "?session=" would open a page about nothing, or about everything.
func fillSessions(link string, sessions []string) string {
	if !ownership.HasSessionPlaceholder(link) {
		return link
	}
	if len(sessions) == 0 || sessions[0] == "" {
		return ""
	}
	return ownership.SessionLink(link, sessions[0])
}

// AnswerChecklist records an answer (or a changed answer) to one item with
// its timeline event, resets the reminder state, and queues the thread's
// updates: the item's message in place, the next item, the progress.
func (s *Service) AnswerChecklist(ctx context.Context, actor incidents.Actor, incidentID int64, itemKey, choice, details string) (*incidents.Checklist, error) {
	if !validChoices[choice] {
		return nil, incidents.Errorf(incidents.EINVALID, "Unknown answer %q: use no_impact, impact_found, unknown or not_applicable.", choice)
	}
	details = strings.TrimSpace(details)
	if choice == incidents.ChoiceImpactFound && details == "" {
		return nil, incidents.Errorf(incidents.EINVALID, "Say what was found: what, and how many records, messages or users.")
	}
	var c *incidents.Checklist
	err := s.core.RetryTx(ctx, func(q incidents.Queries) error {
		var err error
		c, err = s.loadChecklist(ctx, q, incidentID)
		if err != nil {
			return err
		}
		it := incidents.FindItemByKey(c, itemKey)
		if it == nil {
			return incidents.Errorf(incidents.EINVALID, "Incident #%d's checklist has no item %q.", incidentID, itemKey)
		}
		now := s.core.Now()
		prev := it.Choice
		who := actor
		it.Choice, it.Details, it.AnsweredBy, it.AnsweredAt = choice, details, &who, &now
		c.LastActivityAt, c.NudgeCount = now, 0
		if err := q.UpdateChecklist(ctx, c); err != nil {
			return fmt.Errorf("save answer to %s: %w", itemKey, err)
		}
		eventID, err := appendEventID(ctx, q, incidentID, now, incidents.EventChecklistAnswered, actor, answerText(actor, it, prev),
			map[string]any{"item": it.Key, "question": it.Question, "choice": choice, "previous": prev, "details": details})
		if err != nil {
			return err
		}
		return s.enqueueAnswered(ctx, q, incidentID, c, it, eventID)
	})
	if err != nil {
		return nil, fmt.Errorf("answer %s of incident %d: %w", itemKey, incidentID, err)
	}
	s.core.Kick()
	return c, nil
}

// checklistReader is what loadChecklist reads: an incident and its checklist.
type checklistReader interface {
	incidents.IncidentStore
	incidents.ChecklistStore
}

func (s *Service) loadChecklist(ctx context.Context, q checklistReader, incidentID int64) (*incidents.Checklist, error) {
	if _, err := q.FindIncident(ctx, incidentID); err != nil {
		return nil, err
	}
	c, err := q.FindChecklist(ctx, incidentID)
	if incidents.ErrorCode(err) == incidents.ENOTFOUND {
		return nil, incidents.Errorf(incidents.ENOTFOUND, "Incident #%d has no checklist yet: start it with %s.", incidentID,
			s.core.HowToEach("checklist", fmt.Sprintf("checklist %d", incidentID)))
	}
	return c, err
}

func answerText(actor incidents.Actor, it *incidents.ChecklistItem, prev string) string {
	text := fmt.Sprintf("%s answered %q: %s", incidents.ActorLabel(actor), incidents.Clip(it.Question, 120), it.Choice)
	if prev != "" && prev != it.Choice {
		text = fmt.Sprintf("%s changed the answer to %q: %s -> %s", incidents.ActorLabel(actor), incidents.Clip(it.Question, 120), prev, it.Choice)
	}
	if it.Details != "" {
		text += " (" + incidents.Clip(it.Details, 200) + ")"
	}
	return text
}

// enqueueAnswered queues the thread's updates after an answer; eventID makes
// the keys of this answer's updates unique.
func (s *Service) enqueueAnswered(ctx context.Context, q outbox.Store, incID int64, c *incidents.Checklist, it *incidents.ChecklistItem, eventID int64) error {
	if s.core.Chat() == nil {
		return nil
	}
	key := func(what string) string { return fmt.Sprintf("inc-%d/checklist/%s/%d", incID, what, eventID) }
	if err := s.core.Enqueue(ctx, q, incID, outbox.LaneChat, incidents.KindPostChecklistItem, key("answered/"+it.Key),
		incidents.ChecklistItemPayload{Item: it.Key, Update: true}); err != nil {
		return err
	}
	if next := c.Next(); next != nil && next.PostedTS == "" {
		if err := s.core.Enqueue(ctx, q, incID, outbox.LaneChat, incidents.KindPostChecklistItem,
			fmt.Sprintf("inc-%d/checklist/post/%s", incID, next.Key), incidents.ChecklistItemPayload{Item: next.Key}); err != nil {
			return err
		}
	}
	if err := s.core.Enqueue(ctx, q, incID, outbox.LaneChat, incidents.KindPostChecklistParent, key("progress"), nil); err != nil {
		return err
	}
	return s.core.Enqueue(ctx, q, incID, outbox.LaneRefresh, incidents.KindUpdateSummary, fmt.Sprintf("inc-%d/update_summary/checklist/%d", incID, eventID), nil)
}

// SnoozeReminders silences the incident's checklist and postmortem
// reminders for d.
func (s *Service) SnoozeReminders(ctx context.Context, actor incidents.Actor, incidentID int64, d time.Duration) error {
	if d <= 0 {
		return incidents.Errorf(incidents.EINVALID, "Snooze for a positive duration, such as 1h.")
	}
	return s.setReminders(ctx, actor, incidentID, func(c *incidents.Checklist, now time.Time) (incidents.EventKind, string, any) {
		until := now.Add(d)
		if c != nil {
			c.SnoozedUntil = &until
		}
		return incidents.EventReminderSnoozed, fmt.Sprintf("%s snoozed reminders until %s", incidents.ActorLabel(actor), until.UTC().Format("2006-01-02 15:04 UTC")),
			map[string]any{"until": until.UTC()}
	})
}

// StopReminders stops the incident's checklist and postmortem reminders.
func (s *Service) StopReminders(ctx context.Context, actor incidents.Actor, incidentID int64) error {
	return s.setReminders(ctx, actor, incidentID, func(c *incidents.Checklist, now time.Time) (incidents.EventKind, string, any) {
		if c != nil {
			c.RemindersStopped = true
		}
		return incidents.EventRemindersStopped, incidents.ActorLabel(actor) + " stopped reminders", nil
	})
}

// setReminders changes the checklist's reminder state (when there is a
// checklist) and records it on the timeline, where the postmortem reminder
// job reads it too.
func (s *Service) setReminders(ctx context.Context, actor incidents.Actor, incidentID int64,
	change func(c *incidents.Checklist, now time.Time) (incidents.EventKind, string, any)) error {
	err := s.core.RetryTx(ctx, func(q incidents.Queries) error {
		if _, err := q.FindIncident(ctx, incidentID); err != nil {
			return err
		}
		c, err := q.FindChecklist(ctx, incidentID)
		if err != nil && incidents.ErrorCode(err) != incidents.ENOTFOUND {
			return fmt.Errorf("load checklist: %w", err)
		}
		now := s.core.Now()
		kind, text, data := change(c, now)
		if c != nil {
			if err := q.UpdateChecklist(ctx, c); err != nil {
				return fmt.Errorf("save reminder state: %w", err)
			}
		}
		_, err = appendEventID(ctx, q, incidentID, now, kind, actor, text, data)
		return err
	})
	if err != nil {
		return fmt.Errorf("change reminders of incident %d: %w", incidentID, err)
	}
	return nil
}

// appendEventID appends an event and returns its ID, which keys the side
// effects it causes.
func appendEventID(ctx context.Context, q incidents.TimelineStore, incID int64, at time.Time, kind incidents.EventKind, actor incidents.Actor, text string, data any) (int64, error) {
	e := &incidents.Event{IncidentID: incID, At: at, Kind: kind, Actor: actor, Text: text, Data: incidents.JSONData(data)}
	if err := q.AppendEvent(ctx, e); err != nil {
		return 0, fmt.Errorf("append %s event to incident %d: %w", kind, incID, err)
	}
	return e.ID, nil
}

// Checklist returns an incident's checklist; ENOTFOUND says how to start it.
func (s *Service) Checklist(ctx context.Context, incidentID int64) (*incidents.Checklist, error) {
	return s.loadChecklist(ctx, s.core.Store(), incidentID)
}

// addSessionEvidence writes into each blast-radius item what the sessions
// recorded for its system (or that nothing was), and into the tool-calls
// item the calls outside the declared blast radius. A person still answers.
func (s *Service) addSessionEvidence(c *incidents.Checklist, inc *incidents.Incident, recs []sessions.Record) {
	if len(recs) == 0 || inc.Unowned {
		return
	}
	ag := incidents.FindAgent(s.core.Registry(), inc.Agent)
	if ag == nil || !ag.DeclaresTools() {
		return
	}
	steps := incidents.SessionSteps(recs)
	bySlug := map[string]string{}
	for _, b := range ag.BlastRadius {
		bySlug["blast:"+incidents.Slug(b.System)] = b.System
	}
	outside := incidents.OutsideBlast(recs, ag)
	for _, it := range c.Items {
		var note string
		if system, ok := bySlug[it.Key]; ok {
			note = "Recorded: " + sessions.EvidenceOf(system, steps).String()
		} else if it.Key == "std:tool_calls" && len(outside) > 0 {
			note = "Recorded outside the declared blast radius: " + strings.Join(outside, ", ") + "."
		}
		if note == "" {
			continue
		}
		if it.Check != "" {
			it.Check += "\n"
		}
		it.Check += note
	}
}
