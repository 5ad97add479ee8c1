package api

import (
	"context"
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
		WriteError(w, http.StatusUnprocessableEntity, "actor is required: name the person asking (it is audited)")
		return incidents.Actor{}, false
	}
	return incidents.Actor{Kind: incidents.ActorAPI, ID: strings.TrimSpace(actor)}, true
}

func (h *Handler) declareIncident(w http.ResponseWriter, r *http.Request) {
	var b declareBody
	if !DecodeJSON(w, r, &b) {
		return
	}
	if strings.TrimSpace(b.Agent) == "" || strings.TrimSpace(b.Summary) == "" {
		WriteError(w, http.StatusUnprocessableEntity, "agent and summary are required: which agent, and what is wrong")
		return
	}
	actor, ok := apiActor(w, b.Actor)
	if !ok {
		return
	}
	inc, created, err := h.Intake.Declare(r.Context(), actor, b.Agent, b.Summary)
	if err != nil {
		WriteDomainError(w, h.Log, r, err)
		return
	}
	out := incidentJSON(inc)
	out["created"] = created
	status := http.StatusCreated
	if !created {
		status = http.StatusOK // the agent's open incident, which the caller joins
	}
	WriteJSON(w, status, out)
}

func (h *Handler) ackIncident(w http.ResponseWriter, r *http.Request) {
	h.incidentAction(w, r, func(ctx context.Context, actor incidents.Actor, id int64, _ incidentActionBody) (*incidents.Incident, error) {
		return h.Incidents.Acknowledge(ctx, actor, id)
	})
}

func (h *Handler) resolveIncident(w http.ResponseWriter, r *http.Request) {
	h.incidentAction(w, r, func(ctx context.Context, actor incidents.Actor, id int64, b incidentActionBody) (*incidents.Incident, error) {
		return h.Aftermath.Resolve(ctx, actor, id, b.Note)
	})
}

// incidentAction reads the incident ID, the body and its actor, then answers
// with what act made of the incident.
func (h *Handler) incidentAction(w http.ResponseWriter, r *http.Request,
	act func(context.Context, incidents.Actor, int64, incidentActionBody) (*incidents.Incident, error)) {
	id, ok := h.incidentID(w, r)
	if !ok {
		return
	}
	var b incidentActionBody
	if !DecodeJSON(w, r, &b) {
		return
	}
	actor, ok := apiActor(w, b.Actor)
	if !ok {
		return
	}
	inc, err := act(r.Context(), actor, id, b)
	if err != nil {
		WriteDomainError(w, h.Log, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, incidentJSON(inc))
}

// leaveBody is the JSON body of POST /api/v1/agents/{agent}/sessions/{session}/leave.
type leaveBody struct {
	Actor string `json:"actor"`
}

func (h *Handler) leaveSession(w http.ResponseWriter, r *http.Request) {
	var b leaveBody
	if !DecodeJSON(w, r, &b) {
		return
	}
	actor, ok := apiActor(w, b.Actor)
	if !ok {
		return
	}
	text, err := h.Leave(r.Context(), actor, r.PathValue("agent"), r.PathValue("session"))
	if err != nil {
		WriteDomainError(w, h.Log, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"result": text})
}
