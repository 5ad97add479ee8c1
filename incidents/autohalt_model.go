package incidents

import (
	"fmt"
	"time"

	"github.com/reins-oss/reins/ownership"
)

// The model of halts by policy: what the guard and the dead-man ask of
// incidents/halting, and what it answers.

// AutoHaltCommand is a halt asked for by policy: an SLA breach or the
// dead-man. No person's authority is checked: the config is the authority.
type AutoHaltCommand struct {
	Agent      string
	SLA        string   // SLA name, or "escalation" for the dead-man
	Action     string   // ownership.OnBreachRestrict | OnBreachThrottle | OnBreachHaltSession | OnBreachHaltAgent
	Fallback   string   // ownership fallback value
	Sessions   []string // for halt_session, restrict, throttle (empty: the whole agent)
	Allow      []string // restrict: the tool globs still allowed (the SLA's restrict_to)
	Rate       int      // throttle: model calls per minute (the SLA's rate)
	IncidentID int64    // the incident the breach opened/joined (0: find/open the agent's)
	Reason     string   // human text: "tokens_per_session 210,000 > 200,000 at step 37"
	DryRun     bool
	// Queue asks, beyond max_auto_halts_per_minute, for AutoHaltQueued and
	// when the budget frees (the guard's breaches wait for it) instead of
	// a note and a page.
	Queue bool
	// Overflow is the whole-agent halt of escalation.overflow: not held to
	// max_auto_halts_per_minute, since it stops every further halt.
	Overflow bool
}

// AutoHaltOutcome says what AutoHalt did.
type AutoHaltOutcome struct {
	Action string // what was actually done: restrict | throttle | halt_session | halt_agent | alert (fell back) | dry_run | rate_limited | already_halted
	Halt   *Halt  // nil unless a halt ran
	Note   string // what was said on the timeline / channel
	// RetryAt is, with AutoHaltQueued, when the agent's budget frees a halt.
	RetryAt time.Time
}

// EscalationSLA is the SLA name of the dead-man's halts.
const EscalationSLA = "escalation"

// PolicyActor is the actor of an automatic halt: "policy:<agent>/<sla>".
func PolicyActor(agent, sla string) Actor { return Actor{Kind: ActorPolicy, ID: agent + "/" + sla} }

// AutoHalt outcomes besides the on_breach values.
const (
	AutoHaltDryRun        = "dry_run"
	AutoHaltRateLimited   = "rate_limited"
	AutoHaltAlreadyHalted = "already_halted"
	// AutoHaltQueued: over max_auto_halts_per_minute with Queue set; the
	// caller asks again at RetryAt.
	AutoHaltQueued = "queued"
)

// ProbationSLA is the SLA name of the resume that ends a probation.
const ProbationSLA = "probation"

// AutoHaltWaiting is the news that breaching sessions of an agent wait for
// its max_auto_halts_per_minute (the guard's queue).
type AutoHaltWaiting struct {
	Agent      string
	IncidentID int64 // the incident of the breaches (0: the agent's open one)
	Waiting    int   // sessions waiting
	Limit      int
	RetryAt    time.Time
	Overflow   string // ownership.OverflowHaltAgent | ownership.OverflowQueue
}

// Text says how many sessions of which agent wait, why, and what happens.
func (w AutoHaltWaiting) Text(now time.Time) string {
	what := fmt.Sprintf("by escalation.overflow: %s reins halts the whole of %s", ownership.OverflowHaltAgent, w.Agent)
	if w.Overflow == ownership.OverflowQueue {
		what = fmt.Sprintf("by escalation.overflow: %s reins halts them in the order they crossed as the budget frees (next in %s)",
			ownership.OverflowQueue, w.RetryAt.Sub(now).Round(time.Second))
	}
	return fmt.Sprintf("%d breaching sessions of %s are waiting to be halted: max_auto_halts_per_minute (%d) is spent; %s. None is dropped. To halt the agent now: /agent kill %s",
		w.Waiting, w.Agent, w.Limit, what, w.Agent)
}
