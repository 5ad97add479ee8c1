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
	// lastN is the highest stored step number counted, seen whether
	// anything was counted: a session's steps are numbered in the order the
	// store took them, on whichever replica, so a step numbered past lastN
	// that is not in hand was stored elsewhere and is read back before the
	// steps in hand are judged.
	lastN int64
	seen  bool
}

// state returns the state of session, a new one (judged from the store by
// evaluate) on first sight: after a restart, an eviction, or when the
// session's earlier steps went to other replicas.
func (g *Guard) state(a *ownership.Agent, session string) *state {
	k := sessions.Key{Agent: a.Name, ID: session}
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.sessions[k]; s != nil {
		return s
	}
	if len(g.sessions) >= g.cfg.MaxSessions {
		g.evictLocked()
	}
	s := newState(a.Name)
	g.sessions[k] = s
	return s
}

// catchUp reads what the state has not counted of a session from the
// store: the steps stored before the ones in hand (stored by another
// replica, by a request this replica judges later, or before a restart),
// and the breaches recorded (by whichever replica judged first). upto bounds
// the steps read by their number (0: all): a step stored after the ones in
// hand is the judgement of the request that stored it. Steps in batch are
// left out (they are judged as they arrived); so are steps stored before
// numbering (N 0) when the state has counted anything already.
func (g *Guard) catchUp(ctx context.Context, a *ownership.Agent, s *state, session string, batch []sessions.Step, upto int64) ([]*sessions.Step, error) {
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
			st := &rec.Steps[i]
			switch {
			case inBatch[st.SpanID]:
			case st.N == 0 && s.seen:
			case st.N != 0 && (st.N <= s.lastN || upto > 0 && st.N > upto):
			default:
				pre = append(pre, st)
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
	return pre, errors.Join(errs...)
}

// storedAt is when a stored step counts as received: when reins received
// it, never later than now. A step stored without an arrival time (tests)
// counts at its end.
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

// freshAt is when a step in hand counts as received: when the intake
// stamped it (what the store keeps, so another replica reading it back
// judges it at the same time), else now.
func freshAt(st *sessions.Step, now time.Time) time.Time {
	if st.Received.IsZero() || st.Received.After(now) {
		return now
	}
	return st.Received.Truncate(time.Microsecond) // as stored
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

// newSteps returns the steps of batch the state has not counted. Steps the
// store numbered are new when numbered past lastN (a retried span gets no
// number: it was stored, and judged, before). Without numbers the store
// grew the session by t.Steps - (what the state last saw) steps: when that
// covers the batch, every step is new; else a retry or a reordering resent
// some, found among the events kept.
func (s *state) newSteps(batch []sessions.Step, t sessions.Totals) (out []*sessions.Step, numbered bool) {
	out = make([]*sessions.Step, 0, len(batch))
	for i := range batch {
		if batch[i].N != 0 {
			numbered = true
			break
		}
	}
	if numbered {
		// The store numbers a batch's new spans in batch order, and a span
		// repeated within the batch gets its first copy's number: a new step
		// is one numbered past every step before it.
		last := s.lastN
		for i := range batch {
			if batch[i].N > last {
				last = batch[i].N
				out = append(out, &batch[i])
			}
		}
		return out, true
	}
	if t.Steps-s.totals.Steps >= int64(len(batch)) {
		for i := range batch {
			out = append(out, &batch[i])
		}
		return out, false
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
	return out, false
}

// evaluate judges the session's new steps of batch, and before them what
// the state has not counted of the steps stored before them (catchUp), one
// at a time in the order the store numbered them, each as of when reins
// received it, and returns the SLAs they crossed, each once per session
// (per rung of a ladder). t is the session's totals once batch was stored;
// an empty batch judges every stored step not counted yet (rejudge).
//
// Every replica judges a session's steps in the same order at the same
// times, from the same stored steps: whichever replica judges a crossing
// finds it at the same step as one replica would, and the store keeps one
// breach of it (InsertBreach). The catch-up costs a read of the session only
// when the store holds steps of it this replica has not counted.
func (g *Guard) evaluate(ctx context.Context, a *ownership.Agent, s *state, session string, batch []sessions.Step, t sessions.Totals, now time.Time) ([]Breach, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh, numbered := s.newSteps(batch, t)
	if len(batch) > 0 && len(fresh) == 0 {
		return nil, nil // counted already: a request judged after a later one of its session
	}
	var pre []*sessions.Step
	var err error
	if t.Steps-s.totals.Steps > int64(len(fresh)) && (numbered || !s.seen) {
		var upto int64
		if len(fresh) > 0 && numbered {
			upto = fresh[len(fresh)-1].N
		}
		pre, err = g.catchUp(ctx, a, s, session, batch, upto)
	}
	s.seen = true
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
		// The windows need times in order: a step numbered later but
		// stamped a moment earlier (stamped, then queued for the
		// session's lock) counts as received with the one before it.
		if at.Before(s.last) {
			at = s.last
		}
		s.lastN = max(s.lastN, st.N)
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
		judge(st, freshAt(st, now))
	}
	if t.Steps > s.totals.Steps {
		s.totals = t
	}
	return out, err
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
