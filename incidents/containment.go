package incidents

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Containment rungs a person or policy can ask for, besides ActionHalt and
// ActionResume. A halt is the strongest rung; resume lifts any of them.
const (
	ActionRestrict = "restrict" // only tools matching Allow may be called
	ActionThrottle = "throttle" // at most Rate model calls per minute
)

// Containment modes: what the kill flag, OFREP and the webhook's status
// report for an agent or a session.
const (
	ModeRunning    = "running"
	ModeThrottled  = "throttled"
	ModeRestricted = "restricted"
	ModeHalted     = "halted"
)

// Containment is the mode of an agent or a session with its parameters.
type Containment struct {
	Mode  string   // ModeRunning … ModeHalted
	Allow []string // restricted: the tool globs still allowed
	Rate  int      // throttled: model calls per minute
}

// ResumeApproval is one person's approval of lifting a containment through
// the resume gate. Target is the session ("" for the whole agent; several
// sessions comma-joined) and HaltID the containment being lifted.
type ResumeApproval struct {
	ID         int64
	Agent      string
	Target     string
	HaltID     int64
	Actor      Actor
	ApprovedAt time.Time
}

// Running is the containment of something nothing contains.
var Running = Containment{Mode: ModeRunning}

// ModeOf is the mode an action leaves its target in.
func ModeOf(action string) string {
	switch action {
	case ActionHalt:
		return ModeHalted
	case ActionRestrict:
		return ModeRestricted
	case ActionThrottle:
		return ModeThrottled
	}
	return ModeRunning
}

// ContainAction is the action that puts a target in mode.
func ContainAction(mode string) string {
	switch mode {
	case ModeHalted:
		return ActionHalt
	case ModeRestricted:
		return ActionRestrict
	case ModeThrottled:
		return ActionThrottle
	}
	return ActionResume
}

// IsContainAction says whether action contains (halt, restrict, throttle).
func IsContainAction(action string) bool {
	return action == ActionHalt || action == ActionRestrict || action == ActionThrottle
}

// Rank orders the modes from running (0) to halted (3). Where an agent-wide
// containment and a session's own disagree, the stronger one applies.
func Rank(mode string) int {
	switch mode {
	case ModeThrottled:
		return 1
	case ModeRestricted:
		return 2
	case ModeHalted:
		return 3
	}
	return 0
}

// Stronger returns the stronger of a and b (a on a tie).
func Stronger(a, b Containment) Containment {
	if Rank(b.Mode) > Rank(a.Mode) {
		return b
	}
	return a
}

// IsRunning says whether c contains nothing.
func (c Containment) IsRunning() bool { return Rank(c.Mode) == 0 }

// Equal says whether c and d are the same mode with the same parameters.
func (c Containment) Equal(d Containment) bool {
	if Rank(c.Mode) != Rank(d.Mode) {
		return false
	}
	switch c.Mode {
	case ModeRestricted:
		return slices.Equal(c.Allow, d.Allow)
	case ModeThrottled:
		return c.Rate == d.Rate
	}
	return true
}

// String reads "restricted to salesforce.read, zendesk.*", "throttled to 6/min".
func (c Containment) String() string {
	switch c.Mode {
	case ModeRestricted:
		return "restricted to " + strings.Join(c.Allow, ", ")
	case ModeThrottled:
		return fmt.Sprintf("throttled to %d/min", c.Rate)
	case ModeHalted:
		return ModeHalted
	}
	return ModeRunning
}

// MaxThrottleRate bounds a throttle's model calls per minute, as the slash
// command, the CLI and reins.yaml do: beyond it a throttle limits nothing.
const MaxThrottleRate = 100000

// CheckRung validates a rung's parameters: restrict needs an allow-list of
// globs path.Match reads (none holding a comma: the flag's OFREP metadata
// joins them with commas, so "a,b" would read there as a and b, a wider
// list than asked), throttle a rate from 1 to MaxThrottleRate.
func CheckRung(action string, allow []string, rate int) error {
	switch action {
	case ActionRestrict:
		if len(allow) == 0 {
			return Errorf(EINVALID, "A restriction needs the tools still allowed: add allow GLOBS, e.g. allow salesforce.read,zendesk.*")
		}
		for _, g := range allow {
			if _, err := path.Match(g, ""); err != nil || strings.TrimSpace(g) == "" || strings.ContainsFunc(g, func(r rune) bool {
				return r == ',' || unicode.IsSpace(r) || unicode.IsControl(r)
			}) {
				return Errorf(EINVALID, "%q is not a tool glob: write tool names or globs separated by commas, e.g. salesforce.read,zendesk.*", g)
			}
		}
	case ActionThrottle:
		if rate <= 0 || rate > MaxThrottleRate {
			return Errorf(EINVALID, "A throttle needs a rate of at least 1 model call per minute and at most %d, e.g. 6/min.", MaxThrottleRate)
		}
	}
	return nil
}

// CheckRungParams refuses a person's parameters that the action would
// ignore (allow on a throttle, rate on a restriction, either on a halt or
// resume): reins never does a silently weaker or stronger action than asked.
func CheckRungParams(action string, allow []string, rate int) error {
	if len(allow) > 0 && action != ActionRestrict {
		return Errorf(EINVALID, "allow is for restrict only: a %s keeps no allow-list. Restrict the agent to keep only some tools.", action)
	}
	if rate != 0 && action != ActionThrottle {
		return Errorf(EINVALID, "rate is for throttle only: a %s keeps no rate. Throttle the agent to slow it down.", action)
	}
	return nil
}

// Containment is the flag's mode and parameters; a flag written before modes
// existed reads as Halted says.
func (f KillFlag) Containment() Containment {
	mode := f.Mode
	if mode == "" {
		mode = ModeRunning
		if f.Halted {
			mode = ModeHalted
		}
	}
	return Containment{Mode: mode, Allow: f.Allow, Rate: f.Rate}
}

// ErrRungUnsupported is wrapped by an adapter whose far side answered that
// it cannot do the rung asked (a webhook endpoint answering 501). reins then
// does the SLA's fallback and says so; it never retries the rung.
var ErrRungUnsupported = errors.New("the adapter cannot do this rung")

// StateLine says in one line how the agent is contained: "halted (all
// sessions)", "restricted to a, b", "running; session s-1 halted, session
// s-2 throttled to 6/min". Untrusted parts are verbatim: escape to show.
func (st AgentStatus) StateLine() string {
	var b strings.Builder
	switch c := st.ContainmentOf(""); c.Mode {
	case ModeHalted:
		b.WriteString("halted (all sessions)")
	case ModeRunning:
		b.WriteString(ModeRunning)
	default:
		b.WriteString(c.String() + " (all sessions)")
	}
	sessions := maps.Clone(st.Sessions)
	if sessions == nil {
		sessions = map[string]Containment{}
	}
	for _, id := range st.HaltedSessions {
		sessions[id] = Containment{Mode: ModeHalted}
	}
	for i, id := range slices.Sorted(maps.Keys(sessions)) {
		if i == 0 {
			b.WriteString("; ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString("session " + id + " " + sessions[id].String())
	}
	return b.String()
}

// Contained says whether anything of the agent is contained: the agent as a
// whole or any session.
func (st AgentStatus) Contained() bool {
	return st.Halted || !st.ContainmentOf("").IsRunning() || len(st.Sessions) > 0 || len(st.HaltedSessions) > 0
}
