// Package api is reins' REST API (/api/v1, docs/api.md) and the one error
// writer that the API, the webhooks and the web view answer with. It drives
// the domain through the use cases it is given and knows no store.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/ownership"
)

// Incidents is what the API reads and does with incidents.
type Incidents interface {
	FindIncident(ctx context.Context, id int64) (*incidents.Incident, error)
	FindIncidents(ctx context.Context, f incidents.IncidentFilter) ([]*incidents.Incident, error)
	Timeline(ctx context.Context, id int64) ([]*incidents.Event, error)
	NoChannelReason(ctx context.Context, inc *incidents.Incident) (string, error)
	Acknowledge(ctx context.Context, actor incidents.Actor, incidentID int64) (*incidents.Incident, error)
}

// Intake is what the API asks of the intake: an incident declared by hand.
type Intake interface {
	Declare(ctx context.Context, actor incidents.Actor, agent, title string) (*incidents.Incident, bool, error)
}

// Halting is what the API asks of halts: an agent's state, the halts, a
// halt, resume or rung on request.
type Halting interface {
	Status(ctx context.Context, agent string) ([]incidents.AgentStatus, error)
	Halts(ctx context.Context, agent string, incidentID int64) ([]*incidents.Halt, error)
	Halt(ctx context.Context, cmd incidents.HaltCommand) (*incidents.Halt, error)
}

// Aftermath is what the API asks after an incident: resolving it and its postmortem.
type Aftermath interface {
	Resolve(ctx context.Context, actor incidents.Actor, incidentID int64, note string) (*incidents.Incident, error)
	Postmortem(ctx context.Context, id int64) (*incidents.Postmortem, error)
}

// Handler serves /api/v1 (but the kill flag, which integrations/halt
// serves) and the incident's Slack redirect.
type Handler struct {
	Token     string // REINS_API_TOKEN; empty: the API refuses everything
	Incidents Incidents
	Intake    Intake
	Halting   Halting
	Aftermath Aftermath
	Sessions  *sessions.Service
	Registry  *ownership.Holder
	// Leave leaves a breaching session running (the guard's).
	Leave func(ctx context.Context, actor incidents.Actor, agent, session string) (string, error)
	Now   func() time.Time
	Log   *slog.Logger
}

// Mux is where routes are registered (cmd/reins' route table).
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Register registers every API route on mux.
func (h *Handler) Register(mux Mux) {
	guarded := func(pattern string, f http.HandlerFunc) {
		mux.Handle(pattern, RequireToken(h.Token, "REINS_API_TOKEN", f))
	}
	guarded("GET /api/v1/agents", h.listAgents)
	guarded("GET /api/v1/agents/{agent}", h.getAgent)
	guarded("POST /api/v1/agents/{agent}/halt", h.haltAgent(incidents.ActionHalt))
	guarded("POST /api/v1/agents/{agent}/resume", h.haltAgent(incidents.ActionResume))
	guarded("POST /api/v1/agents/{agent}/restrict", h.haltAgent(incidents.ActionRestrict))
	guarded("POST /api/v1/agents/{agent}/throttle", h.haltAgent(incidents.ActionThrottle))
	guarded("POST /api/v1/agents/{agent}/sessions/{session}/leave", h.leaveSession)
	guarded("GET /api/v1/incidents", h.listIncidents)
	guarded("GET /api/v1/incidents/{id}", h.getIncident)
	guarded("GET /api/v1/incidents/{id}/postmortem", h.getPostmortem)
	guarded("POST /api/v1/incidents", h.declareIncident)
	guarded("POST /api/v1/incidents/{id}/ack", h.ackIncident)
	guarded("POST /api/v1/incidents/{id}/resolve", h.resolveIncident)
	guarded("GET /api/v1/sessions/{id}", h.getSession)
	guarded("GET /api/v1/agents/{agent}/sessions", h.listSessions)
	guarded("GET /api/v1/agents/{agent}/sessions/{id}", h.getSession)
	// Pages go out before the incident channel exists; their Slack link points
	// here and is redirected once the channel is known.
	mux.Handle("GET /incidents/{id}/slack", http.HandlerFunc(h.slackRedirect))
}

// NotFound answers an /api/v1 path no route serves, behind the token.
func (h *Handler) NotFound() http.Handler {
	return RequireToken(h.Token, "REINS_API_TOKEN", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, "no API route for "+r.Method+" "+r.URL.Path)
	}))
}
