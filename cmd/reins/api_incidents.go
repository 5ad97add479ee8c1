package main

import (
	"context"
	"github.com/reins-oss/reins/integrations/api"
	"net/http"
	"strings"

	"github.com/reins-oss/reins/incidents"
)

// Running an incident through the API when Slack is out of reach:
// declare, acknowledge, resolve. Every call names the person asking (actor),
// which the timeline and audit record, since the API token is shared.

// declareBody is the JSON body of POST /api/v1/incidents.
type declareBody struct {
	Agent   string `json:"agent"`
	Summary string `json:"summary"`
	Actor   string `json:"actor"`
}

// incidentActionBody is the JSON body of POST /api/v1/incidents/{id}/ack and /resolve.
type incidentActionBody struct {
	Actor string `json:"actor"`
	Note  string `json:"note"`
}

func apiActor(w http.ResponseWriter, actor string) (incidents.Actor, bool) {
	if strings.TrimSpace(actor) == "" {
		api.WriteError(w, http.StatusUnprocessableEntity, "actor is required: name the person asking (it is audited)")
		return incidents.Actor{}, false
	}
	return incidents.Actor{Kind: incidents.ActorAPI, ID: strings.TrimSpace(actor)}, true
}

func (m *Main) declareIncident(w http.ResponseWriter, r *http.Request) {
	var b declareBody
	if !api.DecodeJSON(w, r, &b) {
		return
	}
	if strings.TrimSpace(b.Agent) == "" || strings.TrimSpace(b.Summary) == "" {
		api.WriteError(w, http.StatusUnprocessableEntity, "agent and summary are required: which agent, and what is wrong")
		return
	}
	actor, ok := apiActor(w, b.Actor)
	if !ok {
		return
	}
	inc, created, err := m.Service.Declare(r.Context(), actor, b.Agent, b.Summary)
	if err != nil {
		api.WriteDomainError(w, m.Log, r, err)
		return
	}
	out := incidentJSON(inc)
	out["created"] = created
	status := http.StatusCreated
	if !created {
		status = http.StatusOK // the agent's open incident, which the caller joins
	}
	api.WriteJSON(w, status, out)
}

func (m *Main) ackIncident(w http.ResponseWriter, r *http.Request) {
	m.incidentAction(w, r, func(ctx context.Context, actor incidents.Actor, id int64, _ incidentActionBody) (*incidents.Incident, error) {
		return m.Service.Acknowledge(ctx, actor, id)
	})
}

func (m *Main) resolveIncident(w http.ResponseWriter, r *http.Request) {
	m.incidentAction(w, r, func(ctx context.Context, actor incidents.Actor, id int64, b incidentActionBody) (*incidents.Incident, error) {
		return m.Service.Resolve(ctx, actor, id, b.Note)
	})
}

// incidentAction reads the incident ID, the body and its actor, then answers
// with what act made of the incident.
func (m *Main) incidentAction(w http.ResponseWriter, r *http.Request,
	act func(context.Context, incidents.Actor, int64, incidentActionBody) (*incidents.Incident, error)) {
	id, ok := m.incidentID(w, r)
	if !ok {
		return
	}
	var b incidentActionBody
	if !api.DecodeJSON(w, r, &b) {
		return
	}
	actor, ok := apiActor(w, b.Actor)
	if !ok {
		return
	}
	inc, err := act(r.Context(), actor, id, b)
	if err != nil {
		api.WriteDomainError(w, m.Log, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, incidentJSON(inc))
}
