package incidents

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/reins-oss/reins/ownership"
)

// Status returns the halt state, open incidents and kill authority of one
// agent (name or alias), or of every agent sorted by name when agent is "".
//
// The halt state replays verified halts and resumes oldest first: a halt of
// no sessions halts the agent, a resume of no sessions lifts every halt, and
// halts and resumes of sessions add and remove those sessions.
func (s *Service) Status(ctx context.Context, agent string) ([]AgentStatus, error) {
	reg := s.Registry()
	var agents []*ownership.Agent
	filter := ""
	if agent != "" {
		ag, err := s.LookupAgent(agent)
		if err != nil {
			return nil, err
		}
		agents, filter = []*ownership.Agent{ag}, ag.Name
	} else {
		for _, name := range slices.Sorted(maps.Keys(reg.Agents)) {
			agents = append(agents, reg.Agents[name])
		}
	}
	halts, err := s.store.FindHalts(ctx, filter, 0)
	if err != nil {
		return nil, fmt.Errorf("load halts: %w", err)
	}
	open, err := s.store.FindIncidents(ctx, IncidentFilter{Agent: filter, Status: StatusOpen, Limit: 1000})
	if err != nil {
		return nil, fmt.Errorf("load open incidents: %w", err)
	}
	byAgent := map[string][]*Halt{}
	for _, h := range halts {
		byAgent[h.Agent] = append(byAgent[h.Agent], h)
	}
	out := make([]AgentStatus, 0, len(agents))
	for _, ag := range agents {
		st := AgentStatus{Agent: ag}
		st.Containment, st.Sessions = ContainState(byAgent[ag.Name])
		st.Halted, st.HaltedSessions = haltedOf(st.Containment, st.Sessions)
		if hs := byAgent[ag.Name]; len(hs) > 0 {
			st.LastHalt = hs[0]
		}
		for _, inc := range open {
			if inc.Agent == ag.Name {
				st.OpenIncidents = append(st.OpenIncidents, inc)
			}
		}
		if s.auth != nil {
			st.Holders, st.Unavailable = s.auth.Holders(ctx, ag)
		}
		out = append(out, st)
	}
	return out, nil
}

// HaltState replays halts (newest first, as the store returns them) and
// says whether the agent is halted as a whole and which sessions are.
func HaltState(newestFirst []*Halt) (agent bool, sessions []string) {
	return haltedOf(ContainState(newestFirst))
}

// haltedOf picks the halted parts of a containment state.
func haltedOf(agent Containment, sessions map[string]Containment) (bool, []string) {
	var halted []string
	for _, id := range slices.Sorted(maps.Keys(sessions)) {
		if sessions[id].Mode == ModeHalted {
			halted = append(halted, id)
		}
	}
	return agent.Mode == ModeHalted, halted
}

// ContainState replays verified halts, restrictions, throttles and resumes
// oldest first: a rung of no sessions sets the agent's mode, a resume of no
// sessions lifts everything, and rungs and resumes of sessions set and lift
// those sessions' own modes.
func ContainState(newestFirst []*Halt) (Containment, map[string]Containment) {
	agent, sessions := Running, map[string]Containment{}
	for _, h := range slices.Backward(newestFirst) {
		if h.Status != HaltVerified {
			continue
		}
		c := Containment{Mode: ModeOf(h.Action), Allow: h.Allow, Rate: h.Rate}
		switch {
		case h.Action == ActionResume && len(h.Sessions) == 0:
			agent, sessions = Running, map[string]Containment{}
		case len(h.Sessions) == 0:
			agent = c
		case h.Action == ActionResume:
			for _, id := range h.Sessions {
				delete(sessions, id)
			}
		default:
			for _, id := range h.Sessions {
				sessions[id] = c
			}
		}
	}
	return agent, sessions
}

// ContainmentOf is what applies to session (or, for "", the agent as a
// whole): the stronger of the agent's mode and the session's own.
func (st AgentStatus) ContainmentOf(session string) Containment {
	c := st.Containment
	if session != "" {
		c = Stronger(c, st.Sessions[session])
	}
	if c.Mode == "" {
		return Running
	}
	return c
}

// Who answers `/agent who`: the agent's team and who holds kill authority now.
func (s *Service) Who(ctx context.Context, agent string) (*AgentInfo, error) {
	ag, err := s.LookupAgent(agent)
	if err != nil {
		return nil, err
	}
	info := &AgentInfo{Agent: ag, Team: s.Registry().Teams[ag.Team]}
	if s.auth != nil {
		info.Holders, info.Unavailable = s.auth.Holders(ctx, ag)
	}
	return info, nil
}
