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
	marks    map[[2]string]mark
	claimed  map[int64]time.Time
	// Fail, when set, is returned by every write (a store outage).
	Fail error
}

// NewGuardStore returns an empty GuardStore.
func NewGuardStore() *GuardStore { return &GuardStore{} }

// InsertBreach stores b unless (agent, SLA, session) breached before.
func (s *GuardStore) InsertBreach(ctx context.Context, b *guard.Breach) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.insertLocked(b)
}

// insertLocked is InsertBreach under s.mu, claiming b until b.ClaimedUntil.
func (s *GuardStore) insertLocked(b *guard.Breach) (bool, error) {
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
	if !b.ClaimedUntil.IsZero() {
		if s.claimed == nil {
			s.claimed = map[int64]time.Time{}
		}
		s.claimed[b.ID] = b.ClaimedUntil
	}
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
	delete(s.claimed, id)
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

// RecordJudgement stores new breaches (b.ID set, 0 on a repeat) and clears
// the judged sessions' marks.
func (s *GuardStore) RecordJudgement(ctx context.Context, breaches []guard.Breach, judged []guard.Judged) error {
	if s.Fail != nil {
		return s.Fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range breaches {
		b := &breaches[i]
		isNew, err := s.insertLocked(b)
		if err != nil {
			return err
		}
		if !isNew {
			b.ID = 0
		}
	}
	for _, j := range judged {
		k := [2]string{j.Agent, j.Session}
		if m, ok := s.marks[k]; ok && m.Steps <= j.Steps {
			delete(s.marks, k)
		}
	}
	return nil
}

// Mark marks a session as to be judged, as the intake's transaction does.
func (s *GuardStore) Mark(agent, session string, steps int64, since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.marks == nil {
		s.marks = map[[2]string]mark{}
	}
	s.marks[[2]string{agent, session}] = mark{Judged: guard.Judged{Agent: agent, Session: session, Steps: steps}, since: since}
}

type mark struct {
	guard.Judged
	since time.Time
}

// Unjudged returns the sessions marked since before before.
func (s *GuardStore) Unjudged(ctx context.Context, before time.Time, limit int) ([]guard.Judged, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []guard.Judged
	for _, m := range s.marks {
		if m.since.Before(before) && len(out) < limit {
			out = append(out, m.Judged)
		}
	}
	return out, nil
}

// ClaimBreaches leases due waiting breaches in crossing order.
func (s *GuardStore) ClaimBreaches(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]guard.Breach, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claimed == nil {
		s.claimed = map[int64]time.Time{}
	}
	var out []guard.Breach
	for _, b := range s.breaches {
		if b.Outcome != "" || b.Due.After(now) || s.claimed[b.ID].After(now) || len(out) >= limit {
			continue
		}
		s.claimed[b.ID] = now.Add(lease)
		out = append(out, b)
	}
	return out, nil
}

// DeferBreach hands a claimed breach back until due.
func (s *GuardStore) DeferBreach(ctx context.Context, id, incident int64, due time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < 1 || int(id) > len(s.breaches) {
		return fmt.Errorf("no breach %d", id)
	}
	b := &s.breaches[id-1]
	b.Due = due
	if incident != 0 {
		b.IncidentID = incident
	}
	delete(s.claimed, id)
	return nil
}

// WaitingBreaches returns agent's breaches not acted on, in crossing order.
func (s *GuardStore) WaitingBreaches(ctx context.Context, agent string, limit int) ([]guard.Breach, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []guard.Breach
	for _, b := range s.breaches {
		if b.Outcome == "" && (agent == "" || b.Agent == agent) && len(out) < limit {
			out = append(out, b)
		}
	}
	return out, nil
}

// LeaveSession ends a session's waiting breaches with outcome left.
func (s *GuardStore) LeaveSession(ctx context.Context, agent, session, by string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for i := range s.breaches {
		b := &s.breaches[i]
		if b.Agent == agent && b.Session == session && b.Outcome == "" {
			b.Outcome = guard.OutcomeLeft
			n++
		}
	}
	return n, nil
}
