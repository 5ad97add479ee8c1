package incidentstest

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sessions"
)

var _ sessions.Store = (*SessionStore)(nil)

// SessionStore is an in-memory sessions.Store. Incidents, when set, is the
// store whose incidents name sessions (for retention).
type SessionStore struct {
	Incidents *Store

	mu     sync.Mutex
	totals map[sessions.Key]sessions.Totals
	steps  map[sessions.Key]map[string]sessions.Step
}

// NewSessionStore returns an empty SessionStore.
func NewSessionStore() *SessionStore {
	return &SessionStore{totals: map[sessions.Key]sessions.Totals{}, steps: map[sessions.Key]map[string]sessions.Step{}}
}

// WriteSteps stores steps, skipping spans already stored, and grows totals.
func (s *SessionStore) WriteSteps(ctx context.Context, steps []sessions.Step) ([]sessions.Totals, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	touched := map[sessions.Key]bool{}
	for _, st := range steps {
		k := st.Key()
		m := s.steps[k]
		if m == nil {
			m = map[string]sessions.Step{}
			s.steps[k] = m
		}
		if _, dup := m[st.SpanID]; dup {
			continue
		}
		m[st.SpanID] = st
		t := s.totals[k]
		t.Add(st)
		s.totals[k] = t
		touched[k] = true
	}
	var out []sessions.Totals
	ks := slices.Collect(maps.Keys(touched))
	slices.SortFunc(ks, sessions.Key.Compare)
	for _, k := range ks {
		out = append(out, s.totals[k])
	}
	return out, nil
}

// FindSession returns a session's totals and steps in time order.
func (s *SessionStore) FindSession(ctx context.Context, agent, id string) (sessions.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sessions.Key{Agent: agent, ID: id}
	t, ok := s.totals[k]
	if !ok {
		return sessions.Record{}, sessions.ErrNotFound
	}
	rec := sessions.Record{Totals: t}
	for _, st := range s.steps[k] {
		rec.Steps = append(rec.Steps, st)
	}
	slices.SortFunc(rec.Steps, func(a, b sessions.Step) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.SpanID, b.SpanID))
	})
	return rec, nil
}

// FindNotable is FindSession keeping only tool calls and errors.
func (s *SessionStore) FindNotable(ctx context.Context, agent, id string) (sessions.Record, error) {
	rec, err := s.FindSession(ctx, agent, id)
	if err != nil {
		return rec, err
	}
	var keep []sessions.Step
	for _, st := range rec.Steps {
		if st.IsTool() || st.Error {
			keep = append(keep, st)
		}
	}
	rec.Steps = keep
	return rec, nil
}

// SessionAgents returns the agents with a session of ID id, sorted.
func (s *SessionStore) SessionAgents(ctx context.Context, id string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.totals {
		if k.ID == id {
			out = append(out, k.Agent)
		}
	}
	slices.Sort(out)
	return out, nil
}

// FindSessions returns agent's sessions active since, newest first.
func (s *SessionStore) FindSessions(ctx context.Context, agent string, since time.Time, limit int) ([]sessions.Totals, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sessions.Totals
	for _, t := range s.totals {
		if t.Agent == agent && !t.Last.Before(since) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b sessions.Totals) int {
		return cmp.Or(b.Last.Compare(a.Last), cmp.Compare(a.Session, b.Session))
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// DeleteSteps drops stored steps; totals keep counting them.
func (s *SessionStore) DeleteSteps(ctx context.Context, agent, session string, spanIDs []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sessions.Key{Agent: agent, ID: session}
	t := s.totals[k]
	for _, id := range spanIDs {
		if _, ok := s.steps[k][id]; ok {
			delete(s.steps[k], id)
			t.Stored--
		}
	}
	s.totals[k] = t
	return nil
}

// DeleteSessions removes agent's sessions last active before before, except keep.
func (s *SessionStore) DeleteSessions(ctx context.Context, agent string, before time.Time, keep []string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, t := range s.totals {
		if k.Agent == agent && t.Last.Before(before) && !slices.Contains(keep, k.ID) {
			delete(s.totals, k)
			delete(s.steps, k)
			n++
		}
	}
	return n, nil
}

// NamedSessions returns the sessions the incidents of Incidents name.
func (s *SessionStore) NamedSessions(ctx context.Context) ([]sessions.Key, error) {
	if s.Incidents == nil {
		return nil, nil
	}
	incs, err := s.Incidents.FindIncidents(ctx, incidents.IncidentFilter{})
	if err != nil {
		return nil, err
	}
	var out []sessions.Key
	for _, inc := range incs {
		for _, id := range inc.Sessions {
			out = append(out, sessions.Key{Agent: inc.Agent, ID: id})
		}
	}
	return out, nil
}
