package incidentstest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/reins-oss/reins/incidents/guard"
)

var _ guard.Store = (*GuardStore)(nil)

// GuardStore is an in-memory guard.Store.
type GuardStore struct {
	mu       sync.Mutex
	breaches []guard.Breach
	// Fail, when set, is returned by every write (a store outage).
	Fail error
}

// NewGuardStore returns an empty GuardStore.
func NewGuardStore() *GuardStore { return &GuardStore{} }

// InsertBreach stores b unless (agent, SLA, session) breached before.
func (s *GuardStore) InsertBreach(ctx context.Context, b *guard.Breach) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Fail != nil {
		return false, s.Fail
	}
	for _, o := range s.breaches {
		if o.Agent == b.Agent && o.SLA == b.SLA && o.Session == b.Session {
			return false, nil
		}
	}
	if b.At.IsZero() {
		b.At = time.Now()
	}
	b.ID = int64(len(s.breaches) + 1)
	b.Outcome = ""
	s.breaches = append(s.breaches, *b)
	return true, nil
}

// SetBreachOutcome records what was done about a breach.
func (s *GuardStore) SetBreachOutcome(ctx context.Context, id, incident int64, outcome string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Fail != nil {
		return s.Fail
	}
	if id < 1 || int(id) > len(s.breaches) {
		return fmt.Errorf("no breach %d", id)
	}
	s.breaches[id-1].Outcome, s.breaches[id-1].IncidentID = outcome, incident
	return nil
}

// FindBreaches returns breaches at or after since, newest first.
func (s *GuardStore) FindBreaches(ctx context.Context, agent string, since time.Time, limit int) ([]guard.Breach, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []guard.Breach
	for i := len(s.breaches) - 1; i >= 0; i-- {
		b := s.breaches[i]
		if (agent == "" || b.Agent == agent) && !b.At.Before(since) {
			out = append(out, b)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// SessionBreaches returns the breaches of one session, oldest first.
func (s *GuardStore) SessionBreaches(ctx context.Context, agent, session string) ([]guard.Breach, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []guard.Breach
	for _, b := range s.breaches {
		if b.Agent == agent && b.Session == session {
			out = append(out, b)
		}
	}
	return out, nil
}

// PendingBreaches returns breaches not acted on, oldest first.
func (s *GuardStore) PendingBreaches(ctx context.Context, limit int) ([]guard.Breach, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []guard.Breach
	for _, b := range s.breaches {
		if b.Outcome == "" {
			out = append(out, b)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return slices.Clip(out), nil
}
