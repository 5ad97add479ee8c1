package sessions

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Reasons spans are refused at intake: the `reason` of a Refusal and of the
// reins_otlp_spans_dropped_total counter.
const (
	RefusedNoSession    = "no_session"    // no session on the span or its trace, after the wait
	RefusedUnknownAgent = "unknown_agent" // gen_ai.agent.name / service.name not in reins.yaml
	RefusedBadSession   = "bad_session"   // over 256 bytes or control characters
	RefusedNoSpanID     = "no_span_id"
	RefusedOtherAgent   = "other_agent" // the session belongs to another agent
	RefusedHoldFull     = "hold_full"   // waiting for its trace's session, but telemetry.hold is full
	RefusedCap          = "cap"         // a per-request or in-flight cap
	RefusedToken        = "token_scope" // the bearer token does not cover the agent
)

// Refusal counts spans refused for one reason from one agent or service
// (an unknown one by the name it gave), and the session they named if any.
type Refusal struct {
	At      time.Time `json:"at"`
	Reason  string    `json:"reason"`
	Agent   string    `json:"agent"` // agent name, or the unknown service's name
	Session string    `json:"session,omitempty"`
	Spans   int64     `json:"spans"`
}

// MergeRefusals adds up refusals of the same reason, agent and session,
// keeping the first time.
func MergeRefusals(rs []Refusal) []Refusal {
	if len(rs) < 2 {
		return rs
	}
	type key struct{ reason, agent, session string }
	idx := map[key]int{}
	var out []Refusal
	for _, r := range rs {
		k := key{r.Reason, r.Agent, r.Session}
		if i, ok := idx[k]; ok {
			out[i].Spans += r.Spans
			continue
		}
		idx[k] = len(out)
		out = append(out, r)
	}
	return out
}

// RefusalSummary is spans refused per reason and agent over a period.
type RefusalSummary struct {
	Reason string    `json:"reason"`
	Agent  string    `json:"agent"`
	Spans  int64     `json:"spans"`
	Last   time.Time `json:"last"`
	Known  bool      `json:"known"` // the agent is in reins.yaml
}

// Sentence says it as reins doctor, /readyz and the agents page do:
// "7 spans from service `mystery-bot`, not in reins.yaml, in the last hour".
func (s RefusalSummary) Sentence(period string) string {
	n := plural(int(s.Spans), "span")
	switch s.Reason {
	case RefusedUnknownAgent:
		return fmt.Sprintf("%s from service `%s`, not in reins.yaml, in the last %s", n, s.Agent, period)
	case RefusedNoSession:
		return fmt.Sprintf("%s of %s refused in the last %s: no session on the span or its trace (set gen_ai.conversation.id or session.id on at least one span of each trace)", n, s.Agent, period)
	case RefusedHoldFull:
		return fmt.Sprintf("%s of %s refused in the last %s: too many spans waiting for their trace's session (telemetry.hold)", n, s.Agent, period)
	}
	return fmt.Sprintf("%s of %s refused in the last %s: %s", n, s.Agent, period, ReasonText(s.Reason))
}

// ReasonText says a refusal reason in words.
func ReasonText(reason string) string {
	switch reason {
	case RefusedNoSession:
		return "no session on the span or any span of its trace"
	case RefusedUnknownAgent:
		return "agent not in reins.yaml"
	case RefusedBadSession:
		return "session ID over 256 bytes or holding control characters"
	case RefusedNoSpanID:
		return "no span ID"
	case RefusedOtherAgent:
		return "the session belongs to another agent"
	case RefusedHoldFull:
		return "too many spans waiting for their trace's session (telemetry.hold)"
	case RefusedCap:
		return "over a cap of the intake"
	case RefusedToken:
		return "the telemetry token does not cover the agent"
	}
	return reason
}

// Summarize groups refusals by reason and agent, most spans first.
func Summarize(rs []Refusal, known func(agent string) bool) []RefusalSummary {
	type key struct{ reason, agent string }
	m := map[key]*RefusalSummary{}
	for _, r := range rs {
		k := key{r.Reason, r.Agent}
		s := m[k]
		if s == nil {
			s = &RefusalSummary{Reason: r.Reason, Agent: r.Agent}
			if known != nil {
				s.Known = known(r.Agent)
			}
			m[k] = s
		}
		s.Spans += r.Spans
		if r.At.After(s.Last) {
			s.Last = r.At
		}
	}
	out := make([]RefusalSummary, 0, len(m))
	for _, s := range m {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Spans != out[j].Spans {
			return out[i].Spans > out[j].Spans
		}
		return out[i].Agent+out[i].Reason < out[j].Agent+out[j].Reason
	})
	return out
}

// TraceBinding says which session an agent's trace belongs to: written when a
// span of the trace names its session, read to join the trace's other spans.
type TraceBinding struct {
	Agent   string
	TraceID string
	Session string
}

// DescribeRefusals says, for reins session, when spans naming a session were
// refused and why.
func DescribeRefusals(rs []Refusal) string {
	if len(rs) == 0 {
		return ""
	}
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%s from %s at %s (%s)", plural(int(r.Spans), "span"), r.Agent,
			r.At.UTC().Format("2006-01-02 15:04:05 UTC"), ReasonText(r.Reason)))
	}
	return "spans naming it were refused: " + strings.Join(parts, "; ")
}
