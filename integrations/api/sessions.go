package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/reins-oss/reins/incidents/sessions"
)

// getSession serves /api/v1/sessions/{id}[?agent=] and
// /api/v1/agents/{agent}/sessions/{id}: a session is its agent's, and an ID
// two agents use without an agent named is answered 409 listing them.
func (h *Handler) getSession(w http.ResponseWriter, r *http.Request) {
	agent := r.PathValue("agent")
	if agent == "" {
		agent = r.URL.Query().Get("agent")
	}
	if agent != "" && h.Registry.Current().Agent(agent) == nil {
		WriteError(w, http.StatusNotFound, "unknown agent "+strconv.Quote(agent))
		return
	}
	rec, err := h.Sessions.Session(r.Context(), agent, r.PathValue("id"))
	var amb *sessions.AmbiguousError
	switch {
	case errors.As(err, &amb):
		WriteJSON(w, http.StatusConflict, map[string]any{"error": fmt.Sprintf(
			"%d agents have a session %s: name one with ?agent= or /api/v1/agents/{agent}/sessions/{id}",
			len(amb.Agents), strconv.Quote(amb.ID)), "agents": amb.Agents})
		return
	case errors.Is(err, sessions.ErrNotFound):
		WriteError(w, http.StatusNotFound, NoRecord(r.Context(), h.Sessions, h.Now(), r.PathValue("id")))
		return
	case err != nil:
		WriteDomainError(w, h.Log, r, err)
		return
	}
	if rec.Steps == nil {
		rec.Steps = []sessions.Step{}
	}
	WriteJSON(w, http.StatusOK, rec)
}

func (h *Handler) listSessions(w http.ResponseWriter, r *http.Request) {
	a := h.Registry.Current().Agent(r.PathValue("agent"))
	if a == nil {
		WriteError(w, http.StatusNotFound, "unknown agent "+r.PathValue("agent"))
		return
	}
	since := h.Now().Add(-24 * time.Hour)
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := parseSince(v, h.Now())
		if err != nil {
			WriteError(w, http.StatusBadRequest, "since: "+err.Error())
			return
		}
		since = t
	}
	list, err := h.Sessions.AgentSessions(r.Context(), a.Name, since, 0)
	if err != nil {
		WriteDomainError(w, h.Log, r, err)
		return
	}
	if list == nil {
		list = []sessions.Totals{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"agent": a.Name, "since": since.UTC(), "sessions": list})
}

// parseSince reads an RFC 3339 time or a duration back from now (24h).
func parseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, errors.New("expected an RFC 3339 time (2026-01-02T15:04:05Z) or a duration such as 24h")
}

// NoRecord says why reins has no record of a session: spans naming it were
// refused (when, from whom, why), or none arrived.
func NoRecord(ctx context.Context, s *sessions.Service, now time.Time, id string) string {
	refused, err := s.Refusals(ctx, now.Add(-sessions.RefusalRetention), id, 20)
	if err == nil && len(refused) > 0 {
		return "no record of session " + strconv.Quote(id) + ": " + sessions.DescribeRefusals(refused)
	}
	return "no record of session " + strconv.Quote(id) + ": no span naming it has reached /v1/traces " +
		"(gen_ai.conversation.id, session.id or another session attribute, docs/telemetry.md) in the last 7 days"
}
