package incidents

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/reins-oss/reins/ownership"
)

// Incidents that collect alerts no agent's incident takes are named like an
// agent, with a prefix no agent name can have (agent names hold no ':').
const (
	// unroutedPrefix + source: alerts whose agent is not in reins.yaml. One
	// incident per source and group window, however many unknown names a
	// storm carries, paged once (to PAGERDUTY_ROUTING_KEY).
	unroutedPrefix = "unrouted:"
	// overflowPrefix + source: alerts that would have opened an incident
	// after the source opened alerts.max_new_incidents_per_minute of them in
	// the last minute.
	overflowPrefix = "overflow:"
)

// UnroutedName is the agent name of the incident collecting source's alerts
// for agents reins.yaml does not name.
func UnroutedName(source string) string { return unroutedPrefix + source }

// OverflowName is the agent name of the incident collecting source's alerts
// beyond its cap of new incidents a minute.
func OverflowName(source string) string { return overflowPrefix + source }

// Collector says what kind of collecting incident an incident's agent name
// stands for: "unrouted" or "overflow", with the source, or "" for an
// incident of one agent.
func Collector(agent string) (kind, source string) {
	if s, ok := strings.CutPrefix(agent, unroutedPrefix); ok {
		return "unrouted", s
	}
	if s, ok := strings.CutPrefix(agent, overflowPrefix); ok {
		return "overflow", s
	}
	return "", ""
}

// maxNewPerMinute is the registry's cap of new incidents per source a minute.
func maxNewPerMinute(reg *ownership.Registry) int {
	if reg != nil && reg.Alerts.MaxNewIncidentsPerMinute > 0 {
		return reg.Alerts.MaxNewIncidentsPerMinute
	}
	return ownership.DefaultMaxNewIncidentsPerMinute
}

// route names, in Route, the incident each alert that does not go to its own
// agent's goes to: alerts for agents reins.yaml does not name go to their
// source's unrouted incident, and firing alerts that would open an
// incident beyond the source's cap a minute go to its overflow incident.
// alerts is not changed; the copy returned is.
//
// The cap is counted by this process (openings recorded after each intake),
// so with N replicas a storm may open up to N times the cap: still bounded,
// and no round trip on the path of every alert. The store is asked which
// incidents already exist only when a call could pass the cap.
func (s *Service) route(ctx context.Context, reg *ownership.Registry, alerts []Alert) ([]Alert, error) {
	out := alerts
	cloned := false
	set := func(i int, route string) {
		if !cloned {
			out = append([]Alert(nil), alerts...)
			cloned = true
		}
		if out[i].Route != "" {
			out[i].Route = route
			return
		}
		out[i].Route = route
		// Unrelated agents' alerts share the collecting incident, where
		// a fingerprint must stay one agent's (a generic dedup_key need
		// not name the agent).
		out[i].Fingerprint = out[i].Agent + "|" + out[i].Fingerprint
	}
	for i := range alerts {
		if alerts[i].Route == "" && FindAgent(reg, alerts[i].Agent) == nil {
			set(i, UnroutedName(alerts[i].Source))
		}
	}
	// The incidents each source's firing alerts may open, in order.
	bySource := map[string][]string{}
	seen := map[string]bool{}
	for i := range out {
		a := &out[i]
		if a.Status == AlertResolved {
			continue
		}
		_, name := agentOf(reg, a)
		if seen[name] {
			continue
		}
		seen[name] = true
		bySource[a.Source] = append(bySource[a.Source], name)
	}
	limit := maxNewPerMinute(reg)
	now := s.clock.Now()
	for source, names := range bySource {
		left := limit - s.openings.count(source, now)
		if len(names) <= left {
			continue
		}
		// This call may pass the cap: only names without an open incident
		// would open one.
		found, err := s.store.FindGroupingIncidents(ctx, names)
		if err != nil {
			return nil, fmt.Errorf("find the open incidents of %d agents: %w", len(names), err)
		}
		open := map[string]bool{}
		for _, inc := range found {
			open[inc.Agent] = true
		}
		over := map[string]bool{}
		for _, name := range names {
			if open[name] {
				continue
			}
			if left > 0 {
				left--
				continue
			}
			over[name] = true
		}
		if len(over) == 0 {
			continue
		}
		for i := range out {
			a := &out[i]
			if a.Source != source || a.Status == AlertResolved {
				continue
			}
			if _, name := agentOf(reg, a); over[name] {
				set(i, OverflowName(source))
				s.metrics.alertsOverflowed.WithLabelValues(source).Inc()
			}
		}
	}
	return out, nil
}

// openingLog counts, per source, the incidents this process opened from
// alerts in the last minute.
type openingLog struct {
	mu sync.Mutex
	at map[string][]time.Time // per source, oldest first
}

func (l *openingLog) count(source string, now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.prune(source, now))
}

func (l *openingLog) add(source string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.at == nil {
		l.at = map[string][]time.Time{}
	}
	l.at[source] = append(l.prune(source, at), at)
}

// prune drops openings older than a minute; the caller holds mu.
func (l *openingLog) prune(source string, now time.Time) []time.Time {
	ts := l.at[source]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= time.Minute {
		i++
	}
	if i > 0 {
		ts = append(ts[:0], ts[i:]...)
		l.at[source] = ts
	}
	return ts
}
