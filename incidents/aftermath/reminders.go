package aftermath

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/reins-oss/reins/incidents"
)

// Reminders is the aftermath's scheduled nudges: checklists that stalled
// and postmortems left unfinished, each posted once however many replicas
// run the job (incidents/jobs runs them).
type Reminders struct {
	core *incidents.Core
}

// NewReminders returns the reminders of the incidents core serves.
func NewReminders(core *incidents.Core) *Reminders { return &Reminders{core: core} }

// NudgeStalledChecklists posts a reminder in each checklist thread that has
// waited NudgeInterval since its last answer or nudge, at most NudgeMax
// times per stall, never while snoozed or after reminders were stopped. Each
// checklist is re-read and updated in its own transaction, so a second run
// (another replica, the same minute) sees the first's nudge and sends none.
// It returns how many reminders it queued.
func (s *Reminders) NudgeStalledChecklists(ctx context.Context, now time.Time) (int, error) {
	list, err := s.core.Store().FindUnfinishedChecklists(ctx)
	if err != nil {
		return 0, fmt.Errorf("find unfinished checklists: %w", err)
	}
	sent := 0
	for _, c := range list {
		if !s.nudgeDue(c, now) {
			continue // spares a transaction; nudgeChecklist checks again inside one
		}
		ok, err := s.nudgeChecklist(ctx, c.IncidentID, now)
		if err != nil {
			return sent, fmt.Errorf("nudge checklist of incident %d: %w", c.IncidentID, err)
		}
		if ok {
			sent++
		}
	}
	if sent > 0 {
		s.core.Kick()
	}
	return sent, nil
}

func (s *Reminders) nudgeDue(c *incidents.Checklist, now time.Time) bool {
	if c.RemindersStopped || (c.SnoozedUntil != nil && c.SnoozedUntil.After(now)) || c.NudgeCount >= s.core.Config().NudgeMax {
		return false
	}
	last := c.LastActivityAt
	if c.LastNudgedAt != nil && c.LastNudgedAt.After(last) {
		last = *c.LastNudgedAt
	}
	return now.Sub(last) >= s.core.Config().NudgeInterval && c.Next() != nil
}

func (s *Reminders) nudgeChecklist(ctx context.Context, incID int64, now time.Time) (bool, error) {
	sent := false
	err := s.core.RetryTx(ctx, func(q incidents.Queries) error {
		sent = false
		c, err := q.FindChecklist(ctx, incID)
		if err != nil {
			return err
		}
		inc, err := q.FindIncident(ctx, incID)
		if err != nil {
			return err
		}
		if inc.Status != incidents.StatusOpen || !s.nudgeDue(c, now) {
			return nil
		}
		next := c.Next()
		p := incidents.ReminderPayload{IncidentID: incID, Thread: incidents.ThreadChecklist, Mention: incidents.Mentionable([]string{next.Owner}),
			Text: nudgeText(inc, c, next)}
		if s.core.Chat() != nil {
			// The key names the stall and the nudge's number: a replica that
			// read the same state computes the same key and queues nothing.
			key := fmt.Sprintf("inc-%d/reminder/checklist/%d/%d", incID, c.LastActivityAt.UnixNano(), c.NudgeCount+1)
			queued, err := s.core.EnqueueOnce(ctx, q, incID, incidents.KindReminder, key, p)
			if err != nil || !queued {
				return err
			}
		}
		c.NudgeCount++
		c.LastNudgedAt = &now
		if err := q.UpdateChecklist(ctx, c); err != nil {
			return fmt.Errorf("save nudge state: %w", err)
		}
		sent = true
		return nil
	})
	return sent, err
}

func nudgeText(inc *incidents.Incident, c *incidents.Checklist, next *incidents.ChecklistItem) string {
	text := fmt.Sprintf("The blast-radius checklist for #%d (%s) is waiting: %d of %d answered. Next, item %d: %s",
		inc.ID, inc.Agent, c.Answered(), len(c.Items), next.Position, next.Question)
	if next.Owner != "" {
		text += " Owner: " + next.Owner + "."
	}
	return text
}

// RemindPostmortems reminds the channel of each resolved incident whose
// postmortem is still unfinished PostmortemDue after the resolve, at most
// once per PostmortemDue and NudgeMax times in all, unless the responders
// snoozed or stopped reminders. It returns how many reminders it queued.
func (s *Reminders) RemindPostmortems(ctx context.Context, now time.Time) (int, error) {
	sent := 0
	for offset := 0; ; offset += incidents.PageSize {
		page, err := s.core.Store().FindIncidents(ctx, incidents.IncidentFilter{Status: incidents.StatusResolved, Limit: incidents.PageSize, Offset: offset})
		if err != nil {
			return sent, fmt.Errorf("find resolved incidents: %w", err)
		}
		for _, inc := range page {
			if inc.ResolvedAt == nil || now.Sub(*inc.ResolvedAt) < s.core.Config().PostmortemDue {
				continue
			}
			ok, err := s.remindPostmortem(ctx, inc.ID, now)
			if err != nil {
				return sent, fmt.Errorf("remind postmortem of incident %d: %w", inc.ID, err)
			}
			if ok {
				sent++
			}
		}
		if len(page) < incidents.PageSize {
			break
		}
	}
	if sent > 0 {
		s.core.Kick()
	}
	return sent, nil
}

func (s *Reminders) remindPostmortem(ctx context.Context, incID int64, now time.Time) (bool, error) {
	sent := false
	err := s.core.RetryTx(ctx, func(q incidents.Queries) error {
		sent = false
		inc, err := q.FindIncident(ctx, incID)
		if err != nil {
			return err
		}
		doc, err := incidents.FindDoc(ctx, q, incID)
		if err != nil {
			return err
		}
		if doc.Finished || doc.RemindCount >= s.core.Config().NudgeMax ||
			(doc.LastRemindedAt != nil && now.Sub(*doc.LastRemindedAt) < s.core.Config().PostmortemDue) {
			return nil
		}
		if quiet, err := remindersSilenced(ctx, q, inc, now); err != nil || quiet {
			return err
		}
		answers, err := q.FindPostmortemAnswers(ctx, incID)
		if err != nil {
			return fmt.Errorf("load postmortem answers: %w", err)
		}
		if s.core.Chat() != nil {
			p := incidents.ReminderPayload{IncidentID: incID, Thread: incidents.ThreadPostmortem,
				Text: fmt.Sprintf("The postmortem of #%d (%s) is unfinished: %d of %d questions answered, resolved %s ago. "+
					"Answer the rest in the postmortem thread.", incID, inc.Agent, incidents.AnsweredQuestions(answers),
					len(incidents.PostmortemQuestions()), incidents.Span(now.Sub(*inc.ResolvedAt)))}
			key := fmt.Sprintf("inc-%d/reminder/postmortem/%d", incID, doc.RemindCount+1)
			queued, err := s.core.EnqueueOnce(ctx, q, incID, incidents.KindReminder, key, p)
			if err != nil || !queued {
				return err
			}
		}
		doc.RemindCount++
		doc.LastRemindedAt = &now
		if err := q.SavePostmortemDoc(ctx, doc); err != nil {
			return fmt.Errorf("save reminder state: %w", err)
		}
		sent = true
		return nil
	})
	return sent, err
}

// remindersSilenced reads the timeline since the resolve: the newest
// reminders_stopped or still-running reminder_snoozed silences reminders.
func remindersSilenced(ctx context.Context, q incidents.TimelineStore, inc *incidents.Incident, now time.Time) (bool, error) {
	events, err := q.FindEvents(ctx, inc.ID)
	if err != nil {
		return false, fmt.Errorf("load timeline: %w", err)
	}
	for _, e := range events {
		if inc.ResolvedAt != nil && e.At.Before(*inc.ResolvedAt) {
			continue
		}
		switch e.Kind {
		case incidents.EventRemindersStopped:
			return true, nil
		case incidents.EventReminderSnoozed:
			var d struct {
				Until time.Time `json:"until"`
			}
			if json.Unmarshal(e.Data, &d) == nil && d.Until.After(now) {
				return true, nil
			}
		}
	}
	return false, nil
}
