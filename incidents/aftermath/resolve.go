package aftermath

import (
	"context"
	"fmt"
	"strings"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
)

// Resolve closes an incident in one transaction with its timeline event and
// every side effect queued: the PagerDuty resolve, the channel topic and a
// notice, the summary update, and the postmortem thread with its first
// question. An incident already resolved is ECONFLICT.
func (s *Service) Resolve(ctx context.Context, actor incidents.Actor, incidentID int64, note string) (*incidents.Incident, error) {
	note = strings.TrimSpace(note)
	var inc *incidents.Incident
	already := false
	err := s.core.RetryTx(ctx, func(q incidents.Queries) error {
		var err error
		if inc, err = q.FindIncident(ctx, incidentID); err != nil {
			return err
		}
		// Not an error inside the transaction: RetryTx would retry a conflict.
		if already = inc.Status == incidents.StatusResolved; already {
			return nil
		}
		now := s.core.Now()
		inc.Status, inc.ResolvedAt, inc.ResolvedBy = incidents.StatusResolved, &now, incidents.ActorLabel(actor)
		if err := q.UpdateIncident(ctx, inc); err != nil {
			return fmt.Errorf("update incident %d: %w", inc.ID, err)
		}
		text := "Resolved by " + incidents.ActorLabel(actor)
		if note != "" {
			text += ": " + note
		}
		if err := incidents.AppendEvent(ctx, q, inc.ID, now, incidents.EventResolved, actor, text, map[string]any{"note": note}); err != nil {
			return err
		}
		doc, err := incidents.FindDoc(ctx, q, inc.ID)
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
		return nil, incidents.Errorf(incidents.ECONFLICT, "Incident #%d was already resolved by %s%s.", inc.ID, inc.ResolvedBy, at)
	}
	s.core.Kick()
	return inc, nil
}

func (s *Service) enqueueResolved(ctx context.Context, q outbox.Store, inc *incidents.Incident, text string) error {
	key := func(what string) string { return fmt.Sprintf("inc-%d/%s", inc.ID, what) }
	if s.core.Pager() != nil && (!inc.Unowned || s.core.Config().DefaultRoutingKey != "") {
		if err := s.core.Enqueue(ctx, q, inc.ID, outbox.LaneUrgent, incidents.KindPageResolve, key(incidents.KindPageResolve), nil); err != nil {
			return err
		}
	}
	if s.core.Chat() == nil {
		return nil
	}
	steps := []struct {
		kind, key string
		payload   any
	}{
		{incidents.KindResolvedTopic, key("resolved_topic"), nil},
		{incidents.KindPost, key("resolved"), incidents.Message{Style: incidents.StyleSuccess, Title: fmt.Sprintf("✅ Incident #%d resolved", inc.ID), Text: text}},
		{incidents.KindUpdateSummary, key("update_summary/resolved"), nil},
		{incidents.KindPostPostmortemParent, key("postmortem/parent"), nil},
		{incidents.KindPostPostmortemQuestion, key("postmortem/post/" + incidents.PostmortemQuestions()[0].Key), incidents.QuestionPayload{Key: incidents.PostmortemQuestions()[0].Key}},
	}
	for _, st := range steps {
		if err := s.core.Enqueue(ctx, q, inc.ID, outbox.LaneChat, st.kind, st.key, st.payload); err != nil {
			return err
		}
	}
	return nil
}

// AnswerPostmortem saves (or replaces) the answer to one postmortem question
// with its timeline event, and queues the thread's updates: the question's
// message, the next unanswered question, and, once every question is
// answered, the finished postmortem as a file.
func (s *Service) AnswerPostmortem(ctx context.Context, actor incidents.Actor, incidentID int64, key, text string) error {
	pos := incidents.QuestionIndex(key)
	if pos < 0 {
		keys := make([]string, len(incidents.PostmortemQuestions()))
		for i, q := range incidents.PostmortemQuestions() {
			keys[i] = q.Key
		}
		return incidents.Errorf(incidents.EINVALID, "Unknown postmortem question %q: use one of %s.", key, strings.Join(keys, ", "))
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return incidents.Errorf(incidents.EINVALID, "Write an answer to %q.", incidents.PostmortemQuestions()[pos].Question)
	}
	err := s.core.RetryTx(ctx, func(q incidents.Queries) error {
		inc, err := q.FindIncident(ctx, incidentID)
		if err != nil {
			return err
		}
		now := s.core.Now()
		a := &incidents.PostmortemAnswer{IncidentID: inc.ID, Key: key, Text: text, Actor: actor, At: now}
		if err := q.SavePostmortemAnswer(ctx, a); err != nil {
			return fmt.Errorf("save postmortem answer %s: %w", key, err)
		}
		eventID, err := appendEventID(ctx, q, inc.ID, now, incidents.EventPostmortemAnswer, actor,
			fmt.Sprintf("%s answered the postmortem question %q", incidents.ActorLabel(actor), incidents.PostmortemQuestions()[pos].Question),
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
		if incidents.AnsweredQuestions(answers) < len(incidents.PostmortemQuestions()) {
			return nil
		}
		return s.finishPostmortem(ctx, q, inc.ID)
	})
	if err != nil {
		return fmt.Errorf("answer postmortem question %s of incident %d: %w", key, incidentID, err)
	}
	s.core.Kick()
	return nil
}

func (s *Service) enqueueQuestionUpdates(ctx context.Context, q outbox.Store, incID int64, key string, answers []*incidents.PostmortemAnswer, eventID int64) error {
	if s.core.Chat() == nil {
		return nil
	}
	if err := s.core.Enqueue(ctx, q, incID, outbox.LaneChat, incidents.KindPostPostmortemQuestion,
		fmt.Sprintf("inc-%d/postmortem/answered/%s/%d", incID, key, eventID), incidents.QuestionPayload{Key: key, Update: true}); err != nil {
		return err
	}
	for _, pq := range incidents.PostmortemQuestions() {
		if incidents.AnswerFor(answers, pq.Key) == nil {
			if err := s.core.Enqueue(ctx, q, incID, outbox.LaneChat, incidents.KindPostPostmortemQuestion,
				fmt.Sprintf("inc-%d/postmortem/post/%s", incID, pq.Key), incidents.QuestionPayload{Key: pq.Key}); err != nil {
				return err
			}
			break
		}
	}
	return s.core.Enqueue(ctx, q, incID, outbox.LaneChat, incidents.KindPostPostmortemParent, fmt.Sprintf("inc-%d/postmortem/progress/%d", incID, eventID), nil)
}

// finishPostmortem keeps the rendering of a postmortem whose every question
// is answered; the first time, it marks it finished and queues it as a file.
// A later edit only refreshes the kept version.
func (s *Service) finishPostmortem(ctx context.Context, q incidents.Queries, incID int64) error {
	doc, err := incidents.FindDoc(ctx, q, incID)
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
	if s.core.Chat() == nil || wasFinished {
		return nil
	}
	return s.core.Enqueue(ctx, q, incID, outbox.LaneChat, incidents.KindUploadPostmortem, fmt.Sprintf("inc-%d/postmortem/upload/finished", incID), nil)
}

// renderInto renders the postmortem from what q sees into doc.
func (s *Service) renderInto(ctx context.Context, q incidents.Queries, doc *incidents.PostmortemDoc) error {
	pm, err := s.assemble(ctx, q, doc.IncidentID)
	if err != nil {
		return err
	}
	doc.Markdown, doc.RenderedAt = RenderMarkdown(pm), pm.GeneratedAt
	return nil
}

// PostPostmortem renders the postmortem from stored data now, keeps it for
// export, and queues it as a file in the incident channel.
func (s *Service) PostPostmortem(ctx context.Context, actor incidents.Actor, incidentID int64) error {
	if s.core.Chat() == nil {
		return incidents.Errorf(incidents.EUNAVAILABLE, "Slack is not configured, so the postmortem cannot be posted: "+
			"print it with `reins postmortem %d`.", incidentID)
	}
	err := s.core.RetryTx(ctx, func(q incidents.Queries) error {
		doc, err := incidents.FindDoc(ctx, q, incidentID)
		if err != nil {
			return err
		}
		if err := s.renderInto(ctx, q, doc); err != nil {
			return err
		}
		if err := q.SavePostmortemDoc(ctx, doc); err != nil {
			return fmt.Errorf("save postmortem of incident %d: %w", incidentID, err)
		}
		key := fmt.Sprintf("inc-%d/postmortem/upload/%d/%s", incidentID, s.core.Now().UnixNano(), actor.ID)
		return s.core.Enqueue(ctx, q, incidentID, outbox.LaneChat, incidents.KindUploadPostmortem, key, nil)
	})
	if err != nil {
		return fmt.Errorf("post postmortem of incident %d: %w", incidentID, err)
	}
	s.core.Kick()
	return nil
}

// deliverUploadPostmortem shares the postmortem as a Markdown file in the
// incident channel: the version saved when it was asked for, or, failing
// that, one rendered now.
func (s *Service) deliverUploadPostmortem(ctx context.Context, it *outbox.Item) error {
	inc, ok, err := s.core.WithChannel(ctx, it)
	if !ok {
		return err
	}
	doc, err := incidents.FindDoc(ctx, s.core.Store(), inc.ID)
	if err != nil {
		return err
	}
	md := doc.Markdown
	if md == "" {
		pm, err := s.Postmortem(ctx, inc.ID)
		if err != nil {
			return err
		}
		md = RenderMarkdown(pm)
	}
	name := fmt.Sprintf("postmortem-inc-%d.md", inc.ID)
	title := incidents.Clip(fmt.Sprintf("Postmortem: #%d %s — %s", inc.ID, inc.Agent, inc.Title), 250)
	if err := s.core.Chat().UploadFile(ctx, inc.SlackChannelID, "", name, title, md); err != nil {
		return fmt.Errorf("upload postmortem of incident %d: %w", inc.ID, err)
	}
	return s.core.RetryTx(ctx, func(q incidents.Queries) error {
		return incidents.AppendEvent(ctx, q, inc.ID, s.core.Now(), incidents.EventPostmortemPosted, incidents.System,
			"Postmortem posted to #"+inc.SlackChannelName+" as "+name, map[string]any{"file": name})
	})
}

// Service is the aftermath's use cases: resolving an incident, its
// blast-radius checklist, its postmortem (the thread, the document, the
// Markdown) and the reminders of both.
type Service struct {
	core *incidents.Core
}

// New returns the aftermath of the use cases core serves, and gives core's
// outbox the handler of the postmortem file, which renders it here.
func New(core *incidents.Core) *Service {
	s := &Service{core: core}
	core.Outbox().Handle(incidents.KindUploadPostmortem, s.deliverUploadPostmortem)
	return s
}
