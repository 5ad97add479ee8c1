package sessions

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// EnforceRetention removes each agent's sessions last active (by arrival:
// when reins last received one of their steps) longer ago than
// its sessions.retention, except sessions an incident names: those are the
// incident's evidence (checklist item 11) and stay as long as it does.
// It is safe to run twice and returns how many sessions went.
func (s *Service) EnforceRetention(ctx context.Context, now time.Time) (int, error) {
	named, err := s.store.NamedSessions(ctx)
	if err != nil {
		return 0, fmt.Errorf("session retention: %w", err)
	}
	keep := map[string][]string{} // agent → IDs of its sessions to keep
	for _, k := range named {
		keep[k.Agent] = append(keep[k.Agent], k.ID)
	}
	reg := s.registry.Current()
	total := 0
	for _, name := range slices.Sorted(mapsKeys(reg.Agents)) {
		a := reg.Agents[name]
		ids := keep[a.Name]
		slices.Sort(ids)
		ids = slices.Compact(ids)
		n, err := s.store.DeleteSessions(ctx, a.Name, now.Add(-a.Sessions.Retention), ids)
		if err != nil {
			return total, fmt.Errorf("session retention of %s: %w", a.Name, err)
		}
		total += n
	}
	if total > 0 {
		s.log.Info("session retention: old sessions removed", "sessions", total)
	}
	return total, nil
}
