package intake

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

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
func (s *Service) route(ctx context.Context, reg *ownership.Registry, alerts []incidents.Alert) ([]incidents.Alert, error) {
	out := alerts
	cloned := false
	set := func(i int, route string) {
		if !cloned {
			out = append([]incidents.Alert(nil), alerts...)
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
		if alerts[i].Route == "" && incidents.FindAgent(reg, alerts[i].Agent) == nil {
			set(i, incidents.UnroutedName(alerts[i].Source))
		}
	}
	// The incidents each source's firing alerts may open, in order.
	bySource := map[string][]string{}
	seen := map[string]bool{}
	for i := range out {
		a := &out[i]
		if a.Status == incidents.AlertResolved {
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
	now := s.core.Now()
	for source, names := range bySource {
		left := limit - s.openings.count(source, now)
		if len(names) <= left {
			continue
		}
		// This call may pass the cap: only names without an open incident
		// would open one.
		found, err := s.core.Store().FindGroupingIncidents(ctx, names)
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
			if a.Source != source || a.Status == incidents.AlertResolved {
				continue
			}
			if _, name := agentOf(reg, a); over[name] {
				set(i, incidents.OverflowName(source))
				s.core.Metrics().AlertOverflowed(source)
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
