package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/aftermath"
	"github.com/reins-oss/reins/ownership"
)

// AgentDoc is an agent as the API shows it: ownership as configured, plus
// halt state and kill authority resolved to people now.
type AgentDoc struct {
	ownership.AgentDoc
	Halted         bool     `json:"halted"`
	HaltedSessions []string `json:"halted_sessions"`
	// Containment is the agent-wide mode with its parameters; Sessions
	// each session contained on its own (halted ones included).
	Containment   ContainmentDoc            `json:"containment"`
	Sessions      map[string]ContainmentDoc `json:"contained_sessions"`
	OpenIncidents []int64                   `json:"open_incidents"`
	Holders       []string                  `json:"kill_authority_now"`
	Unavailable   []string                  `json:"kill_authority_unavailable,omitempty"`
}

// ContainmentDoc is a mode with its parameters, as the API, the flag and
// OFREP show it.
type ContainmentDoc struct {
	Mode  string   `json:"mode"`
	Allow []string `json:"allow"`
	Rate  int      `json:"rate"`
}

func containmentDocOf(c incidents.Containment) ContainmentDoc {
	d := ContainmentDoc{Mode: c.Mode, Allow: c.Allow, Rate: c.Rate}
	if d.Allow == nil {
		d.Allow = []string{}
	}
	return d
}

func agentDocOf(st incidents.AgentStatus) AgentDoc {
	d := AgentDoc{AgentDoc: st.Agent.Public(), Halted: st.Halted, HaltedSessions: st.HaltedSessions,
		Holders: st.Holders, Unavailable: st.Unavailable, OpenIncidents: []int64{}}
	if d.HaltedSessions == nil {
		d.HaltedSessions = []string{}
	}
	d.Containment, d.Sessions = containmentDocOf(st.ContainmentOf("")), map[string]ContainmentDoc{}
	for id, c := range st.Sessions {
		d.Sessions[id] = containmentDocOf(c)
	}
	if d.Holders == nil {
		d.Holders = []string{}
	}
	for _, inc := range st.OpenIncidents {
		d.OpenIncidents = append(d.OpenIncidents, inc.ID)
	}
	return d
}

func (h *Handler) listAgents(w http.ResponseWriter, r *http.Request) {
	sts, err := h.Halting.Status(r.Context(), "")
	if err != nil {
		WriteDomainError(w, h.Log, r, err)
		return
	}
	docs := make([]AgentDoc, 0, len(sts))
	for _, st := range sts {
		docs = append(docs, agentDocOf(st))
	}
	reg := h.Registry.Current()
	WriteJSON(w, http.StatusOK, map[string]any{"agents": docs, "config": reg.File, "loaded_at": reg.LoadedAt})
}

func (h *Handler) getAgent(w http.ResponseWriter, r *http.Request) {
	sts, err := h.Halting.Status(r.Context(), r.PathValue("agent"))
	if err != nil {
		WriteDomainError(w, h.Log, r, err)
		return
	}
	if len(sts) != 1 {
		WriteError(w, http.StatusNotFound, "unknown agent "+r.PathValue("agent"))
		return
	}
	WriteJSON(w, http.StatusOK, agentDocOf(sts[0]))
}

// haltBody is the JSON body of POST /api/v1/agents/{agent}/halt and /resume.
type haltBody struct {
	Sessions []string `json:"sessions"`
	Reason   string   `json:"reason"`
	Actor    string   `json:"actor"`
	Incident int64    `json:"incident"`
	Allow    []string `json:"allow"` // restrict: the tool globs still allowed
	Rate     int      `json:"rate"`  // throttle: model calls per minute
}

func (h *Handler) haltAgent(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b haltBody
		if !DecodeJSON(w, r, &b) {
			return
		}
		if incidents.IsContainAction(action) && strings.TrimSpace(b.Reason) == "" {
			WriteError(w, http.StatusUnprocessableEntity, "reason is required: say why the agent is "+incidents.ModeOf(action))
			return
		}
		if strings.TrimSpace(b.Actor) == "" {
			WriteError(w, http.StatusUnprocessableEntity, "actor is required: name the person asking (it is audited)")
			return
		}
		halt, err := h.Halting.Halt(r.Context(), incidents.HaltCommand{
			Action: action, Agent: r.PathValue("agent"), Sessions: b.Sessions, Reason: b.Reason, Allow: b.Allow, Rate: b.Rate,
			Actor: incidents.Actor{Kind: incidents.ActorAPI, ID: b.Actor}, IncidentID: b.Incident, BreakGlass: true,
		})
		if err != nil {
			WriteDomainError(w, h.Log, r, err)
			return
		}
		status := http.StatusOK
		if halt.Status != incidents.HaltVerified {
			// A halt that did not take effect is never reported as done.
			status = http.StatusBadGateway
		}
		WriteJSON(w, status, haltJSON(halt))
	}
}

func haltJSON(h *incidents.Halt) map[string]any {
	out := map[string]any{
		"id": h.ID, "incident": h.IncidentID, "agent": h.Agent, "action": h.Action,
		"sessions": nonNil(h.Sessions), "reason": h.Reason, "actor": h.Actor, "adapter": h.Adapter,
		"status": h.Status, "attempts": h.Attempts, "requested_at": h.RequestedAt, "finished_at": h.FinishedAt,
	}
	switch h.Action {
	case incidents.ActionRestrict:
		out["allow"] = h.Allow
	case incidents.ActionThrottle:
		out["rate"] = h.Rate
	}
	if h.Error != "" {
		out["error"] = h.Error
	}
	if d := h.TimeToHalt(); d > 0 {
		out["time_to_halt_ms"] = d.Milliseconds()
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (h *Handler) listIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := incidents.IncidentFilter{Agent: q.Get("agent"), Status: q.Get("status")}
	if f.Status != "" && f.Status != incidents.StatusOpen && f.Status != incidents.StatusResolved {
		WriteError(w, http.StatusBadRequest, "status must be open or resolved")
		return
	}
	for name, dst := range map[string]*int{"limit": &f.Limit, "offset": &f.Offset} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || (name == "limit" && n > 1000) {
				WriteError(w, http.StatusBadRequest, name+" must be a whole number (limit at most 1000)")
				return
			}
			*dst = n
		}
	}
	list, err := h.Incidents.FindIncidents(r.Context(), f)
	if err != nil {
		WriteDomainError(w, h.Log, r, err)
		return
	}
	out := make([]map[string]any, 0, len(list))
	for _, inc := range list {
		out = append(out, incidentJSON(inc))
	}
	WriteJSON(w, http.StatusOK, map[string]any{"incidents": out})
}

func (h *Handler) incidentID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		WriteError(w, http.StatusBadRequest, "incident id must be a positive number")
		return 0, false
	}
	return id, true
}

// pathIncident loads the incident named by the {id} path value, answering
// the error itself when there is none.
func (h *Handler) pathIncident(w http.ResponseWriter, r *http.Request) (*incidents.Incident, bool) {
	id, ok := h.incidentID(w, r)
	if !ok {
		return nil, false
	}
	inc, err := h.Incidents.FindIncident(r.Context(), id)
	if err != nil {
		WriteDomainError(w, h.Log, r, err)
		return nil, false
	}
	return inc, true
}

func (h *Handler) getIncident(w http.ResponseWriter, r *http.Request) {
	inc, ok := h.pathIncident(w, r)
	if !ok {
		return
	}
	id := inc.ID
	events, err := h.Incidents.Timeline(r.Context(), id)
	if err != nil {
		WriteDomainError(w, h.Log, r, err)
		return
	}
	halts, err := h.Halting.Halts(r.Context(), "", id)
	if err != nil {
		WriteDomainError(w, h.Log, r, err)
		return
	}
	out := incidentJSON(inc)
	tl := make([]map[string]any, 0, len(events))
	for _, e := range events {
		tl = append(tl, map[string]any{"at": e.At, "kind": e.Kind, "actor": e.Actor, "text": e.Text, "data": e.Data})
	}
	hs := make([]map[string]any, 0, len(halts))
	for _, h := range halts {
		hs = append(hs, haltJSON(h))
	}
	out["timeline"], out["halts"] = tl, hs
	WriteJSON(w, http.StatusOK, out)
}

func incidentJSON(inc *incidents.Incident) map[string]any {
	return map[string]any{
		"id": inc.ID, "agent": inc.Agent, "unowned": inc.Unowned, "title": inc.Title,
		"severity": inc.Severity, "status": inc.Status, "source": inc.Source,
		"sessions": nonNil(inc.Sessions), "links": inc.Links,
		"slack_channel": inc.SlackChannelName, "slack_channel_id": inc.SlackChannelID,
		"pagerduty_dedup_key": inc.PagerDutyKey, "paged_at": inc.PagedAt, "acknowledged_at": inc.AckedAt,
		"created_at": inc.CreatedAt, "resolved_at": inc.ResolvedAt, "resolved_by": inc.ResolvedBy,
	}
}

func (h *Handler) getPostmortem(w http.ResponseWriter, r *http.Request) {
	id, ok := h.incidentID(w, r)
	if !ok {
		return
	}
	pm, err := h.Aftermath.Postmortem(r.Context(), id)
	if err != nil {
		WriteDomainError(w, h.Log, r, err)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		WriteJSON(w, http.StatusOK, pm)
		return
	}
	w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
	w.Header().Set("Last-Modified", h.Now().Format(http.TimeFormat))
	_, _ = w.Write([]byte(aftermath.RenderMarkdown(pm)))
}
