package incidentstest

import (
	"context"
	"time"

	"github.com/reins-oss/reins/incidents"
)

// FindDrills returns the agent's drills at or after since, oldest first, like
// sqlstore.Store.FindDrills.
func (s *Store) FindDrills(ctx context.Context, agent string, since time.Time) ([]*incidents.DrillResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*incidents.DrillResult
	for _, r := range s.d.drills {
		if r.Agent == agent && !r.At.Before(since) {
			c := r
			out = append(out, &c)
		}
	}
	return out, nil
}

// WebKey returns the key called name, storing fresh when there is none.
func (s *Store) WebKey(ctx context.Context, name, fresh string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.webKeys == nil {
		s.webKeys = map[string]string{}
	}
	if _, ok := s.webKeys[name]; !ok {
		s.webKeys[name] = fresh
	}
	return s.webKeys[name], nil
}
