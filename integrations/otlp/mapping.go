// Package otlp is reins' OTLP/HTTP trace intake (POST /v1/traces): it
// decodes ExportTraceServiceRequest bodies with the OpenTelemetry
// Collector's own pdata library (protobuf or JSON, gzip or not) and maps the
// spans to session steps by the attribute families GenAI instrumentations
// emit: the OpenTelemetry GenAI conventions (current and older names),
// OpenInference, OpenLLMetry, the Vercel AI SDK and the Langfuse SDK, in the
// order of one precedence table (precedence.go, docs/telemetry.md).
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

// contentKeys hold message contents, kept only when the agent sets capture_content.
var contentKeys = []string{"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.prompt", "gen_ai.completion",
	"gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "input.value", "output.value",
	"ai.toolCall.args", "ai.toolCall.result", "ai.prompt", "ai.response.text", "langfuse.observation.input",
	"langfuse.observation.output"}

// Names are the attribute names of in-house conventions (reins.yaml
// telemetry:), tried before every name of the precedence table.
type Names struct {
	Session, Tool, Agent []string
}

// Result is what mapping one request gave.
type Result struct {
	// Steps are the spans whose session is known: named on the span, or by
	// another span of its trace (and agent) in this request.
	Steps []sessions.Step
	// Pending are spans of a known agent whose trace names no session in
	// this request (Session ""): the intake joins them to the session their
	// trace names in an earlier or later request (sessions.Service.Join).
	Pending []sessions.Step
	// Bindings are the sessions the traces of this request name, per agent.
	Bindings []sessions.TraceBinding
	// Rejected spans and why, for the OTLP partial_success answer.
	Rejected int
	Reasons  []string
	// Refusals are the rejected spans by reason and agent or service name,
	// for the warn log, reins doctor and the agents page.
	Refusals []sessions.Refusal
	// Dropped counts spans left out, by reason (metrics only).
	Dropped map[string]int
	// WrongType counts attributes ignored for a wrong type, by attribute.
	WrongType map[string]int
}

// Reasons spans are dropped, the `reason` label of the drop counter and of
// refusals (sessions.Refusal).
const (
	DropNoSession    = sessions.RefusedNoSession
	DropUnknownAgent = sessions.RefusedUnknownAgent
	DropBadSession   = sessions.RefusedBadSession
	DropNoSpanID     = sessions.RefusedNoSpanID
	DropNotCovered   = sessions.RefusedToken // the request's token does not cover the span's agent
	DropOverCap      = "over_cap"            // past REINS_OTLP_MAX_SPANS in one request
)

// Resolver finds the agent named by a span (gen_ai.agent.name) or its
// resource (service.name): a name or an alias; nil when unknown.
type Resolver func(name string) *ownership.Agent

// Map is MapNames without in-house attribute names.
func Map(td ptrace.Traces, resolve Resolver) Result { return MapNames(td, resolve, Names{}) }

type traceKey struct {
	agent string
	trace pcommon.TraceID
}

// MapNames turns the spans of td into steps. A span without a session
// takes the one another span of its trace and agent names in the same
// request (instrumentations often set it on the agent's root span only);
// one without either is Pending.
func MapNames(td ptrace.Traces, resolve Resolver, names Names) Result {
	res := Result{Dropped: map[string]int{}, WrongType: map[string]int{}}
	agents := map[string]*ownership.Agent{}
	lookup := func(name string) *ownership.Agent {
		if name == "" {
			return nil
		}
		if a, ok := agents[name]; ok {
			return a
		}
		a := resolve(name)
		agents[name] = a
		return a
	}
	sessionNames := append(append([]string(nil), names.Session...), sessionKeys...)
	traceAgent := map[pcommon.TraceID]*ownership.Agent{}
	rss := td.ResourceSpans()
	// First pass: the agent a trace's spans name by gen_ai.agent.name (or an
	// in-house attribute), for the spans of the trace that name none.
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				if a := lookup(spanAgent(sp.Attributes(), names.Agent)); a != nil {
					traceAgent[sp.TraceID()] = a
				}
			}
		}
	}
	// Sized for every span: growing it (a step is some 400 bytes) was half
	// of the mapping's cost in BenchmarkOTLPIntake.
	all := make([]mapped, 0, td.SpanCount())
	traceSession := map[traceKey]string{}
	unknown := map[string]int{}
	bad := map[string]int{}
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		rattrs := rs.Resource().Attributes()
		service := str(rattrs, "service.name", res.WrongType)
		resAgent := first(noAttrs, rattrs, names.Agent, res.WrongType)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				attrs := sp.Attributes()
				named := spanAgent(attrs, names.Agent)
				a := lookup(named)
				if a == nil {
					a = lookup(resAgent)
				}
				if a == nil {
					a = traceAgent[sp.TraceID()]
				}
				if a == nil {
					a = lookup(service)
				}
				session := first(attrs, rattrs, sessionNames, res.WrongType)
				if a == nil {
					res.Dropped[DropUnknownAgent]++
					who := named
					if who == "" {
						who = resAgent
					}
					if who == "" {
						who = service
					}
					if who == "" {
						who = "(no service.name)"
					}
					who = sessions.Truncate(who, 64)
					unknown[who]++
					res.Refusals = append(res.Refusals, sessions.Refusal{Reason: DropUnknownAgent, Agent: who,
						Session: validOrEmpty(session), Spans: 1})
					continue
				}
				if session != "" {
					if why := sessions.ValidID(session); why != "" {
						res.Dropped[DropBadSession]++
						bad[a.Name]++
						continue
					}
				}
				if sp.SpanID().IsEmpty() {
					res.Dropped[DropNoSpanID]++
					res.Rejected++
					res.Reasons = append(res.Reasons, "a span has no span ID")
					res.Refusals = append(res.Refusals, sessions.Refusal{Reason: DropNoSpanID, Agent: a.Name, Session: session, Spans: 1})
					continue
				}
				st, wrapper := step(sp, attrs, session, a, names, res.WrongType)
				if session != "" {
					key := traceKey{a.Name, sp.TraceID()}
					if _, ok := traceSession[key]; !ok {
						traceSession[key] = session
						res.Bindings = append(res.Bindings, sessions.TraceBinding{Agent: a.Name,
							TraceID: st.TraceID, Session: session})
					}
				}
				all = append(all, mapped{step: st, trace: sp.TraceID(), wrapper: wrapper})
			}
		}
	}
	countOnce(all)
	pending := 0
	for i := range all {
		m := &all[i]
		if m.step.Session == "" {
			m.step.Session = traceSession[traceKey{m.step.Agent, m.trace}]
		}
		if m.step.Session == "" {
			pending++
		}
	}
	if n := len(all) - pending; n > 0 {
		res.Steps = make([]sessions.Step, 0, n)
	}
	if pending > 0 {
		res.Pending = make([]sessions.Step, 0, pending)
	}
	for i := range all {
		if all[i].step.Session == "" {
			res.Pending = append(res.Pending, all[i].step)
			continue
		}
		res.Steps = append(res.Steps, all[i].step)
	}
	if len(bad) > 0 {
		n := 0
		for agent, c := range bad {
			n += c
			res.Refusals = append(res.Refusals, sessions.Refusal{Reason: DropBadSession, Agent: agent, Spans: int64(c)})
		}
		res.Rejected += n
		res.Reasons = append(res.Reasons, fmt.Sprintf("%s with a session ID over %d bytes or holding control characters",
			words.Count(n, "span"), sessions.MaxIDLen))
	}
	if len(unknown) > 0 {
		names := make([]string, 0, len(unknown))
		n := 0
		for name, c := range unknown {
			names = append(names, fmt.Sprintf("%q", name))
			n += c
		}
		sort.Strings(names)
		if len(names) > 5 {
			names = append(names[:5], "…")
		}
		res.Rejected += n
		res.Reasons = append(res.Reasons, fmt.Sprintf("%s refused: unknown_agent: service or agent %s not in reins.yaml: set gen_ai.agent.name or service.name to an agent's name or alias",
			words.Count(n, "span"), strings.Join(names, ", ")))
	}
	res.Refusals = sessions.MergeRefusals(res.Refusals)
	return res
}

// validOrEmpty is id when it can be a session ID, else "".
func validOrEmpty(id string) string {
	if sessions.ValidID(id) != "" {
		return ""
	}
	return id
}

// spanAgent is the agent a span names: an in-house attribute, then
// gen_ai.agent.name.
func spanAgent(attrs pcommon.Map, names []string) string {
	for _, k := range names {
		if s := str(attrs, k, nil); s != "" {
			return s
		}
	}
	return str(attrs, "gen_ai.agent.name", nil)
}

// countOnce makes tokens and errors count once: a span repeating what its
// children carry first-hand (the Vercel AI SDK's ai.generateText around its
// ai.generateText.doGenerate calls, a framework's chain span around its
// model call) keeps neither. The Vercel wrappers are known by name, whatever
// request their children came in; any other parent only when a child with
// tokens or an error is in the same request.
func countOnce(all []mapped) {
	type key struct{ trace, span string }
	tokens, errs := map[key]bool{}, map[key]bool{}
	for i := range all {
		st := &all[i].step
		if st.ParentID == "" {
			continue
		}
		if st.Tokens() > 0 {
			tokens[key{st.TraceID, st.ParentID}] = true
		}
		if st.Error {
			errs[key{st.TraceID, st.ParentID}] = true
		}
	}
	for i := range all {
		st := &all[i].step
		k := key{st.TraceID, st.SpanID}
		if all[i].wrapper || tokens[k] {
			st.InputTokens, st.OutputTokens = 0, 0
		}
		if all[i].wrapper || errs[k] {
			st.Error, st.ErrorType = false, ""
		}
	}
}

// mapped is one span mapped, before counting once.
type mapped struct {
	step    sessions.Step
	trace   pcommon.TraceID
	wrapper bool // a known wrapper repeating its children's usage and errors
}

// step maps one span of a known agent; session may be "" (pending). wrapper
// says the span is a known wrapper of the model calls under it.
func step(sp ptrace.Span, attrs pcommon.Map, session string, a *ownership.Agent, names Names, wrong map[string]int) (st sessions.Step, wrapper bool) {
	st = sessions.Step{
		Session: session,
		Agent:   a.Name,
		SpanID:  sp.SpanID().String(),
		TraceID: sp.TraceID().String(),
		Name:    sessions.Truncate(sp.Name(), 256),
		Start:   sp.StartTimestamp().AsTime().UTC(),
		Tool:    sessions.Truncate(tool(attrs, sp.Name(), names.Tool, wrong), 256),
		Model:   sessions.Truncate(firstRule(attrs, modelRules, wrong), 128),
	}
	if !sp.ParentSpanID().IsEmpty() {
		st.ParentID = sp.ParentSpanID().String()
	}
	if end := sp.EndTimestamp(); end > sp.StartTimestamp() {
		st.Duration = end.AsTime().Sub(sp.StartTimestamp().AsTime())
	}
	st.InputTokens = firstCount(attrs, inputRules, wrong)
	st.OutputTokens = firstCount(attrs, outputRules, wrong)
	st.Kind = kind(attrs, st, wrong)
	errType := str(attrs, "error.type", wrong)
	lfError := strings.EqualFold(str(attrs, "langfuse.observation.level", wrong), "ERROR")
	if sp.Status().Code() == ptrace.StatusCodeError || errType != "" || lfError {
		st.Error = true
		st.ErrorType = errType
		if st.ErrorType == "" {
			st.ErrorType = sp.Status().Message()
		}
		if st.ErrorType == "" && lfError {
			st.ErrorType = str(attrs, "langfuse.observation.status_message", wrong)
		}
		if st.ErrorType == "" {
			st.ErrorType = "error"
		}
		st.ErrorType = sessions.Truncate(st.ErrorType, 256)
	}
	wrapper = vercelWrappers[str(attrs, "ai.operationId", nil)]
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
	return st, wrapper
}

// tool is the tool a span calls: an in-house attribute, then the table.
func tool(attrs pcommon.Map, name string, extra []string, wrong map[string]int) string {
	for _, k := range extra {
		if s := str(attrs, k, wrong); s != "" {
			return s
		}
	}
	for _, r := range toolRules {
		if r.test != nil {
			if v, ok := r.test(attrs, name); ok && strings.TrimSpace(v) != "" {
				return strings.TrimSpace(v)
			}
			continue
		}
		if s := str(attrs, r.Key, wrong); s != "" {
			return s
		}
	}
	return ""
}

// firstRule returns the first of rules set as a string on the span.
func firstRule(attrs pcommon.Map, rs []Rule, wrong map[string]int) string {
	for _, r := range rs {
		if s := str(attrs, r.Key, wrong); s != "" {
			return s
		}
	}
	return ""
}

// firstCount returns the first of rules set as a token count.
func firstCount(attrs pcommon.Map, rs []Rule, wrong map[string]int) int64 {
	for _, r := range rs {
		var v int64 = -1
		if r.num != nil {
			v = r.num(attrs, wrong)
		} else {
			v = integer(attrs, r.Key, wrong)
		}
		if v >= 0 {
			return v
		}
	}
	return 0
}

func kind(attrs pcommon.Map, st sessions.Step, wrong map[string]int) string {
	for _, r := range kindRules {
		if v := str(attrs, r.Key, wrong); v != "" {
			return sessions.Truncate(r.kind(v), 64)
		}
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

// integer reads a non-negative integer attribute, or -1 when unset. A
// string holding one counts (OpenLLMetry sends token counts as strings);
// another type is ignored and counted.
func integer(m pcommon.Map, key string, wrong map[string]int) int64 {
	v, ok := m.Get(key)
	if !ok {
		return -1
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		if v.Int() >= 0 {
			return v.Int()
		}
	case pcommon.ValueTypeStr:
		if n, err := strconv.ParseInt(strings.TrimSpace(v.Str()), 10, 64); err == nil && n >= 0 {
			return n
		}
	case pcommon.ValueTypeDouble:
		if f := v.Double(); f >= 0 && f < 1e15 && f == math.Trunc(f) {
			return int64(f)
		}
	}
	if wrong != nil {
		wrong[key]++
	}
	return -1
}

// noAttrs stands in for a resource when only span attributes count.
var noAttrs = pcommon.NewMap()

// argsKeys hold a tool call's arguments.
var argsKeys = []string{"gen_ai.tool.call.arguments", "input.value", "ai.toolCall.args", "langfuse.observation.input"}

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
