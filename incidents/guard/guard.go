// Package guard watches every step an agent reports against the agent's
// behavioural SLAs (docs/config.md, slas) and contains a breach: it raises an
// alert (source "reins", one per agent, SLA and session) and, per the SLA's
// on_breach, asks the incidents service to halt the session or the agent.
//
// Evaluation runs in the intake's request, in memory and per session; what a
// breach sets off (the store, the incident, the halt) runs on a bounded
// queue of workers so intake is not slowed by it. State survives restarts:
// breaches are stored (each happens once), and a session first seen after a
// restart has its window rebuilt from its stored steps.
package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/ownership"
)

// Source is the alert source of breaches.
const Source = "reins"

// Breach is one SLA crossed by one session.
type Breach struct {
	ID    int64  `json:"id"`
	Agent string `json:"agent"`
	SLA   string `json:"sla"` // the SLA's name
	// Repeat counts this session's breaches of the SLA, from 1: an SLA with
	// a ladder breaches again when the session goes on (ladder.go).
	Repeat     int       `json:"repeat,omitempty"`
	Metric     string    `json:"metric"` // its kind
	Session    string    `json:"session"`
	Value      float64   `json:"value"`
	Threshold  float64   `json:"threshold"`
	Detail     string    `json:"detail,omitempty"` // the tool out of scope, the looping tool
	Step       string    `json:"step"`             // span ID of the crossing step
	StepN      int64     `json:"step_n"`           // its position in the session, from 1
	Action     string    `json:"action"`           // on_breach
	DryRun     bool      `json:"dry_run,omitempty"`
	Outcome    string    `json:"outcome,omitempty"` // what was done; "" until acted on
	IncidentID int64     `json:"incident_id,omitempty"`
	At         time.Time `json:"at"`
}

// Store is what the guard needs from storage.
type Store interface {
	// InsertBreach stores b unless (agent, SLA, session) breached before; it
	// sets b.ID and says whether b is new.
	InsertBreach(ctx context.Context, b *Breach) (bool, error)
	// SetBreachOutcome records what was done about breach id.
	SetBreachOutcome(ctx context.Context, id, incident int64, outcome string) error
	// FindBreaches returns the breaches at or after since, of agent ("" for
	// all), most recent first, at most limit.
	FindBreaches(ctx context.Context, agent string, since time.Time, limit int) ([]Breach, error)
	// SessionBreaches returns the breaches of one session.
	SessionBreaches(ctx context.Context, agent, session string) ([]Breach, error)
	// PendingBreaches returns breaches stored but not acted on (a crash
	// between the two), oldest first.
	PendingBreaches(ctx context.Context, limit int) ([]Breach, error)
}

// StepReader reads stored sessions (sessions.Store): a session's steps to
// rebuild its state after a restart, an agent's recent sessions for status.
type StepReader interface {
	FindSession(ctx context.Context, agent, id string) (sessions.Record, error)
	FindSessions(ctx context.Context, agent string, since time.Time, limit int) ([]sessions.Totals, error)
}

// Alerter raises the alert of a breach (incidents.Service).
type Alerter interface {
	Ingest(ctx context.Context, alerts []incidents.Alert) (incidents.IngestResult, error)
}

// IncidentReader reads one incident (incidents.Service).
type IncidentReader interface {
	FindIncident(ctx context.Context, id int64) (*incidents.Incident, error)
}

// HaltRequest asks for the automatic halt on_breach calls for.
type HaltRequest struct {
	Agent      string
	SLA        string
	Action     string // ownership.OnBreachRestrict | OnBreachThrottle | OnBreachHaltSession | OnBreachHaltAgent
	Fallback   string
	Allow      []string // restrict: the SLA's restrict_to
	Rate       int      // throttle: the SLA's rate
	Sessions   []string
	IncidentID int64
	Reason     string
	DryRun     bool
}

// Halter runs an automatic halt and says what was done (incidents.Service
// AutoHalt: halt_session, halt_agent, alert, dry_run, rate_limited,
// already_halted).
type Halter func(ctx context.Context, req HaltRequest) (outcome string, err error)

// Config configures a Guard.
type Config struct {
	Registry *ownership.Holder
	Store    Store
	Steps    StepReader
	Alerts   Alerter
	Halt     Halter // nil: breaches alert only
	// Incidents, when set, reads an incident (incidents.Service): a halt
	// then joins the agent's open incident without waiting for its alert.
	Incidents IncidentReader
	// Page is the web page of agent's session (PublicURL/sessions/{id}?agent=), "" for none.
	Page func(agent, session string) string
	Now  func() time.Time
	Log  *slog.Logger
	// Registerer receives the guard's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Workers act on breaches; Queue bounds the breaches waiting for them.
	Workers int
	Queue   int
	// MaxSessions bounds the sessions held in memory; the least recently
	// active go first (a session seen again is rebuilt from the store).
	MaxSessions int
}

// Guard evaluates steps against SLAs.
type Guard struct {
	cfg     Config
	metrics *metrics

	mu       sync.Mutex
	sessions map[sessions.Key]*state
	// lastSweep is when idle sessions were last dropped.
	lastSweep time.Time

	// limitedUntil holds, per agent, until when automatic halts are known
	// to be over max_auto_halts_per_minute: breaches meanwhile are recorded
	// rate_limited without asking again, so a storm of breaches makes one
	// "not halted" note in the channel rather than one per session.
	limitedUntil map[string]time.Time
	// lastIncident is, per agent, the incident its last breach alerts went to.
	lastIncident map[string]int64

	queue   chan Breach
	wg      sync.WaitGroup
	stopped chan struct{}
	once    sync.Once
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
	if cfg.Queue <= 0 {
		cfg.Queue = 4096
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 10_000
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Guard{cfg: cfg, metrics: m, sessions: map[sessions.Key]*state{},
		limitedUntil: map[string]time.Time{}, lastIncident: map[string]int64{},
		queue: make(chan Breach, cfg.Queue), stopped: make(chan struct{})}, nil
}

// Start starts the workers and re-drives breaches a crash left unacted on.
// They stop when ctx ends; Wait waits for them.
func (g *Guard) Start(ctx context.Context) {
	for range g.cfg.Workers {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.work(ctx)
		}()
	}
	if !g.redrive(ctx) {
		return
	}
	// Breaches recorded just now may be another replica's, being acted on:
	// look again once they are old enough to be a crash's.
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		t := time.NewTimer(redriveAfter)
		defer t.Stop()
		select {
		case <-t.C:
			g.redrive(ctx)
		case <-ctx.Done():
		}
	}()
}

// redriveAfter is how old a breach not acted on must be for Start to act on
// it: younger, another replica may be acting on it right now.
const redriveAfter = 30 * time.Second

// redrive queues the breaches recorded at least redriveAfter ago and never
// acted on; false when ctx ended.
func (g *Guard) redrive(ctx context.Context) bool {
	pending, err := g.cfg.Store.PendingBreaches(ctx, 10_000)
	if err != nil {
		g.cfg.Log.Warn("guard: read breaches not acted on", "err", err)
	}
	cutoff := g.cfg.Now().Add(-redriveAfter)
	for _, b := range pending {
		if b.At.After(cutoff) {
			continue
		}
		select {
		case g.queue <- b:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// Wait waits for the workers to stop (their context ended).
func (g *Guard) Wait() { g.wg.Wait() }

// Observe evaluates the steps the intake just stored. totals are the
// sessions' totals after the write, as sessions.Record returns them: only
// sessions that grew appear, so a retried export evaluates nothing.
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
		s, pre, err := g.state(ctx, a, t.Session, batch, t)
		if err != nil {
			g.cfg.Log.Warn("guard: rebuild session state from the store; evaluating from the steps that arrived",
				"agent", t.Agent, "session", t.Session, "err", err)
		}
		breaches = append(breaches, g.evaluate(a, s, pre, batch, t, now)...)
	}
	for _, b := range breaches {
		g.enqueue(ctx, b)
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

// enqueue hands a breach to the workers; when they are all busy and the
// queue is full the breach is acted on in the caller: slower intake beats a
// lost breach.
func (g *Guard) enqueue(ctx context.Context, b Breach) {
	select {
	case g.queue <- b:
		return
	default:
	}
	g.cfg.Log.Warn("guard: breach queue full: acting in the intake request", "agent", b.Agent, "sla", b.SLA)
	g.act(context.WithoutCancel(ctx), []Breach{b})
}

func (g *Guard) work(ctx context.Context) {
	for {
		var batch []Breach
		select {
		case <-ctx.Done():
			return
		case b := <-g.queue:
			batch = append(batch, b)
		}
		// A storm is acted on in batches: one Ingest call per batch keeps
		// the breaches of one agent in one incident with one page.
	drain:
		for len(batch) < 256 {
			select {
			case b := <-g.queue:
				batch = append(batch, b)
			default:
				break drain
			}
		}
		g.act(context.WithoutCancel(ctx), batch)
	}
}

// act records breaches, raises their alerts and runs their halts. A breach
// already stored (seen before a restart, or by another replica) is skipped
// unless it is a pending one being re-driven.
func (g *Guard) act(ctx context.Context, batch []Breach) {
	var fresh []Breach
	for _, b := range batch {
		if b.ID == 0 {
			isNew, err := g.cfg.Store.InsertBreach(ctx, &b)
			if err != nil {
				g.cfg.Log.Error("guard: record breach", "agent", b.Agent, "sla", b.SLA, "session", b.Session, "err", err)
				continue
			}
			if !isNew {
				continue
			}
		}
		fresh = append(fresh, g.climb(ctx, b))
	}
	if len(fresh) == 0 {
		return
	}
	alerts := make([]incidents.Alert, len(fresh))
	for i, b := range fresh {
		alerts[i] = g.alert(b)
	}
	// The first halt of the batch need not wait for its alert when its
	// agent's incident is known and still open: it joins that incident, and
	// the alert joins it too. The rest wait, one halt at a time, so the
	// per-agent limit is counted in order.
	early, earlyDone := -1, make(chan haltResult, 1)
	for i, b := range fresh {
		if !g.halts(b) {
			continue
		}
		if id := g.openIncident(ctx, b.Agent); id != 0 {
			early = i
			go func() { earlyDone <- g.halt(ctx, b, id) }()
		}
		break
	}
	res, ingestErr := g.cfg.Alerts.Ingest(ctx, alerts)
	if ingestErr != nil {
		g.cfg.Log.Error("guard: raise breach alerts; they are raised again at the next start",
			"alerts", len(alerts), "err", ingestErr)
	}
	// Ingest lists the incidents without repeats in alert order: one
	// incident for a batch of one agent's breaches.
	var incident int64
	if len(res.Incidents) == 1 {
		incident = res.Incidents[0]
		agents := map[string]bool{}
		for _, b := range fresh {
			agents[b.Agent] = true
		}
		if len(agents) == 1 {
			g.mu.Lock()
			g.lastIncident[fresh[0].Agent] = incident
			g.mu.Unlock()
		}
	}
	for i, b := range fresh {
		b.IncidentID = incident
		outcome := ownership.OnBreachAlert
		switch {
		case i == early:
			r := <-earlyDone
			outcome, b.IncidentID = r.outcome, r.incident
		case g.halts(b):
			outcome = g.halt(ctx, b, incident).outcome
		case b.DryRun && b.Action == ownership.OnBreachAlert:
			outcome = incidents.AutoHaltDryRun
		case b.Action != ownership.OnBreachAlert && g.cfg.Halt != nil:
			outcome = incidents.AutoHaltRateLimited
		}
		g.metrics.breaches.WithLabelValues(b.Agent, b.SLA, metricAction(outcome)).Inc()
		if ingestErr != nil {
			continue // no outcome: the breach stays pending, its alert unraised
		}
		if err := g.cfg.Store.SetBreachOutcome(ctx, b.ID, b.IncidentID, clip(outcome, 500)); err != nil {
			g.cfg.Log.Error("guard: record breach outcome", "breach", b.ID, "err", err)
		}
	}
}

type haltResult struct {
	outcome  string
	incident int64
}

// halts says whether b's on_breach asks for a halt now: not for alert, not
// while the agent is known to be over its automatic-halt limit.
func (g *Guard) halts(b Breach) bool {
	return b.Action != ownership.OnBreachAlert && g.cfg.Halt != nil && (b.DryRun || !g.limited(b.Agent))
}

// halt runs b's automatic halt in incident (0: the agent's open one).
func (g *Guard) halt(ctx context.Context, b Breach, incident int64) haltResult {
	req := HaltRequest{Agent: b.Agent, SLA: b.SLA, Action: b.Action, IncidentID: incident, Reason: Reason(b),
		DryRun: b.DryRun}
	if a := g.cfg.Registry.Current().Agent(b.Agent); a != nil {
		if sla := a.SLA(b.SLA); sla != nil {
			req.Fallback, req.Allow, req.Rate = sla.Fallback, sla.RestrictTo, sla.Rate
		}
	}
	if b.Action != ownership.OnBreachHaltAgent {
		// restrict and throttle, like halt_session, contain the breaching
		// session: the agent's other sessions go on.
		req.Sessions = []string{b.Session}
	}
	out, err := g.cfg.Halt(ctx, req)
	if err != nil {
		g.cfg.Log.Error("guard: automatic halt", "agent", b.Agent, "sla", b.SLA, "session", b.Session, "err", err)
		out = "failed: " + err.Error()
	}
	if out == incidents.AutoHaltRateLimited {
		g.mu.Lock()
		g.limitedUntil[b.Agent] = g.cfg.Now().Add(RateLimitQuiet)
		g.mu.Unlock()
	}
	return haltResult{outcome: out, incident: incident}
}

// openIncident returns the agent's incident a breach alert last went to
// while it is still open, else 0.
func (g *Guard) openIncident(ctx context.Context, agent string) int64 {
	if g.cfg.Incidents == nil {
		return 0
	}
	g.mu.Lock()
	id := g.lastIncident[agent]
	g.mu.Unlock()
	if id == 0 {
		return 0
	}
	inc, err := g.cfg.Incidents.FindIncident(ctx, id)
	if err != nil || inc == nil || inc.Status != incidents.StatusOpen {
		return 0
	}
	return id
}

// RateLimitQuiet is how long, after an automatic halt was refused for the
// per-agent limit, the agent's further breaches are recorded rate_limited
// without asking again.
const RateLimitQuiet = 10 * time.Second

func (g *Guard) limited(agent string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cfg.Now().Before(g.limitedUntil[agent])
}

// metricAction bounds the action label to known values.
func metricAction(outcome string) string {
	switch outcome {
	case ownership.OnBreachAlert, ownership.OnBreachHaltSession, ownership.OnBreachHaltAgent,
		ownership.OnBreachRestrict, ownership.OnBreachThrottle, incidents.AutoHaltDryRun, incidents.AutoHaltRateLimited, incidents.AutoHaltAlreadyHalted:
		return outcome
	}
	return "failed"
}

// alert is the alert a breach raises.
func (g *Guard) alert(b Breach) incidents.Alert {
	labels := map[string]string{
		"agent": b.Agent, "sla": b.SLA, "session": b.Session, "metric": b.Metric,
		"value": formatValue(b.Metric, b.Value), "threshold": formatValue(b.Metric, b.Threshold),
		"step": fmt.Sprintf("%d", b.StepN), "span_id": b.Step,
	}
	if b.Detail != "" {
		labels["detail"] = b.Detail
	}
	sev := incidents.SeverityError
	if b.Action != ownership.OnBreachAlert {
		sev = incidents.SeverityCritical
	}
	summary := "Session " + b.Session + " of " + b.Agent + " breached SLA " + b.SLA + ": " + Reason(b) + "."
	switch {
	case b.DryRun:
		summary += " The SLA is dry_run: reins halts nothing for it."
	case b.Action == ownership.OnBreachHaltSession:
		summary += " reins halts the session automatically (on_breach: halt_session)."
	case b.Action == ownership.OnBreachHaltAgent:
		summary += " reins halts the agent automatically (on_breach: halt_agent)."
	case b.Action == ownership.OnBreachRestrict:
		summary += " reins restricts the session's tools automatically (on_breach: restrict)."
	case b.Action == ownership.OnBreachThrottle:
		summary += " reins throttles the session automatically (on_breach: throttle)."
	}
	// Details carry the observed value the postmortem's SLA table shows.
	details, _ := json.Marshal(map[string]any{"sla": b.SLA, "metric": b.Metric, "session": b.Session,
		"value": labels["value"], "threshold": labels["threshold"], "step": b.StepN, "span_id": b.Step})
	a := incidents.Alert{
		Details: details,
		Source:  Source, Fingerprint: "sla/" + b.Agent + "/" + b.SLA + "/" + b.Session, Agent: b.Agent,
		Status: incidents.AlertFiring, Title: clip("SLA "+b.SLA+" breached: "+Reason(b), 200), Summary: summary,
		Severity: sev, Sessions: []string{b.Session}, Labels: labels, StartsAt: b.At, ReceivedAt: b.At,
	}
	if g.cfg.Page != nil {
		if u := g.cfg.Page(b.Agent, b.Session); u != "" {
			a.Links = append(a.Links, incidents.Link{Text: "Session " + b.Session, URL: u})
		}
	}
	return a
}

func clip(s string, n int) string { return sessions.Truncate(s, n) }
