package sessions

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/reins-oss/reins/ownership"
)

// TraceKey names one agent's trace.
type TraceKey struct {
	Agent   string
	TraceID string
}

// HoldStore keeps trace → session bindings, the spans waiting for one, and
// the spans refused at intake. A Store that implements it gets trace-level
// sessions; without it a span whose trace names no session in its own
// request is refused.
type HoldStore interface {
	// BindTraces stores bindings; a trace already bound keeps its session.
	BindTraces(ctx context.Context, bs []TraceBinding, now time.Time) error
	// TraceSessions returns the sessions bound to those of keys that are.
	TraceSessions(ctx context.Context, keys []TraceKey) (map[TraceKey]string, error)
	// HoldSteps keeps steps (Session "") until their trace is bound, as many
	// of them, in order, as keep the held spans within maxSpans and
	// maxBytes; it returns how many it kept. A span held already counts once.
	HoldSteps(ctx context.Context, steps []Step, now time.Time, maxSpans int, maxBytes int64) (int, error)
	// ClaimHeld removes and returns the held steps of keys.
	ClaimHeld(ctx context.Context, keys []TraceKey) ([]Step, error)
	// ClaimBound removes and returns up to limit held steps whose trace has
	// a binding (a join missed by a race or a crash), with their session.
	ClaimBound(ctx context.Context, limit int) ([]Step, error)
	// ExpireHeld removes and returns up to limit steps held before before.
	ExpireHeld(ctx context.Context, before time.Time, limit int) ([]Step, error)
	// HeldStats returns the spans held and their bytes.
	HeldStats(ctx context.Context) (spans, bytes int64, err error)
	// ForgetTraces deletes bindings written before before.
	ForgetTraces(ctx context.Context, before time.Time) error
	// AddRefusals counts refused spans (per minute of At).
	AddRefusals(ctx context.Context, rs []Refusal) error
	// FindRefusals returns the refusals since since, of one session when
	// session is not "", most recent first, at most limit.
	FindRefusals(ctx context.Context, since time.Time, session string, limit int) ([]Refusal, error)
	// DeleteRefusals deletes refusals before before.
	DeleteRefusals(ctx context.Context, before time.Time) error
}

// HoldPeeker is a HoldStore whose WriteSteps takes held steps out of the
// hold itself: PeekHeld reads the held steps of keys without removing them,
// each naming its chunk in Step.HeldIn, and WriteSteps deletes the chunks
// its steps name in the transaction that stores them. A claim then costs
// no transaction of its own, and a crash or a failed write between the
// claim and the write leaves the spans held rather than lost. Two requests
// reading the same held steps store them once (WriteSteps is idempotent).
type HoldPeeker interface {
	PeekHeld(ctx context.Context, keys []TraceKey) ([]Step, error)
}

// Joined is what Join did with a request's steps.
type Joined struct {
	Steps    []Step    // to record: the request's own, then those joined to their trace's session
	Joined   int       // spans given their trace's session from another request
	Held     int       // spans waiting for their trace's session
	Claimed  []Step    // of Steps, those taken from the hold: Rehold them if they cannot be recorded (none with a HoldPeeker)
	Refusals []Refusal // spans refused: no session and no room to wait (or no store to wait in)
}

// Holds returns the HoldStore, nil when the store has none.
func (s *Service) Holds() HoldStore {
	h, _ := s.store.(HoldStore)
	return h
}

// Join gives the pending steps of a request (Session "") the session their
// trace names: bound by an earlier request, joined now; else they wait
// (telemetry.hold) for a later one. Steps held by earlier requests whose
// traces this request binds are claimed and joined. steps are the request's
// steps with a session; bindings the sessions its traces name.
func (s *Service) Join(ctx context.Context, steps, pending []Step, bindings []TraceBinding) (Joined, error) {
	out := Joined{Steps: steps}
	h := s.Holds()
	if h == nil {
		out.Refusals = refuseNoSession(pending, s.now())
		return out, nil
	}
	now := s.now()
	if fresh := s.unbound(bindings); len(fresh) > 0 {
		if err := h.BindTraces(ctx, fresh, now); err != nil {
			return out, fmt.Errorf("bind %d traces to their sessions: %w", len(fresh), err)
		}
		s.bound(fresh)
	}
	if len(pending) > 0 {
		bound, err := h.TraceSessions(ctx, traceKeys(pending))
		if err != nil {
			return out, fmt.Errorf("look up the sessions of %d traces: %w", len(pending), err)
		}
		var wait []Step
		for _, st := range pending {
			if id := bound[TraceKey{st.Agent, st.TraceID}]; id != "" {
				st.Session = id
				out.Steps = append(out.Steps, st)
				out.Joined++
				continue
			}
			wait = append(wait, st)
		}
		if len(wait) > 0 {
			hold := s.registry.Current().Telemetry.Hold
			kept := 0
			if hold.MaxSpans > 0 && hold.MaxBytes > 0 {
				if kept, err = h.HoldSteps(ctx, wait, now, hold.MaxSpans, hold.MaxBytes); err != nil {
					return out, fmt.Errorf("hold %d spans for their trace's session: %w", len(wait), err)
				}
			}
			out.Held = kept
			for _, r := range refuseNoSession(wait[kept:], now) {
				r.Reason = RefusedHoldFull
				if hold.MaxSpans == 0 || hold.MaxBytes == 0 {
					r.Reason = RefusedNoSession
				}
				out.Refusals = append(out.Refusals, r)
			}
			// A binding written while these were being held (another
			// request, another replica) may have claimed before they were:
			// look again, so no span waits for a session already known.
			if kept > 0 {
				again, err := h.TraceSessions(ctx, traceKeys(wait[:kept]))
				if err != nil {
					return out, fmt.Errorf("look up the sessions of %d traces: %w", kept, err)
				}
				if len(again) > 0 {
					keys := make([]TraceKey, 0, len(again))
					for k := range again {
						keys = append(keys, k)
					}
					claimed, taken, err := claim(ctx, h, keys)
					if err != nil {
						return out, fmt.Errorf("claim held spans: %w", err)
					}
					for _, st := range claimed {
						st.Session = again[TraceKey{st.Agent, st.TraceID}]
						out.Steps = append(out.Steps, st)
						if taken {
							out.Claimed = append(out.Claimed, st)
						}
						out.Joined++
						out.Held--
					}
				}
			}
		}
	}
	if len(bindings) > 0 {
		keys := make([]TraceKey, len(bindings))
		session := make(map[TraceKey]string, len(bindings))
		for i, b := range bindings {
			keys[i] = TraceKey{b.Agent, b.TraceID}
			session[keys[i]] = b.Session
		}
		claimed, taken, err := claim(ctx, h, keys)
		if err != nil {
			return out, fmt.Errorf("claim held spans: %w", err)
		}
		for _, st := range claimed {
			st.Session = session[TraceKey{st.Agent, st.TraceID}]
			if st.Session == "" {
				continue
			}
			out.Steps = append(out.Steps, st)
			if taken {
				out.Claimed = append(out.Claimed, st)
			}
			out.Joined++
		}
	}
	return out, nil
}

// claim returns the held steps of keys: read, to be taken out of the hold
// by the write that stores them, when the store can (taken false); else
// removed from the hold now (taken true: put them back if the write fails).
func claim(ctx context.Context, h HoldStore, keys []TraceKey) (steps []Step, taken bool, err error) {
	if p, ok := h.(HoldPeeker); ok {
		steps, err = p.PeekHeld(ctx, keys)
		return steps, false, err
	}
	steps, err = h.ClaimHeld(ctx, keys)
	return steps, true, err
}

func traceKeys(steps []Step) []TraceKey {
	seen := map[TraceKey]bool{}
	var out []TraceKey
	for _, st := range steps {
		k := TraceKey{st.Agent, st.TraceID}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

func refuseNoSession(steps []Step, now time.Time) []Refusal {
	var rs []Refusal
	for _, st := range steps {
		rs = append(rs, Refusal{At: now, Reason: RefusedNoSession, Agent: st.Agent, Spans: 1})
	}
	return MergeRefusals(rs)
}

// Sweep joins held spans whose trace has been bound since (a missed join),
// and refuses those held past telemetry.hold.max_age. It returns the steps
// joined, for the caller to record and have judged, and the refusals.
func (s *Service) Sweep(ctx context.Context) (joined []Step, expired []Refusal, err error) {
	h := s.Holds()
	if h == nil {
		return nil, nil, nil
	}
	now := s.now()
	joined, err = h.ClaimBound(ctx, 10_000)
	if err != nil {
		return nil, nil, fmt.Errorf("join held spans: %w", err)
	}
	hold := s.registry.Current().Telemetry.Hold
	if hold.MaxAge <= 0 {
		hold.MaxAge = ownership.DefaultHoldMaxAge
	}
	old, err := h.ExpireHeld(ctx, now.Add(-hold.MaxAge), 10_000)
	if err != nil {
		return joined, nil, fmt.Errorf("expire held spans: %w", err)
	}
	expired = refuseNoSession(old, now)
	if err := h.ForgetTraces(ctx, now.Add(-TraceBindingTTL)); err != nil {
		return joined, expired, fmt.Errorf("forget old trace bindings: %w", err)
	}
	if err := h.DeleteRefusals(ctx, now.Add(-RefusalRetention)); err != nil {
		return joined, expired, fmt.Errorf("delete old refusals: %w", err)
	}
	return joined, expired, nil
}

// TraceBindingTTL is how long a trace's session is remembered: a span of the
// trace arriving later than this waits and expires.
const TraceBindingTTL = 24 * time.Hour

// RefusalRetention is how long refusals are kept for reins session.
const RefusalRetention = 7 * 24 * time.Hour

// Refuse remembers refused spans, when the store can.
func (s *Service) Refuse(ctx context.Context, rs []Refusal) error {
	h := s.Holds()
	if h == nil || len(rs) == 0 {
		return nil
	}
	return h.AddRefusals(ctx, rs)
}

// Refusals returns the spans refused since since, of one session when
// session is not "" (reins session), most recent first.
func (s *Service) Refusals(ctx context.Context, since time.Time, session string, limit int) ([]Refusal, error) {
	h := s.Holds()
	if h == nil {
		return nil, nil
	}
	return h.FindRefusals(ctx, since, session, limit)
}

// maxBound bounds the traces this replica remembers having bound; when full
// it starts over (a miss costs one INSERT … ON CONFLICT DO NOTHING).
const maxBound = 100_000

// unbound returns the bindings this replica has not written yet: a long
// session's trace is bound once, not on every export.
func (s *Service) unbound(bs []TraceBinding) []TraceBinding {
	if len(bs) == 0 {
		return nil
	}
	s.boundMu.Lock()
	defer s.boundMu.Unlock()
	var out []TraceBinding
	for _, b := range bs {
		if _, ok := s.boundTraces[TraceKey{b.Agent, b.TraceID}]; !ok {
			out = append(out, b)
		}
	}
	return out
}

func (s *Service) bound(bs []TraceBinding) {
	s.boundMu.Lock()
	defer s.boundMu.Unlock()
	if s.boundTraces == nil || len(s.boundTraces)+len(bs) > maxBound {
		s.boundTraces = make(map[TraceKey]struct{}, len(bs))
	}
	for _, b := range bs {
		s.boundTraces[TraceKey{b.Agent, b.TraceID}] = struct{}{}
	}
}

// Rehold puts back spans Join took from the hold when they could not be
// recorded (the exporter's retry brings back only its own request's spans);
// the sweep joins them once the store takes writes again.
func (s *Service) Rehold(ctx context.Context, steps []Step) error {
	h := s.Holds()
	if h == nil || len(steps) == 0 {
		return nil
	}
	back := make([]Step, len(steps))
	for i, st := range steps {
		st.Session, st.N, st.HeldIn = "", 0, ""
		back[i] = st
	}
	_, err := h.HoldSteps(ctx, back, s.now(), math.MaxInt, math.MaxInt64)
	return err
}
