package incidents

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/reins-oss/reins/incidents/outbox"
)

// Outbox kinds of the checklist, resolve and postmortem use cases.
const (
	KindPostChecklistParent    = "post_checklist_parent"    // the checklist thread's parent, or its progress
	KindPostChecklistItem      = "post_checklist_item"      // payload: ChecklistItemPayload
	KindResolvedTopic          = "resolved_topic"           // channel topic "[RESOLVED] …"
	KindPostPostmortemParent   = "post_postmortem_parent"   // the postmortem thread's parent, or its progress
	KindPostPostmortemQuestion = "post_postmortem_question" // payload: QuestionPayload
	KindUploadPostmortem       = "upload_postmortem"        // the rendered postmortem as a file
	KindReminder               = "reminder"                 // payload: ReminderPayload
)

// ReminderPayload is the payload of a KindReminder item: a nudge in the
// incident's checklist or postmortem thread, which the bot shows with
// Snooze and Stop buttons whose value is the incident ID.
type ReminderPayload struct {
	IncidentID int64    `json:"incident_id"`
	Thread     string   `json:"thread"` // checklist | postmortem
	Text       string   `json:"text"`
	Mention    []string `json:"mention,omitempty"`
}

// Reminder threads.
const (
	ThreadChecklist  = "checklist"
	ThreadPostmortem = "postmortem"
)

// aftermathHandlers registers the outbox kinds of the checklist, resolve
// and postmortem use cases and of the jobs.
func (s *chatSteps) aftermathHandlers(handle func(kind string, h outbox.Handler)) {
	handle(KindPostChecklistParent, s.deliverChecklistParent)
	handle(KindPostChecklistItem, s.deliverChecklistItem)
	handle(KindResolvedTopic, s.deliverResolvedTopic)
	handle(KindPostPostmortemParent, s.deliverPostmortemParent)
	handle(KindPostPostmortemQuestion, s.deliverPostmortemQuestion)
	handle(KindReminder, s.deliverReminder)
}

// errNoThread makes an item wait for its thread's parent, which is queued
// before it; it only fires when that parent was given up on.
func errNoThread(what string, incID int64) error {
	return &outbox.RetryAfterError{After: waitForChannel, Err: fmt.Errorf("the %s thread of incident %d is not posted yet", what, incID)}
}

// deliverChecklistParent posts the thread's parent, or updates its progress
// once posted (its ts is remembered, so a retry never posts it twice).
func (s *chatSteps) deliverChecklistParent(ctx context.Context, it *outbox.Item) error {
	inc, ok, err := s.WithChannel(ctx, it)
	if !ok {
		return err
	}
	c, err := s.store.FindChecklist(ctx, inc.ID)
	if err != nil {
		return fmt.Errorf("load checklist of incident %d: %w", inc.ID, err)
	}
	m := Message{Style: StyleInfo, Title: checklistTitle(inc.ID, c.Answered(), len(c.Items))}
	if inc.ChecklistTS == "" {
		m.Text = "One message per item below; each answer is saved as it is given."
	}
	return s.postThreadParent(ctx, inc, "checklist", m, func(inc *Incident) *string { return &inc.ChecklistTS })
}

// postThreadParent posts a thread's parent message, or refreshes it once
// posted, and records its ts (reached through field) the first time.
func (s *chatSteps) postThreadParent(ctx context.Context, inc *Incident, what string, m Message, field func(*Incident) *string) error {
	posted := *field(inc)
	m.Channel, m.UpdateTS = inc.SlackChannelID, posted
	ts, err := s.chat.Post(ctx, m)
	if err != nil {
		return fmt.Errorf("post %s parent of incident %d: %w", what, inc.ID, err)
	}
	if posted != "" {
		return nil
	}
	return s.UpdateIncident(ctx, inc.ID, func(q Queries, inc *Incident) (bool, error) {
		if *field(inc) != "" {
			return false, nil
		}
		*field(inc) = ts
		return true, nil
	})
}

func checklistTitle(id int64, answered, total int) string {
	if answered == total {
		return fmt.Sprintf("Blast-radius checklist for #%d — complete; %d of %d", id, answered, total)
	}
	return fmt.Sprintf("Blast-radius checklist for #%d — answer each item; %d of %d", id, answered, total)
}

// deliverChecklistItem posts an item in the thread, or updates its message
// when it was posted before: "remember what they already did".
func (s *chatSteps) deliverChecklistItem(ctx context.Context, it *outbox.Item) error {
	var p ChecklistItemPayload
	if err := json.Unmarshal(it.Payload, &p); err != nil {
		return outbox.Permanent(fmt.Errorf("decode checklist item %s: %w", it.Key, err))
	}
	inc, ok, err := s.WithChannel(ctx, it)
	if !ok {
		return err
	}
	c, err := s.store.FindChecklist(ctx, inc.ID)
	if err != nil {
		return fmt.Errorf("load checklist of incident %d: %w", inc.ID, err)
	}
	item := FindItemByKey(c, p.Item)
	switch {
	case item == nil:
		return outbox.Permanent(fmt.Errorf("incident %d's checklist has no item %q", inc.ID, p.Item))
	case p.Update && item.PostedTS == "":
		return nil // not posted yet: its post, queued earlier, shows the answer
	case inc.ChecklistTS == "":
		return errNoThread("checklist", inc.ID)
	}
	v := &ChecklistItemView{Incident: inc, Item: item, Total: len(c.Items)}
	ts, err := s.chat.PostChecklistItem(ctx, inc.SlackChannelID, inc.ChecklistTS, item.PostedTS, v)
	if err != nil {
		return fmt.Errorf("post checklist item %s of incident %d: %w", item.Key, inc.ID, err)
	}
	if item.PostedTS != "" {
		return nil
	}
	return s.RetryTx(ctx, func(q Queries) error {
		c, err := q.FindChecklist(ctx, inc.ID)
		if err != nil {
			return fmt.Errorf("load checklist of incident %d: %w", inc.ID, err)
		}
		if cur := FindItemByKey(c, p.Item); cur != nil && cur.PostedTS == "" {
			cur.PostedTS = ts
			return q.UpdateChecklist(ctx, c)
		}
		return nil
	})
}

func (s *chatSteps) deliverResolvedTopic(ctx context.Context, it *outbox.Item) error {
	inc, ok, err := s.WithChannel(ctx, it)
	if !ok {
		return err
	}
	topic := Clip(fmt.Sprintf("[RESOLVED] %s · %s · %s", inc.Agent, inc.Severity, inc.Title), maxTopic)
	if err := s.chat.SetTopic(ctx, inc.SlackChannelID, topic); err != nil {
		return fmt.Errorf("set resolved topic of incident %d: %w", inc.ID, err)
	}
	return nil
}

// deliverPostmortemParent posts the postmortem thread's parent, or updates
// its progress once posted.
func (s *chatSteps) deliverPostmortemParent(ctx context.Context, it *outbox.Item) error {
	inc, ok, err := s.WithChannel(ctx, it)
	if !ok {
		return err
	}
	answers, err := s.store.FindPostmortemAnswers(ctx, inc.ID)
	if err != nil {
		return fmt.Errorf("load postmortem answers of incident %d: %w", inc.ID, err)
	}
	m := Message{Style: StyleInfo, Title: postmortemTitle(inc.ID, AnsweredQuestions(answers))}
	if inc.PostmortemTS == "" {
		m.Text = "reins asks the remaining questions here; the answers, the timeline and the checklist become the postmortem."
	}
	return s.postThreadParent(ctx, inc, "postmortem", m, func(inc *Incident) *string { return &inc.PostmortemTS })
}

func postmortemTitle(id int64, answered int) string {
	total := len(postmortemQuestions)
	if answered == total {
		return fmt.Sprintf("Postmortem for #%d — every question answered; %d of %d", id, answered, total)
	}
	return fmt.Sprintf("Postmortem for #%d — answer each question in this thread; %d of %d", id, answered, total)
}

// deliverPostmortemQuestion posts a question in the postmortem thread, or
// updates its message when it was posted before.
func (s *chatSteps) deliverPostmortemQuestion(ctx context.Context, it *outbox.Item) error {
	var p QuestionPayload
	if err := json.Unmarshal(it.Payload, &p); err != nil {
		return outbox.Permanent(fmt.Errorf("decode postmortem question %s: %w", it.Key, err))
	}
	pos := QuestionIndex(p.Key)
	if pos < 0 {
		return outbox.Permanent(fmt.Errorf("no postmortem question %q", p.Key))
	}
	inc, ok, err := s.WithChannel(ctx, it)
	if !ok {
		return err
	}
	doc, err := FindDoc(ctx, s.store, inc.ID)
	if err != nil {
		return err
	}
	posted := questionTS(doc)[p.Key]
	switch {
	case p.Update && posted == "":
		return nil
	case inc.PostmortemTS == "":
		return errNoThread("postmortem", inc.ID)
	}
	answers, err := s.store.FindPostmortemAnswers(ctx, inc.ID)
	if err != nil {
		return fmt.Errorf("load postmortem answers of incident %d: %w", inc.ID, err)
	}
	q := postmortemQuestions[pos]
	v := &PostmortemQuestionView{Incident: inc, Key: q.Key, Question: q.Question, Hint: q.Hint,
		Position: pos + 1, Total: len(postmortemQuestions), Answer: AnswerFor(answers, q.Key)}
	ts, err := s.chat.PostPostmortemQuestion(ctx, inc.SlackChannelID, inc.PostmortemTS, posted, v)
	if err != nil {
		return fmt.Errorf("post postmortem question %s of incident %d: %w", q.Key, inc.ID, err)
	}
	if posted != "" {
		return nil
	}
	return s.RetryTx(ctx, func(tx Queries) error {
		doc, err := FindDoc(ctx, tx, inc.ID)
		if err != nil {
			return err
		}
		m := questionTS(doc)
		if m[p.Key] != "" {
			return nil
		}
		m[p.Key] = ts
		setQuestionTS(doc, m)
		return tx.SavePostmortemDoc(ctx, doc)
	})
}

// deliverReminder posts a nudge in the checklist or postmortem thread, or in
// the channel when the thread is not there.
func (s *chatSteps) deliverReminder(ctx context.Context, it *outbox.Item) error {
	var p ReminderPayload
	if err := json.Unmarshal(it.Payload, &p); err != nil {
		return outbox.Permanent(fmt.Errorf("decode reminder %s: %w", it.Key, err))
	}
	inc, ok, err := s.WithChannel(ctx, it)
	if !ok {
		return err
	}
	thread := inc.ChecklistTS
	if p.Thread == ThreadPostmortem {
		thread = inc.PostmortemTS
	}
	m := Message{Channel: inc.SlackChannelID, ThreadTS: thread, Style: StyleWarning, Title: "Reminder", Text: p.Text,
		Mention: p.Mention, Reminder: inc.ID}
	if _, err := s.chat.Post(ctx, m); err != nil {
		return fmt.Errorf("post reminder for incident %d: %w", inc.ID, err)
	}
	return nil
}

// FindDoc loads the postmortem document, or a new empty one.
func FindDoc(ctx context.Context, q PostmortemStore, incID int64) (*PostmortemDoc, error) {
	doc, err := q.FindPostmortemDoc(ctx, incID)
	switch {
	case err == nil:
		return doc, nil
	case ErrorCode(err) == ENOTFOUND:
		return &PostmortemDoc{IncidentID: incID}, nil
	}
	return nil, fmt.Errorf("load postmortem of incident %d: %w", incID, err)
}

// questionTS reads the ts of each posted postmortem question. The contract
// has no field for them yet, so they live as JSON in PostmortemDoc.PostedTS,
// which nothing else uses (a file upload returns no ts).
func questionTS(doc *PostmortemDoc) map[string]string {
	m := map[string]string{}
	if strings.HasPrefix(doc.PostedTS, "{") {
		_ = json.Unmarshal([]byte(doc.PostedTS), &m) // a damaged value only means re-posting
	}
	return m
}

func setQuestionTS(doc *PostmortemDoc, m map[string]string) {
	b, _ := json.Marshal(m) // a map of strings always encodes
	doc.PostedTS = string(b)
}
