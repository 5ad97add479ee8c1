package incidents

import "time"

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
