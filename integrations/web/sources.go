package web

import (
	"context"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

// IncidentSource is what the view reads of the incident domain; the
// *incidents.Service implements it.
type IncidentSource interface {
	FindIncidents(ctx context.Context, f incidents.IncidentFilter) ([]*incidents.Incident, error)
	FindIncident(ctx context.Context, id int64) (*incidents.Incident, error)
	Status(ctx context.Context, agent string) ([]incidents.AgentStatus, error)
	Who(ctx context.Context, agent string) (*incidents.AgentInfo, error)
	Registry() *ownership.Registry
}

// PostmortemSource assembles an incident's postmortem; the aftermath's
// service (*aftermath.Service) implements it.
type PostmortemSource interface {
	Postmortem(ctx context.Context, id int64) (*incidents.Postmortem, error)
}

// AnswerSink takes the checklist's and the postmortem's answers from the
// view's forms, with the rules and timeline of the Slack thread: the
// *aftermath.Service implements it.
type AnswerSink interface {
	StartChecklist(ctx context.Context, actor incidents.Actor, incidentID int64) (*incidents.Checklist, error)
	AnswerChecklist(ctx context.Context, actor incidents.Actor, incidentID int64, itemKey, choice, details string) (*incidents.Checklist, error)
	AnswerPostmortem(ctx context.Context, actor incidents.Actor, incidentID int64, key, text string) error
}

// DrillSource reads an agent's drills since a moment, oldest first; the SQL
// store and the test fake implement it.
type DrillSource interface {
	FindDrills(ctx context.Context, agent string, since time.Time) ([]*incidents.DrillResult, error)
}

// RefusalSource says which spans the OTLP intake refused lately: one line
// per reason and agent or service ("7 spans from service `mystery-bot`, not
// in reins.yaml, in the last hour"). cmd/reins adapts the session store.
type RefusalSource interface {
	RefusedSpans(ctx context.Context) ([]string, error)
}

// SessionSource finds one session record; an incidents.ENOTFOUND error when
// there is none. The session record store is adapted to it in cmd/reins.
type SessionSource interface {
	// Session finds agent's session id; agent "" means the one agent with a
	// session of that ID (a *sessions.AmbiguousError when several have one).
	Session(ctx context.Context, agent, id string) (*SessionView, error)
}

// SessionView is a session record as the page shows it.
type SessionView struct {
	ID       string
	Agent    string
	Status   string // e.g. running | completed | halted; free text
	Start    time.Time
	End      time.Time // zero: still running; the last step's end is used
	Incident int64     // an incident this session belongs to, 0 if none
	Steps    []StepView
}

// StepView is one step of a session: a model call, a tool call, anything
// timed. Text fields come from the agent and are untrusted.
type StepView struct {
	N            int64 // the step's number in its session (as alerts give it); 0: by position
	Start        time.Time
	Duration     time.Duration
	Kind         string // llm | tool | agent | other
	Name         string
	Tool         string
	Model        string
	InputTokens  int64
	OutputTokens int64
	CostUSD      float64
	Error        string // "" when the step succeeded
	System       string // blast-radius system a tool call touched, "" if none
	Breach       string // the SLA this step crossed, "" if none
}

// Tokens is input plus output tokens.
func (s StepView) Tokens() int64 { return s.InputTokens + s.OutputTokens }

// End is when the step finished.
func (s StepView) End() time.Time { return s.Start.Add(s.Duration) }
