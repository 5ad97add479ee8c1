package incidents

import (
	"context"
	"fmt"
	"strings"
	"time"

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
	ChoiceNoImpact: true, ChoiceImpactFound: true, ChoiceUnknown: true, ChoiceNotApplicable: true,
}

// checklistItemPayload is the payload of a KindPostChecklistItem item.
// Update asks only to refresh a message already posted.
type checklistItemPayload struct {
	Item   string `json:"item"`
	Update bool   `json:"update,omitempty"`
}

// StartChecklist creates the incident's blast-radius checklist and posts its
// thread, or, when it exists, resumes it: nothing is recreated, and the next
// unanswered item is shown again (posted if it never was, refreshed if it was).
func (s *Service) StartChecklist(ctx context.Context, actor Actor, incidentID int64) (*Checklist, error) {
	var c *Checklist
	// The sessions' evidence is read before the transaction: reading it may
	// pull from a trace tool, which writes.
	var recs []sessions.Record
	if inc, err := s.store.FindIncident(ctx, incidentID); err == nil {
		recs = s.incidentSessions(ctx, inc)
	}
	err := s.RetryTx(ctx, func(q Queries) error {
		inc, err := q.FindIncident(ctx, incidentID)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		c, err = q.FindChecklist(ctx, inc.ID)
		switch {
		case err == nil:
			return s.enqueueResume(ctx, q, inc, c, actor, now)
		case ErrorCode(err) != ENOTFOUND:
			return fmt.Errorf("load checklist of incident %d: %w", inc.ID, err)
		}
		c = s.newChecklist(inc, actor, now)
		s.addSessionEvidence(c, inc, recs)
		if err := q.CreateChecklist(ctx, c); err != nil {
			return fmt.Errorf("create checklist of incident %d: %w", inc.ID, err)
		}
		if _, err := appendEventID(ctx, q, inc.ID, now, EventChecklistStarted, actor,
			fmt.Sprintf("%s started the blast-radius checklist (%s)", ActorLabel(actor), words.Count(len(c.Items), "item")),
			map[string]any{"items": len(c.Items)}); err != nil {
			return err
		}
		return s.enqueueChecklistStart(ctx, q, inc, c)
	})
	if err != nil {
		return nil, fmt.Errorf("start checklist of incident %d: %w", incidentID, err)
	}
	s.Kick()
	return c, nil
}

func (s *Service) enqueueChecklistStart(ctx context.Context, q outbox.Store, inc *Incident, c *Checklist) error {
	if s.chat == nil {
		return nil
	}
	if err := s.Enqueue(ctx, q, inc.ID, outbox.LaneChat, KindPostChecklistParent, fmt.Sprintf("inc-%d/checklist/parent", inc.ID), nil); err != nil {
		return err
	}
	if next := c.Next(); next != nil {
		return s.Enqueue(ctx, q, inc.ID, outbox.LaneChat, KindPostChecklistItem,
			fmt.Sprintf("inc-%d/checklist/post/%s", inc.ID, next.Key), checklistItemPayload{Item: next.Key})
	}
	return nil
}

// enqueueResume shows the thread again: the parent's progress refreshed and
// the next unanswered item posted, or refreshed when it already was, so a
// resume never duplicates a message. Keys carry the time so each resume acts.
func (s *Service) enqueueResume(ctx context.Context, q outbox.Store, inc *Incident, c *Checklist, actor Actor, now time.Time) error {
	if s.chat == nil {
		return nil
	}
	stamp := fmt.Sprintf("%d/%s", now.UnixNano(), actor.ID)
	if err := s.Enqueue(ctx, q, inc.ID, outbox.LaneChat, KindPostChecklistParent,
		fmt.Sprintf("inc-%d/checklist/parent/resume/%s", inc.ID, stamp), nil); err != nil {
		return err
	}
	next := c.Next()
	if next == nil {
		return nil
	}
	return s.Enqueue(ctx, q, inc.ID, outbox.LaneChat, KindPostChecklistItem,
		fmt.Sprintf("inc-%d/checklist/post/%s/resume/%s", inc.ID, next.Key, stamp), checklistItemPayload{Item: next.Key})
}

// newChecklist builds the items: one per blast-radius system of the agent
// (none when the agent is unowned or gone from the registry), then the
// standard items.
func (s *Service) newChecklist(inc *Incident, actor Actor, now time.Time) *Checklist {
	c := &Checklist{IncidentID: inc.ID, CreatedAt: now, CreatedBy: actor, LastActivityAt: now}
	var ag *ownership.Agent
	if !inc.Unowned {
		ag = FindAgent(s.RegistryOrEmpty(), inc.Agent)
	}
	if ag != nil {
		seen := map[string]bool{}
		for _, b := range ag.BlastRadius {
			key := "blast:" + Slug(b.System)
			if seen[key] {
				key = fmt.Sprintf("%s-%d", key, len(c.Items)+1)
			}
			seen[key] = true
			c.Items = append(c.Items, &ChecklistItem{Key: key, Position: len(c.Items) + 1,
				Question: blastQuestion(inc.Agent, b, inc.Sessions), Check: b.Check, Owner: b.Owner,
				Link: fillSessions(b.Link, inc.Sessions)})
		}
	}
	for _, std := range standardItems {
		c.Items = append(c.Items, &ChecklistItem{Key: std.Key, Position: len(c.Items) + 1, Question: std.Question})
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
func (s *Service) AnswerChecklist(ctx context.Context, actor Actor, incidentID int64, itemKey, choice, details string) (*Checklist, error) {
	if !validChoices[choice] {
		return nil, Errorf(EINVALID, "Unknown answer %q: use no_impact, impact_found, unknown or not_applicable.", choice)
	}
	details = strings.TrimSpace(details)
	if choice == ChoiceImpactFound && details == "" {
		return nil, Errorf(EINVALID, "Say what was found: what, and how many records, messages or users.")
	}
	var c *Checklist
	err := s.RetryTx(ctx, func(q Queries) error {
		var err error
		c, err = s.loadChecklist(ctx, q, incidentID)
		if err != nil {
			return err
		}
		it := findItem(c, itemKey)
		if it == nil {
			return Errorf(EINVALID, "Incident #%d's checklist has no item %q.", incidentID, itemKey)
		}
		now := s.clock.Now()
		prev := it.Choice
		who := actor
		it.Choice, it.Details, it.AnsweredBy, it.AnsweredAt = choice, details, &who, &now
		c.LastActivityAt, c.NudgeCount = now, 0
		if err := q.UpdateChecklist(ctx, c); err != nil {
			return fmt.Errorf("save answer to %s: %w", itemKey, err)
		}
		eventID, err := appendEventID(ctx, q, incidentID, now, EventChecklistAnswered, actor, answerText(actor, it, prev),
			map[string]any{"item": it.Key, "question": it.Question, "choice": choice, "previous": prev, "details": details})
		if err != nil {
			return err
		}
		return s.enqueueAnswered(ctx, q, incidentID, c, it, eventID)
	})
	if err != nil {
		return nil, fmt.Errorf("answer %s of incident %d: %w", itemKey, incidentID, err)
	}
	s.Kick()
	return c, nil
}

// checklistReader is what loadChecklist reads: an incident and its checklist.
type checklistReader interface {
	IncidentStore
	ChecklistStore
}

func (s *Service) loadChecklist(ctx context.Context, q checklistReader, incidentID int64) (*Checklist, error) {
	if _, err := q.FindIncident(ctx, incidentID); err != nil {
		return nil, err
	}
	c, err := q.FindChecklist(ctx, incidentID)
	if ErrorCode(err) == ENOTFOUND {
		return nil, Errorf(ENOTFOUND, "Incident #%d has no checklist yet: start it with %s.", incidentID,
			s.HowToEach("checklist", fmt.Sprintf("checklist %d", incidentID)))
	}
	return c, err
}

func findItem(c *Checklist, key string) *ChecklistItem {
	for _, it := range c.Items {
		if it.Key == key {
			return it
		}
	}
	return nil
}

func answerText(actor Actor, it *ChecklistItem, prev string) string {
	text := fmt.Sprintf("%s answered %q: %s", ActorLabel(actor), Clip(it.Question, 120), it.Choice)
	if prev != "" && prev != it.Choice {
		text = fmt.Sprintf("%s changed the answer to %q: %s -> %s", ActorLabel(actor), Clip(it.Question, 120), prev, it.Choice)
	}
	if it.Details != "" {
		text += " (" + Clip(it.Details, 200) + ")"
	}
	return text
}

// enqueueAnswered queues the thread's updates after an answer; eventID makes
// the keys of this answer's updates unique.
func (s *Service) enqueueAnswered(ctx context.Context, q outbox.Store, incID int64, c *Checklist, it *ChecklistItem, eventID int64) error {
	if s.chat == nil {
		return nil
	}
	key := func(what string) string { return fmt.Sprintf("inc-%d/checklist/%s/%d", incID, what, eventID) }
	if err := s.Enqueue(ctx, q, incID, outbox.LaneChat, KindPostChecklistItem, key("answered/"+it.Key),
		checklistItemPayload{Item: it.Key, Update: true}); err != nil {
		return err
	}
	if next := c.Next(); next != nil && next.PostedTS == "" {
		if err := s.Enqueue(ctx, q, incID, outbox.LaneChat, KindPostChecklistItem,
			fmt.Sprintf("inc-%d/checklist/post/%s", incID, next.Key), checklistItemPayload{Item: next.Key}); err != nil {
			return err
		}
	}
	if err := s.Enqueue(ctx, q, incID, outbox.LaneChat, KindPostChecklistParent, key("progress"), nil); err != nil {
		return err
	}
	return s.Enqueue(ctx, q, incID, outbox.LaneRefresh, KindUpdateSummary, fmt.Sprintf("inc-%d/update_summary/checklist/%d", incID, eventID), nil)
}

// SnoozeReminders silences the incident's checklist and postmortem
// reminders for d.
func (s *Service) SnoozeReminders(ctx context.Context, actor Actor, incidentID int64, d time.Duration) error {
	if d <= 0 {
		return Errorf(EINVALID, "Snooze for a positive duration, such as 1h.")
	}
	return s.setReminders(ctx, actor, incidentID, func(c *Checklist, now time.Time) (EventKind, string, any) {
		until := now.Add(d)
		if c != nil {
			c.SnoozedUntil = &until
		}
		return EventReminderSnoozed, fmt.Sprintf("%s snoozed reminders until %s", ActorLabel(actor), until.UTC().Format("2006-01-02 15:04 UTC")),
			map[string]any{"until": until.UTC()}
	})
}

// StopReminders stops the incident's checklist and postmortem reminders.
func (s *Service) StopReminders(ctx context.Context, actor Actor, incidentID int64) error {
	return s.setReminders(ctx, actor, incidentID, func(c *Checklist, now time.Time) (EventKind, string, any) {
		if c != nil {
			c.RemindersStopped = true
		}
		return EventRemindersStopped, ActorLabel(actor) + " stopped reminders", nil
	})
}

// setReminders changes the checklist's reminder state (when there is a
// checklist) and records it on the timeline, where the postmortem reminder
// job reads it too.
func (s *Service) setReminders(ctx context.Context, actor Actor, incidentID int64,
	change func(c *Checklist, now time.Time) (EventKind, string, any)) error {
	err := s.RetryTx(ctx, func(q Queries) error {
		if _, err := q.FindIncident(ctx, incidentID); err != nil {
			return err
		}
		c, err := q.FindChecklist(ctx, incidentID)
		if err != nil && ErrorCode(err) != ENOTFOUND {
			return fmt.Errorf("load checklist: %w", err)
		}
		now := s.clock.Now()
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
func appendEventID(ctx context.Context, q TimelineStore, incID int64, at time.Time, kind EventKind, actor Actor, text string, data any) (int64, error) {
	e := &Event{IncidentID: incID, At: at, Kind: kind, Actor: actor, Text: text, Data: JSONData(data)}
	if err := q.AppendEvent(ctx, e); err != nil {
		return 0, fmt.Errorf("append %s event to incident %d: %w", kind, incID, err)
	}
	return e.ID, nil
}

// Checklist returns an incident's checklist; ENOTFOUND says how to start it.
func (s *Service) Checklist(ctx context.Context, incidentID int64) (*Checklist, error) {
	return s.loadChecklist(ctx, s.store, incidentID)
}
