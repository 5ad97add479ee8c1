package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/incidents/sqlstore"
	"github.com/reins-oss/reins/integrations/langfuse"
	"github.com/reins-oss/reins/integrations/otlp"
	"github.com/reins-oss/reins/ownership"
)

// sessionRoutes serves the OTLP intake and the session record API (docs/api.md, docs/config.md sessions).
func (m *Main) sessionRoutes(mux *routeMux) {
	maxBytes, _ := strconv.ParseInt(m.Config.OTLPMaxBytes, 10, 64)
	inflight, _ := strconv.ParseInt(m.Config.OTLPMaxInflightBytes, 10, 64)
	maxSpans, _ := strconv.Atoi(m.Config.OTLPMaxSpans)
	bulk, _ := strconv.Atoi(m.Config.OTLPBulkWrites)
	if bulk <= 0 {
		// As many bulk writes as reins has CPUs to decode for: more only
		// queue in the database, where a crossing span's statements then
		// wait behind theirs (docs/performance.md, containment first).
		bulk = max(2, runtime.GOMAXPROCS(0))
	}
	maxAttrs, _ := strconv.Atoi(m.Config.OTLPMaxAttributes)
	m.intake = otlp.NewHandler(otlp.Config{
		Token:            m.Config.OTLPToken,
		Credentials:      m.otlpCredentials,
		MaxBytes:         maxBytes,
		MaxInflightBytes: inflight,
		MaxSpans:         maxSpans,
		MaxAttributes:    maxAttrs,
		Resolve:          func(name string) *ownership.Agent { return m.Registry.Current().Agent(name) },
		Names: func() otlp.Names {
			t := m.Registry.Current().Telemetry
			return otlp.Names{Session: t.SessionAttributes, Tool: t.ToolAttributes, Agent: t.AgentAttributes}
		},
		Recorder: m.Sessions,
		Log:      m.Log,
		Observe:  m.sessionsRecorded,
		Metrics:  m.metrics().otlp,
		// A small request's writes (a crossing span exported as it
		// ended) pass the bulk lane, and on SQLite the queued writers.
		Urgent:     sqlstore.Urgent,
		BulkWrites: bulk,
	})
	mux.Handle("POST /v1/traces", m.intake)
	api := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, requireToken(m.Config.APIToken, "REINS_API_TOKEN", h))
	}
	api("GET /api/v1/sessions/{id}", m.getSession)
	api("GET /api/v1/agents/{agent}/sessions", m.listSessions)
	api("GET /api/v1/agents/{agent}/sessions/{id}", m.getSession)
}

// sessionsRecorded has the guard judge the new steps and refreshes the summaries of open incidents naming the
// sessions that just grew.
func (m *Main) sessionsRecorded(ctx context.Context, steps []sessions.Step, totals []sessions.Totals) {
	m.Guard.Observe(ctx, steps, totals)
	byAgent := map[string][]string{}
	for _, t := range totals {
		byAgent[t.Agent] = append(byAgent[t.Agent], t.Session)
	}
	for agent, ids := range byAgent {
		if err := m.Service.SessionsRecorded(ctx, agent, ids); err != nil {
			m.Log.Warn("refresh incident summaries after new steps", "agent", agent, "err", err)
		}
	}
}

// sweepHeldSpans records the held spans whose trace's session became known
// without their request seeing it (a race between replicas, a crash), has
// the guard judge them, and refuses those held past telemetry.hold.max_age.
func (m *Main) sweepHeldSpans(ctx context.Context) error {
	joined, expired, err := m.Sessions.Sweep(ctx)
	if len(joined) > 0 {
		sort.SliceStable(joined, func(i, j int) bool { return joined[i].Start.Before(joined[j].Start) })
		totals, rerr := m.Sessions.Record(ctx, joined)
		if rerr != nil {
			if herr := m.Sessions.Rehold(ctx, joined); herr != nil {
				m.Log.Error("put back held spans that could not be recorded", "spans", len(joined), "err", herr)
			}
			return rerr
		}
		m.sessionsRecorded(ctx, joined, totals)
	}
	if m.intake != nil {
		m.intake.Refused(ctx, expired)
	}
	if h := m.Sessions.Holds(); h != nil {
		if spans, bytes, serr := h.HeldStats(ctx); serr == nil {
			m.metrics().otlp.HeldSpans.Set(float64(spans))
			m.metrics().otlp.HeldBytes.Set(float64(bytes))
		}
	}
	return err
}

// sessionPuller is the pull source for agents whose sessions.source is not otlp.
func (m *Main) sessionPuller() sessions.Puller { return langfuse.NewClient(m.Getenv) }

// getSession serves /api/v1/sessions/{id}[?agent=] and
// /api/v1/agents/{agent}/sessions/{id}: a session is its agent's, and an ID
// two agents use without an agent named is answered 409 listing them.
func (m *Main) getSession(w http.ResponseWriter, r *http.Request) {
	agent := r.PathValue("agent")
	if agent == "" {
		agent = r.URL.Query().Get("agent")
	}
	if agent != "" && m.Registry.Current().Agent(agent) == nil {
		writeError(w, http.StatusNotFound, "unknown agent "+strconv.Quote(agent))
		return
	}
	rec, err := m.Sessions.Session(r.Context(), agent, r.PathValue("id"))
	var amb *sessions.AmbiguousError
	switch {
	case errors.As(err, &amb):
		writeJSON(w, http.StatusConflict, map[string]any{"error": fmt.Sprintf(
			"%d agents have a session %s: name one with ?agent= or /api/v1/agents/{agent}/sessions/{id}",
			len(amb.Agents), strconv.Quote(amb.ID)), "agents": amb.Agents})
		return
	case errors.Is(err, sessions.ErrNotFound):
		writeError(w, http.StatusNotFound, m.noRecord(r.Context(), r.PathValue("id")))
		return
	case err != nil:
		writeDomainError(w, m.Log, r, err)
		return
	}
	if rec.Steps == nil {
		rec.Steps = []sessions.Step{}
	}
	writeJSON(w, http.StatusOK, rec)
}

func (m *Main) listSessions(w http.ResponseWriter, r *http.Request) {
	a := m.Registry.Current().Agent(r.PathValue("agent"))
	if a == nil {
		writeError(w, http.StatusNotFound, "unknown agent "+r.PathValue("agent"))
		return
	}
	since := m.Clock.Now().Add(-24 * time.Hour)
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := parseSince(v, m.Clock.Now())
		if err != nil {
			writeError(w, http.StatusBadRequest, "since: "+err.Error())
			return
		}
		since = t
	}
	list, err := m.Sessions.AgentSessions(r.Context(), a.Name, since, 0)
	if err != nil {
		writeDomainError(w, m.Log, r, err)
		return
	}
	if list == nil {
		list = []sessions.Totals{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"agent": a.Name, "since": since.UTC(), "sessions": list})
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

func cmdSession(ctx context.Context, e *env, args []string) error {
	fs := e.newFlags("session")
	format := fs.String("format", "text", "text or json")
	agent := fs.String("agent", "", "the agent whose session it is (needed when two agents use the ID)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"give one session ID"}
	}
	if *format != "text" && *format != "json" {
		return usageError{"--format must be text or json"}
	}
	m, err := e.openMain(ctx, false)
	if err != nil {
		return err
	}
	defer m.Close()
	rec, err := m.Sessions.Session(ctx, *agent, pos[0])
	var amb *sessions.AmbiguousError
	if errors.As(err, &amb) {
		return usageError{fmt.Sprintf("%d agents have a session %q (%s): name one with --agent, e.g. reins session --agent %s %s",
			len(amb.Agents), amb.ID, strings.Join(amb.Agents, ", "), amb.Agents[0], amb.ID)}
	}
	if errors.Is(err, sessions.ErrNotFound) {
		return errors.New(m.noRecord(ctx, pos[0]))
	} else if err != nil {
		return err
	}
	refused, _ := m.Sessions.Refusals(ctx, m.Clock.Now().Add(-sessions.RefusalRetention), pos[0], 20)
	if *format == "json" {
		if rec.Steps == nil {
			rec.Steps = []sessions.Step{}
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rec)
	}
	_, err = fmt.Fprint(e.stdout, sessions.Text(rec, m.Registry.Current().Agent(rec.Totals.Agent)))
	if err == nil && len(refused) > 0 {
		_, err = fmt.Fprintln(e.stdout, "Also: "+sessions.DescribeRefusals(refused)+".")
	}
	return err
}

// noRecord says why reins has no record of a session: spans naming it were
// refused (when, from whom, why), or none arrived.
func (m *Main) noRecord(ctx context.Context, id string) string {
	refused, err := m.Sessions.Refusals(ctx, m.Clock.Now().Add(-sessions.RefusalRetention), id, 20)
	if err == nil && len(refused) > 0 {
		return "no record of session " + strconv.Quote(id) + ": " + sessions.DescribeRefusals(refused)
	}
	return "no record of session " + strconv.Quote(id) + ": no span naming it has reached /v1/traces " +
		"(gen_ai.conversation.id, session.id or another session attribute, docs/telemetry.md) in the last 7 days"
}
