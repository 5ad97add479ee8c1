package guard

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents/words"
	"github.com/reins-oss/reins/ownership"
)

// SLAStatus is one SLA of an agent as the guard sees it now.
type SLAStatus struct {
	SLA       string  `json:"sla"`
	Metric    string  `json:"metric"`
	Threshold string  `json:"threshold"`
	Worst     string  `json:"worst,omitempty"` // the worst active session's value; "" with NoData
	Session   string  `json:"session,omitempty"`
	Value     float64 `json:"value"`
	NoData    bool    `json:"no_data"` // no recently active session reported what the SLA judges
	Breaches  int     `json:"breaches_24h"`
	OnBreach  string  `json:"on_breach"`
	DryRun    bool    `json:"dry_run,omitempty"`
}

// Status returns each SLA of agent with its worst session among those active
// in the last StatusSessions hours and its breaches in the last 24 h. It
// reads the store, so a process that observed nothing (the CLI) answers too.
func (g *Guard) Status(ctx context.Context, agent string) ([]SLAStatus, error) {
	a := g.cfg.Registry.Current().Agent(agent)
	if a == nil {
		return nil, fmt.Errorf("unknown agent %q", agent)
	}
	recent, err := g.cfg.Store.FindBreaches(ctx, a.Name, g.cfg.Now().Add(-24*time.Hour), 10_000)
	if err != nil {
		return nil, err
	}
	count := map[string]int{}
	for _, b := range recent {
		count[b.SLA]++
	}
	now := g.cfg.Now()
	mine, err := g.recentStates(ctx, a, now)
	if err != nil {
		return nil, err
	}
	out := make([]SLAStatus, 0, len(a.SLAs))
	for _, sla := range a.SLAs {
		st := SLAStatus{SLA: sla.Label(), Metric: sla.Metric, Breaches: count[sla.Label()], OnBreach: sla.OnBreach,
			DryRun: sla.DryRun, NoData: true}
		if st.OnBreach == "" {
			st.OnBreach = ownership.OnBreachAlert
		}
		st.Threshold = threshold(sla)
		first := true
		for _, s := range mine {
			s.mu.Lock()
			v, ok := s.current(&sla, now)
			s.mu.Unlock()
			if !ok {
				continue
			}
			worse := v > st.Value
			if sla.Metric == ownership.SLAScore {
				worse = v < st.Value
			}
			if first || worse {
				st.Value, st.Session, first = v, s.totals.Session, false
			}
		}
		if !first {
			st.NoData = false
			st.Worst = formatValue(sla.Metric, st.Value)
		}
		out = append(out, st)
	}
	return out, nil
}

// current is the session's value for sla now; ok is false when the
// session has no data for it.
func (s *state) current(sla *ownership.SLA, now time.Time) (float64, bool) {
	switch sla.Metric {
	case ownership.SLATokensPerSession, ownership.SLACostPerSession, ownership.SLAStepsPerSession:
		return s.sessionValue(sla, s.totals, now), true
	case ownership.SLAToolCallsPerMinute:
		return s.windowSum(sla.Metric, toolWindow(sla), now), true
	case ownership.SLAToolScope:
		if s.breached[sla.Label()] {
			return 1, true
		}
		return 0, true
	case ownership.SLALoop:
		n := 0
		for _, c := range s.loops {
			n = max(n, c)
		}
		return float64(n), true
	case ownership.SLAErrorRate:
		evs := s.recent(errorSteps(sla), sla.Window, now)
		if len(evs) == 0 {
			return 0, false
		}
		return errorRate(evs), true
	case ownership.SLAScore:
		v, ok := s.scoreMin[sla.Attribute]
		return v, ok
	}
	return 0, false
}

// threshold prints an SLA's bound.
func threshold(sla ownership.SLA) string {
	switch {
	case sla.Metric == ownership.SLAToolScope:
		return "allow " + strings.Join(sla.Allow, ", ")
	case sla.Metric == ownership.SLALoop:
		return fmt.Sprintf("%d identical calls", sla.Count)
	case sla.Min != nil:
		return "min " + formatValue(sla.Metric, *sla.Min)
	case sla.Max != nil:
		return "max " + formatValue(sla.Metric, *sla.Max)
	}
	return ""
}

// Text renders an agent's SLA status for a person (bot and CLI).
func Text(agent string, list []SLAStatus) string {
	if len(list) == 0 {
		return agent + " declares no SLAs (slas: in reins.yaml).\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "SLAs of %s (worst active session; breaches in the last 24 h):\n", agent)
	for _, s := range list {
		now := "no data"
		if !s.NoData {
			now = s.Worst + " (session " + s.Session + ")"
		}
		mode := s.OnBreach
		if s.DryRun {
			mode += ", dry run"
		}
		fmt.Fprintf(&b, "• %s: %s vs %s · %s · on breach: %s\n", s.SLA, now, s.Threshold, words.Count(s.Breaches, "breach"), mode)
	}
	return b.String()
}

// Status looks at most statusSessions of an agent's most recently active
// sessions, active within statusSince.
const (
	statusSessions = 100
	statusSince    = time.Hour
)

// recentStates returns the states of agent's recently active sessions: the
// guard's own when it holds them up to date, else rebuilt from the store and
// not kept (a rebuild here could count steps whose batch is still being
// observed).
func (g *Guard) recentStates(ctx context.Context, a *ownership.Agent, now time.Time) ([]*state, error) {
	list, err := g.cfg.Steps.FindSessions(ctx, a.Name, now.Add(-statusSince), statusSessions)
	if err != nil {
		return nil, fmt.Errorf("sessions of %s: %w", a.Name, err)
	}
	out := make([]*state, 0, len(list))
	for _, t := range list {
		g.mu.Lock()
		s := g.sessions[t.Key()]
		g.mu.Unlock()
		if s != nil {
			s.mu.Lock()
			if s.totals.Steps < t.Steps {
				s = nil // other replicas stored steps this one has not counted
			}
			s.mu.Unlock()
		}
		if s == nil {
			s = newState(a.Name)
			pre, err := g.catchUp(ctx, a, s, t.Session, nil, 0)
			if err != nil {
				return nil, err
			}
			for _, st := range pre {
				s.add(st, storedAt(st, now))
			}
			s.totals = t
		}
		out = append(out, s)
	}
	return out, nil
}
