package ownership

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var slaKeys = []string{
	"name", "metric", "max", "min", "allow", "count", "steps", "attribute", "window",
	"on_breach", "fallback", "dry_run", "restrict_to", "rate", "ladder", "ladder_window",
}

// slaBounds says which bound keys each metric takes; the first is required.
var slaBounds = map[string][]string{
	SLATokensPerSession:   {"max"},
	SLACostPerSession:     {"max"},
	SLAStepsPerSession:    {"max"},
	SLAToolCallsPerMinute: {"max"},
	SLAToolScope:          {"allow"},
	SLALoop:               {"count"},
	SLAErrorRate:          {"max", "steps"},
	SLAScore:              {"min", "attribute"},
}

// slaHelp says what each bound means, for "needs X" messages.
var slaHelp = map[string]string{
	"max":       "the most allowed",
	"min":       "the least allowed",
	"allow":     "the tool names or globs the agent may call",
	"count":     "how many identical tool calls in a session make a loop (2 or more)",
	"attribute": "the span attribute holding the score, e.g. eval.confidence",
}

func (p *parser) slas(n *yaml.Node, at string, a *Agent) []SLA {
	var out []SLA
	seen := map[string]int{}
	for i, item := range p.sequence(n, at) {
		ipath := fmt.Sprintf("%s[%d]", at, i)
		f, ok := p.mapping(item, ipath, slaKeys)
		if !ok {
			continue
		}
		s := p.sla(item, ipath, f, a)
		if s.Name == "" {
			continue
		}
		if first, dup := seen[s.Name]; dup {
			at := f.val("name")
			if at == nil {
				at = item
			}
			p.errorf(at, "%s: SLA name %s is used twice for this agent (first at line %d): give one a name: to tell them apart",
				ipath, quote(s.Name), first)
			continue
		}
		seen[s.Name] = s.Line
		out = append(out, s)
	}
	return out
}

func (p *parser) sla(item *yaml.Node, ipath string, f fields, a *Agent) SLA {
	s := SLA{
		Metric:    p.str(f.val("metric"), ipath+".metric"),
		Max:       p.number(f.val("max"), ipath+".max"),
		Min:       p.number(f.val("min"), ipath+".min"),
		Allow:     p.toolGlobs(f.val("allow"), ipath+".allow"),
		Attribute: p.str(f.val("attribute"), ipath+".attribute"),
		DryRun:    p.boolean(f.val("dry_run"), ipath+".dry_run", false),
		OnBreach:  p.choice(f.val("on_breach"), ipath+".on_breach", OnBreachAlert, OnBreachAlert, OnBreachRestrict, OnBreachThrottle, OnBreachHaltSession, OnBreachHaltAgent),
		Fallback:  p.choice(f.val("fallback"), ipath+".fallback", OnBreachAlert, OnBreachAlert, OnBreachHaltSession, OnBreachHaltAgent),
		Line:      lineOf(resolve(item)),
	}
	if v := f.val("count"); v != nil {
		s.Count = p.count(v, ipath+".count", 2, 1_000_000, 0)
	}
	if v := f.val("window"); v != nil {
		s.Window = p.duration(v, ipath+".window", 0)
	}
	bounds, known := slaBounds[s.Metric]
	switch {
	case s.Metric == "":
		p.errorf(item, "%s: metric is missing: one of %s", ipath, strings.Join(SLAMetrics, ", "))
		return SLA{}
	case !known:
		hint := didYouMean(s.Metric, SLAMetrics)
		if hint == "" {
			hint = " (known: " + strings.Join(SLAMetrics, ", ") + ")"
		}
		p.errorf(f.val("metric"), "%s.metric: unknown metric %s%s", ipath, quote(s.Metric), hint)
		return SLA{}
	}
	s.Name = s.Metric
	if s.Metric == SLAScore && s.Attribute != "" {
		s.Name = "score:" + s.Attribute
	}
	if v := f.val("name"); v != nil {
		if name := p.str(v, ipath+".name"); name != "" {
			if len(name) > 63 || strings.ContainsAny(name, " \t,/#") {
				p.errorf(v, "%s.name: %s is not a usable name (no spaces, commas, slashes or #, at most 63)", ipath, quote(name))
			}
			s.Name = name
		}
	}
	// Keys that belong to another metric: usually a metric line changed and
	// the rest was not, so the SLA would not mean what it says.
	for _, k := range []string{"max", "min", "allow", "count", "steps", "attribute"} {
		if f.has(k) && !slices.Contains(bounds, k) {
			p.errorf(f.byKey[k].key, "%s.%s: not a setting of metric %s (it takes %s)", ipath, k, s.Metric, strings.Join(bounds, ", "))
		}
	}
	if need := bounds[0]; !f.has(need) {
		p.errorf(item, "%s: SLA %s needs %s (%s)", ipath, s.Metric, need, slaHelp[need])
	}
	if s.Metric == SLAScore && !f.has("attribute") {
		p.errorf(item, "%s: SLA score needs attribute (%s)", ipath, slaHelp["attribute"])
	}
	switch s.Metric {
	case SLAErrorRate:
		s.Steps = DefaultErrorRateSteps
		if v := f.val("steps"); v != nil {
			s.Steps = p.count(v, ipath+".steps", 1, 1_000_000, DefaultErrorRateSteps)
		}
		if s.Max != nil && (*s.Max < 0 || *s.Max > 1) {
			p.errorf(f.val("max"), "%s.max: error_rate is a fraction from 0 to 1 (0.2 is 20%%), got %v", ipath, *s.Max)
		}
	case SLAToolCallsPerMinute:
		if s.Window == 0 {
			s.Window = DefaultToolCallsWindow
		}
	case SLACostPerSession:
		p.pendingCost = append(p.pendingCost, pendingCost{line: s.Line, at: ipath})
	}
	if s.Max != nil && *s.Max < 0 {
		p.errorf(f.val("max"), "%s.max: cannot be negative", ipath)
	}
	p.rungs(&s, item, ipath, f)
	if s.OnBreach == OnBreachHaltSession && !p.haltsSessions(a.Halt.Adapter) {
		p.warnf(f.val("on_breach"), "%s.on_breach: the %s adapter cannot halt one session: a breach will %s instead (set fallback: halt_agent to stop the whole agent)",
			ipath, a.Halt.Adapter, fallbackWords(s.Fallback))
	}
	return s
}

func fallbackWords(fallback string) string {
	if fallback == OnBreachHaltAgent {
		return "halt the whole agent"
	}
	return "only alert"
}

// pendingCost is a cost_per_session SLA, checked once pricing: is read
// (it comes after agents: in the file, or anywhere).
type pendingCost struct {
	line int
	at   string
}

// checkCostSLAs reports cost_per_session SLAs when no model has a price: the
// cost of every session would be 0 and the SLA could never fire.
func (p *parser) checkCostSLAs(pricing map[string]Price) {
	if len(pricing) > 0 {
		return
	}
	for _, c := range p.pendingCost {
		p.errorf(&yaml.Node{Line: c.line}, "%s: cost_per_session needs prices: add the agent's models under pricing: (USD per 1M tokens), or a session's cost is always 0", c.at)
	}
}

// choice reads one of a fixed set of words; def when absent.
func (p *parser) choice(n *yaml.Node, at, def string, allowed ...string) string {
	s := p.str(n, at)
	if s == "" {
		return def
	}
	if !slices.Contains(allowed, s) {
		hint := didYouMean(s, allowed)
		if hint == "" {
			hint = " (one of " + strings.Join(allowed, ", ") + ")"
		}
		p.errorf(n, "%s: unknown value %s%s", at, quote(s), hint)
		return def
	}
	return s
}

// escalation reads an agent's escalation: section; defaults when absent.
func (p *parser) escalation(n *yaml.Node, at string) Escalation {
	e := Escalation{Severities: slices.Clone(DefaultEscalationSeverities), MaxAutoHaltsPerMinute: DefaultMaxAutoHaltsPerMinute,
		Overflow: OverflowHaltAgent}
	f, _ := p.mapping(n, at, []string{"auto_halt_after", "severities", "max_auto_halts_per_minute", "overflow"})
	if v := f.val("auto_halt_after"); v != nil {
		e.AutoHaltAfter = p.span(v, at+".auto_halt_after")
	}
	if v := f.val("severities"); v != nil {
		sev := p.strList(v, at+".severities")
		for i, s := range sev {
			if !slices.Contains(knownSeverities, s) {
				p.errorf(p.itemNode(at+".severities", i), "%s.severities: unknown severity %s (one of %s)", at, quote(s), strings.Join(knownSeverities, ", "))
			}
		}
		if len(sev) == 0 {
			p.errorf(v, "%s.severities: list at least one severity (%s)", at, strings.Join(knownSeverities, ", "))
		} else {
			e.Severities = sev
		}
	}
	if v := f.val("max_auto_halts_per_minute"); v != nil {
		e.MaxAutoHaltsPerMinute = p.count(v, at+".max_auto_halts_per_minute", 1, 10000, DefaultMaxAutoHaltsPerMinute)
	}
	if v := f.val("overflow"); v != nil {
		switch o := p.str(v, at+".overflow"); o {
		case OverflowHaltAgent, OverflowQueue:
			e.Overflow = o
		default:
			p.errorf(v, "%s.overflow: unknown policy %s (one of %s, %s)", at, quote(o), OverflowHaltAgent, OverflowQueue)
		}
	}
	return e
}

// span reads a duration that may be 0 (off) but not negative.
func (p *parser) span(n *yaml.Node, at string) time.Duration {
	s := p.str(n, at)
	if s == "" || s == "0" {
		return 0
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		p.errorf(n, "%s: %q is not a duration (write for example 10m or 1h; 0 turns it off)", at, s)
		return 0
	case d < 0:
		p.errorf(n, "%s: %s is negative: write a duration such as 10m, or 0 to turn it off", at, s)
		return 0
	}
	return d
}

// haltsSessions says whether the named adapter, if it is one the loader was
// told about, can halt single sessions; an unknown one is reported elsewhere.
func (p *parser) haltsSessions(adapter string) bool {
	for _, a := range p.opts.Adapters {
		if a.Name == adapter {
			return a.SessionScoped
		}
	}
	return true
}

// rungs reads on_breach's parameters and the ladder: restrict_to (default:
// a tool_scope SLA's allow), rate, ladder (its first rung is on_breach) and
// ladder_window (default 10m).
func (p *parser) rungs(s *SLA, item *yaml.Node, ipath string, f fields) {
	if v := f.val("ladder"); v != nil {
		for i, r := range p.strList(v, ipath+".ladder") {
			if !slices.Contains(Rungs, r) {
				p.errorf(p.itemNode(ipath+".ladder", i), "%s.ladder: unknown rung %s (one of %s)", ipath, quote(r), strings.Join(Rungs, ", "))
				continue
			}
			s.Ladder = append(s.Ladder, r)
		}
		switch {
		case len(s.Ladder) == 0:
			p.errorf(v, "%s.ladder: list the rungs a repeated breach climbs, e.g. [restrict, halt_session]", ipath)
		case !f.has("on_breach"):
			s.OnBreach = s.Ladder[0]
		case s.OnBreach != s.Ladder[0]:
			p.errorf(f.val("on_breach"), "%s.on_breach: %s, but the ladder starts with %s: leave on_breach out (the ladder's first rung is the first breach's)",
				ipath, s.OnBreach, s.Ladder[0])
		}
	}
	s.LadderWindow = DefaultLadderWindow
	if v := f.val("ladder_window"); v != nil {
		s.LadderWindow = p.duration(v, ipath+".ladder_window", DefaultLadderWindow)
	}
	uses := func(rung string) bool { return s.OnBreach == rung || slices.Contains(s.Ladder, rung) }
	if v := f.val("restrict_to"); v != nil {
		s.RestrictTo = p.rungGlobs(v, ipath+".restrict_to")
	} else if s.Metric == SLAToolScope {
		s.RestrictTo = slices.Clone(s.Allow)
		p.checkRungGlobs(ipath+".allow", s.RestrictTo) // the allow-list a restrict rung leaves
	}
	if uses(OnBreachRestrict) && len(s.RestrictTo) == 0 {
		p.errorf(item, "%s: restrict needs restrict_to: the tools the agent may still call, e.g. [salesforce.read]", ipath)
	}
	if v := f.val("rate"); v != nil {
		s.Rate = p.count(v, ipath+".rate", 1, 100000, 0)
	}
	if uses(OnBreachThrottle) && s.Rate == 0 {
		p.errorf(item, "%s: throttle needs rate: the model calls per minute the agent may still make, e.g. 6", ipath)
	}
}

// resumeGate reads an agent's resume: section: approvals (1..5),
// person_approvals (1..approvals), probation {for, as, allow, rate}.
// A restrict probation without allow takes the first restrict_to among the
// agent's SLAs (a tool_scope SLA's allow-list by default).
func (p *parser) resumeGate(n *yaml.Node, at string, slas []SLA) ResumeGate {
	g := ResumeGate{Approvals: 1}
	f, _ := p.mapping(n, at, []string{"approvals", "person_approvals", "probation"})
	if v := f.val("approvals"); v != nil {
		g.Approvals = p.count(v, at+".approvals", 1, 5, 1)
	}
	g.PersonApprovals = g.Approvals
	if v := f.val("person_approvals"); v != nil {
		g.PersonApprovals = p.count(v, at+".person_approvals", 1, g.Approvals, g.Approvals)
	}
	if v := f.val("probation"); v != nil {
		pf, _ := p.mapping(v, at+".probation", []string{"for", "as", "allow", "rate"})
		g.Probation.For = p.span(pf.val("for"), at+".probation.for")
		g.Probation.As = p.choice(pf.val("as"), at+".probation.as", OnBreachRestrict, OnBreachRestrict, OnBreachThrottle)
		if av := pf.val("allow"); av != nil {
			g.Probation.Allow = p.rungGlobs(av, at+".probation.allow")
		}
		for _, s := range slas {
			if len(g.Probation.Allow) == 0 && len(s.RestrictTo) > 0 {
				g.Probation.Allow = slices.Clone(s.RestrictTo)
			}
		}
		if rv := pf.val("rate"); rv != nil {
			g.Probation.Rate = p.count(rv, at+".probation.rate", 1, 100000, 0)
		}
		switch {
		case g.Probation.For <= 0:
			p.errorf(v, "%s.probation: for is required: how long the resumed agent stays softened, e.g. 10m", at)
		case g.Probation.As == OnBreachRestrict && len(g.Probation.Allow) == 0:
			p.errorf(v, "%s.probation: as: restrict needs allow (the tools allowed during probation, e.g. [salesforce.read]) or an SLA with restrict_to", at)
		case g.Probation.As == OnBreachThrottle && g.Probation.Rate == 0:
			p.errorf(v, "%s.probation: as: throttle needs rate: model calls per minute during probation, e.g. 6", at)
		}
	}
	return g
}
