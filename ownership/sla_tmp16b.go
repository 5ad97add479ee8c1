package ownership

import "time"

// TEMPORARY (helper 16b): the SLA shape of the issue-16 contract, until
// helper 16a's config lands; replaced by 16a's definitions on merge.

// SLA is one behavioural SLA.
type SLA struct {
	Name      string
	Metric    string
	Max       *float64
	Min       *float64
	Allow     []string
	Count     int
	Steps     int
	Attribute string
	Window    time.Duration
	OnBreach  string
	Fallback  string
	DryRun    bool
	Line      int
}

// SLA kinds.
const (
	SLATokensPerSession   = "tokens_per_session"
	SLACostPerSession     = "cost_per_session"
	SLAStepsPerSession    = "steps_per_session"
	SLAToolCallsPerMinute = "tool_calls_per_minute"
	SLAToolScope          = "tool_scope"
	SLALoop               = "loop"
	SLAErrorRate          = "error_rate"
	SLAScore              = "score"
)

// on_breach / fallback actions.
const (
	OnBreachAlert       = "alert"
	OnBreachHaltSession = "halt_session"
	OnBreachHaltAgent   = "halt_agent"
)
