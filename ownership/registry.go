// Package ownership is the agent registry loaded from reins.yaml: who owns each
// agent, who may halt it, what it can write to and how it is halted. It knows
// nothing of Slack or PagerDuty; the look-ups it needs are the Directory and
// OnCall interfaces, implemented by bot and integrations/pagerduty.
package ownership

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Registry is one loaded, validated reins.yaml. It is immutable once built:
// a reload builds a new Registry and swaps it in a Holder.
type Registry struct {
	File    string // path it was loaded from, "" when running without a config
	Slack   SlackSettings
	Alerts  AlertSettings
	Teams   map[string]*Team
	Agents  map[string]*Agent
	Pricing map[string]Price // `pricing:`: model name -> USD per 1M tokens
	// Telemetry is the top-level `telemetry:` section: in-house attribute
	// names and the bounds of spans held for their trace's session.
	Telemetry TelemetrySettings
	LoadedAt  time.Time

	pos positions // line of every setting, for checks made after loading
}

// SlackSettings is the `slack:` section.
type SlackSettings struct {
	ChannelPrefix     string // default "inc"
	GovernanceChannel string // channel name (no #) for audits, drill reports, unowned incidents
}

// AlertSettings is the `alerts:` section.
type AlertSettings struct {
	AgentLabels   []string      // default [agent]
	SessionLabels []string      // default [session_id, session_ids]
	GroupWindow   time.Duration // default 4h
	// MaxNewIncidentsPerMinute caps the incidents one source opens a minute
	// (default 20); beyond it alerts join the source's overflow incident.
	MaxNewIncidentsPerMinute int
}

// Team is one entry of `teams:`.
type Team struct {
	Name           string
	SlackChannel   string // channel name, no #
	SlackUsergroup string // S… ID
	PagerDuty      PagerDutySettings
	Telemetry      TelemetryAuth // OTLP tokens covering every agent of the team
	Line           int
}

// PagerDutySettings says where pages go.
type PagerDutySettings struct {
	RoutingKeyEnv    string // name of the env var holding the Events v2 routing key
	EscalationPolicy string // P… ID, used for on-call look-ups
}

// Agent is one entry of `agents:`.
type Agent struct {
	Name          string
	Description   string
	Team          string // key into Registry.Teams
	Runbook       string
	RACI          RACI
	KillAuthority Authority
	PagerDuty     PagerDutySettings // optional override of the team's
	Halt          HaltSpec
	Sessions      SessionSettings
	Aliases       []string
	BlastRadius   []BlastItem
	SLAs          []SLA
	Escalation    Escalation    // zero value (defaults filled in) when not configured
	Resume        ResumeGate    // what lifting a containment needs; zero: one person, no probation
	Drill         string        // cron spec, "" for none
	Telemetry     TelemetryAuth // OTLP tokens covering this agent
	Line          int
}

// RACI lists people per role. A person is a Slack user ID (U…/W…), a user-group
// ID (S…), an e-mail address, or (informed only) a bare Slack channel name.
type RACI struct {
	Responsible []string
	Accountable []string
	Consulted   []string
	Informed    []string
}

// Authority is who may halt or resume an agent.
type Authority struct {
	Users      []string // U…/W… IDs or e-mail addresses
	Usergroups []string // S… IDs
	OnCall     string   // PagerDuty escalation policy ID: whoever is on call now
}

// HaltSpec is the `halt:` section: which adapter, whether a halt asks for a
// confirmation, and the adapter's own settings as written. What settings an
// adapter takes is declared by the adapter (integrations/halt) and checked by
// the loader through Options.Adapters; secrets are named by env var (the
// *_env settings), never held.
type HaltSpec struct {
	Adapter  string            // as written in halt.adapter
	Confirm  bool              // ask for a confirmation click (default true)
	Settings map[string]string // the adapter's settings by key; absent ones are ""
	Lines    map[string]int    // the line of each setting in Settings
	Line     int
}

// Setting returns the value of the adapter setting key, or "".
func (h HaltSpec) Setting(key string) string { return h.Settings[key] }

// With returns a copy of h with setting key set to value; h is unchanged
// (its Settings map is not shared with the copy).
func (h HaltSpec) With(key, value string) HaltSpec {
	s := make(map[string]string, len(h.Settings)+1)
	for k, v := range h.Settings {
		s[k] = v
	}
	s[key] = value
	h.Settings = s
	return h
}

// EnvVars returns the environment variables the settings name (the *_env
// ones), sorted by key: the secrets the adapter needs.
func (h HaltSpec) EnvVars() []string {
	var vars []string
	for _, k := range slices.Sorted(maps.Keys(h.Settings)) {
		if strings.HasSuffix(k, "_env") && h.Settings[k] != "" {
			vars = append(vars, h.Settings[k])
		}
	}
	return vars
}

// SessionSettings is the `sessions:` section.
type SessionSettings struct {
	Link           string // template holding {session}
	Source         string // otlp (default) | langfuse
	Langfuse       LangfuseSettings
	Retention      time.Duration // default 7 days; sessions an incident names are kept with it
	CaptureContent bool          // keep message contents (truncated to ContentLimit)
	ContentLimit   int           // bytes of content kept per step, default 2048
	MaxSteps       int           // step cap per session, default 10,000
}

// Session sources and defaults.
const (
	SourceOTLP            = "otlp"
	SourceLangfuse        = "langfuse"
	DefaultRetention      = 7 * 24 * time.Hour
	DefaultMaxSteps       = 10000
	DefaultContentLimit   = 2048
	minMaxSteps           = 10
	maxContentLimitConfig = 1 << 20
)

// LangfuseSettings say where to pull sessions from; keys are named by env var.
type LangfuseSettings struct {
	Host         string
	PublicKeyEnv string
	SecretKeyEnv string
}

// Price is one model's price in USD per 1M input and output tokens.
type Price struct {
	Input  float64
	Output float64
}

// BlastItem is one external system the agent can write to.
type BlastItem struct {
	System string
	Access []string
	Owner  string
	Check  string
	Link   string   // may hold {session}
	Tools  []string // globs of the tool names whose calls touch this system
}

// SLA is one behavioural SLA (docs/config.md, `slas[]`).
type SLA struct {
	Name      string        // `name:`, default: Metric (score: "score:"+Attribute); unique per agent; the `sla` label
	Metric    string        // one of the SLA* constants
	Max       *float64      // tokens/cost/steps/tool_calls_per_minute/error_rate (error_rate: fraction 0..1)
	Min       *float64      // score
	Allow     []string      // tool_scope: globs (path.Match syntax, validated)
	Count     int           // loop: the same tool with the same arguments Count times in a session (>=2)
	Steps     int           // error_rate: over the last Steps steps (default 20)
	Attribute string        // score: the span attribute (e.g. eval.confidence)
	Window    time.Duration // 0 = the whole session; tool_calls_per_minute: default 1m; for session kinds: only steps within the last Window count
	OnBreach  string        // alert (default) | restrict | throttle | halt_session | halt_agent
	Fallback  string        // alert (default) | halt_session | halt_agent: used when the adapter cannot do on_breach, or when max_auto_halts_per_minute is exceeded
	// RestrictTo is the allow-list a restrict rung leaves (tool_scope:
	// default its allow); Rate the model calls per minute a throttle rung
	// leaves.
	RestrictTo []string
	Rate       int
	// Ladder lists the rungs a session climbs on repeated breaches within
	// LadderWindow (guard.Rung); on_breach is its first rung.
	Ladder       []string
	LadderWindow time.Duration
	DryRun       bool
	Line         int // line of the SLA in reins.yaml
}

// SLA metrics.
const (
	SLATokensPerSession    = "tokens_per_session"
	SLACostPerSession      = "cost_per_session"
	SLAStepsPerSession     = "steps_per_session"
	SLAToolCallsPerMinute  = "tool_calls_per_minute"
	SLAToolScope           = "tool_scope"
	SLALoop                = "loop"
	SLAErrorRate           = "error_rate"
	SLAScore               = "score"
	DefaultErrorRateSteps  = 20
	DefaultToolCallsWindow = time.Minute
)

// SLAMetrics lists the known metrics in the order docs/config.md gives them.
var SLAMetrics = []string{
	SLATokensPerSession, SLACostPerSession, SLAStepsPerSession, SLAToolCallsPerMinute,
	SLAToolScope, SLALoop, SLAErrorRate, SLAScore,
}

// What a breach does (on_breach) and what it does instead (fallback).
const (
	OnBreachAlert       = "alert"
	OnBreachRestrict    = "restrict"
	OnBreachThrottle    = "throttle"
	OnBreachHaltSession = "halt_session"
	OnBreachHaltAgent   = "halt_agent"
)

// DefaultLadderWindow is how long a breach counts toward the next rung of
// its SLA's ladder when ladder_window is not set.
const DefaultLadderWindow = 10 * time.Minute

// Rungs are the on_breach values that contain, in the order ladders usually
// climb them.
var Rungs = []string{OnBreachRestrict, OnBreachThrottle, OnBreachHaltSession, OnBreachHaltAgent}

// Escalation is an agent's `escalation:` section: the dead-man halt and the
// cap on automatic halts.
type Escalation struct {
	AutoHaltAfter         time.Duration // 0: no dead-man
	Severities            []string      // default [critical]
	MaxAutoHaltsPerMinute int           // default 20; per agent; applies to all automatic halts
	// Overflow is what reins does when breaches wait for the automatic-halt
	// budget: OverflowHaltAgent (the default) or OverflowQueue.
	Overflow string
}

// Overflow policies (escalation.overflow): what happens to the breaches
// waiting beyond max_auto_halts_per_minute. Either way none is dropped.
const (
	// OverflowHaltAgent halts the whole agent: that many breaching sessions
	// at once is itself the incident.
	OverflowHaltAgent = "halt_agent"
	// OverflowQueue halts the waiting sessions one by one as the budget
	// frees, in the order they crossed.
	OverflowQueue = "queue"
)

// Escalation defaults.
const DefaultMaxAutoHaltsPerMinute = 20

// DefaultEscalationSeverities are the incident severities the dead-man
// watches when escalation.severities is not set.
var DefaultEscalationSeverities = []string{"critical"}

// knownSeverities mirror the incident severities (incidents.Severity*).
var knownSeverities = []string{"critical", "error", "warning", "info"}

// Label is the SLA's name, or for one built without a name (in code, not
// from reins.yaml) the name reins.yaml would have given it.
func (s *SLA) Label() string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Metric == SLAScore && s.Attribute != "":
		return "score:" + s.Attribute
	}
	return s.Metric
}

// Limit says what the SLA allows, as the postmortem, the web view and the CLI
// show it: "max 200000; within 1h0m0s".
func (s *SLA) Limit() string {
	var parts []string
	if s.Min != nil {
		parts = append(parts, "min "+strconv.FormatFloat(*s.Min, 'f', -1, 64))
	}
	if s.Max != nil {
		parts = append(parts, "max "+strconv.FormatFloat(*s.Max, 'f', -1, 64))
	}
	if len(s.Allow) > 0 {
		parts = append(parts, "allow "+strings.Join(s.Allow, ", "))
	}
	if s.Count > 0 {
		parts = append(parts, fmt.Sprintf("count %d", s.Count))
	}
	if s.Attribute != "" {
		parts = append(parts, "attribute "+s.Attribute)
	}
	if s.Metric == SLAErrorRate && s.Steps > 0 {
		parts = append(parts, fmt.Sprintf("over %d steps", s.Steps))
	}
	if s.Window > 0 {
		parts = append(parts, "within "+s.Window.String())
	}
	return strings.Join(parts, "; ")
}

// SLA returns the agent's SLA called name, or nil.
func (a *Agent) SLA(name string) *SLA {
	for i := range a.SLAs {
		if a.SLAs[i].Label() == name {
			return &a.SLAs[i]
		}
	}
	return nil
}

// Holder holds the Registry in force. Readers call Current on every use so a
// SIGHUP reload takes effect without restarts.
type Holder struct{ p atomic.Pointer[Registry] }

// NewHolder returns a Holder holding r.
func NewHolder(r *Registry) *Holder {
	h := &Holder{}
	h.p.Store(r)
	return h
}

// Current returns the registry in force.
func (h *Holder) Current() *Registry { return h.p.Load() }

// Swap replaces the registry in force.
func (h *Holder) Swap(r *Registry) { h.p.Store(r) }

// ResumeGate is an agent's `resume:` section (docs/containment.md): what
// lifting a containment needs.
type ResumeGate struct {
	// Approvals is how many distinct people with kill authority must ask to
	// resume what reins contained by policy (default 1).
	Approvals int
	// PersonApprovals is the same for what a person contained: an owner may
	// make it lighter (default: Approvals).
	PersonApprovals int
	// Probation, when For > 0: the approved resume first applies As
	// (restrict with Allow, or throttle with Rate) for For; the target
	// returns to running only if nothing breaches in that time.
	Probation Probation
}

// Probation is a softened resume (ResumeGate.Probation).
type Probation struct {
	For   time.Duration
	As    string   // OnBreachRestrict | OnBreachThrottle
	Allow []string // restrict: the tools allowed during probation
	Rate  int      // throttle: model calls per minute during probation
}

// Needed is how many approvals lifting a containment needs: byPolicy says
// whether reins contained it by policy.
func (g ResumeGate) Needed(byPolicy bool) int {
	n := g.Approvals
	if !byPolicy && g.PersonApprovals > 0 {
		n = g.PersonApprovals
	}
	return max(n, 1)
}
