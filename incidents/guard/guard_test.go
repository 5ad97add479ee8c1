package guard_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/guard"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/ownership"
)

type alerts struct {
	mu       sync.Mutex
	got      []incidents.Alert
	incident int64 // what Ingest answers; 0: 7
}

func (a *alerts) Ingest(ctx context.Context, list []incidents.Alert) (incidents.IngestResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, list...)
	if a.incident == 0 {
		return incidents.IngestResult{Incidents: []int64{7}}, nil
	}
	return incidents.IngestResult{Incidents: []int64{a.incident}}, nil
}

// openIncidents answers FindIncident: open when listed.
type openIncidents map[int64]bool

func (o openIncidents) FindIncident(ctx context.Context, id int64) (*incidents.Incident, error) {
	st := incidents.StatusResolved
	if o[id] {
		st = incidents.StatusOpen
	}
	return &incidents.Incident{ID: id, Status: st}, nil
}

type halts struct {
	mu  sync.Mutex
	got []guard.HaltRequest
}

func (h *halts) halt(ctx context.Context, req guard.HaltRequest) (guard.HaltResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, req)
	if req.DryRun {
		return guard.HaltResult{Outcome: "dry_run"}, nil
	}
	return guard.HaltResult{Outcome: req.Action}, nil
}

type env struct {
	reg     *ownership.Holder
	steps   *incidentstest.SessionStore
	store   *incidentstest.GuardStore
	svc     *sessions.Service
	alerts  *alerts
	halts   *halts
	g       *guard.Guard
	promReg *prometheus.Registry
	mu      sync.Mutex
	now     time.Time
	cancel  context.CancelFunc
}

// at and set read and move the guard's clock: its workers read it too.
func (e *env) at() time.Time   { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
func (e *env) set(t time.Time) { e.mu.Lock(); defer e.mu.Unlock(); e.now = t }

func num(v float64) *float64 { return &v }

func newEnv(t *testing.T, slas ...ownership.SLA) *env {
	t.Helper()
	for i := range slas {
		if slas[i].Name == "" {
			slas[i].Name = slas[i].Metric
		}
	}
	reg := &ownership.Registry{Agents: map[string]*ownership.Agent{
		"bot": {Name: "bot", Halt: ownership.HaltSpec{Adapter: "webhook"}, SLAs: slas,
			Sessions: ownership.SessionSettings{MaxSteps: 10_000, ContentLimit: 100}},
	}, Pricing: map[string]ownership.Price{"m": {Input: 1, Output: 2}}}
	e := &env{reg: ownership.NewHolder(reg), steps: incidentstest.NewSessionStore(), store: incidentstest.NewGuardStore(),
		alerts: &alerts{}, halts: &halts{}}
	e.set(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC))
	e.svc = sessions.New(e.steps, e.reg, nil, e.at, slog.New(slog.DiscardHandler))
	e.start(t)
	return e
}

// start builds a guard over the env's stores: a second call is a restart.
func (e *env) start(t *testing.T) {
	t.Helper()
	if e.cancel != nil {
		e.cancel()
		e.g.Wait()
	}
	e.promReg = prometheus.NewRegistry()
	g, err := guard.New(guard.Config{Registry: e.reg, Store: e.store, Steps: e.steps, Alerts: e.alerts,
		Halt: e.halts.halt, Now: e.at, Registerer: e.promReg,
		Page: func(agent, id string) string { return "https://reins.example.com/sessions/" + id + "?agent=" + agent }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.g, e.cancel = g, cancel
	g.Start(ctx)
	t.Cleanup(func() { cancel(); g.Wait() })
}

// send records steps as the intake does and has the guard judge them.
func (e *env) send(t *testing.T, steps ...sessions.Step) {
	t.Helper()
	for i := range steps {
		if steps[i].Agent == "" {
			steps[i].Agent = "bot"
		}
		if steps[i].Start.IsZero() {
			steps[i].Start = e.at()
		}
	}
	totals, err := e.svc.Record(context.Background(), steps)
	if err != nil {
		t.Fatal(err)
	}
	e.g.Observe(context.Background(), steps, totals)
}

// settle waits for the workers to act on n breaches.
func (e *env) settle(t *testing.T, n int) []guard.Breach {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := e.store.FindBreaches(context.Background(), "", time.Time{}, 0)
		done := 0
		for _, b := range got {
			if b.Outcome != "" {
				done++
			}
		}
		if done >= n {
			// Nothing more may come: give a stray breach the chance to show.
			time.Sleep(20 * time.Millisecond)
			got, _ = e.store.FindBreaches(context.Background(), "", time.Time{}, 0)
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited for %d breaches acted on, have %+v", n, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func chat(session, span string, tokens int64) sessions.Step {
	return sessions.Step{Session: session, SpanID: span, Kind: sessions.KindChat, Model: "m", InputTokens: tokens}
}

func tool(session, span, name, args string) sessions.Step {
	return sessions.Step{Session: session, SpanID: span, Kind: sessions.KindTool, Tool: name, ArgsHash: args}
}

func TestTokensBreachAtTheCrossingStepHaltsTheSession(t *testing.T) {
	e := newEnv(t, ownership.SLA{Metric: ownership.SLATokensPerSession, Max: num(200_000),
		OnBreach: ownership.OnBreachHaltSession})
	for i := 1; i <= 40; i++ {
		e.send(t, chat("s-1", fmt.Sprintf("span-%02d", i), 5_500))
	}
	got := e.settle(t, 1)
	if len(got) != 1 {
		t.Fatalf("breaches = %+v, want one", got)
	}
	b := got[0]
	if b.StepN != 37 || b.Step != "span-37" || b.Value != 203_500 || b.Threshold != 200_000 {
		t.Errorf("breach = %+v, want step 37 (span-37) at 203,500 > 200,000", b)
	}
	if b.Outcome != ownership.OnBreachHaltSession || b.IncidentID != 7 {
		t.Errorf("outcome = %q incident %d", b.Outcome, b.IncidentID)
	}
	if len(e.halts.got) != 1 || e.halts.got[0].Sessions[0] != "s-1" || e.halts.got[0].Action != ownership.OnBreachHaltSession ||
		!strings.Contains(e.halts.got[0].Reason, "203,500 > 200,000 at step 37") {
		t.Errorf("halts = %+v", e.halts.got)
	}
	a := e.alerts.got[0]
	if a.Source != "reins" || a.Fingerprint != "sla/bot/tokens_per_session/s-1" || a.Labels["step"] != "37" ||
		a.Labels["value"] != "203,500" || a.Labels["threshold"] != "200,000" || a.Labels["session"] != "s-1" {
		t.Errorf("alert = %+v", a)
	}
	if !strings.Contains(string(a.Details), `"value":"203,500"`) || !strings.Contains(string(a.Details), `"step":37`) {
		t.Errorf("details = %s, want the observed value for the postmortem", a.Details)
	}
	if len(a.Links) != 1 || a.Links[0].URL != "https://reins.example.com/sessions/s-1?agent=bot" {
		t.Errorf("links = %+v", a.Links)
	}
	if v := counter(t, e.promReg, "reins_agent_tokens_total"); v != 40*5_500 {
		t.Errorf("reins_agent_tokens_total = %v", v)
	}
}

func counter(t *testing.T, r *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := r.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestRetriedAndOutOfOrderStepsCountOnce(t *testing.T) {
	e := newEnv(t, ownership.SLA{Metric: ownership.SLAStepsPerSession, Max: num(3)})
	// Out of order: later steps first; then the same spans again (a retry).
	e.send(t, chat("s-1", "c", 1), chat("s-1", "b", 1))
	e.send(t, chat("s-1", "c", 1), chat("s-1", "b", 1), chat("s-1", "a", 1))
	e.send(t, chat("s-1", "a", 1))
	time.Sleep(30 * time.Millisecond)
	if got, _ := e.store.FindBreaches(context.Background(), "", time.Time{}, 0); len(got) != 0 {
		t.Fatalf("3 distinct steps breached max 3: %+v", got)
	}
	e.send(t, chat("s-1", "d", 1))
	if got := e.settle(t, 1); len(got) != 1 || got[0].StepN != 4 {
		t.Fatalf("breaches = %+v, want one at step 4", got)
	}
}

func TestToolScopeBreachesAtOnceAndLoopAtTheFifthCall(t *testing.T) {
	e := newEnv(t,
		ownership.SLA{Metric: ownership.SLAToolScope, Allow: []string{"search.*"}},
		ownership.SLA{Metric: ownership.SLALoop, Count: 5})
	e.send(t, tool("s-1", "1", "shell.exec", "h1"))
	got := e.settle(t, 1)
	if len(got) != 1 || got[0].SLA != "tool_scope" || got[0].Detail != "shell.exec" || got[0].StepN != 1 {
		t.Fatalf("tool_scope breach = %+v", got)
	}
	for i := 0; i < 4; i++ {
		e.send(t, tool("s-2", fmt.Sprint("a", i), "search.web", "same"))
	}
	e.send(t, tool("s-2", "other-args", "search.web", "different"))
	time.Sleep(30 * time.Millisecond)
	if got, _ := e.store.SessionBreaches(context.Background(), "bot", "s-2"); len(got) != 0 {
		t.Fatalf("4 identical calls breached count 5: %+v", got)
	}
	e.send(t, tool("s-2", "a4", "search.web", "same"))
	e.settle(t, 2)
	got, _ = e.store.SessionBreaches(context.Background(), "bot", "s-2")
	if len(got) != 1 || got[0].SLA != "loop" || got[0].Value != 5 || got[0].StepN != 6 {
		t.Fatalf("loop breach = %+v", got)
	}
	if r := guard.Reason(got[0]); !strings.Contains(r, `"search.web" called 5 times`) {
		t.Errorf("reason = %q", r)
	}
}

func TestErrorRateScoreAndToolCallsPerMinute(t *testing.T) {
	e := newEnv(t,
		ownership.SLA{Metric: ownership.SLAErrorRate, Max: num(0.5), Steps: 4},
		ownership.SLA{Metric: ownership.SLAScore, Name: "score:eval.confidence", Attribute: "eval.confidence", Min: num(0.6)},
		ownership.SLA{Metric: ownership.SLAToolCallsPerMinute, Max: num(3)})
	st, _ := e.g.Status(context.Background(), "bot")
	if !st[1].NoData {
		t.Errorf("score with no attribute yet: %+v, want no data", st[1])
	}
	errStep := func(span string) sessions.Step {
		s := chat("s-err", span, 1)
		s.Error = true
		return s
	}
	e.send(t, errStep("1"), chat("s-err", "2", 1), errStep("3"))
	time.Sleep(20 * time.Millisecond)
	if got, _ := e.store.SessionBreaches(context.Background(), "bot", "s-err"); len(got) != 0 {
		t.Fatalf("3 steps judged over a window of 4: %+v", got)
	}
	e.send(t, errStep("4"))
	e.settle(t, 1)

	ok := chat("s-score", "1", 1)
	ok.Scores = map[string]float64{"eval.confidence": 0.9}
	low := chat("s-score", "2", 1)
	low.Scores = map[string]float64{"eval.confidence": 0.4}
	e.send(t, ok, low)
	e.settle(t, 2)
	got, _ := e.store.SessionBreaches(context.Background(), "bot", "s-score")
	if len(got) != 1 || got[0].Value != 0.4 || got[0].StepN != 2 {
		t.Fatalf("score breach = %+v", got)
	}

	for i := 0; i < 3; i++ {
		e.send(t, tool("s-rate", fmt.Sprint(i), "search.web", fmt.Sprint(i)))
	}
	e.set(e.at().Add(61 * time.Second)) // the first three leave the minute
	for i := 3; i < 6; i++ {
		e.send(t, tool("s-rate", fmt.Sprint(i), "search.web", fmt.Sprint(i)))
	}
	time.Sleep(20 * time.Millisecond)
	if got, _ := e.store.SessionBreaches(context.Background(), "bot", "s-rate"); len(got) != 0 {
		t.Fatalf("3 calls a minute breached max 3: %+v", got)
	}
	e.send(t, tool("s-rate", "6", "search.web", "6"))
	e.settle(t, 3)

	st, err := e.g.Status(context.Background(), "bot")
	if err != nil {
		t.Fatal(err)
	}
	if st[1].NoData || st[1].Worst != "0.4" || st[1].Breaches != 1 {
		t.Errorf("score status = %+v", st[1])
	}
	if text := guard.Text("bot", st); !strings.Contains(text, "error_rate: 75% (session s-err) vs max 50%") {
		t.Errorf("status text:\n%s", text)
	}
}

func TestFutureTimestampsAreJudgedByArrival(t *testing.T) {
	e := newEnv(t, ownership.SLA{Metric: ownership.SLAStepsPerSession, Max: num(2), Window: time.Minute})
	s := chat("s-1", "1", 1)
	s.Start = e.at().Add(24 * time.Hour)
	e.send(t, s)
	e.set(e.at().Add(2 * time.Minute))
	e.send(t, chat("s-1", "2", 1), chat("s-1", "3", 1))
	time.Sleep(30 * time.Millisecond)
	if got, _ := e.store.FindBreaches(context.Background(), "", time.Time{}, 0); len(got) != 0 {
		t.Fatalf("a step stamped tomorrow stayed in the window: %+v", got)
	}
}

func TestRestartContinuesTheWindowAndDoesNotBreachTwice(t *testing.T) {
	e := newEnv(t,
		ownership.SLA{Metric: ownership.SLAStepsPerSession, Max: num(5)},
		ownership.SLA{Metric: ownership.SLALoop, Count: 3, OnBreach: ownership.OnBreachHaltSession})
	e.send(t, tool("s-1", "1", "search.web", "x"), tool("s-1", "2", "search.web", "x"))
	e.start(t) // restart
	e.send(t, tool("s-1", "3", "search.web", "x"))
	e.settle(t, 1)
	got, _ := e.store.SessionBreaches(context.Background(), "bot", "s-1")
	if len(got) != 1 || got[0].SLA != "loop" || got[0].StepN != 3 {
		t.Fatalf("loop across a restart = %+v", got)
	}
	e.start(t)
	e.send(t, tool("s-1", "4", "search.web", "x"), chat("s-1", "5", 1), chat("s-1", "6", 1))
	e.settle(t, 2)
	got, _ = e.store.SessionBreaches(context.Background(), "bot", "s-1")
	if len(got) != 2 || got[1].SLA != "steps_per_session" || got[1].StepN != 6 {
		t.Fatalf("breaches across restarts = %+v", got)
	}
	if len(e.halts.got) != 1 {
		t.Errorf("halts = %+v, want the loop's one", e.halts.got)
	}
}

func TestWaitingBreachIsActedOnAtStart(t *testing.T) {
	e := newEnv(t, ownership.SLA{Metric: ownership.SLAStepsPerSession, Max: num(1), OnBreach: ownership.OnBreachHaltSession})
	e.cancel()
	e.g.Wait()
	// Recorded, then the process died: no lease holds it.
	b := guard.Breach{Agent: "bot", SLA: "steps_per_session", Metric: ownership.SLAStepsPerSession, Session: "s-9",
		Value: 2, Threshold: 1, Step: "x", StepN: 2, Action: ownership.OnBreachHaltSession, At: e.at().Add(-time.Minute)}
	if _, err := e.store.InsertBreach(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	// Claimed by another replica, which holds the lease: not this one's.
	young := guard.Breach{Agent: "bot", SLA: "steps_per_session", Metric: ownership.SLAStepsPerSession, Session: "s-10",
		Value: 2, Threshold: 1, Step: "y", StepN: 2, Action: ownership.OnBreachHaltSession, At: e.at()}
	if _, err := e.store.InsertBreach(context.Background(), &young); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.store.ClaimBreaches(context.Background(), e.at(), time.Hour, 10); len(got) != 2 {
		t.Fatalf("claimed %+v", got)
	}
	_ = e.store.DeferBreach(context.Background(), b.ID, 0, time.Time{})
	e.start(t)
	e.settle(t, 1)
	e.halts.mu.Lock()
	defer e.halts.mu.Unlock()
	old, _ := e.store.SessionBreaches(context.Background(), "bot", "s-9")
	if old[0].Outcome != ownership.OnBreachHaltSession || len(e.halts.got) != 1 || e.halts.got[0].Sessions[0] != "s-9" {
		t.Fatalf("waiting breach after start: %+v, halts %+v", old, e.halts.got)
	}
	if now, _ := e.store.SessionBreaches(context.Background(), "bot", "s-10"); now[0].Outcome != "" {
		t.Errorf("a breach another replica holds was acted on: %+v", now[0])
	}
}

// cutClaimStore leases as SQLite does when shutdown cancels a claim after
// its statement ran: the leases are committed, and the claim still answers
// with the context's error. stop is the shutdown, begun during the claim.
type cutClaimStore struct {
	*incidentstest.GuardStore
	stop func()
}

func (s cutClaimStore) ClaimBreaches(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]guard.Breach, error) {
	got, err := s.GuardStore.ClaimBreaches(context.WithoutCancel(ctx), now, lease, limit)
	s.stop()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return got, err
}

// A breach claimed as shutdown begins is acted on before the guard stops,
// not left under a lease nobody holds (a halt a lease late after a restart).
func TestShutdownDuringClaimStillActs(t *testing.T) {
	e := newEnv(t, ownership.SLA{Metric: ownership.SLAStepsPerSession, Max: num(1), OnBreach: ownership.OnBreachHaltSession})
	e.cancel()
	e.g.Wait()
	b := guard.Breach{Agent: "bot", SLA: "steps_per_session", Metric: ownership.SLAStepsPerSession, Session: "s-9",
		Value: 2, Threshold: 1, Step: "x", StepN: 2, Action: ownership.OnBreachHaltSession, At: e.at()}
	if _, err := e.store.InsertBreach(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	g, err := guard.New(guard.Config{Registry: e.reg, Store: cutClaimStore{GuardStore: e.store, stop: stop}, Steps: e.steps,
		Alerts: e.alerts, Halt: e.halts.halt, Now: e.at, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	g.Start(ctx)
	g.Wait()
	got, _ := e.store.SessionBreaches(context.Background(), "bot", "s-9")
	e.halts.mu.Lock()
	defer e.halts.mu.Unlock()
	if got[0].Outcome != ownership.OnBreachHaltSession || len(e.halts.got) != 1 {
		t.Fatalf("breach claimed as the guard stopped: %+v, halts %+v; want it halted, not left leased", got[0], e.halts.got)
	}
}

func TestDryRunHaltsNothing(t *testing.T) {
	e := newEnv(t, ownership.SLA{Metric: ownership.SLAStepsPerSession, Max: num(1), OnBreach: ownership.OnBreachHaltAgent,
		DryRun: true})
	e.send(t, chat("s-1", "1", 1), chat("s-1", "2", 1))
	got := e.settle(t, 1)
	if got[0].Outcome != "dry_run" || len(e.halts.got) != 1 || !e.halts.got[0].DryRun {
		t.Fatalf("dry run: %+v, halts %+v", got, e.halts.got)
	}
	if !strings.Contains(e.alerts.got[0].Summary, "dry_run") {
		t.Errorf("summary = %q", e.alerts.got[0].Summary)
	}
}

func TestBreachStormIsOneIngestPerBatchAndEachSessionOnce(t *testing.T) {
	e := newEnv(t, ownership.SLA{Metric: ownership.SLAStepsPerSession, Max: num(1), OnBreach: ownership.OnBreachHaltSession})
	for i := 0; i < 1000; i++ {
		id := fmt.Sprint("s-", i)
		e.send(t, chat(id, "1", 1), chat(id, "2", 1), chat(id, "3", 1))
	}
	got := e.settle(t, 1000)
	if len(got) != 1000 || len(e.halts.got) != 1000 {
		t.Fatalf("breaches %d, halts %d, want 1000 each", len(got), len(e.halts.got))
	}
	seen := map[string]bool{}
	for _, h := range e.halts.got {
		if seen[h.Sessions[0]] {
			t.Fatalf("session %s halted twice", h.Sessions[0])
		}
		seen[h.Sessions[0]] = true
	}
}

func TestBreachesBeyondTheBudgetWaitAndGoInCrossingOrder(t *testing.T) {
	e := newEnv(t, ownership.SLA{Metric: ownership.SLAStepsPerSession, Max: num(1), OnBreach: ownership.OnBreachHaltSession})
	e.reg.Current().Agents["bot"].Escalation.Overflow = ownership.OverflowQueue
	var (
		mu     sync.Mutex
		halted []string
		notes  []guard.WaitingNote
	)
	budget := 1
	e.cancel()
	e.g.Wait()
	g, err := guard.New(guard.Config{Registry: e.reg, Store: e.store, Steps: e.steps, Alerts: e.alerts,
		Now: e.at, Poll: 5 * time.Millisecond,
		Waiting: func(ctx context.Context, n guard.WaitingNote) error {
			mu.Lock()
			defer mu.Unlock()
			notes = append(notes, n)
			return nil
		},
		Halt: func(ctx context.Context, req guard.HaltRequest) (guard.HaltResult, error) {
			mu.Lock()
			defer mu.Unlock()
			if budget == 0 {
				return guard.HaltResult{Outcome: guard.OutcomeQueued, RetryAt: e.at().Add(time.Minute)}, nil
			}
			budget--
			halted = append(halted, req.Sessions[0])
			return guard.HaltResult{Outcome: req.Action}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); g.Wait() }()
	e.g = g
	g.Start(ctx)
	for _, id := range []string{"s-1", "s-2", "s-3"} {
		e.send(t, chat(id, "1", 1), chat(id, "2", 1))
	}
	e.settle(t, 1)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(notes) > 0 })
	q, err := g.Queue(context.Background(), "bot")
	if err != nil || len(q.Sessions) != 2 || q.Sessions[0] != "s-2" || q.Sessions[1] != "s-3" {
		t.Fatalf("queue = %+v, %v; want s-2 then s-3 waiting", q, err)
	}
	mu.Lock()
	// The page counts the sessions waiting when it is sent: s-3 may not
	// have queued yet (the channel post and status keep counting).
	if notes[0].Waiting < 1 || notes[0].Waiting > 2 || notes[0].Overflow != ownership.OverflowQueue {
		t.Errorf("note = %+v, want 1 or 2 sessions waiting under the queue policy", notes[0])
	}
	// A session crossing later waits behind them, even though it is new.
	mu.Unlock()
	e.send(t, chat("s-4", "1", 1), chat("s-4", "2", 1))
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	budget = 3
	e.set(e.at().Add(time.Minute + time.Second))
	mu.Unlock()
	got := e.settle(t, 4)
	for _, b := range got {
		if b.Outcome != ownership.OnBreachHaltSession {
			t.Errorf("breach %+v, want halted", b)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(halted, " ") != "s-1 s-2 s-3 s-4" {
		t.Errorf("halted %v, want crossing order s-1 s-2 s-3 s-4", halted)
	}
}

func TestOverflowHaltsTheAgent(t *testing.T) {
	e := newEnv(t, ownership.SLA{Metric: ownership.SLAStepsPerSession, Max: num(1), OnBreach: ownership.OnBreachHaltSession})
	var (
		mu  sync.Mutex
		got []guard.HaltRequest
	)
	e.cancel()
	e.g.Wait()
	g, err := guard.New(guard.Config{Registry: e.reg, Store: e.store, Steps: e.steps, Alerts: e.alerts,
		Now: e.at, Poll: 5 * time.Millisecond,
		Halt: func(ctx context.Context, req guard.HaltRequest) (guard.HaltResult, error) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, req)
			switch {
			case req.Overflow:
				return guard.HaltResult{Outcome: ownership.OnBreachHaltAgent}, nil
			case len(got) > 1:
				return guard.HaltResult{Outcome: guard.OutcomeQueued, RetryAt: e.at().Add(time.Minute)}, nil
			}
			return guard.HaltResult{Outcome: req.Action}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); g.Wait() }()
	e.g = g
	g.Start(ctx)
	e.send(t, chat("s-1", "1", 1), chat("s-1", "2", 1))
	e.settle(t, 1)
	e.send(t, chat("s-2", "1", 1), chat("s-2", "2", 1))
	list := e.settle(t, 2)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || !got[2].Overflow || got[2].Action != ownership.OnBreachHaltAgent {
		t.Fatalf("halts = %+v, want the overflow policy's agent halt third", got)
	}
	if list[0].Outcome != ownership.OnBreachHaltAgent {
		t.Errorf("breach %+v, want halt_agent", list[0])
	}
}

func TestSessionLeftMarkedButNotJudgedIsJudgedFromTheStore(t *testing.T) {
	e := newEnv(t, ownership.SLA{Metric: ownership.SLAStepsPerSession, Max: num(2), OnBreach: ownership.OnBreachHaltSession})
	steps := []sessions.Step{chat("s-1", "1", 1), chat("s-1", "2", 1), chat("s-1", "3", 1)}
	for i := range steps {
		steps[i].Agent, steps[i].Start = "bot", e.at()
	}
	// Stored and marked, then the process died before judging.
	if _, err := e.svc.Record(context.Background(), steps); err != nil {
		t.Fatal(err)
	}
	e.store.Mark("bot", "s-1", 3, e.at())
	e.cancel()
	e.g.Wait()
	e.set(e.at().Add(time.Minute))
	g, err := guard.New(guard.Config{Registry: e.reg, Store: e.store, Steps: e.steps, Alerts: e.alerts,
		Halt: e.halts.halt, Now: e.at, Rejudge: 20 * time.Millisecond, Poll: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); g.Wait() }()
	e.g = g
	g.Start(ctx)
	got := e.settle(t, 1)
	if len(got) != 1 || got[0].StepN != 3 || got[0].Outcome != ownership.OnBreachHaltSession {
		t.Fatalf("breaches = %+v, want steps_per_session at step 3, halted", got)
	}
	if left, _ := e.store.Unjudged(context.Background(), e.at().Add(time.Hour), 10); len(left) != 0 {
		t.Errorf("still marked: %+v", left)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHaltJoinsTheOpenIncidentWithoutWaitingForItsAlert(t *testing.T) {
	for _, tc := range []struct {
		name string
		open bool
		want int64
	}{{"Open", true, 7}, {"Resolved", false, 8}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, ownership.SLA{Metric: ownership.SLAStepsPerSession, Max: num(1), OnBreach: ownership.OnBreachHaltSession})
			e.cancel()
			e.g.Wait()
			g, err := guard.New(guard.Config{Registry: e.reg, Store: e.store, Steps: e.steps, Alerts: e.alerts,
				Halt: e.halts.halt, Incidents: openIncidents{7: tc.open}, Now: e.at})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			e.g = g
			g.Start(ctx)
			e.send(t, chat("s-1", "1", 1), chat("s-1", "2", 1))
			e.settle(t, 1)
			e.alerts.mu.Lock()
			e.alerts.incident = 8 // 7 is resolved: the next alert opens 8
			e.alerts.mu.Unlock()
			e.send(t, chat("s-2", "1", 1), chat("s-2", "2", 1))
			got := e.settle(t, 2)
			e.halts.mu.Lock()
			defer e.halts.mu.Unlock()
			if len(e.halts.got) != 2 || e.halts.got[0].IncidentID != 7 || e.halts.got[1].IncidentID != tc.want {
				t.Errorf("halts = %+v, want the second in incident %d", e.halts.got, tc.want)
			}
			if got[0].IncidentID != tc.want {
				t.Errorf("breach %+v, want incident %d", got[0], tc.want)
			}
		})
	}
}

func TestCrossingStepWithinOneBatch(t *testing.T) {
	e := newEnv(t, ownership.SLA{Metric: ownership.SLALoop, Count: 5},
		ownership.SLA{Metric: ownership.SLAToolCallsPerMinute, Max: num(2)})
	var batch []sessions.Step
	for i := 0; i < 7; i++ {
		batch = append(batch, tool("s-1", fmt.Sprint(i), "search.web", "same"))
	}
	e.send(t, batch...)
	e.settle(t, 2)
	got, _ := e.store.SessionBreaches(context.Background(), "bot", "s-1")
	steps := map[string]int64{}
	for _, b := range got {
		steps[b.SLA] = b.StepN
	}
	if steps["loop"] != 5 || steps["tool_calls_per_minute"] != 3 {
		t.Errorf("crossing steps %v, want loop at 5 and tool_calls_per_minute at 3", steps)
	}
}

func TestStepsStoredButNeverJudgedAreJudgedOnFirstSight(t *testing.T) {
	e := newEnv(t, ownership.SLA{Metric: ownership.SLAToolScope, Allow: []string{"search.*"}})
	// Stored, then reins stopped before the guard saw them.
	steps := []sessions.Step{tool("s-1", "1", "search.web", "a"), tool("s-1", "2", "shell.exec", "b")}
	for i := range steps {
		steps[i].Agent, steps[i].Start = "bot", e.at()
	}
	if _, err := e.svc.Record(context.Background(), steps); err != nil {
		t.Fatal(err)
	}
	e.start(t)
	e.send(t, tool("s-1", "3", "search.web", "c"))
	got := e.settle(t, 1)
	if len(got) != 1 || got[0].Detail != "shell.exec" || got[0].StepN != 2 {
		t.Fatalf("breaches = %+v, want shell.exec at step 2", got)
	}
}

type failingAlerts struct{ alerts }

func (f *failingAlerts) Ingest(ctx context.Context, list []incidents.Alert) (incidents.IngestResult, error) {
	return incidents.IngestResult{}, fmt.Errorf("store down")
}

func TestBreachWhoseAlertFailedStaysPending(t *testing.T) {
	e := newEnv(t, ownership.SLA{Metric: ownership.SLAStepsPerSession, Max: num(1), OnBreach: ownership.OnBreachHaltSession})
	e.cancel()
	e.g.Wait()
	g, err := guard.New(guard.Config{Registry: e.reg, Store: e.store, Steps: e.steps, Alerts: &failingAlerts{},
		Halt: e.halts.halt, Now: e.at})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.g = g
	g.Start(ctx)
	e.send(t, chat("s-1", "1", 1), chat("s-1", "2", 1))
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.halts.mu.Lock()
		n := len(e.halts.got)
		e.halts.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the halt did not run while the alert failed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	g.Wait()
	if pending, _ := e.store.WaitingBreaches(context.Background(), "", 10); len(pending) != 1 {
		t.Fatalf("pending = %+v, want the breach whose alert failed", pending)
	}
	e.set(e.at().Add(time.Minute))
	e.start(t) // the next try raises it
	if got := e.settle(t, 1); len(got) != 1 || len(e.alerts.got) != 1 {
		t.Fatalf("after restart: breaches %+v, alerts %d", got, len(e.alerts.got))
	}
}
