package guard

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/ownership"
)

// maxEvents bounds the steps a session keeps in memory for its windows and
// its retry check: past it the older half goes (a window reaching further
// back then counts only what is left).
const maxEvents = 5_000

// idleAfter is how long a session may go without steps before its state
// is dropped (rebuilt from the store if it comes back).
const idleAfter = 30 * time.Minute

// event is what the windows need of one step. at is when reins received it:
// a clock skewed into the future or the far past does not move windows.
type event struct {
	at     time.Time
	span   string
	tokens int64
	cost   float64
	tool   bool
	err    bool
	loop   string // tool + arguments hash; "" for no tool call
}

// state is one session's guard state.
type state struct {
	mu       sync.Mutex
	agent    string
	events   []event
	loops    map[string]int         // whole-session loop counts
	loopAt   map[string][]time.Time // when each repeated call arrived, for windowed loop SLAs
	wins     map[time.Duration]*win // running sums over the last d, by d
	breached map[string]bool
	repeats  map[string]int // breaches per SLA, for ladders (ladder.go)
	totals   sessions.Totals
	scoreMin map[string]float64 // per attribute: the lowest score seen
	last     time.Time
}

// state returns the state of session. On first sight (after a restart, or
// eviction) it is rebuilt from the store: its stored breaches, and as pre the
// steps stored before batch, for evaluate to judge first (a crash may have
// stored steps nobody judged; a concurrent request may have stored some just
// now). pre is nil when the state was already held.
func (g *Guard) state(ctx context.Context, a *ownership.Agent, session string, batch []sessions.Step, t sessions.Totals) (*state, []*sessions.Step, error) {
	k := sessions.Key{Agent: a.Name, ID: session}
	g.mu.Lock()
	s := g.sessions[k]
	g.mu.Unlock()
	if s != nil {
		return s, nil, nil
	}
	var pre []*sessions.Step
	var err error
	if onlyBatch(batch, t) {
		// Every step the session has is in this batch: nothing to rebuild,
		// and reading back what was just written would double the cost of
		// intake for sessions that arrive in big batches.
		s = newState(a.Name)
	} else {
		s, pre, err = g.rebuild(ctx, a, session, batch)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if cur := g.sessions[k]; cur != nil {
		return cur, nil, err
	}
	if len(g.sessions) >= g.cfg.MaxSessions {
		g.evictLocked()
	}
	g.sessions[k] = s
	return s, pre, err
}

// rebuild reads a session's stored breaches and its stored steps other than
// those of batch, in time order.
func (g *Guard) rebuild(ctx context.Context, a *ownership.Agent, session string, batch []sessions.Step) (*state, []*sessions.Step, error) {
	s := newState(a.Name)
	if len(a.SLAs) == 0 {
		return s, nil, nil
	}
	var errs []error
	inBatch := make(map[string]bool, len(batch))
	for _, st := range batch {
		inBatch[st.SpanID] = true
	}
	var pre []*sessions.Step
	rec, err := g.cfg.Steps.FindSession(ctx, a.Name, session)
	switch {
	case errors.Is(err, sessions.ErrNotFound):
	case err != nil:
		errs = append(errs, err)
	default:
		for i := range rec.Steps {
			if !inBatch[rec.Steps[i].SpanID] {
				pre = append(pre, &rec.Steps[i])
			}
		}
	}
	// Judged in the order they were received, as when they arrived: the
	// stored numbers (0 for steps stored before numbering keeps time order).
	slices.SortStableFunc(pre, func(x, y *sessions.Step) int { return cmp.Compare(x.N, y.N) })
	prior, err := g.cfg.Store.SessionBreaches(ctx, a.Name, session)
	if err != nil {
		errs = append(errs, err)
	}
	for _, b := range prior {
		s.breached[b.SLA] = true
		s.repeats[b.SLA] = max(s.repeats[b.SLA], b.Repeat, 1)
	}
	return s, pre, errors.Join(errs...)
}

// storedAt is when a stored step counts as received in a rebuilt state:
// when reins received it, never later than now. A step stored without an
// arrival time (tests) counts at its end.
func storedAt(st *sessions.Step, now time.Time) time.Time {
	if !st.Received.IsZero() {
		if st.Received.After(now) {
			return now
		}
		return st.Received
	}
	at := st.Start.Add(st.Duration)
	if at.After(now) || st.Start.IsZero() {
		return now
	}
	return at
}

// onlyBatch says whether the session's stored steps are all in batch: the
// batch's distinct spans are all stored, so as many steps in all means the
// same steps.
func onlyBatch(batch []sessions.Step, t sessions.Totals) bool {
	if t.Steps > int64(len(batch)) {
		return false
	}
	spans := make(map[string]struct{}, len(batch))
	for _, st := range batch {
		spans[st.SpanID] = struct{}{}
	}
	return t.Steps <= int64(len(spans))
}

func newState(agent string) *state {
	return &state{agent: agent, loops: map[string]int{}, loopAt: map[string][]time.Time{},
		wins: map[time.Duration]*win{}, breached: map[string]bool{}, repeats: map[string]int{}, scoreMin: map[string]float64{}}
}

// win is a running sum over the events received in the last d: events
// arrive in time order, so it only ever adds at the end and drops at start.
type win struct {
	start  int
	tokens int64
	cost   float64
	steps  int64
	tools  int64
}

func (w *win) add(e event, sign int64) {
	w.tokens += sign * e.tokens
	w.cost += float64(sign) * e.cost
	w.steps += sign
	if e.tool {
		w.tools += sign
	}
}

func (w *win) value(metric string) float64 {
	switch metric {
	case ownership.SLATokensPerSession:
		return float64(w.tokens)
	case ownership.SLACostPerSession:
		return w.cost
	case ownership.SLAToolCallsPerMinute:
		return float64(w.tools)
	}
	return float64(w.steps)
}

// window returns the running sums over the events received in the last d.
func (s *state) window(d time.Duration, now time.Time) *win {
	w := s.wins[d]
	if w == nil {
		w = &win{}
		for _, e := range s.events {
			w.add(e, 1)
		}
		s.wins[d] = w
	}
	since := now.Add(-d)
	for w.start < len(s.events) && s.events[w.start].at.Before(since) {
		w.add(s.events[w.start], -1)
		w.start++
	}
	return w
}

// windowSum sums metric over the events received in the last d.
func (s *state) windowSum(metric string, d time.Duration, now time.Time) float64 {
	return s.window(d, now).value(metric)
}

// sweep drops the state of sessions idle for idleAfter, at most once a minute.
func (g *Guard) sweep(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.lastSweep) < time.Minute {
		return
	}
	g.lastSweep = now
	for id, s := range g.sessions {
		s.mu.Lock()
		idle := now.Sub(s.last) > idleAfter
		s.mu.Unlock()
		if idle {
			delete(g.sessions, id)
		}
	}
}

// evictLocked drops the least recently active tenth of the sessions.
func (g *Guard) evictLocked() {
	n := max(len(g.sessions)/10, 1)
	type idle struct {
		id   sessions.Key
		last time.Time
	}
	var all []idle
	for id, s := range g.sessions {
		s.mu.Lock()
		all = append(all, idle{id, s.last})
		s.mu.Unlock()
	}
	// A sort, not a selection of n minima: n is a tenth of the map, and
	// this runs under mu, which every intake request takes.
	slices.SortFunc(all, func(x, y idle) int { return x.last.Compare(y.last) })
	for _, s := range all[:min(n, len(all))] {
		delete(g.sessions, s.id)
	}
}

func loopKey(st sessions.Step) string {
	if !st.IsTool() {
		return ""
	}
	return st.Tool + "\x00" + st.ArgsHash
}

// add counts one step into the state, received at at.
func (s *state) add(st *sessions.Step, at time.Time) {
	e := event{at: at, span: st.SpanID, tokens: st.Tokens(), cost: st.Cost, tool: st.IsTool(), err: st.Error,
		loop: loopKey(*st)}
	s.events = append(s.events, e)
	for _, w := range s.wins {
		w.add(e, 1)
	}
	if len(s.events) > maxEvents {
		cut := len(s.events) - maxEvents/2
		s.events = append(s.events[:0:0], s.events[cut:]...)
		for d, w := range s.wins {
			if w.start < cut {
				delete(s.wins, d) // summed again from what is left on next use
			} else {
				w.start -= cut
			}
		}
	}
	if e.loop != "" {
		s.loops[e.loop]++
		at := append(s.loopAt[e.loop], at)
		if len(at) > maxEvents {
			at = append(at[:0:0], at[len(at)-maxEvents/2:]...)
		}
		s.loopAt[e.loop] = at
	}
	for k, v := range st.Scores {
		if cur, ok := s.scoreMin[k]; !ok || v < cur {
			s.scoreMin[k] = v
		}
	}
	s.totals.Add(*st)
	if at.After(s.last) {
		s.last = at
	}
}

// newSteps returns the steps of batch the state has not counted. The store
// grew the session by t.Steps - (what the state last saw) steps: when that
// covers the batch, every step is new (the usual case, no look-up); else a
// retry or a reordering resent some, found among the events kept.
func (s *state) newSteps(batch []sessions.Step, t sessions.Totals, pre int) []*sessions.Step {
	out := make([]*sessions.Step, 0, len(batch))
	if t.Steps-s.totals.Steps-int64(pre) >= int64(len(batch)) {
		for i := range batch {
			out = append(out, &batch[i])
		}
		return out
	}
	known := make(map[string]bool, len(s.events)+len(batch))
	for _, e := range s.events {
		known[e.span] = true
	}
	for i := range batch {
		if !known[batch[i].SpanID] {
			known[batch[i].SpanID] = true
			out = append(out, &batch[i])
		}
	}
	return out
}

// evaluate counts the steps of pre (rebuilt from the store, judged as of
// when they were stored) and the new steps of batch (judged as of now), one
// at a time in that order, and returns the SLAs they crossed, each once per
// session.
func (g *Guard) evaluate(a *ownership.Agent, s *state, pre []*sessions.Step, batch []sessions.Step, t sessions.Totals, now time.Time) []Breach {
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh := s.newSteps(batch, t, len(pre))
	// Totals from the store are authoritative (they survive restarts and
	// the step cap); the steps judged here lead up to them.
	run := sessions.Totals{Steps: t.Steps, InputTokens: t.InputTokens, OutputTokens: t.OutputTokens, Cost: t.Cost}
	var tokens int64
	var cost float64
	for _, st := range pre {
		run.Steps--
		run.InputTokens -= st.InputTokens
		run.OutputTokens -= st.OutputTokens
		run.Cost -= st.Cost
	}
	for _, st := range fresh {
		run.Steps--
		run.InputTokens -= st.InputTokens
		run.OutputTokens -= st.OutputTokens
		run.Cost -= st.Cost
		tokens += st.Tokens()
		cost += st.Cost
	}
	g.metrics.tokens.WithLabelValues(a.Name).Add(float64(tokens))
	g.metrics.cost.WithLabelValues(a.Name).Add(cost)
	names := make([]string, len(a.SLAs))
	for k := range a.SLAs {
		names[k] = a.SLAs[k].Label()
	}
	var out []Breach
	fired := map[string]bool{} // SLAs breached in this batch: a ladder climbs one rung per batch at most
	judge := func(st *sessions.Step, at time.Time) {
		s.add(st, at)
		run.Steps++
		run.InputTokens += st.InputTokens
		run.OutputTokens += st.OutputTokens
		run.Cost += st.Cost
		for k := range a.SLAs {
			sla, name := &a.SLAs[k], names[k]
			if s.breached[name] && !climbs(sla, s.repeats[name], fired[name]) {
				continue
			}
			value, threshold, detail, crossed := s.check(sla, st, run, at)
			if !crossed {
				continue
			}
			s.breached[name], fired[name] = true, true
			s.repeats[name]++
			action := sla.OnBreach
			if action == "" {
				action = ownership.OnBreachAlert
			}
			// The stored number, when the store gave one, is the number
			// every view shows; run.Steps is the same count for stores
			// that number nothing.
			n := run.Steps
			if st.N > 0 {
				n = st.N
			}
			out = append(out, Breach{Agent: a.Name, SLA: name, Metric: sla.Metric, Session: st.Session,
				Value: value, Threshold: threshold, Detail: detail, Step: st.SpanID, StepN: n,
				Action: action, DryRun: sla.DryRun, At: now, Repeat: s.repeats[name]})
		}
	}
	for _, st := range pre {
		judge(st, storedAt(st, now))
	}
	for _, st := range fresh {
		judge(st, now)
	}
	if t.Steps > s.totals.Steps {
		s.totals = t
	}
	return out
}

// check says whether sla is crossed at step st, with run the session's
// totals up to and including st.
func (s *state) check(sla *ownership.SLA, st *sessions.Step, run sessions.Totals, now time.Time) (value, threshold float64, detail string, crossed bool) {
	switch sla.Metric {
	case ownership.SLATokensPerSession, ownership.SLACostPerSession, ownership.SLAStepsPerSession:
		if sla.Max == nil {
			return
		}
		threshold = *sla.Max
		value = s.sessionValue(sla, run, now)
		return value, threshold, "", value > threshold
	case ownership.SLAToolCallsPerMinute:
		if sla.Max == nil || !st.IsTool() {
			return
		}
		threshold = *sla.Max
		value = s.windowSum(sla.Metric, toolWindow(sla), now)
		return value, threshold, "", value > threshold
	case ownership.SLAToolScope:
		if !st.IsTool() || st.Tool == "" {
			return
		}
		for _, g := range sla.Allow {
			if ownership.MatchTool(g, st.Tool) {
				return
			}
		}
		return 1, 0, st.Tool, true
	case ownership.SLALoop:
		key := loopKey(*st)
		if key == "" || sla.Count < 2 {
			return
		}
		threshold = float64(sla.Count)
		if sla.Window > 0 {
			since := now.Add(-sla.Window)
			at := s.loopAt[key]
			value = float64(len(at) - sort.Search(len(at), func(i int) bool { return !at[i].Before(since) }))
		} else {
			value = float64(s.loops[key])
		}
		return value, threshold, st.Tool, value >= threshold
	case ownership.SLAErrorRate:
		if sla.Max == nil {
			return
		}
		n := errorSteps(sla)
		threshold = *sla.Max
		evs := s.recent(n, sla.Window, now)
		if len(evs) < n {
			return // too few steps for a rate yet
		}
		value = errorRate(evs)
		return value, threshold, "", value > threshold
	case ownership.SLAScore:
		v, ok := st.Scores[sla.Attribute]
		if !ok || sla.Min == nil {
			return
		}
		return v, *sla.Min, sla.Attribute, v < *sla.Min
	}
	return
}

// sessionValue is the value of a tokens, cost or steps SLA: over its window
// when it has one, else the session's totals t.
func (s *state) sessionValue(sla *ownership.SLA, t sessions.Totals, now time.Time) float64 {
	if sla.Window > 0 {
		return s.windowSum(sla.Metric, sla.Window, now)
	}
	switch sla.Metric {
	case ownership.SLATokensPerSession:
		return float64(t.TotalTokens())
	case ownership.SLACostPerSession:
		return t.Cost
	}
	return float64(t.Steps)
}

// toolWindow and errorSteps default what an SLA built in code, not parsed
// from reins.yaml, may leave unset.
func toolWindow(sla *ownership.SLA) time.Duration {
	if sla.Window > 0 {
		return sla.Window
	}
	return ownership.DefaultToolCallsWindow
}

func errorSteps(sla *ownership.SLA) int {
	if sla.Steps > 0 {
		return sla.Steps
	}
	return ownership.DefaultErrorRateSteps
}

// errorRate is the share of evs that failed; evs is not empty.
func errorRate(evs []event) float64 {
	errs := 0
	for _, e := range evs {
		if e.err {
			errs++
		}
	}
	return float64(errs) / float64(len(evs))
}

// recent returns the last n events received within window (0: any time),
// up to the newest.
func (s *state) recent(n int, window time.Duration, now time.Time) []event {
	evs := s.events
	if len(evs) > n {
		evs = evs[len(evs)-n:]
	}
	if window > 0 {
		since := now.Add(-window)
		for len(evs) > 0 && evs[0].at.Before(since) {
			evs = evs[1:]
		}
	}
	return evs
}

// Reason says in a line what crossed: "tokens_per_session 210,000 > 200,000 at step 37".
func Reason(b Breach) string {
	at := fmt.Sprintf(" at step %d", b.StepN)
	switch b.Metric {
	case ownership.SLAToolScope:
		return fmt.Sprintf("tool %s is outside tool_scope%s", strconv.Quote(b.Detail), at)
	case ownership.SLALoop:
		return fmt.Sprintf("loop: %s called %s times with the same arguments%s", strconv.Quote(b.Detail),
			formatValue(b.Metric, b.Value), at)
	case ownership.SLAScore:
		return fmt.Sprintf("%s %s < %s%s", b.SLA, formatValue(b.Metric, b.Value), formatValue(b.Metric, b.Threshold), at)
	}
	return fmt.Sprintf("%s %s > %s%s", b.SLA, formatValue(b.Metric, b.Value), formatValue(b.Metric, b.Threshold), at)
}

// formatValue prints a metric's value as people read it.
func formatValue(metric string, v float64) string {
	switch metric {
	case ownership.SLACostPerSession:
		return "$" + strconv.FormatFloat(v, 'f', 2, 64)
	case ownership.SLAErrorRate:
		return strconv.FormatFloat(v*100, 'f', 0, 64) + "%"
	case ownership.SLAScore:
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return sessions.Thousands(int64(v))
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
