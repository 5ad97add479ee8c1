package main

import (
	"github.com/reins-oss/reins/integrations/api"
	"net/http"
	"strconv"
	"strings"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

func (m *Main) apiRoutes(mux *routeMux) {
	guarded := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, api.RequireToken(m.Config.APIToken, "REINS_API_TOKEN", h))
	}
	guarded("GET /api/v1/agents", m.listAgents)
	guarded("GET /api/v1/agents/{agent}", m.getAgent)
	guarded("POST /api/v1/agents/{agent}/halt", m.haltAgent(incidents.ActionHalt))
	guarded("POST /api/v1/agents/{agent}/resume", m.haltAgent(incidents.ActionResume))
	guarded("POST /api/v1/agents/{agent}/restrict", m.haltAgent(incidents.ActionRestrict))
	guarded("POST /api/v1/agents/{agent}/throttle", m.haltAgent(incidents.ActionThrottle))
	guarded("POST /api/v1/agents/{agent}/sessions/{session}/leave", m.leaveSessionAPI)
	guarded("GET /api/v1/incidents", m.listIncidents)
	guarded("GET /api/v1/incidents/{id}", m.getIncident)
	guarded("GET /api/v1/incidents/{id}/postmortem", m.getPostmortem)
	guarded("POST /api/v1/incidents", m.declareIncident)
	guarded("POST /api/v1/incidents/{id}/ack", m.ackIncident)
	guarded("POST /api/v1/incidents/{id}/resolve", m.resolveIncident)
	// The kill flag agents poll takes its own token (or none), never the API token.
	mux.Handle("GET /api/v1/agents/{agent}/halted", m.Flags.Handler(m.Config.FlagToken, m.agentName))
	// The same state over OFREP (docs/containment.md), with the flag token.
	ofrep := m.Flags.OFREP(m.Config.FlagToken, m.agentName, func() []string { return m.Registry.Current().Names() })
	mux.Handle("/ofrep/v1/evaluate/flags/{key}", ofrep.Evaluate())
	mux.Handle("/ofrep/v1/evaluate/flags", ofrep.Bulk())
	mux.Handle("/api/v1/", api.RequireToken(m.Config.APIToken, "REINS_API_TOKEN",
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			api.WriteError(w, http.StatusNotFound, "no API route for "+r.Method+" "+r.URL.Path)
		})))
}

// agentName resolves a name or alias to the configured agent's name.
func (m *Main) agentName(nameOrAlias string) (string, bool) {
	if ag := m.Registry.Current().Agent(nameOrAlias); ag != nil {
		return ag.Name, true
	}
	return "", false
}

// agentDoc is an agent as the API shows it: ownership as configured, plus
// halt state and kill authority resolved to people now.
type agentDoc struct {
	ownership.AgentDoc
	Halted         bool     `json:"halted"`
	HaltedSessions []string `json:"halted_sessions"`
	// Containment is the agent-wide mode with its parameters; Sessions
	// each session contained on its own (halted ones included).
	Containment   containmentDoc            `json:"containment"`
	Sessions      map[string]containmentDoc `json:"contained_sessions"`
	OpenIncidents []int64                   `json:"open_incidents"`
	Holders       []string                  `json:"kill_authority_now"`
	Unavailable   []string                  `json:"kill_authority_unavailable,omitempty"`
}

// containmentDoc is a mode with its parameters, as the API, the flag and
// OFREP show it.
type containmentDoc struct {
	Mode  string   `json:"mode"`
	Allow []string `json:"allow"`
	Rate  int      `json:"rate"`
}

func containmentDocOf(c incidents.Containment) containmentDoc {
	d := containmentDoc{Mode: c.Mode, Allow: c.Allow, Rate: c.Rate}
	if d.Allow == nil {
		d.Allow = []string{}
	}
	return d
}

func agentDocOf(st incidents.AgentStatus) agentDoc {
	d := agentDoc{AgentDoc: st.Agent.Public(), Halted: st.Halted, HaltedSessions: st.HaltedSessions,
		Holders: st.Holders, Unavailable: st.Unavailable, OpenIncidents: []int64{}}
	if d.HaltedSessions == nil {
		d.HaltedSessions = []string{}
	}
	d.Containment, d.Sessions = containmentDocOf(st.ContainmentOf("")), map[string]containmentDoc{}
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

func (m *Main) listAgents(w http.ResponseWriter, r *http.Request) {
	sts, err := m.Service.Status(r.Context(), "")
	if err != nil {
		api.WriteDomainError(w, m.Log, r, err)
		return
	}
	docs := make([]agentDoc, 0, len(sts))
	for _, st := range sts {
		docs = append(docs, agentDocOf(st))
	}
	reg := m.Registry.Current()
	api.WriteJSON(w, http.StatusOK, map[string]any{"agents": docs, "config": reg.File, "loaded_at": reg.LoadedAt})
}

func (m *Main) getAgent(w http.ResponseWriter, r *http.Request) {
	sts, err := m.Service.Status(r.Context(), r.PathValue("agent"))
	if err != nil {
		api.WriteDomainError(w, m.Log, r, err)
		return
	}
	if len(sts) != 1 {
		api.WriteError(w, http.StatusNotFound, "unknown agent "+r.PathValue("agent"))
		return
	}
	api.WriteJSON(w, http.StatusOK, agentDocOf(sts[0]))
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

func (m *Main) haltAgent(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b haltBody
		if !api.DecodeJSON(w, r, &b) {
			return
		}
		if incidents.IsContainAction(action) && strings.TrimSpace(b.Reason) == "" {
			api.WriteError(w, http.StatusUnprocessableEntity, "reason is required: say why the agent is "+incidents.ModeOf(action))
			return
		}
		if strings.TrimSpace(b.Actor) == "" {
			api.WriteError(w, http.StatusUnprocessableEntity, "actor is required: name the person asking (it is audited)")
			return
		}
		h, err := m.Service.Halt(r.Context(), incidents.HaltCommand{
			Action: action, Agent: r.PathValue("agent"), Sessions: b.Sessions, Reason: b.Reason, Allow: b.Allow, Rate: b.Rate,
			Actor: incidents.Actor{Kind: incidents.ActorAPI, ID: b.Actor}, IncidentID: b.Incident, BreakGlass: true,
		})
		if err != nil {
			api.WriteDomainError(w, m.Log, r, err)
			return
		}
		status := http.StatusOK
		if h.Status != incidents.HaltVerified {
			// A halt that did not take effect is never reported as done.
			status = http.StatusBadGateway
		}
		api.WriteJSON(w, status, haltJSON(h))
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

func (m *Main) listIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := incidents.IncidentFilter{Agent: q.Get("agent"), Status: q.Get("status")}
	if f.Status != "" && f.Status != incidents.StatusOpen && f.Status != incidents.StatusResolved {
		api.WriteError(w, http.StatusBadRequest, "status must be open or resolved")
		return
	}
	for name, dst := range map[string]*int{"limit": &f.Limit, "offset": &f.Offset} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || (name == "limit" && n > 1000) {
				api.WriteError(w, http.StatusBadRequest, name+" must be a whole number (limit at most 1000)")
				return
			}
			*dst = n
		}
	}
	list, err := m.Service.FindIncidents(r.Context(), f)
	if err != nil {
		api.WriteDomainError(w, m.Log, r, err)
		return
	}
	out := make([]map[string]any, 0, len(list))
	for _, inc := range list {
		out = append(out, incidentJSON(inc))
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"incidents": out})
}

func (m *Main) incidentID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		api.WriteError(w, http.StatusBadRequest, "incident id must be a positive number")
		return 0, false
	}
	return id, true
}

// pathIncident loads the incident named by the {id} path value, answering
// the error itself when there is none.
func (m *Main) pathIncident(w http.ResponseWriter, r *http.Request) (*incidents.Incident, bool) {
	id, ok := m.incidentID(w, r)
	if !ok {
		return nil, false
	}
	inc, err := m.Service.FindIncident(r.Context(), id)
	if err != nil {
		api.WriteDomainError(w, m.Log, r, err)
		return nil, false
	}
	return inc, true
}

func (m *Main) getIncident(w http.ResponseWriter, r *http.Request) {
	inc, ok := m.pathIncident(w, r)
	if !ok {
		return
	}
	id := inc.ID
	events, err := m.Service.Timeline(r.Context(), id)
	if err != nil {
		api.WriteDomainError(w, m.Log, r, err)
		return
	}
	halts, err := m.Service.Halts(r.Context(), "", id)
	if err != nil {
		api.WriteDomainError(w, m.Log, r, err)
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
	api.WriteJSON(w, http.StatusOK, out)
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

func (m *Main) getPostmortem(w http.ResponseWriter, r *http.Request) {
	id, ok := m.incidentID(w, r)
	if !ok {
		return
	}
	pm, err := m.Service.Postmortem(r.Context(), id)
	if err != nil {
		api.WriteDomainError(w, m.Log, r, err)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		api.WriteJSON(w, http.StatusOK, pm)
		return
	}
	w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
	w.Header().Set("Last-Modified", m.Clock.Now().Format(http.TimeFormat))
	_, _ = w.Write([]byte(incidents.RenderMarkdown(pm)))
}
