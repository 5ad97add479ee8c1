package otlp

import (
	"encoding/json"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/reins-oss/reins/incidents/sessions"
)

// Fields of a step read from span attributes: the first column of the
// precedence table.
const (
	FieldSession = "session"
	FieldAgent   = "agent"
	FieldKind    = "kind"
	FieldTool    = "tool"
	FieldInput   = "input_tokens"
	FieldOutput  = "output_tokens"
	FieldModel   = "model"
	FieldError   = "error"
)

// Families of attribute names.
const (
	FamilyConfig        = "reins.yaml telemetry"
	FamilyGenAI         = "OpenTelemetry GenAI"
	FamilyGenAIOld      = "OpenTelemetry GenAI, older names"
	FamilyOTel          = "OpenTelemetry"
	FamilyOpenInference = "OpenInference"
	FamilyOpenLLMetry   = "OpenLLMetry (Traceloop)"
	FamilyVercel        = "Vercel AI SDK"
	FamilyLangfuse      = "Langfuse SDK"
)

// Rule is one row of the precedence table: a field, the attribute a family
// puts it in, and when the attribute counts. For each field the rules are
// tried in table order and the first one set wins.
type Rule struct {
	Field  string
	Key    string
	Family string
	// When, if set, says when the rule applies ("traceloop.span.kind = tool").
	When string
	// Resource: the attribute is also read from the span's resource, after
	// every span attribute of the field was tried.
	Resource bool

	num  func(sp pcommon.Map, wrong map[string]int) int64 // token fields; nil: integer(Key)
	kind func(v string) string                            // kind fields: the family's value onto reins' kinds
	test func(sp pcommon.Map, name string) (string, bool) // tool from a condition (the span name)
}

// Precedence is the one table of which attribute wins for each field
// (docs/telemetry.md shows it; TestPrecedenceDocumented keeps them equal).
// Operator-configured names (reins.yaml telemetry:) come first for session,
// agent and tool; they are not in this table, which lists what reins knows.
var Precedence = []Rule{
	{Field: FieldSession, Key: "gen_ai.conversation.id", Family: FamilyGenAI, Resource: true},
	{Field: FieldSession, Key: "session.id", Family: FamilyOpenInference + ", Langfuse SDK (propagated)", Resource: true},
	{Field: FieldSession, Key: "langfuse.session.id", Family: FamilyLangfuse, Resource: true},
	{Field: FieldSession, Key: "traceloop.association.properties.session_id", Family: FamilyOpenLLMetry, Resource: true},
	{Field: FieldSession, Key: "ai.telemetry.metadata.sessionId", Family: FamilyVercel, Resource: true},
	{Field: FieldSession, Key: "ai.telemetry.metadata.conversationId", Family: FamilyVercel, Resource: true},
	// else: the session of the span's trace, named by another of its spans.

	{Field: FieldAgent, Key: "gen_ai.agent.name", Family: FamilyGenAI},
	{Field: FieldAgent, Key: "service.name", Family: FamilyOTel, When: "resource attribute"},

	{Field: FieldKind, Key: "gen_ai.operation.name", Family: FamilyGenAI, kind: strings.ToLower},
	{Field: FieldKind, Key: "openinference.span.kind", Family: FamilyOpenInference, kind: mapKind(openInferenceKinds)},
	{Field: FieldKind, Key: "traceloop.span.kind", Family: FamilyOpenLLMetry, kind: mapKind(traceloopKinds)},
	{Field: FieldKind, Key: "ai.operationId", Family: FamilyVercel, kind: vercelKind},
	{Field: FieldKind, Key: "langfuse.observation.type", Family: FamilyLangfuse, kind: mapKind(langfuseKinds)},
	// else: execute_tool with a tool, chat with a model or tokens, other.

	{Field: FieldTool, Key: "gen_ai.tool.name", Family: FamilyGenAI},
	{Field: FieldTool, Key: "tool.name", Family: FamilyOpenInference},
	{Field: FieldTool, Key: "ai.toolCall.name", Family: FamilyVercel},
	{Field: FieldTool, Key: "traceloop.entity.name", Family: FamilyOpenLLMetry, When: "traceloop.span.kind = tool",
		test: func(sp pcommon.Map, _ string) (string, bool) {
			return str(sp, "traceloop.entity.name", nil), str(sp, "traceloop.span.kind", nil) == "tool"
		}},
	{Field: FieldTool, Key: "(span name)", Family: FamilyLangfuse, When: "langfuse.observation.type = tool",
		test: func(sp pcommon.Map, name string) (string, bool) {
			return name, str(sp, "langfuse.observation.type", nil) == "tool"
		}},

	{Field: FieldInput, Key: "gen_ai.usage.input_tokens", Family: FamilyGenAI},
	{Field: FieldInput, Key: "gen_ai.usage.prompt_tokens", Family: FamilyGenAIOld},
	{Field: FieldInput, Key: "llm.token_count.prompt", Family: FamilyOpenInference},
	{Field: FieldInput, Key: "ai.usage.inputTokens", Family: FamilyVercel},
	{Field: FieldInput, Key: "ai.usage.promptTokens", Family: FamilyVercel + " (before 5)"},
	{Field: FieldInput, Key: "langfuse.observation.usage_details", Family: FamilyLangfuse, When: `JSON "input"`,
		num: usageDetail("input", "prompt_tokens", "input_tokens")},

	{Field: FieldOutput, Key: "gen_ai.usage.output_tokens", Family: FamilyGenAI},
	{Field: FieldOutput, Key: "gen_ai.usage.completion_tokens", Family: FamilyGenAIOld},
	{Field: FieldOutput, Key: "llm.token_count.completion", Family: FamilyOpenInference},
	{Field: FieldOutput, Key: "ai.usage.outputTokens", Family: FamilyVercel},
	{Field: FieldOutput, Key: "ai.usage.completionTokens", Family: FamilyVercel + " (before 5)"},
	{Field: FieldOutput, Key: "langfuse.observation.usage_details", Family: FamilyLangfuse, When: `JSON "output"`,
		num: usageDetail("output", "completion_tokens", "output_tokens")},

	{Field: FieldModel, Key: "gen_ai.response.model", Family: FamilyGenAI},
	{Field: FieldModel, Key: "gen_ai.request.model", Family: FamilyGenAI},
	{Field: FieldModel, Key: "llm.model_name", Family: FamilyOpenInference},
	{Field: FieldModel, Key: "ai.response.model", Family: FamilyVercel},
	{Field: FieldModel, Key: "ai.model.id", Family: FamilyVercel},
	{Field: FieldModel, Key: "langfuse.observation.model.name", Family: FamilyLangfuse},

	{Field: FieldError, Key: "(span status ERROR)", Family: FamilyOTel},
	{Field: FieldError, Key: "error.type", Family: FamilyGenAI},
	{Field: FieldError, Key: "langfuse.observation.level", Family: FamilyLangfuse, When: "= ERROR"},
}

// rules returns the rows of field, in order.
func rules(field string) []Rule {
	var out []Rule
	for _, r := range Precedence {
		if r.Field == field {
			out = append(out, r)
		}
	}
	return out
}

// The table by field, built once.
var (
	sessionRules = rules(FieldSession)
	kindRules    = rules(FieldKind)
	toolRules    = rules(FieldTool)
	inputRules   = rules(FieldInput)
	outputRules  = rules(FieldOutput)
	modelRules   = rules(FieldModel)
	sessionKeys  = keysOf(sessionRules)
)

func keysOf(rs []Rule) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Key
	}
	return out
}

// openInferenceKinds maps openinference.span.kind onto GenAI operation names.
var openInferenceKinds = map[string]string{
	"llm": sessions.KindChat, "tool": sessions.KindTool, "agent": sessions.KindAgent,
	"retriever": sessions.KindRetrieval, "embedding": sessions.KindEmbeddings,
}

// traceloopKinds maps traceloop.span.kind (workflow, task, agent, tool).
var traceloopKinds = map[string]string{
	"tool": sessions.KindTool, "agent": sessions.KindAgent, "workflow": sessions.KindAgent, "task": sessions.KindOther,
}

// langfuseKinds maps langfuse.observation.type.
var langfuseKinds = map[string]string{
	"generation": sessions.KindChat, "tool": sessions.KindTool, "agent": sessions.KindAgent,
	"retriever": sessions.KindRetrieval, "embedding": sessions.KindEmbeddings,
	"span": sessions.KindOther, "chain": sessions.KindOther, "event": sessions.KindOther,
	"evaluator": sessions.KindOther, "guardrail": sessions.KindOther,
}

func mapKind(m map[string]string) func(string) string {
	return func(v string) string {
		v = strings.ToLower(v)
		if k, ok := m[v]; ok {
			return k
		}
		return v
	}
}

// vercelWrappers are the Vercel AI SDK's outer spans: each repeats the
// usage (summed) and the error of the model calls it made (its
// .doGenerate/.doStream/.doEmbed children), which carry them first-hand.
var vercelWrappers = map[string]bool{
	"ai.generateText": true, "ai.streamText": true, "ai.generateObject": true, "ai.streamObject": true,
	"ai.embed": true, "ai.embedMany": true,
}

// vercelKind maps ai.operationId.
func vercelKind(op string) string {
	switch {
	case op == "ai.toolCall":
		return sessions.KindTool
	case vercelWrappers[op]:
		return sessions.KindAgent
	case strings.HasPrefix(op, "ai.embed"):
		return sessions.KindEmbeddings
	case strings.HasPrefix(op, "ai.generate"), strings.HasPrefix(op, "ai.stream"):
		return sessions.KindChat // .doGenerate, .doStream: one model call
	}
	return sessions.KindOther
}

// usageDetail reads a token count from Langfuse's usage_details JSON object.
func usageDetail(names ...string) func(pcommon.Map, map[string]int) int64 {
	return func(sp pcommon.Map, wrong map[string]int) int64 {
		raw := str(sp, "langfuse.observation.usage_details", wrong)
		if raw == "" {
			return -1
		}
		var m map[string]json.Number
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			if wrong != nil {
				wrong["langfuse.observation.usage_details"]++
			}
			return -1
		}
		for _, n := range names {
			if v, ok := m[n]; ok {
				if i, err := strconv.ParseInt(v.String(), 10, 64); err == nil && i >= 0 {
					return i
				}
				if f, err := v.Float64(); err == nil && f >= 0 && f < 1e15 {
					return int64(f)
				}
			}
		}
		return -1
	}
}
