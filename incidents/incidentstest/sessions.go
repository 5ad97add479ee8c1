package incidentstest

import (
	"cmp"
	"context"
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
	totals map[string]sessions.Totals
	steps  map[string]map[string]sessions.Step
}

// NewSessionStore returns an empty SessionStore.
func NewSessionStore() *SessionStore {
	return &SessionStore{totals: map[string]sessions.Totals{}, steps: map[string]map[string]sessions.Step{}}
}

// WriteSteps stores steps, skipping spans already stored, and grows totals.
func (s *SessionStore) WriteSteps(ctx context.Context, steps []sessions.Step) ([]sessions.Totals, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	touched := map[string]bool{}
	for i := range steps {
		st := steps[i]
		m := s.steps[st.Session]
		if m == nil {
			m = map[string]sessions.Step{}
			s.steps[st.Session] = m
		}
		if _, dup := m[st.SpanID]; dup {
			continue
		}
		t := s.totals[st.Session]
		t.Add(st)
		st.N = t.Steps // numbered in the order received, as the SQL store does
		steps[i].N = st.N
		m[st.SpanID] = st
		s.totals[st.Session] = t
		touched[st.Session] = true
	}
	var out []sessions.Totals
	for _, id := range slices.Sorted(mapKeys(touched)) {
		out = append(out, s.totals[id])
	}
	return out, nil
}

// FindSession returns a session's totals and steps in time order.
func (s *SessionStore) FindSession(ctx context.Context, id string) (sessions.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.totals[id]
	if !ok {
		return sessions.Record{}, sessions.ErrNotFound
	}
	rec := sessions.Record{Totals: t}
	for _, st := range s.steps[id] {
		rec.Steps = append(rec.Steps, st)
	}
	slices.SortFunc(rec.Steps, func(a, b sessions.Step) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.SpanID, b.SpanID))
	})
	return rec, nil
}

// FindNotable is FindSession keeping only tool calls and errors.
func (s *SessionStore) FindNotable(ctx context.Context, id string) (sessions.Record, error) {
	rec, err := s.FindSession(ctx, id)
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

// FindTotals returns the totals of the known sessions among ids.
func (s *SessionStore) FindTotals(ctx context.Context, ids []string) ([]sessions.Totals, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sessions.Totals
	seen := map[string]bool{}
	for _, id := range ids {
		if t, ok := s.totals[id]; ok && !seen[id] {
			seen[id] = true
			out = append(out, t)
		}
	}
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
func (s *SessionStore) DeleteSteps(ctx context.Context, session string, spanIDs []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.totals[session]
	for _, id := range spanIDs {
		if _, ok := s.steps[session][id]; ok {
			delete(s.steps[session], id)
			t.Stored--
		}
	}
	s.totals[session] = t
	return nil
}

// DeleteSessions removes agent's sessions last active before before, except keep.
func (s *SessionStore) DeleteSessions(ctx context.Context, agent string, before time.Time, keep []string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, t := range s.totals {
		if t.Agent == agent && t.Last.Before(before) && !slices.Contains(keep, id) {
			delete(s.totals, id)
			delete(s.steps, id)
			n++
		}
	}
	return n, nil
}

// NamedSessions returns the sessions the incidents of Incidents name.
func (s *SessionStore) NamedSessions(ctx context.Context) ([]string, error) {
	if s.Incidents == nil {
		return nil, nil
	}
	incs, err := s.Incidents.FindIncidents(ctx, incidents.IncidentFilter{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, inc := range incs {
		out = append(out, inc.Sessions...)
	}
	return out, nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
