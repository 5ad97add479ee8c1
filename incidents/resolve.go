package incidents

import (
	"context"
	"fmt"
	"strings"

	"github.com/reins-oss/reins/incidents/outbox"
)

// PostmortemQuestion is one question of the guided postmortem thread.
type PostmortemQuestion struct {
	Key      string `json:"key"`
	Question string `json:"question"`
	Hint     string `json:"hint,omitempty"`
}

// Postmortem question keys.
const (
	QuestionSummary     = "summary"
	QuestionRootCause   = "root_cause"
	QuestionWentWell    = "went_well"
	QuestionWentPoorly  = "went_poorly"
	QuestionActionItems = "action_items"
	QuestionSLAChanges  = "sla_changes"
)

// postmortemQuestions are asked in this order after a resolve.
var postmortemQuestions = []PostmortemQuestion{
	{QuestionSummary, "Summary: what happened, in two or three sentences?", "Who or what was affected, for how long, and how it ended."},
	{QuestionRootCause, "Root cause: why did the agent misbehave?", "A prompt, model, tool or data change; an input that steered it (possible injection); a missing guard."},
	{QuestionWentWell, "What went well?", "Detection, paging, the halt, the checklist: what should stay as it is."},
	{QuestionWentPoorly, "What went poorly?", "What was slow, confusing or missing."},
	{QuestionActionItems, "Action items?", "One per line: owner: what (due YYYY-MM-DD)"},
	{QuestionSLAChanges, "Do the behavioural SLAs need changing?", "Which metric, and its new max, min or allowed tools; or “no”."},
}

// PostmortemQuestions returns the questions of the postmortem thread, in order.
func PostmortemQuestions() []PostmortemQuestion {
	return append([]PostmortemQuestion(nil), postmortemQuestions...)
}

func questionIndex(key string) int {
	for i, q := range postmortemQuestions {
		if q.Key == key {
			return i
		}
	}
	return -1
}

// questionPayload is the payload of a KindPostPostmortemQuestion item.
type questionPayload struct {
	Key    string `json:"key"`
	Update bool   `json:"update,omitempty"`
}

// Resolve closes an incident in one transaction with its timeline event and
// every side effect queued: the PagerDuty resolve, the channel topic and a
// notice, the summary update, and the postmortem thread with its first
// question. An incident already resolved is ECONFLICT.
func (s *Service) Resolve(ctx context.Context, actor Actor, incidentID int64, note string) (*Incident, error) {
	note = strings.TrimSpace(note)
	var inc *Incident
	already := false
	err := s.RetryTx(ctx, func(q Queries) error {
		var err error
		if inc, err = q.FindIncident(ctx, incidentID); err != nil {
			return err
		}
		// Not an error inside the transaction: retryTx would retry a conflict.
		if already = inc.Status == StatusResolved; already {
			return nil
		}
		now := s.clock.Now()
		inc.Status, inc.ResolvedAt, inc.ResolvedBy = StatusResolved, &now, ActorLabel(actor)
		if err := q.UpdateIncident(ctx, inc); err != nil {
			return fmt.Errorf("update incident %d: %w", inc.ID, err)
		}
		text := "Resolved by " + ActorLabel(actor)
		if note != "" {
			text += ": " + note
		}
		if err := AppendEvent(ctx, q, inc.ID, now, EventResolved, actor, text, map[string]any{"note": note}); err != nil {
			return err
		}
		doc, err := s.findDoc(ctx, q, inc.ID)
		if err != nil {
			return err
		}
		if err := q.SavePostmortemDoc(ctx, doc); err != nil { // the reminder job's state starts here
			return fmt.Errorf("start postmortem of incident %d: %w", inc.ID, err)
		}
		return s.enqueueResolved(ctx, q, inc, text)
	})
	if err != nil {
		return nil, fmt.Errorf("resolve incident %d: %w", incidentID, err)
	}
	if already {
		at := ""
		if inc.ResolvedAt != nil {
			at = " at " + inc.ResolvedAt.UTC().Format("2006-01-02 15:04 UTC")
		}
		return nil, Errorf(ECONFLICT, "Incident #%d was already resolved by %s%s.", inc.ID, inc.ResolvedBy, at)
	}
	s.Kick()
	return inc, nil
}

func (s *Service) enqueueResolved(ctx context.Context, q outbox.Store, inc *Incident, text string) error {
	key := func(what string) string { return fmt.Sprintf("inc-%d/%s", inc.ID, what) }
	if s.pager != nil && (!inc.Unowned || s.cfg.DefaultRoutingKey != "") {
		if err := s.Enqueue(ctx, q, inc.ID, outbox.LaneUrgent, KindPageResolve, key(KindPageResolve), nil); err != nil {
			return err
		}
	}
	if s.chat == nil {
		return nil
	}
	steps := []struct {
		kind, key string
		payload   any
	}{
		{KindResolvedTopic, key("resolved_topic"), nil},
		{KindPost, key("resolved"), Message{Style: StyleSuccess, Title: fmt.Sprintf("✅ Incident #%d resolved", inc.ID), Text: text}},
		{KindUpdateSummary, key("update_summary/resolved"), nil},
		{KindPostPostmortemParent, key("postmortem/parent"), nil},
		{KindPostPostmortemQuestion, key("postmortem/post/" + postmortemQuestions[0].Key), questionPayload{Key: postmortemQuestions[0].Key}},
	}
	for _, st := range steps {
		if err := s.Enqueue(ctx, q, inc.ID, outbox.LaneChat, st.kind, st.key, st.payload); err != nil {
			return err
		}
	}
	return nil
}

// AnswerPostmortem saves (or replaces) the answer to one postmortem question
// with its timeline event, and queues the thread's updates: the question's
// message, the next unanswered question, and, once every question is
// answered, the finished postmortem as a file.
func (s *Service) AnswerPostmortem(ctx context.Context, actor Actor, incidentID int64, key, text string) error {
	pos := questionIndex(key)
	if pos < 0 {
		keys := make([]string, len(postmortemQuestions))
		for i, q := range postmortemQuestions {
			keys[i] = q.Key
		}
		return Errorf(EINVALID, "Unknown postmortem question %q: use one of %s.", key, strings.Join(keys, ", "))
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return Errorf(EINVALID, "Write an answer to %q.", postmortemQuestions[pos].Question)
	}
	err := s.RetryTx(ctx, func(q Queries) error {
		inc, err := q.FindIncident(ctx, incidentID)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		a := &PostmortemAnswer{IncidentID: inc.ID, Key: key, Text: text, Actor: actor, At: now}
		if err := q.SavePostmortemAnswer(ctx, a); err != nil {
			return fmt.Errorf("save postmortem answer %s: %w", key, err)
		}
		eventID, err := appendEventID(ctx, q, inc.ID, now, EventPostmortemAnswer, actor,
			fmt.Sprintf("%s answered the postmortem question %q", ActorLabel(actor), postmortemQuestions[pos].Question),
			map[string]any{"key": key, "text": text})
		if err != nil {
			return err
		}
		answers, err := q.FindPostmortemAnswers(ctx, inc.ID)
		if err != nil {
			return fmt.Errorf("load postmortem answers: %w", err)
		}
		if err := s.enqueueQuestionUpdates(ctx, q, inc.ID, key, answers, eventID); err != nil {
			return err
		}
		if answeredQuestions(answers) < len(postmortemQuestions) {
			return nil
		}
		return s.finishPostmortem(ctx, q, inc.ID)
	})
	if err != nil {
		return fmt.Errorf("answer postmortem question %s of incident %d: %w", key, incidentID, err)
	}
	s.Kick()
	return nil
}

func (s *Service) enqueueQuestionUpdates(ctx context.Context, q outbox.Store, incID int64, key string, answers []*PostmortemAnswer, eventID int64) error {
	if s.chat == nil {
		return nil
	}
	if err := s.Enqueue(ctx, q, incID, outbox.LaneChat, KindPostPostmortemQuestion,
		fmt.Sprintf("inc-%d/postmortem/answered/%s/%d", incID, key, eventID), questionPayload{Key: key, Update: true}); err != nil {
		return err
	}
	for _, pq := range postmortemQuestions {
		if answerFor(answers, pq.Key) == nil {
			if err := s.Enqueue(ctx, q, incID, outbox.LaneChat, KindPostPostmortemQuestion,
				fmt.Sprintf("inc-%d/postmortem/post/%s", incID, pq.Key), questionPayload{Key: pq.Key}); err != nil {
				return err
			}
			break
		}
	}
	return s.Enqueue(ctx, q, incID, outbox.LaneChat, KindPostPostmortemParent, fmt.Sprintf("inc-%d/postmortem/progress/%d", incID, eventID), nil)
}

// finishPostmortem keeps the rendering of a postmortem whose every question
// is answered; the first time, it marks it finished and queues it as a file.
// A later edit only refreshes the kept version.
func (s *Service) finishPostmortem(ctx context.Context, q Queries, incID int64) error {
	doc, err := s.findDoc(ctx, q, incID)
	if err != nil {
		return err
	}
	if err := s.renderInto(ctx, q, doc); err != nil {
		return err
	}
	wasFinished := doc.Finished
	doc.Finished = true
	if err := q.SavePostmortemDoc(ctx, doc); err != nil {
		return fmt.Errorf("save postmortem of incident %d: %w", incID, err)
	}
	if s.chat == nil || wasFinished {
		return nil
	}
	return s.Enqueue(ctx, q, incID, outbox.LaneChat, KindUploadPostmortem, fmt.Sprintf("inc-%d/postmortem/upload/finished", incID), nil)
}

// renderInto renders the postmortem from what q sees into doc.
func (s *Service) renderInto(ctx context.Context, q Queries, doc *PostmortemDoc) error {
	pm, err := s.assemble(ctx, q, doc.IncidentID)
	if err != nil {
		return err
	}
	doc.Markdown, doc.RenderedAt = RenderMarkdown(pm), pm.GeneratedAt
	return nil
}

// PostPostmortem renders the postmortem from stored data now, keeps it for
// export, and queues it as a file in the incident channel.
func (s *Service) PostPostmortem(ctx context.Context, actor Actor, incidentID int64) error {
	if s.chat == nil {
		return Errorf(EUNAVAILABLE, "Slack is not configured, so the postmortem cannot be posted: "+
			"print it with `reins postmortem %d`.", incidentID)
	}
	err := s.RetryTx(ctx, func(q Queries) error {
		doc, err := s.findDoc(ctx, q, incidentID)
		if err != nil {
			return err
		}
		if err := s.renderInto(ctx, q, doc); err != nil {
			return err
		}
		if err := q.SavePostmortemDoc(ctx, doc); err != nil {
			return fmt.Errorf("save postmortem of incident %d: %w", incidentID, err)
		}
		key := fmt.Sprintf("inc-%d/postmortem/upload/%d/%s", incidentID, s.clock.Now().UnixNano(), actor.ID)
		return s.Enqueue(ctx, q, incidentID, outbox.LaneChat, KindUploadPostmortem, key, nil)
	})
	if err != nil {
		return fmt.Errorf("post postmortem of incident %d: %w", incidentID, err)
	}
	s.Kick()
	return nil
}

func answerFor(answers []*PostmortemAnswer, key string) *PostmortemAnswer {
	for _, a := range answers {
		if a.Key == key {
			return a
		}
	}
	return nil
}

// answeredQuestions counts the questions with a non-empty answer.
func answeredQuestions(answers []*PostmortemAnswer) int {
	n := 0
	for _, q := range postmortemQuestions {
		if a := answerFor(answers, q.Key); a != nil && strings.TrimSpace(a.Text) != "" {
			n++
		}
	}
	return n
}
