package incidents

import (
	"strconv"
	"strings"
	"time"
)

// Checklist answer choices.
const (
	ChoiceNoImpact      = "no_impact"
	ChoiceImpactFound   = "impact_found"
	ChoiceUnknown       = "unknown"
	ChoiceNotApplicable = "not_applicable"
)

// Checklist is an incident's blast-radius checklist: one item per system the
// agent can write to, then the standard items (docs/architecture.md, checklist). It is created once per
// incident and resumed, never restarted.
type Checklist struct {
	IncidentID int64
	CreatedAt  time.Time
	CreatedBy  Actor
	Items      []*ChecklistItem

	// Reminder state for the nudge job.
	LastActivityAt   time.Time // last answer, or creation
	NudgeCount       int       // nudges sent since the last activity
	LastNudgedAt     *time.Time
	SnoozedUntil     *time.Time
	RemindersStopped bool
}

// ChecklistItem is one question of the checklist with its latest answer.
type ChecklistItem struct {
	Key      string // "blast:salesforce", "std:containment", …; unique per checklist
	Position int    // 1-based order
	Question string
	Check    string // what to look at
	Owner    string // who to ask
	Link     string // where to look, with sessions filled in
	PostedTS string // Slack ts of the item's message in the thread, "" until posted

	Choice     string // "" until answered
	Details    string // what was found (Impact found), untrusted
	AnsweredBy *Actor
	AnsweredAt *time.Time
}

// Answered counts the items with an answer.
func (c *Checklist) Answered() int {
	n := 0
	for _, it := range c.Items {
		if it.Choice != "" {
			n++
		}
	}
	return n
}

// Next returns the first unanswered item, or nil when all are answered.
func (c *Checklist) Next() *ChecklistItem {
	for _, it := range c.Items {
		if it.Choice == "" {
			return it
		}
	}
	return nil
}

// PostmortemAnswer is one answer of the guided postmortem thread.
type PostmortemAnswer struct {
	IncidentID int64
	Key        string // summary | root_cause | went_well | went_poorly | action_items | sla_changes
	Text       string // untrusted
	Actor      Actor
	At         time.Time
}

// PostmortemDoc is the rendered postmortem kept for export, plus the reminder state.
type PostmortemDoc struct {
	IncidentID     int64
	Markdown       string
	RenderedAt     time.Time
	Finished       bool // every question answered
	PostedTS       string
	RemindCount    int
	LastRemindedAt *time.Time
}

// DrillResult is one kill-switch drill.
type DrillResult struct {
	ID      int64
	Agent   string
	Adapter string
	At      time.Time
	OK      bool
	Error   string
	Actor   Actor
}

// KillFlag is the state of reins' own kill flag for an agent or one session.
type KillFlag struct {
	Agent      string
	Session    string // "" for the whole agent
	Halted     bool   // Mode == ModeHalted
	Mode       string // ModeRunning … ModeHalted; "" reads as Halted says
	Allow      []string
	Rate       int
	Reason     string
	Actor      Actor
	IncidentID int64
	UpdatedAt  time.Time
}

// ParseChoice reads a checklist answer as people type it at the shell or
// pick it in the web view: no-impact, impact, unknown or n/a, or the stored
// names (no_impact, impact_found, unknown, not_applicable).
func ParseChoice(s string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "no-impact", "no_impact", "none", "no":
		return ChoiceNoImpact, true
	case "impact", "impact-found", "impact_found", "found":
		return ChoiceImpactFound, true
	case "unknown", "?":
		return ChoiceUnknown, true
	case "n/a", "na", "not-applicable", "not_applicable":
		return ChoiceNotApplicable, true
	}
	return "", false
}

// ChoiceWords is the shell's name of a stored choice.
func ChoiceWords(choice string) string {
	switch choice {
	case ChoiceNoImpact:
		return "no-impact"
	case ChoiceImpactFound:
		return "impact"
	case ChoiceUnknown:
		return "unknown"
	case ChoiceNotApplicable:
		return "n/a"
	}
	return "unanswered"
}

// FindItem finds a checklist item by key ("blast:salesforce") or by its
// position ("3"), as people name it outside Slack.
func (c *Checklist) FindItem(ref string) *ChecklistItem {
	ref = strings.TrimSpace(ref)
	for _, it := range c.Items {
		if it.Key == ref || strconv.Itoa(it.Position) == ref {
			return it
		}
	}
	return nil
}

// QuestionKey finds a postmortem question by key ("root_cause", also
// "root-cause") or position ("2"); "" when there is none.
func QuestionKey(ref string) string {
	ref = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(ref)), "-", "_")
	for i, q := range postmortemQuestions {
		if q.Key == ref || strconv.Itoa(i+1) == ref {
			return q.Key
		}
	}
	return ""
}

// PostmortemQuestion is one question of the guided postmortem thread.
type PostmortemQuestion struct {
	Key      string `json:"key"`
	Question string `json:"question"`
	Hint     string `json:"hint,omitempty"`
}

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

// QuestionIndex is the position of the postmortem question key, -1 if none.
func QuestionIndex(key string) int {
	for i, q := range postmortemQuestions {
		if q.Key == key {
			return i
		}
	}
	return -1
}

// QuestionPayload is the payload of a KindPostPostmortemQuestion item.
type QuestionPayload struct {
	Key    string `json:"key"`
	Update bool   `json:"update,omitempty"`
}

// AnswerFor is the answer to question key, nil when unanswered.
func AnswerFor(answers []*PostmortemAnswer, key string) *PostmortemAnswer {
	for _, a := range answers {
		if a.Key == key {
			return a
		}
	}
	return nil
}

// AnsweredQuestions counts the questions with a non-empty answer.
func AnsweredQuestions(answers []*PostmortemAnswer) int {
	n := 0
	for _, q := range postmortemQuestions {
		if a := AnswerFor(answers, q.Key); a != nil && strings.TrimSpace(a.Text) != "" {
			n++
		}
	}
	return n
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

// ChecklistItemPayload is the payload of a KindPostChecklistItem item.
// Update asks only to refresh a message already posted.
type ChecklistItemPayload struct {
	Item   string `json:"item"`
	Update bool   `json:"update,omitempty"`
}

// FindItemByKey is the checklist item of key, nil when there is none.
func FindItemByKey(c *Checklist, key string) *ChecklistItem {
	for _, it := range c.Items {
		if it.Key == key {
			return it
		}
	}
	return nil
}
