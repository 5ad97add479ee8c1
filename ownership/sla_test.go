package ownership_test

import (
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/ownership"
)

// slaYAML is agentYAML with its SLAs from line 14 on (line 13 is `slas:`).
func slaYAML(items string) string { return agentYAML + "    slas:\n" + items }

const priced = "pricing:\n  gpt-4.1: {input: 2, output: 8}\n"

func TestParseSLAErrors(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		wantErrs []string // "line: substring", in order
	}{
		{"UnknownMetric", slaYAML("      - metric: tokens_per_sesion\n        max: 5\n"),
			[]string{`14: agents.a.slas[0].metric: unknown metric "tokens_per_sesion" (did you mean "tokens_per_session"?)`}},
		{"UnknownMetricListsKnown", slaYAML("      - metric: refunds\n        max: 5\n"),
			[]string{`14: agents.a.slas[0].metric: unknown metric "refunds" (known: tokens_per_session, cost_per_session, steps_per_session, tool_calls_per_minute, tool_scope, loop, error_rate, score)`}},
		{"MetricMissing", slaYAML("      - max: 5\n"), []string{"14: agents.a.slas[0]: metric is missing: one of tokens_per_session"}},
		{"MaxMissing", slaYAML("      - metric: steps_per_session\n        on_breach: halt_session\n"),
			[]string{"14: agents.a.slas[0]: SLA steps_per_session needs max (the most allowed)"}},
		{"ToolScopeWithoutAllow", slaYAML("      - metric: tool_scope\n"), []string{"14: agents.a.slas[0]: SLA tool_scope needs allow"}},
		{"BadGlob", slaYAML("      - metric: tool_scope\n        allow: [zendesk.*, \"sales[force\"]\n"),
			[]string{`15: agents.a.slas[0].allow: "sales[force" is not a usable glob`}},
		{"LoopWithoutCount", slaYAML("      - metric: loop\n"), []string{"14: agents.a.slas[0]: SLA loop needs count"}},
		{"LoopCountOne", slaYAML("      - metric: loop\n        count: 1\n"), []string{"15: agents.a.slas[0].count: expected a whole number from 2 to"}},
		{"ScoreWithoutMin", slaYAML("      - metric: score\n        attribute: eval.confidence\n"), []string{"14: agents.a.slas[0]: SLA score needs min"}},
		{"ScoreWithoutAttribute", slaYAML("      - metric: score\n        min: 0.4\n"), []string{"14: agents.a.slas[0]: SLA score needs attribute"}},
		{"ErrorRateAboveOne", slaYAML("      - metric: error_rate\n        max: 30\n"), []string{"15: agents.a.slas[0].max: error_rate is a fraction from 0 to 1"}},
		{"NegativeMax", slaYAML("      - metric: tokens_per_session\n        max: -1\n"), []string{"15: agents.a.slas[0].max: cannot be negative"}},
		{"KeyOfOtherMetric", slaYAML("      - metric: tokens_per_session\n        max: 5\n        count: 3\n"),
			[]string{"16: agents.a.slas[0].count: not a setting of metric tokens_per_session (it takes max)"}},
		{"UnknownOnBreach", slaYAML("      - metric: tokens_per_session\n        max: 5\n        on_breach: halt\n"),
			[]string{`16: agents.a.slas[0].on_breach: unknown value "halt" (did you mean`}},
		{"UnknownFallback", slaYAML("      - metric: tokens_per_session\n        max: 5\n        fallback: stop\n"),
			[]string{`16: agents.a.slas[0].fallback: unknown value "stop" (one of alert, halt_session, halt_agent)`}},
		{"DuplicateName", slaYAML("      - metric: tokens_per_session\n        max: 5\n      - metric: tokens_per_session\n        max: 9\n"),
			[]string{`16: agents.a.slas[1]: SLA name "tokens_per_session" is used twice for this agent (first at line 14)`}},
		{"DuplicateExplicitName", slaYAML("      - {name: cap, metric: steps_per_session, max: 5}\n      - {name: cap, metric: tokens_per_session, max: 9}\n"),
			[]string{`15: agents.a.slas[1]: SLA name "cap" is used twice`}},
		{"CostWithoutPricing", slaYAML("      - metric: cost_per_session\n        max: 2\n"),
			[]string{"14: agents.a.slas[0]: cost_per_session needs prices: add the agent's models under pricing:"}},
		{"BadWindow", slaYAML("      - metric: steps_per_session\n        max: 5\n        window: soon\n"),
			[]string{`16: agents.a.slas[0].window: "soon" is not a duration`}},
		{"EscalationUnknownSeverity", agentYAML + "    escalation:\n      severities: [critical, sev1]\n",
			[]string{`14: agents.a.escalation.severities: unknown severity "sev1" (one of critical, error, warning, info)`}},
		{"EscalationNegativeDuration", agentYAML + "    escalation:\n      auto_halt_after: -10m\n",
			[]string{"14: agents.a.escalation.auto_halt_after: -10m is negative"}},
		{"EscalationBadDuration", agentYAML + "    escalation:\n      auto_halt_after: ten minutes\n",
			[]string{`14: agents.a.escalation.auto_halt_after: "ten minutes" is not a duration`}},
		{"EscalationUnknownKey", agentYAML + "    escalation:\n      auto_halt: 10m\n",
			[]string{`14: agents.a.escalation: unknown key "auto_halt" (did you mean "auto_halt_after"?)`}},
		{"EscalationZeroRate", agentYAML + "    escalation:\n      max_auto_halts_per_minute: 0\n",
			[]string{"14: agents.a.escalation.max_auto_halts_per_minute: expected a whole number from 1 to 10000"}},
		{"CostWithPricing", slaYAML("      - metric: cost_per_session\n        max: 2\n") + priced, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantParseErrors(t, tt.yaml, tt.wantErrs)
		})
	}
}

func TestParseSLAHaltSessionWithoutSessionAdapterWarns(t *testing.T) {
	yaml := strings.Replace(slaYAML("      - metric: tokens_per_session\n        max: 5\n        on_breach: halt_session\n"),
		"{adapter: flag}", "{adapter: kubernetes, url: https://k.example.com, token_env: K, namespace: n, deployment: d}", 1)
	reg, probs := ownership.Parse("t.yaml", []byte(yaml), ownership.Options{Adapters: adapters, Getenv: allSet})
	if probs.Err() != nil || reg == nil {
		t.Fatalf("halt_session on kubernetes must be a warning, got %s", probs)
	}
	w := probs.Warnings()
	if len(w) != 1 || w[0].Line != 16 || !strings.Contains(w[0].Message, "the kubernetes adapter cannot halt one session: a breach will only alert instead") {
		t.Fatalf("got warnings %s", w)
	}
	// The same SLA on a flag agent is fine.
	_, probs = ownership.Parse("t.yaml", []byte(slaYAML("      - metric: tokens_per_session\n        max: 5\n        on_breach: halt_session\n")), ownership.Options{Adapters: adapters, Getenv: allSet})
	if len(probs) != 0 {
		t.Fatalf("flag agent: got %s", probs)
	}
}

func TestParseSLAFields(t *testing.T) {
	yaml := slaYAML(`      - metric: tokens_per_session
        max: 200000
        window: 30m
        on_breach: halt_session
        fallback: halt_agent
        dry_run: true
      - metric: tool_calls_per_minute
        max: 60
      - metric: error_rate
        max: 0.25
      - metric: loop
        count: 5
      - metric: score
        attribute: eval.confidence
        min: 0.4
      - name: strict-scope
        metric: tool_scope
        allow: [zendesk.*]
    escalation:
      auto_halt_after: 10m
      severities: [critical, error]
      max_auto_halts_per_minute: 5
`)
	reg, probs := ownership.Parse("t.yaml", []byte(yaml), ownership.Options{Adapters: adapters, Getenv: allSet})
	if len(probs) != 0 {
		t.Fatalf("got problems:\n%s", probs)
	}
	a := reg.Agent("a")
	if len(a.SLAs) != 6 {
		t.Fatalf("got %d SLAs, want 6", len(a.SLAs))
	}
	tok := a.SLAs[0]
	if tok.Name != "tokens_per_session" || *tok.Max != 200000 || tok.Window != 30*time.Minute || tok.OnBreach != ownership.OnBreachHaltSession ||
		tok.Fallback != ownership.OnBreachHaltAgent || !tok.DryRun || tok.Line != 14 {
		t.Errorf("tokens SLA: got %+v", tok)
	}
	if s := a.SLAs[1]; s.Window != time.Minute || s.OnBreach != ownership.OnBreachAlert || s.Fallback != ownership.OnBreachAlert {
		t.Errorf("tool_calls_per_minute defaults: got %+v", s)
	}
	if s := a.SLAs[2]; s.Steps != ownership.DefaultErrorRateSteps || *s.Max != 0.25 {
		t.Errorf("error_rate: got %+v", s)
	}
	if s := a.SLAs[3]; s.Count != 5 {
		t.Errorf("loop: got %+v", s)
	}
	if s := a.SLA("score:eval.confidence"); s == nil || *s.Min != 0.4 || s.Attribute != "eval.confidence" {
		t.Errorf("score: got %+v", s)
	}
	if a.SLA("strict-scope") == nil {
		t.Error("named SLA not found by its name")
	}
	if e := a.Escalation; e.AutoHaltAfter != 10*time.Minute || strings.Join(e.Severities, ",") != "critical,error" || e.MaxAutoHaltsPerMinute != 5 {
		t.Errorf("escalation: got %+v", e)
	}
	doc := a.Public()
	if d := doc.SLAs[0]; d.Name != "tokens_per_session" || d.OnBreach != "halt_session" || d.Fallback != "halt_agent" || !d.DryRun || d.Window != "30m0s" {
		t.Errorf("public SLA: got %+v", d)
	}
	if doc.Escalation.AutoHaltAfter != "10m0s" || doc.Escalation.MaxAutoHaltsPerMinute != 5 {
		t.Errorf("public escalation: got %+v", doc.Escalation)
	}
}

func TestParseEscalationDefaults(t *testing.T) {
	reg, probs := ownership.Parse("t.yaml", []byte(agentYAML), ownership.Options{Adapters: adapters, Getenv: allSet})
	if len(probs) != 0 {
		t.Fatalf("got problems:\n%s", probs)
	}
	e := reg.Agent("a").Escalation
	if e.AutoHaltAfter != 0 || strings.Join(e.Severities, ",") != "critical" || e.MaxAutoHaltsPerMinute != 20 {
		t.Errorf("got %+v, want no dead-man, [critical], 20", e)
	}
}

func TestParseSLALadder(t *testing.T) {
	reg, probs := loadSLAs(t, slaYAML(`      - metric: tool_scope
        allow: [salesforce.read, zendesk.*]
        ladder: [restrict, halt_session, halt_agent]
        ladder_window: 5m
        fallback: halt_session
      - metric: tokens_per_session
        max: 100
        on_breach: throttle
        rate: 6
`))
	if len(probs) != 0 {
		t.Fatalf("problems: %v", probs)
	}
	s := reg.Agent("a").SLAs[0]
	if s.OnBreach != "restrict" || strings.Join(s.Ladder, ",") != "restrict,halt_session,halt_agent" || s.LadderWindow != 5*time.Minute ||
		strings.Join(s.RestrictTo, ",") != "salesforce.read,zendesk.*" || s.Fallback != "halt_session" {
		t.Errorf("ladder SLA = %+v", s)
	}
	if th := reg.Agent("a").SLAs[1]; th.OnBreach != "throttle" || th.Rate != 6 || th.LadderWindow != ownership.DefaultLadderWindow {
		t.Errorf("throttle SLA = %+v", th)
	}
	for name, tt := range map[string]struct{ yaml, want string }{
		"ErrRestrictWithoutList": {"      - metric: tokens_per_session\n        max: 5\n        on_breach: restrict\n", "restrict needs restrict_to"},
		"ErrThrottleWithoutRate": {"      - metric: tokens_per_session\n        max: 5\n        on_breach: throttle\n", "throttle needs rate"},
		"ErrUnknownRung":         {"      - metric: tool_scope\n        allow: [a]\n        ladder: [restrict, explode]\n", `unknown rung "explode"`},
		"ErrOnBreachNotFirstRung": {"      - metric: tool_scope\n        allow: [a]\n        on_breach: halt_agent\n        ladder: [restrict, halt_session]\n",
			"the ladder starts with restrict"},
		// The flag's OFREP metadata joins the allow-list with commas: a
		// glob holding one would read there as two, a wider list.
		"ErrRestrictToComma": {"      - metric: tokens_per_session\n        max: 5\n        on_breach: restrict\n        restrict_to: [\"kb.read,crm.write\"]\n",
			`"kb.read,crm.write" holds a comma`},
		"ErrRestrictToEmpty":   {"      - metric: tokens_per_session\n        max: 5\n        on_breach: restrict\n        restrict_to: [\"\"]\n", "restrict needs restrict_to"},
		"ErrRestrictToControl": {"      - metric: tokens_per_session\n        max: 5\n        on_breach: restrict\n        restrict_to: [\"kb.\\x01read\"]\n", "holds a comma or a space"},
		"ErrToolScopeAllowSpace": {"      - metric: tool_scope\n        allow: [\"kb.read crm.write\"]\n        on_breach: restrict\n",
			`"kb.read crm.write" holds a comma or a space`},
	} {
		t.Run(name, func(t *testing.T) {
			_, probs := loadSLAs(t, slaYAML(tt.yaml))
			if len(probs) == 0 || !strings.Contains(probs[0], tt.want) {
				t.Errorf("problems %v, want one with %q", probs, tt.want)
			}
		})
	}
}

// loadSLAs parses yaml and returns the registry and the problems as text.
func loadSLAs(t *testing.T, yaml string) (*ownership.Registry, []string) {
	t.Helper()
	reg, probs := ownership.Parse("t.yaml", []byte(yaml), ownership.Options{Adapters: adapters, Getenv: allSet})
	var out []string
	for _, p := range probs.Errors() {
		out = append(out, p.String())
	}
	return reg, out
}

// One wording of an SLA's limit for the postmortem and the web view: the web
// view once had its own copy that left out count, attribute, steps and window.
func TestSLALimitSaysEveryBound(t *testing.T) {
	max := 0.2
	sla := ownership.SLA{Metric: ownership.SLAErrorRate, Max: &max, Steps: 20, Window: time.Hour}
	if got, want := sla.Limit(), "max 0.2; over 20 steps; within 1h0m0s"; got != want {
		t.Errorf("Limit() = %q, want %q", got, want)
	}
}
