package bot

import (
	"context"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

// Service is what the Slack side calls of the use cases: incidents.Service,
// with the aftermath's (incidents/aftermath) and the intake's Declare
// (incidents/intake), which cmd/reins puts together.
type Service interface {
	Registry() *ownership.Registry

	Declare(ctx context.Context, actor incidents.Actor, agent, title string) (inc *incidents.Incident, created bool, err error)
	// CheckAuthority decides whether actor may halt/resume the agent (name or
	// alias) and audits a refusal. Unknown agent: ENOTFOUND whose message names
	// the closest agents.
	CheckAuthority(ctx context.Context, actor incidents.Actor, agent, action string) (ownership.Decision, *ownership.Agent, error)
	// Halt performs cmd (halt or resume) synchronously: authority re-checked,
	// recorded, adapter called, verified, put on the timeline and in the channel.
	Halt(ctx context.Context, cmd incidents.HaltCommand) (*incidents.Halt, error)
	Status(ctx context.Context, agent string) ([]incidents.AgentStatus, error)
	Who(ctx context.Context, agent string) (*incidents.AgentInfo, error)

	FindIncident(ctx context.Context, id int64) (*incidents.Incident, error)
	// Timeline returns the incident's events, oldest first.
	Timeline(ctx context.Context, id int64) ([]*incidents.Event, error)
	IncidentByChannel(ctx context.Context, channelID string) (*incidents.Incident, error)

	StartChecklist(ctx context.Context, actor incidents.Actor, incidentID int64) (*incidents.Checklist, error)
	AnswerChecklist(ctx context.Context, actor incidents.Actor, incidentID int64, itemKey, choice, details string) (*incidents.Checklist, error)
	SnoozeReminders(ctx context.Context, actor incidents.Actor, incidentID int64, d time.Duration) error
	StopReminders(ctx context.Context, actor incidents.Actor, incidentID int64) error
	Resolve(ctx context.Context, actor incidents.Actor, incidentID int64, note string) (*incidents.Incident, error)
	AnswerPostmortem(ctx context.Context, actor incidents.Actor, incidentID int64, key, text string) error
	// PostPostmortem renders the postmortem from stored data and posts it to the
	// incident channel as a file (queued through the outbox).
	PostPostmortem(ctx context.Context, actor incidents.Actor, incidentID int64) error
	// Remember returns true the first time an idempotency key is seen.
	Remember(ctx context.Context, key string) (bool, error)
}
