// Package otlp is reins' OTLP/HTTP trace intake (POST /v1/traces): it
// decodes ExportTraceServiceRequest bodies with the OpenTelemetry
// Collector's own pdata library (protobuf or JSON, gzip or not) and maps the
// spans to session steps by the GenAI semantic conventions, with the
// OpenInference names Phoenix and Arize emit as fallbacks (docs/config.md, sessions).
//
// A trimmed JSON request it reads:
//
//	{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"support-bot"}}]},
//	  "scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
//	    "name":"execute_tool salesforce.update_record","startTimeUnixNano":"1765000000000000000",
//	    "endTimeUnixNano":"1765000000200000000","attributes":[
//	      {"key":"gen_ai.conversation.id","value":{"stringValue":"s-8812"}},
//	      {"key":"gen_ai.operation.name","value":{"stringValue":"execute_tool"}},
//	      {"key":"gen_ai.tool.name","value":{"stringValue":"salesforce.update_record"}}]}]}]}]}
package otlp

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/incidents/words"
	"github.com/reins-oss/reins/ownership"
)

// Attribute names, in the order they are tried (docs/config.md, sessions).
var (
	sessionKeys = []string{"gen_ai.conversation.id", "session.id", "langfuse.session.id"}
	kindKeys    = []string{"gen_ai.operation.name", "openinference.span.kind"}
	toolKeys    = []string{"gen_ai.tool.name", "tool.name"}
	// Both generations of the GenAI names: instrumentations on older
	// semconv versions keep sending prompt/completion tokens.
	inputKeys  = []string{"gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"}
	outputKeys = []string{"gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion"}
	modelKeys  = []string{"gen_ai.response.model", "gen_ai.request.model", "llm.model_name"}
	// Contents, kept only when the agent sets capture_content.
	contentKeys = []string{"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.prompt", "gen_ai.completion",
		"gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "input.value", "output.value"}
)

// openInferenceKinds maps openinference.span.kind onto GenAI operation names.
var openInferenceKinds = map[string]string{
	"llm": sessions.KindChat, "tool": sessions.KindTool, "agent": sessions.KindAgent,
	"retriever": sessions.KindRetrieval, "embedding": sessions.KindEmbeddings,
}

// Result is what mapping one request gave.
type Result struct {
	Steps []sessions.Step
	// Rejected spans and why, for the OTLP partial_success answer.
	Rejected int
	Reasons  []string
	// Dropped counts spans left out, by reason (metrics only).
	Dropped map[string]int
	// WrongType counts attributes ignored for a wrong type, by attribute.
	WrongType map[string]int
}

// Reasons spans are dropped, the `reason` label of the drop counter.
const (
	DropNoSession    = "no_session"
	DropUnknownAgent = "unknown_agent"
	DropBadSession   = "bad_session"
	DropNoSpanID     = "no_span_id"
	DropNotCovered   = "token_scope" // the request's token does not cover the span's agent
	DropOverCap      = "over_cap"    // past REINS_OTLP_MAX_SPANS in one request
)

// Resolver finds the agent named by a span (gen_ai.agent.name) or its
// resource (service.name): a name or an alias; nil when unknown.
type Resolver func(name string) *ownership.Agent

// Map turns the spans of td into steps. Spans of one trace in the same
// request share the session and agent found on any of them: instrumentations
// often set the conversation ID on the agent's root span only.
func Map(td ptrace.Traces, resolve Resolver) Result {
	res := Result{Dropped: map[string]int{}, WrongType: map[string]int{}}
	agents := map[string]*ownership.Agent{}
	lookup := func(name string) *ownership.Agent {
		if a, ok := agents[name]; ok {
			return a
		}
		a := resolve(name)
		agents[name] = a
		return a
	}
	traceSession, traceAgent := map[pcommon.TraceID]string{}, map[pcommon.TraceID]string{}
	rss := td.ResourceSpans()
	// First pass: what each trace says about its session and agent.
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		rattrs := rs.Resource().Attributes()
		service := str(rattrs, "service.name", nil)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				if s := first(sp.Attributes(), rattrs, sessionKeys, nil); s != "" {
					if _, ok := traceSession[sp.TraceID()]; !ok {
						traceSession[sp.TraceID()] = s
					}
				}
				if a := str(sp.Attributes(), "gen_ai.agent.name", nil); a != "" && lookup(a) != nil {
					traceAgent[sp.TraceID()] = a
				} else if _, ok := traceAgent[sp.TraceID()]; !ok && service != "" {
					traceAgent[sp.TraceID()] = service
				}
			}
		}
	}
	unknown := map[string]int{}
	bad := 0
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		rattrs := rs.Resource().Attributes()
		service := str(rattrs, "service.name", res.WrongType)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				attrs := sp.Attributes()
				session := first(attrs, rattrs, sessionKeys, res.WrongType)
				if session == "" {
					session = traceSession[sp.TraceID()]
				}
				if session == "" {
					res.Dropped[DropNoSession]++
					continue
				}
				if why := sessions.ValidID(session); why != "" {
					res.Dropped[DropBadSession]++
					bad++
					continue
				}
				agentName := str(attrs, "gen_ai.agent.name", res.WrongType)
				a := lookup(agentName)
				if a == nil {
					if agentName = traceAgent[sp.TraceID()]; agentName == "" {
						agentName = service
					}
					a = lookup(agentName)
				}
				if a == nil {
					res.Dropped[DropUnknownAgent]++
					unknown[agentName]++
					continue
				}
				if sp.SpanID().IsEmpty() {
					res.Dropped[DropNoSpanID]++
					res.Rejected++
					res.Reasons = append(res.Reasons, "a span has no span ID")
					continue
				}
				res.Steps = append(res.Steps, step(sp, attrs, session, a, res.WrongType))
			}
		}
	}
	if bad > 0 {
		res.Rejected += bad
		res.Reasons = append(res.Reasons, fmt.Sprintf("%s with a session ID over %d bytes or holding control characters",
			words.Count(bad, "span"), sessions.MaxIDLen))
	}
	if len(unknown) > 0 {
		names := make([]string, 0, len(unknown))
		n := 0
		for name, c := range unknown {
			names = append(names, fmt.Sprintf("%q", sessions.Truncate(name, 64)))
			n += c
		}
		sort.Strings(names)
		if len(names) > 5 {
			names = append(names[:5], "…")
		}
		res.Rejected += n
		res.Reasons = append(res.Reasons, fmt.Sprintf("%s of agents not in reins.yaml (%s): set gen_ai.agent.name or service.name to an agent's name or alias",
			words.Count(n, "span"), strings.Join(names, ", ")))
	}
	return res
}

// step maps one span of a known agent and session.
func step(sp ptrace.Span, attrs pcommon.Map, session string, a *ownership.Agent, wrong map[string]int) sessions.Step {
	st := sessions.Step{
		Session: session,
		Agent:   a.Name,
		SpanID:  sp.SpanID().String(),
		TraceID: sp.TraceID().String(),
		Name:    sessions.Truncate(sp.Name(), 256),
		Start:   sp.StartTimestamp().AsTime().UTC(),
		Tool:    sessions.Truncate(first(attrs, noAttrs, toolKeys, wrong), 256),
		Model:   sessions.Truncate(first(attrs, noAttrs, modelKeys, wrong), 128),
	}
	if !sp.ParentSpanID().IsEmpty() {
		st.ParentID = sp.ParentSpanID().String()
	}
	if end := sp.EndTimestamp(); end > sp.StartTimestamp() {
		st.Duration = end.AsTime().Sub(sp.StartTimestamp().AsTime())
	}
	st.InputTokens = firstInt(attrs, inputKeys, wrong)
	st.OutputTokens = firstInt(attrs, outputKeys, wrong)
	st.Kind = kind(attrs, st, wrong)
	errType := str(attrs, "error.type", wrong)
	if sp.Status().Code() == ptrace.StatusCodeError || errType != "" {
		st.Error = true
		st.ErrorType = errType
		if st.ErrorType == "" {
			st.ErrorType = sp.Status().Message()
		}
		if st.ErrorType == "" {
			st.ErrorType = "error"
		}
		st.ErrorType = sessions.Truncate(st.ErrorType, 256)
	}
	if st.Tool != "" {
		st.ArgsHash = argsHash(attrs)
	}
	for i := range a.SLAs {
		sla := &a.SLAs[i]
		if sla.Metric != ownership.SLAScore || sla.Attribute == "" {
			continue
		}
		if v, ok := number(attrs, sla.Attribute, wrong); ok {
			if st.Scores == nil {
				st.Scores = map[string]float64{}
			}
			st.Scores[sla.Attribute] = v
		}
	}
	if a.Sessions.CaptureContent {
		var parts []string
		for _, k := range contentKeys {
			if v, ok := attrs.Get(k); ok {
				parts = append(parts, k+": "+v.AsString())
			}
		}
		st.Content = sessions.Truncate(strings.Join(parts, "\n"), a.Sessions.ContentLimit)
	}
	return st
}

func kind(attrs pcommon.Map, st sessions.Step, wrong map[string]int) string {
	if k := strings.ToLower(str(attrs, "gen_ai.operation.name", wrong)); k != "" {
		return sessions.Truncate(k, 64)
	}
	if k := strings.ToLower(str(attrs, "openinference.span.kind", wrong)); k != "" {
		if mapped, ok := openInferenceKinds[k]; ok {
			return mapped
		}
		return sessions.Truncate(k, 64)
	}
	switch {
	case st.Tool != "":
		return sessions.KindTool
	case st.Model != "" || st.InputTokens > 0 || st.OutputTokens > 0:
		return sessions.KindChat
	}
	return sessions.KindOther
}

// str reads a string attribute; another type is ignored and counted.
func str(m pcommon.Map, key string, wrong map[string]int) string {
	v, ok := m.Get(key)
	if !ok {
		return ""
	}
	if v.Type() != pcommon.ValueTypeStr {
		if wrong != nil {
			wrong[key]++
		}
		return ""
	}
	return strings.TrimSpace(v.Str())
}

// first returns the first of keys set as a string on the span, then on the
// resource.
func first(span, resource pcommon.Map, keys []string, wrong map[string]int) string {
	for _, k := range keys {
		if s := str(span, k, wrong); s != "" {
			return s
		}
	}
	for _, k := range keys {
		if s := str(resource, k, wrong); s != "" {
			return s
		}
	}
	return ""
}

// firstInt reads the first of keys set as a non-negative integer; another
// type is ignored and counted.
func firstInt(m pcommon.Map, keys []string, wrong map[string]int) int64 {
	for _, k := range keys {
		v, ok := m.Get(k)
		if !ok {
			continue
		}
		if v.Type() != pcommon.ValueTypeInt || v.Int() < 0 {
			if wrong != nil {
				wrong[k]++
			}
			continue
		}
		return v.Int()
	}
	return 0
}

// noAttrs stands in for a resource when only span attributes count.
var noAttrs = pcommon.NewMap()

// argsKeys hold a tool call's arguments.
var argsKeys = []string{"gen_ai.tool.call.arguments", "input.value"}

// argsHash is a short hash of a tool call's arguments: enough to tell the
// same call repeated (the loop SLA) while the arguments themselves are kept
// only under capture_content. "" when the span carries none.
func argsHash(attrs pcommon.Map) string {
	for _, k := range argsKeys {
		if v, ok := attrs.Get(k); ok {
			sum := sha256.Sum256([]byte(v.AsString()))
			return hex.EncodeToString(sum[:8])
		}
	}
	return ""
}

// number reads a numeric attribute (double, int, or a string holding a
// number as some SDKs send); another type is ignored and counted.
func number(m pcommon.Map, key string, wrong map[string]int) (float64, bool) {
	v, ok := m.Get(key)
	if !ok {
		return 0, false
	}
	switch v.Type() {
	case pcommon.ValueTypeDouble:
		if f := v.Double(); !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, true
		}
	case pcommon.ValueTypeInt:
		return float64(v.Int()), true
	case pcommon.ValueTypeStr:
		if f, err := strconv.ParseFloat(strings.TrimSpace(v.Str()), 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, true
		}
	}
	if wrong != nil {
		wrong[key]++
	}
	return 0, false
}
