// Package ownership is the agent registry loaded from reins.yaml: who owns each
// agent, who may halt it, what it can write to and how it is halted. It knows
// nothing of Slack or PagerDuty; the look-ups it needs are the Directory and
// OnCall interfaces, implemented by bot and integrations/pagerduty.
package ownership

import (
	"sync/atomic"
	"time"
)

// Registry is one loaded, validated reins.yaml. It is immutable once built:
// a reload builds a new Registry and swaps it in a Holder.
type Registry struct {
	File     string // path it was loaded from, "" when running without a config
	Slack    SlackSettings
	Alerts   AlertSettings
	Teams    map[string]*Team
	Agents   map[string]*Agent
	Pricing  map[string]Price // `pricing:`: model name -> USD per 1M tokens
	LoadedAt time.Time

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
	Drill         string // cron spec, "" for none
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

// HaltSpec is the `halt:` section: which adapter and its settings. Only the
// fields of the chosen adapter are set; secrets are named by env var, never held.
type HaltSpec struct {
	Adapter   string // flag | webhook | launchdarkly | unleash | kubernetes
	Confirm   bool   // ask for a confirmation click (default true)
	URL       string // webhook: control endpoint; unleash: base URL; launchdarkly: API base (optional); kubernetes: API server
	SecretEnv string // webhook: HMAC secret env var
	TokenEnv  string // launchdarkly, unleash, kubernetes: API token env var
	// launchdarkly
	Project     string // launchdarkly and unleash project key
	Flag        string // launchdarkly flag key
	Environment string // launchdarkly and unleash environment
	// unleash
	Feature string
	// kubernetes
	Namespace  string
	Deployment string
	CAFile     string // kubernetes: CA bundle for the API server, optional
	Line       int
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
