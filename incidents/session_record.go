package incidents

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/ownership"
)

// SessionRecords is the session record as the incident shows it (summary,
// page, checklist evidence, postmortem, `/agent session`). Implemented by
// sessions.Service, which pulls from Langfuse when reins has no record.
type SessionRecords interface {
	Session(ctx context.Context, agent, id string) (sessions.Record, error)
	// Notable is a session's totals with only its tool calls and errors;
	// pull false never asks a trace tool (safe inside a transaction).
	Notable(ctx context.Context, agent, id string, pull bool) (sessions.Record, error)
}

// maxIncidentSessions bounds how many sessions an incident's views load.
const maxIncidentSessions = 10

// timelineLimit is the number of steps above which `/agent session`
// summarises a session.
const timelineLimit = 20

// OutsideBlast lists the tools called outside the declared blast radius,
// with their call counts, e.g. "zendesk.close_ticket (1 call)".
func OutsideBlast(recs []sessions.Record, ag *ownership.Agent) []string {
	counts := map[string]int{}
	for _, r := range recs {
		for _, st := range sessions.Outside(r.Steps, ag) {
			counts[st.Tool]++
		}
	}
	var out []string
	for tool, n := range counts {
		calls := "calls"
		if n == 1 {
			calls = "call"
		}
		out = append(out, fmt.Sprintf("%s (%d %s)", tool, n, calls))
	}
	sort.Strings(out)
	return out
}

// SessionSteps is every stored step of recs.
func SessionSteps(recs []sessions.Record) []sessions.Step {
	var out []sessions.Step
	for _, r := range recs {
		out = append(out, r.Steps...)
	}
	return out
}

// sessionPageDetails is what the page's custom details carry per session.
func sessionPageDetails(recs []sessions.Record) map[string]any {
	out := map[string]any{}
	for _, r := range recs {
		t := r.Totals
		out[t.Session] = map[string]any{"steps": t.Steps, "tool_calls": t.ToolCalls, "errors": t.Errors,
			"input_tokens": t.InputTokens, "output_tokens": t.OutputTokens, "total_tokens": t.TotalTokens(),
			"cost": sessions.FormatCost(t), "first": t.First.UTC(), "last": t.Last.UTC()}
	}
	return out
}

// SessionTimeline is the message `/agent session ID` posts: the numbered
// steps, summarised past timelineLimit steps, with links to the full record.
func (s *Service) SessionTimeline(ctx context.Context, agent, id string) (Message, error) {
	if s.sessions == nil {
		return Message{}, &Error{Code: ENOTFOUND, Message: "Session records are not enabled here."}
	}
	rec, err := s.sessions.Session(ctx, agent, id)
	var amb *sessions.AmbiguousError
	if errors.As(err, &amb) {
		return Message{}, &Error{Code: ECONFLICT, Message: fmt.Sprintf(
			"%d agents have a session %s: %s. Name the agent: `/agent session %s %s`.",
			len(amb.Agents), id, strings.Join(amb.Agents, ", "), amb.Agents[0], id)}
	}
	if errors.Is(err, sessions.ErrNotFound) {
		return Message{}, &Error{Code: ENOTFOUND, Message: fmt.Sprintf(
			"reins has no record of session %s: its agent must export spans naming it (gen_ai.conversation.id or session.id) to /v1/traces, or pull from Langfuse (sessions.source).", id)}
	} else if err != nil {
		return Message{}, fmt.Errorf("session %s: %w", id, err)
	}
	ag := FindAgent(s.Registry(), rec.Totals.Agent)
	entries, omitted := sessions.Timeline(rec, ag, timelineLimit)
	var b strings.Builder
	b.WriteString(sessions.FormatTotals(rec.Totals) + "\n")
	if omitted > 0 {
		fmt.Fprintf(&b, "Summarised: first and last steps, every error, every blast-radius call and every tool outside scope; %d other steps omitted.\n", omitted)
	}
	// A Slack section holds 3,000 characters: past that, the rest is in
	// the full record.
	const room = 2700
	shown := 0
	for _, e := range entries {
		line := sessions.FormatEntry(e) + "\n"
		if b.Len()+len(line) > room {
			break
		}
		b.WriteString(line)
		shown++
	}
	if shown < len(entries) {
		fmt.Fprintf(&b, "… %d more notable steps in the full record.\n", len(entries)-shown)
	}
	msg := Message{ThreadTS: ThreadOfSummary, Style: StyleInfo,
		Title: fmt.Sprintf("Session %s of %s: timeline", id, rec.Totals.Agent), Text: b.String()}
	if s.cfg.PublicURL != "" {
		msg.Links = append(msg.Links, Link{Text: "Full record", URL: strings.TrimRight(s.cfg.PublicURL, "/") +
			"/sessions/" + url.PathEscape(id) + "?agent=" + url.QueryEscape(rec.Totals.Agent)})
	}
	if l := s.sessionLink(ag, id); l != "" {
		msg.Links = append(msg.Links, Link{Text: "Trace", URL: l})
	}
	return msg, nil
}

func (s *Service) sessionLink(ag *ownership.Agent, id string) string {
	for _, l := range SessionLinks(ag, []string{id}) {
		return l.URL
	}
	return ""
}

// PostSessionTimeline posts a session's timeline in the thread of an
// incident's summary, through the outbox like every other post. agent ""
// is the incident's agent.
func (s *Service) PostSessionTimeline(ctx context.Context, actor Actor, incidentID int64, agent, id string) error {
	inc, err := s.store.FindIncident(ctx, incidentID)
	if err != nil {
		return err
	}
	if agent == "" {
		agent = inc.Agent
	}
	msg, err := s.SessionTimeline(ctx, agent, id)
	if err != nil {
		return err
	}
	if s.chat == nil {
		return &Error{Code: EUNAVAILABLE, Message: "Slack is not configured here."}
	}
	key := fmt.Sprintf("inc-%d/session/%s/%d", inc.ID, id, s.clock.Now().UnixNano())
	if err := s.store.InTx(ctx, func(q Queries) error {
		return s.Enqueue(ctx, q, inc.ID, outbox.LaneChat, KindPost, key, msg)
	}); err != nil {
		return fmt.Errorf("post timeline of session %s: %w", id, err)
	}
	s.Kick()
	return nil
}

// SessionRecordDoc is one session in the postmortem's "Session record".
type SessionRecordDoc struct {
	Totals     sessions.Totals `json:"totals"`
	Link       string          `json:"link,omitempty"`
	BlastCalls []sessions.Step `json:"blast_radius_calls"`
	Outside    []sessions.Step `json:"outside_blast_radius"`
	Errors     []sessions.Step `json:"errors"`
}

func sessionTotals(recs []sessions.Record) map[string]sessions.Totals {
	out := make(map[string]sessions.Totals, len(recs))
	for _, r := range recs {
		out[r.Totals.Session] = r.Totals
	}
	return out
}

// StepsRecorded is the incidents' observer of stored steps
// (sessions.Service.Observe): it refreshes the summaries of the open
// incidents naming the sessions that grew, whether their steps came over
// OTLP or were pulled from a trace tool.
func (s *Service) StepsRecorded(ctx context.Context, _ []sessions.Step, totals []sessions.Totals) {
	byAgent := map[string][]string{}
	var agents []string
	for _, t := range totals {
		if byAgent[t.Agent] == nil {
			agents = append(agents, t.Agent)
		}
		byAgent[t.Agent] = append(byAgent[t.Agent], t.Session)
	}
	for _, agent := range agents {
		if err := s.SessionsRecorded(ctx, agent, byAgent[agent]); err != nil {
			s.log.Warn("refresh incident summaries after new steps", "agent", agent, "err", err)
		}
	}
}

// SessionsRecorded refreshes, debounced, the summaries of agent's open
// incidents that name any of ids: steps often arrive after the alert that
// named their session, and the summary shows their totals.
func (s *Service) SessionsRecorded(ctx context.Context, agent string, ids []string) error {
	if s.chat == nil || len(ids) == 0 {
		return nil
	}
	incs, err := s.store.FindIncidents(ctx, IncidentFilter{Agent: agent, Status: StatusOpen})
	if err != nil {
		return fmt.Errorf("find open incidents of %s: %w", agent, err)
	}
	named := make(map[string]bool, len(ids))
	for _, id := range ids {
		named[id] = true
	}
	bucket := s.clock.Now().Truncate(SummaryDebounce)
	for _, inc := range incs {
		if inc.SummaryTS == "" || !namesAny(inc, named) {
			continue
		}
		key := fmt.Sprintf("inc-%d/update_summary/%d", inc.ID, bucket.Unix())
		if err := s.store.InTx(ctx, func(q Queries) error {
			return s.EnqueueAt(ctx, q, inc.ID, outbox.LaneRefresh, KindUpdateSummary, key, nil, bucket.Add(SummaryDebounce))
		}); err != nil {
			return fmt.Errorf("refresh summary of incident %d: %w", inc.ID, err)
		}
	}
	return nil
}

func namesAny(inc *Incident, ids map[string]bool) bool {
	for _, id := range inc.Sessions {
		if ids[id] {
			return true
		}
	}
	return false
}
