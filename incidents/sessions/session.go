// Package sessions is the session record: what an agent did during one of
// its sessions, step by step (LLM calls, tool calls), with running totals,
// cost from the pricing table and the blast-radius system each tool call
// touched. Steps arrive from OTLP (integrations/otlp) or are pulled from a
// trace tool (integrations/langfuse); both produce the same Steps.
//
// The package imports no transport and no store: it declares the Store role
// it needs, implemented by incidents/sqlstore and incidents/incidentstest.
package sessions

import (
	"errors"
	"strings"
	"time"
)

// Step kinds, from gen_ai.operation.name (OpenInference span kinds are mapped
// onto these). Anything else is kept as sent, lowercased.
const (
	KindChat       = "chat"
	KindCompletion = "text_completion"
	KindTool       = "execute_tool"
	KindAgent      = "invoke_agent"
	KindRetrieval  = "retrieval"
	KindEmbeddings = "embeddings"
	KindOther      = "other"
)

// MaxIDLen bounds a session ID: longer ones are rejected at intake.
const MaxIDLen = 256

// Step is one span of a session: an LLM call, a tool call or another unit of
// the agent's work.
type Step struct {
	Session      string        `json:"session"`
	Agent        string        `json:"agent"`
	SpanID       string        `json:"span_id"`
	TraceID      string        `json:"trace_id,omitempty"`
	ParentID     string        `json:"parent_id,omitempty"`
	Start        time.Time     `json:"start"`
	Duration     time.Duration `json:"duration_ns"`
	Kind         string        `json:"kind"`
	Name         string        `json:"name"`
	Tool         string        `json:"tool,omitempty"`
	Model        string        `json:"model,omitempty"`
	InputTokens  int64         `json:"input_tokens"`
	OutputTokens int64         `json:"output_tokens"`
	Cost         float64       `json:"cost_usd"`
	Priced       bool          `json:"priced"` // false: tokens without a price for the model
	Error        bool          `json:"error"`
	ErrorType    string        `json:"error_type,omitempty"`
	System       string        `json:"system,omitempty"`  // blast-radius system the tool call touched
	Content      string        `json:"content,omitempty"` // only with capture_content, truncated
	// ArgsHash identifies a tool call's arguments for the loop SLA without
	// keeping them (docs/config.md, slas).
	ArgsHash string `json:"args_hash,omitempty"`
	// Scores are the numeric span attributes the agent's score SLAs name.
	Scores map[string]float64 `json:"scores,omitempty"`
	// N is the step's number in its session: the order reins received it
	// in (within a request, the order the spans started), set by the store.
	// The alert, the page, Slack, the web view and the API show it; 0 for a
	// step stored before numbering (shown by its position).
	N int64 `json:"n,omitempty"`
	// Received is when reins received the step. It, not Start (the agent's
	// clock), decides a session's first and last seen, listings, retention
	// and the guard's windows: a skewed or forged clock moves none of them.
	Received time.Time `json:"received_at"`
	// Judged says the guard judges the step (its agent has SLAs): the
	// store then marks its session as to be judged in the transaction that
	// stores it, so a crash before the judgement loses no breach.
	Judged bool `json:"-"`
	// HeldIn names the held chunk the step was read from (HoldPeeker.PeekHeld):
	// the store deletes that chunk in the transaction that stores the step,
	// so a held span leaves the hold only once it is a step, whatever fails
	// or crashes in between.
	HeldIn string `json:"-"`
}

// Key names one session: the agent it belongs to and the ID the agent gave
// it. Two agents using the same ID have two sessions.
type Key struct {
	Agent string `json:"agent"`
	ID    string `json:"session"`
}

// Compare orders keys by agent, then ID.
func (k Key) Compare(o Key) int {
	if c := strings.Compare(k.Agent, o.Agent); c != 0 {
		return c
	}
	return strings.Compare(k.ID, o.ID)
}

// String is "agent/ID", for logs.
func (k Key) String() string { return k.Agent + "/" + k.ID }

// Key is the session the step belongs to.
func (s Step) Key() Key { return Key{Agent: s.Agent, ID: s.Session} }

// Arrival is when the step counts as seen: when reins received it, or for a
// step built without (tests, old rows) its own start.
func (s Step) Arrival() time.Time {
	if !s.Received.IsZero() {
		return s.Received
	}
	return s.Start
}

// IsTool says whether the step is a tool call.
func (s Step) IsTool() bool { return s.Kind == KindTool || s.Tool != "" }

// Tokens is input plus output tokens.
func (s Step) Tokens() int64 { return s.InputTokens + s.OutputTokens }

// Totals are a session's running totals, kept by the store as steps arrive
// (the step cap never lowers them).
type Totals struct {
	Session      string    `json:"session"`
	Agent        string    `json:"agent"`
	Steps        int64     `json:"steps"`
	ToolCalls    int64     `json:"tool_calls"`
	Errors       int64     `json:"errors"`
	InputTokens  int64     `json:"input_tokens"`
	OutputTokens int64     `json:"output_tokens"`
	Cost         float64   `json:"cost_usd"`
	Unpriced     int64     `json:"unpriced_steps"` // steps with tokens but no price: the cost is a floor
	First        time.Time `json:"first"`          // when reins received the session's first step
	Last         time.Time `json:"last"`           // and its last
	Stored       int64     `json:"stored_steps"`   // steps kept after the step cap
}

// Key is the session the totals are of.
func (t Totals) Key() Key { return Key{Agent: t.Agent, ID: t.Session} }

// TotalTokens is input plus output tokens, what tokens_per_session counts.
func (t Totals) TotalTokens() int64 { return t.InputTokens + t.OutputTokens }

// Add counts s into t.
func (t *Totals) Add(s Step) {
	if t.Session == "" {
		t.Session, t.Agent = s.Session, s.Agent
	}
	t.Steps++
	t.Stored++
	if s.IsTool() {
		t.ToolCalls++
	}
	if s.Error {
		t.Errors++
	}
	t.InputTokens += s.InputTokens
	t.OutputTokens += s.OutputTokens
	t.Cost += s.Cost
	if !s.Priced && s.Tokens() > 0 {
		t.Unpriced++
	}
	first, last := s.Received, s.Received
	if s.Received.IsZero() {
		first, last = s.Start, s.Start.Add(s.Duration)
	}
	if t.First.IsZero() || first.Before(t.First) {
		t.First = first
	}
	if last.After(t.Last) {
		t.Last = last
	}
}

// Merge adds the totals o (of the same session) into t.
func (t *Totals) Merge(o Totals) {
	if t.Session == "" {
		t.Session, t.Agent = o.Session, o.Agent
	}
	t.Steps += o.Steps
	t.Stored += o.Stored
	t.ToolCalls += o.ToolCalls
	t.Errors += o.Errors
	t.InputTokens += o.InputTokens
	t.OutputTokens += o.OutputTokens
	t.Cost += o.Cost
	t.Unpriced += o.Unpriced
	if !o.First.IsZero() && (t.First.IsZero() || o.First.Before(t.First)) {
		t.First = o.First
	}
	if o.Last.After(t.Last) {
		t.Last = o.Last
	}
}

// Priced says whether every step with tokens had a price.
func (t Totals) Priced() bool { return t.Unpriced == 0 }

// Record is a session with its totals and its stored steps in time order.
type Record struct {
	Totals Totals `json:"totals"`
	Link   string `json:"link,omitempty"` // the trace tool's page for the session
	Steps  []Step `json:"steps"`
}

// ErrNotFound is returned for a session reins has no record of.
var ErrNotFound = errors.New("no record of this session")

// ValidID says why id cannot be a session ID, or "" when it can.
func ValidID(id string) string {
	switch {
	case id == "":
		return "empty session ID"
	case len(id) > MaxIDLen:
		return "session ID longer than 256 bytes"
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return "session ID holds control characters"
		}
	}
	return ""
}
