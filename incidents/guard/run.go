package guard

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/reins-oss/reins/incidents/sessions"
)

// Guard evaluates steps against SLAs.
type Guard struct {
	cfg     Config
	metrics *metrics

	mu       sync.Mutex
	sessions map[sessions.Key]*state
	// lastSweep is when idle sessions were last dropped.
	lastSweep time.Time
	// lastIncident is, per agent, the incident its last breach alerts went to.
	lastIncident map[string]int64

	wake chan struct{}
	// fresh carries breaches this process recorded and claimed to its
	// workers without a round trip to the store.
	fresh chan Breach
	wg    sync.WaitGroup

	// judged holds sessions judged without a breach whose marks are not
	// cleared yet: clearing them is batched (flush), off the intake's path.
	// A crash before the flush only makes them judged again, finding
	// nothing new.
	judgedMu sync.Mutex
	judged   map[[2]string]int64
}

// New returns a Guard; Start starts its workers.
func New(cfg Config) (*Guard, error) {
	if cfg.Registry == nil || cfg.Store == nil || cfg.Steps == nil || cfg.Alerts == nil {
		return nil, errors.New("guard: registry, store, step reader and alerter are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Rejudge <= 0 {
		cfg.Rejudge = DefaultRejudge
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 10_000
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Guard{cfg: cfg, metrics: m, sessions: map[sessions.Key]*state{}, lastIncident: map[string]int64{},
		wake: make(chan struct{}, 1), fresh: make(chan Breach, freshQueue), judged: map[[2]string]int64{}}, nil
}

// Defaults of Config.
const (
	// DefaultLease is how long a worker holds the breaches it claimed: a
	// halt's calls and read-back fit well inside it; after it (a crash)
	// another worker, here or on another replica, takes them.
	DefaultLease = 20 * time.Second
	// DefaultRejudge is how long a session may stay marked to be judged:
	// an intake request judges its sessions within its own few seconds, so
	// older marks are a crash's.
	DefaultRejudge = 10 * time.Second
	// claimWait bounds a claim of waiting breaches, which shutdown does
	// not cancel: a store that does not answer still lets a worker stop.
	claimWait = 5 * time.Second
)

// Start starts the workers: they act on waiting breaches (those a crash
// left too, once their lease ran out) and judge sessions a crash left
// unjudged. They stop when ctx ends; Wait waits for them.
func (g *Guard) Start(ctx context.Context) {
	for range g.cfg.Workers {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.work(ctx)
		}()
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		t := time.NewTicker(g.cfg.Rejudge / 2)
		defer t.Stop()
		for {
			g.rejudge(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				g.flush(context.WithoutCancel(ctx))
				return
			case <-t.C:
				g.flush(ctx)
			}
		}
	}()
}

// Wait waits for the workers to stop (their context ended).
func (g *Guard) Wait() { g.wg.Wait() }

// Kick wakes a worker: breaches were recorded.
func (g *Guard) Kick() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// Observe evaluates the steps the intake just stored and records what it
// found before returning: totals are the sessions' totals after the write,
// as sessions.Record returns them (only sessions that grew appear, so a
// retried export evaluates nothing). A failure to record is logged and left
// to the workers, which judge the still-marked sessions again from the store.
func (g *Guard) Observe(ctx context.Context, steps []sessions.Step, totals []sessions.Totals) {
	if len(totals) == 0 {
		return
	}
	reg := g.cfg.Registry.Current()
	bySession := make(map[sessions.Key][]sessions.Step, len(totals))
	if len(steps) > 0 && sameSession(steps) {
		bySession[steps[0].Key()] = steps // the usual export: no copies
	} else {
		for _, st := range steps {
			bySession[st.Key()] = append(bySession[st.Key()], st)
		}
	}
	now := g.cfg.Now()
	g.sweep(now)
	var breaches []Breach
	var judged []Judged
	for _, t := range totals {
		a := reg.Agent(t.Agent)
		if a == nil {
			continue
		}
		batch := bySession[t.Key()]
		if len(a.SLAs) == 0 {
			// Nothing to judge: only the metrics, without state. A batch
			// mixing retried and new spans of one session counts the
			// retried ones again; a batch of only retried spans counts none
			// (its session did not grow, so it is not in totals).
			var tokens int64
			var cost float64
			for _, st := range batch {
				tokens += st.Tokens()
				cost += st.Cost
			}
			g.metrics.tokens.WithLabelValues(a.Name).Add(float64(tokens))
			g.metrics.cost.WithLabelValues(a.Name).Add(cost)
			continue
		}
		found, err := g.evaluate(ctx, a, g.state(a, t.Session), t.Session, batch, t, now)
		if err != nil {
			g.cfg.Log.Warn("guard: read session state from the store; evaluating from the steps that arrived",
				"agent", t.Agent, "session", t.Session, "err", err)
		}
		breaches = append(breaches, found...)
		judged = append(judged, Judged{Agent: t.Agent, Session: t.Session, Steps: t.Steps})
	}
	g.record(context.WithoutCancel(ctx), breaches, judged)
}

// freshQueue bounds the breaches handed to the workers in memory; past it a
// breach is handed back to the store, where a worker claims it.
const freshQueue = 4096

// flushEvery is how often the marks of sessions judged without a breach are
// cleared, in one statement: well inside Rejudge, so no replica judges them
// again.
const flushEvery = time.Second

// record stores a judgement's breaches and clears its sessions' marks, in
// one transaction, before the intake answers. A judgement without a breach
// has nothing to make durable: its marks are cleared by the next flush. On
// failure the sessions' states are dropped: the mark stays, and the rejudge
// rebuilds them from the store, breaches included.
func (g *Guard) record(ctx context.Context, breaches []Breach, judged []Judged) {
	if len(breaches) == 0 {
		g.judgedMu.Lock()
		for _, j := range judged {
			k := [2]string{j.Agent, j.Session}
			g.judged[k] = max(g.judged[k], j.Steps)
		}
		g.judgedMu.Unlock()
		return
	}
	claim := g.cfg.Now().Add(g.cfg.Lease)
	for i := range breaches {
		breaches[i].ClaimedUntil = claim
	}
	if err := g.cfg.Store.RecordJudgement(ctx, breaches, judged); err != nil {
		g.cfg.Log.Error("guard: record judgement; the sessions are judged again from the store",
			"sessions", len(judged), "breaches", len(breaches), "err", err)
		g.mu.Lock()
		for _, j := range judged {
			delete(g.sessions, sessions.Key{Agent: j.Agent, ID: j.Session})
		}
		g.mu.Unlock()
		return
	}
	for _, b := range breaches {
		if b.ID == 0 {
			continue // breached before: not this judgement's
		}
		select {
		case g.fresh <- b:
		default:
			g.deferBreach(ctx, b, 0, time.Time{}) // the workers are behind: claimed from the store
			g.Kick()
		}
	}
}

// flush clears the marks of the sessions judged without a breach since the
// last flush.
func (g *Guard) flush(ctx context.Context) {
	g.judgedMu.Lock()
	if len(g.judged) == 0 {
		g.judgedMu.Unlock()
		return
	}
	batch := make([]Judged, 0, len(g.judged))
	for k, steps := range g.judged {
		batch = append(batch, Judged{Agent: k[0], Session: k[1], Steps: steps})
	}
	g.judged = map[[2]string]int64{}
	g.judgedMu.Unlock()
	if err := g.cfg.Store.RecordJudgement(ctx, nil, batch); err != nil && ctx.Err() == nil {
		// The marks stay: those sessions are judged again, finding nothing new.
		g.cfg.Log.Warn("guard: clear the marks of judged sessions", "sessions", len(batch), "err", err)
	}
}

// rejudge judges the sessions a crash left marked, from their stored steps.
func (g *Guard) rejudge(ctx context.Context) {
	list, err := g.cfg.Store.Unjudged(ctx, g.cfg.Now().Add(-g.cfg.Rejudge), 500)
	if err != nil {
		if ctx.Err() == nil {
			g.cfg.Log.Warn("guard: find sessions not judged", "err", err)
		}
		return
	}
	for _, j := range list {
		if ctx.Err() != nil {
			return
		}
		rec, err := g.cfg.Steps.FindSession(ctx, j.Agent, j.Session)
		if err != nil && !errors.Is(err, sessions.ErrNotFound) {
			g.cfg.Log.Warn("guard: read a session to judge it again", "session", j.Session, "err", err)
			continue
		}
		t := rec.Totals
		if errors.Is(err, sessions.ErrNotFound) || t.Agent != j.Agent {
			// Gone (retention) or not this agent's: nothing to judge.
			_ = g.cfg.Store.RecordJudgement(ctx, nil, []Judged{j})
			continue
		}
		// Judged from scratch: whatever this process held of it may
		// already count steps whose judgement was lost.
		g.mu.Lock()
		delete(g.sessions, sessions.Key{Agent: j.Agent, ID: j.Session})
		g.mu.Unlock()
		g.cfg.Log.Info("guard: judging a session whose judgement was not recorded", "agent", j.Agent, "session", j.Session)
		g.Observe(ctx, nil, []sessions.Totals{t})
	}
}

func sameSession(steps []sessions.Step) bool {
	for i := range steps {
		if steps[i].Session != steps[0].Session || steps[i].Agent != steps[0].Agent {
			return false
		}
	}
	return true
}

// work claims due waiting breaches and acts on them, batch by batch: one
// Ingest call per batch keeps the breaches of one agent in one incident
// with one page.
func (g *Guard) work(ctx context.Context) {
	t := time.NewTicker(g.cfg.Poll)
	defer t.Stop()
	for {
		g.actFresh(ctx)
		for ctx.Err() == nil {
			// A claim is not cut short by shutdown: on SQLite an UPDATE …
			// RETURNING whose context ends after its first step still
			// commits its leases, yet returns the context's error, which
			// left breaches nobody acted on until their lease ran out (a
			// halt 20 s late after a restart). Run to its end, its batch is
			// acted on below, as act does not stop for shutdown either.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimWait)
			batch, err := g.cfg.Store.ClaimBreaches(cctx, g.cfg.Now(), g.cfg.Lease, g.cfg.Batch)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					g.cfg.Log.Warn("guard: claim waiting breaches", "err", err)
				}
				break
			}
			if len(batch) == 0 {
				break
			}
			if !g.act(context.WithoutCancel(ctx), batch) {
				break // behind another worker's: woken when it is done
			}
			g.Kick()
		}
		select {
		case <-ctx.Done():
			return
		case b := <-g.fresh:
			g.actOn(ctx, b)
		case <-g.wake:
		case <-t.C:
		}
	}
}

// actFresh acts on the breaches handed over in memory, batch by batch.
func (g *Guard) actFresh(ctx context.Context) {
	for {
		select {
		case b := <-g.fresh:
			g.actOn(ctx, b)
		default:
			return
		}
	}
}

// actOn acts on b and the fresh breaches behind it, up to a batch.
func (g *Guard) actOn(ctx context.Context, b Breach) {
	batch := []Breach{b}
	for len(batch) < g.cfg.Batch {
		select {
		case b := <-g.fresh:
			batch = append(batch, b)
			continue
		default:
		}
		break
	}
	if g.act(context.WithoutCancel(ctx), batch) {
		g.Kick()
	}
}
