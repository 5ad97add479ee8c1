package incidents

import (
	"time"

	"github.com/reins-oss/reins/ownership"
)

// IngestResult says what an Ingest call did.
type IngestResult struct {
	Incidents []int64 // incidents the alerts went to, in order, without repeats
	Opened    int     // incidents opened by this call
	New       int     // alerts seen for the first time
	Repeated  int     // alerts already known with the same status
	Changed   int     // alerts whose status changed (firing -> resolved or back)
}

// HaltCommand asks for a halt or a resume.
type HaltCommand struct {
	Action   string // halt | restrict | throttle | resume
	Agent    string // name or alias
	Sessions []string
	Allow    []string // restrict: the tool globs still allowed
	Rate     int      // throttle: model calls per minute
	// ProbationUntil marks a rung the resume gate applies instead of a
	// resume (set by the gate, not by callers).
	ProbationUntil *time.Time
	Reason         string
	Actor          Actor
	IncidentID     int64 // 0: the agent's open incident, opened if none
	// BreakGlass skips the kill-authority check: the caller proved authority
	// otherwise (the API token, a shell on the reins host). Still audited.
	BreakGlass bool
}

// AgentStatus is one agent's halt state and open incidents.
type AgentStatus struct {
	Agent          *ownership.Agent
	Halted         bool     // the whole agent is halted
	HaltedSessions []string // sessions halted on their own
	// Containment is the agent-wide mode (halted when Halted); Sessions
	// holds each session contained on its own (halted ones included).
	Containment   Containment
	Sessions      map[string]Containment
	LastHalt      *Halt
	OpenIncidents []*Incident
	Holders       []string // kill authority resolved to people now
	Unavailable   []string // sources that could not be asked
}

// AgentInfo answers `/agent who`.
type AgentInfo struct {
	Agent       *ownership.Agent
	Team        *ownership.Team
	Holders     []string
	Unavailable []string
}
