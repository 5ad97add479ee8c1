package incidentstest

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/reins-oss/reins/incidents/sessions"
)

var _ sessions.HoldStore = (*SessionStore)(nil)

type heldRow struct {
	step  sessions.Step
	bytes int64
	at    time.Time
}

// holdState is the SessionStore's trace bindings, held spans and refusals.
type holdState struct {
	mu       sync.Mutex
	bound    map[sessions.TraceKey]string
	boundAt  map[sessions.TraceKey]time.Time
	held     map[sessions.TraceKey]map[string]heldRow
	refusals []sessions.Refusal
}

var holds sync.Map // *SessionStore -> *holdState: the zero SessionStore stays usable

func (s *SessionStore) hold() *holdState {
	h, _ := holds.LoadOrStore(s, &holdState{bound: map[sessions.TraceKey]string{}, boundAt: map[sessions.TraceKey]time.Time{},
		held: map[sessions.TraceKey]map[string]heldRow{}})
	return h.(*holdState)
}

// BindTraces stores bindings; the first session of a trace wins.
func (s *SessionStore) BindTraces(ctx context.Context, bs []sessions.TraceBinding, now time.Time) error {
	h := s.hold()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, b := range bs {
		k := sessions.TraceKey{Agent: b.Agent, TraceID: b.TraceID}
		if _, ok := h.bound[k]; !ok {
			h.bound[k], h.boundAt[k] = b.Session, now
		}
	}
	return nil
}

// TraceSessions returns the sessions bound to keys.
func (s *SessionStore) TraceSessions(ctx context.Context, keys []sessions.TraceKey) (map[sessions.TraceKey]string, error) {
	h := s.hold()
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[sessions.TraceKey]string{}
	for _, k := range keys {
		if id, ok := h.bound[k]; ok {
			out[k] = id
		}
	}
	return out, nil
}

// HoldSteps keeps the first steps that fit.
func (s *SessionStore) HoldSteps(ctx context.Context, steps []sessions.Step, now time.Time, maxSpans int, maxBytes int64) (int, error) {
	h := s.hold()
	h.mu.Lock()
	defer h.mu.Unlock()
	var n, size int64
	for _, m := range h.held {
		for _, r := range m {
			n++
			size += r.bytes
		}
	}
	kept := 0
	for _, st := range steps {
		body, _ := json.Marshal(st)
		if n+1 > int64(maxSpans) || size+int64(len(body)) > maxBytes {
			break
		}
		k := sessions.TraceKey{Agent: st.Agent, TraceID: st.TraceID}
		if h.held[k] == nil {
			h.held[k] = map[string]heldRow{}
		}
		if _, dup := h.held[k][st.SpanID]; !dup {
			h.held[k][st.SpanID] = heldRow{step: st, bytes: int64(len(body)), at: now}
			n++
			size += int64(len(body))
		}
		kept++
	}
	return kept, nil
}

func sortedSteps(rows []heldRow) []sessions.Step {
	sort.Slice(rows, func(i, j int) bool { return rows[i].step.SpanID < rows[j].step.SpanID })
	out := make([]sessions.Step, len(rows))
	for i, r := range rows {
		out[i] = r.step
	}
	return out
}

// ClaimHeld removes and returns the held steps of keys.
func (s *SessionStore) ClaimHeld(ctx context.Context, keys []sessions.TraceKey) ([]sessions.Step, error) {
	h := s.hold()
	h.mu.Lock()
	defer h.mu.Unlock()
	var rows []heldRow
	for _, k := range keys {
		for _, r := range h.held[k] {
			rows = append(rows, r)
		}
		delete(h.held, k)
	}
	return sortedSteps(rows), nil
}

// ClaimBound removes the held steps whose trace is bound, with its session.
func (s *SessionStore) ClaimBound(ctx context.Context, limit int) ([]sessions.Step, error) {
	h := s.hold()
	h.mu.Lock()
	defer h.mu.Unlock()
	var rows []heldRow
	for k, m := range h.held {
		id, ok := h.bound[k]
		if !ok {
			continue
		}
		for _, r := range m {
			r.step.Session = id
			rows = append(rows, r)
		}
		delete(h.held, k)
	}
	return sortedSteps(rows), nil
}

// ExpireHeld removes and returns the steps held before before.
func (s *SessionStore) ExpireHeld(ctx context.Context, before time.Time, limit int) ([]sessions.Step, error) {
	h := s.hold()
	h.mu.Lock()
	defer h.mu.Unlock()
	var rows []heldRow
	for k, m := range h.held {
		for id, r := range m {
			if r.at.Before(before) {
				rows = append(rows, r)
				delete(m, id)
			}
		}
		if len(m) == 0 {
			delete(h.held, k)
		}
	}
	return sortedSteps(rows), nil
}

// HeldStats returns the spans held and their bytes.
func (s *SessionStore) HeldStats(ctx context.Context) (spans, bytes int64, err error) {
	h := s.hold()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.held {
		for _, r := range m {
			spans++
			bytes += r.bytes
		}
	}
	return spans, bytes, nil
}

// ForgetTraces deletes bindings written before before.
func (s *SessionStore) ForgetTraces(ctx context.Context, before time.Time) error {
	h := s.hold()
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, at := range h.boundAt {
		if at.Before(before) {
			delete(h.bound, k)
			delete(h.boundAt, k)
		}
	}
	return nil
}

// AddRefusals keeps refusals.
func (s *SessionStore) AddRefusals(ctx context.Context, rs []sessions.Refusal) error {
	h := s.hold()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refusals = append(h.refusals, rs...)
	return nil
}

// FindRefusals returns refusals since since, most recent first.
func (s *SessionStore) FindRefusals(ctx context.Context, since time.Time, session string, limit int) ([]sessions.Refusal, error) {
	h := s.hold()
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []sessions.Refusal
	for i := len(h.refusals) - 1; i >= 0 && len(out) < limit; i-- {
		r := h.refusals[i]
		if r.At.Before(since) || session != "" && r.Session != session {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// DeleteRefusals deletes refusals before before.
func (s *SessionStore) DeleteRefusals(ctx context.Context, before time.Time) error {
	h := s.hold()
	h.mu.Lock()
	defer h.mu.Unlock()
	kept := h.refusals[:0]
	for _, r := range h.refusals {
		if !r.At.Before(before) {
			kept = append(kept, r)
		}
	}
	h.refusals = kept
	return nil
}
