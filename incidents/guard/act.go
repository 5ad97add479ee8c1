package guard

import (
	"context"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

// retryFailed is how long a breach whose halt failed waits before it is
// judged again: the failed halt re-paged the kill authority meanwhile.
const retryFailed = time.Minute

// retryAlert is how long a breach whose alert could not be raised waits.
const retryAlert = 5 * time.Second

// act raises the alerts of claimed breaches not yet alerted and does what
// each one's on_breach asks (decide), in crossing order. Every breach ends
// the batch acted on (an outcome) or waiting again (deferred): none is
// dropped.
//
// It says whether any breach was acted on: a batch all behind older
// breaches in another worker's hands made no progress.
func (g *Guard) act(ctx context.Context, batch []Breach) (progress bool) {
	for i := range batch {
		batch[i] = g.climb(ctx, batch[i]) // the ladder's rung (ladder.go)
	}
	var alerts []incidents.Alert
	var fresh []int
	for i, b := range batch {
		if b.IncidentID == 0 {
			alerts = append(alerts, g.alert(b))
			fresh = append(fresh, i)
		}
	}
	// The first halt of the batch need not wait for its alert when its
	// agent's incident is known and still open: it joins that incident, and
	// the alert joins it too. The rest wait, one halt at a time, so the
	// per-agent limit is counted in order.
	// Per agent, breaches that must wait for its budget or behind older ones.
	waiting, behind := g.queuedAhead(ctx, batch)
	early, earlyDone := -1, make(chan haltAnswer, 1)
	for i, b := range batch {
		if !g.halts(b) {
			continue
		}
		if behind[b.ID] || waiting[b.Agent] != nil {
			break
		}
		if id := b.IncidentID; id != 0 || g.openIncident(ctx, b.Agent) != 0 {
			if id == 0 {
				id = g.openIncident(ctx, b.Agent)
			}
			early = i
			go func() { earlyDone <- g.halt(ctx, b, id, false) }()
		}
		break
	}
	unraised := map[int64]bool{} // breaches whose alert failed: acted on, then retried for it
	if len(alerts) > 0 {
		res, err := g.cfg.Alerts.Ingest(ctx, alerts)
		if err != nil {
			g.cfg.Log.Error("guard: raise breach alerts; they are raised again shortly", "alerts", len(alerts), "err", err)
			for _, i := range fresh {
				unraised[batch[i].ID] = true
			}
		} else if len(res.Incidents) == 1 {
			// Ingest lists the incidents without repeats in alert order: one
			// incident for a batch of one agent's breaches.
			incident := res.Incidents[0]
			for _, i := range fresh {
				batch[i].IncidentID = incident
			}
			if agents := agentsOf(batch, fresh); len(agents) == 1 {
				g.mu.Lock()
				g.lastIncident[agents[0]] = incident
				g.mu.Unlock()
			}
		}
	}
	for i, b := range batch {
		var ans haltAnswer
		switch {
		case behind[b.ID]:
			// Handed back as it was: claimed again once the older ones
			// are acted on.
			g.deferBreach(ctx, b, b.IncidentID, b.Due)
			continue
		case i == early:
			ans = <-earlyDone
			if ans.incident != 0 {
				b.IncidentID = ans.incident // the halt joined that incident
			}
		case waiting[b.Agent] != nil && g.halts(b):
			// The agent's budget is spent: later breaches wait behind the
			// first that had to, in crossing order.
			ans = haltAnswer{outcome: OutcomeQueued, retryAt: waiting[b.Agent].RetryAt}
		default:
			ans = g.decide(ctx, b)
		}
		if ans.outcome == OutcomeQueued {
			n := waiting[b.Agent]
			if n == nil {
				n = &WaitingNote{Agent: b.Agent, IncidentID: b.IncidentID, RetryAt: ans.retryAt,
					Limit: maxAutoHalts(g.cfg.Registry.Current().Agent(b.Agent)), Overflow: overflow(g.cfg.Registry.Current().Agent(b.Agent))}
				waiting[b.Agent] = n
			}
			n.Waiting++
			if n.Overflow == ownership.OverflowHaltAgent {
				// The overflow policy: that many breaching sessions at once
				// is the incident; halting the agent stops them all.
				ans = g.halt(ctx, b, b.IncidentID, true)
			}
		}
		if unraised[b.ID] && ans.outcome != OutcomeQueued {
			// Contained, or tried: the breach waits only for its alert now
			// (asked again, the halt finds it already done).
			g.deferBreach(ctx, b, 0, g.cfg.Now().Add(retryAlert))
			progress = true
			continue
		}
		g.finish(ctx, b, ans)
		progress = true
	}
	for _, n := range waiting {
		g.noteWaiting(ctx, n)
	}
	return progress
}

// queuedAhead finds, per agent of batch, the older breaches waiting that
// this batch does not hold: a breach that crossed later waits behind them,
// so an agent's breaches are acted on in crossing order. waiting holds the
// agents whose oldest breach waits for the budget (until its due time);
// behind, the breaches of batch that come after one another worker holds
// (handed back as they are, claimed again once it is done).
func (g *Guard) queuedAhead(ctx context.Context, batch []Breach) (waiting map[string]*WaitingNote, behind map[int64]bool) {
	waiting, behind = map[string]*WaitingNote{}, map[int64]bool{}
	in := make(map[int64]bool, len(batch))
	for _, b := range batch {
		in[b.ID] = true
	}
	seen := map[string]bool{}
	now := g.cfg.Now()
	for _, b := range batch {
		if seen[b.Agent] || !g.halts(b) {
			continue
		}
		seen[b.Agent] = true
		list, err := g.cfg.Store.WaitingBreaches(ctx, b.Agent, 10_000)
		if err != nil || len(list) == 0 {
			continue
		}
		if !in[list[0].ID] && list[0].Due.After(now) {
			a := g.cfg.Registry.Current().Agent(b.Agent)
			waiting[b.Agent] = &WaitingNote{Agent: b.Agent, IncidentID: list[0].IncidentID, RetryAt: list[0].Due,
				Limit: maxAutoHalts(a), Overflow: overflow(a)}
			continue
		}
		// The batch may act on the agent's breaches up to the first one
		// it does not hold; the rest wait their turn.
		cut := false
		for _, w := range list {
			if !in[w.ID] {
				cut = true
			} else if cut && w.Action != ownership.OnBreachAlert {
				behind[w.ID] = true
			}
		}
	}
	return waiting, behind
}

// haltAnswer is the outcome of one breach's action.
type haltAnswer struct {
	outcome  string
	incident int64
	retryAt  time.Time
	failed   bool // the halt ran and was not verified: judged again later
}

// decide is the one place that says what a breach's on_breach does now:
// alert only, a dry run, or an automatic halt (which may have to wait for
// the agent's budget).
func (g *Guard) decide(ctx context.Context, b Breach) haltAnswer {
	switch {
	case g.halts(b):
		return g.halt(ctx, b, b.IncidentID, false)
	case b.DryRun && b.Action == ownership.OnBreachAlert:
		return haltAnswer{outcome: incidents.AutoHaltDryRun}
	}
	return haltAnswer{outcome: ownership.OnBreachAlert}
}

// finish records a breach's outcome, or hands it back to wait.
func (g *Guard) finish(ctx context.Context, b Breach, ans haltAnswer) {
	switch {
	case ans.failed:
		g.deferBreach(ctx, b, b.IncidentID, g.cfg.Now().Add(retryFailed))
		g.metrics.breaches.WithLabelValues(b.Agent, b.SLA, "failed").Inc()
		return
	case ans.outcome == OutcomeQueued:
		due := ans.retryAt
		if soon := g.cfg.Now().Add(time.Second); due.Before(soon) {
			due = soon // never a busy loop on a budget that frees now
		}
		g.deferBreach(ctx, b, b.IncidentID, due)
		return
	}
	g.metrics.breaches.WithLabelValues(b.Agent, b.SLA, metricAction(ans.outcome)).Inc()
	if err := g.cfg.Store.SetBreachOutcome(ctx, b.ID, b.IncidentID, clip(ans.outcome, 500)); err != nil {
		g.cfg.Log.Error("guard: record breach outcome", "breach", b.ID, "err", err)
	}
}

func (g *Guard) deferBreach(ctx context.Context, b Breach, incident int64, due time.Time) {
	if err := g.cfg.Store.DeferBreach(ctx, b.ID, incident, due); err != nil {
		g.cfg.Log.Error("guard: hand a breach back to wait; its lease runs out instead", "breach", b.ID, "err", err)
	}
}

// noteWaiting tells the agent's incident how many of its sessions wait for
// the automatic-halt budget, and why (once per incident: Notifier).
func (g *Guard) noteWaiting(ctx context.Context, n *WaitingNote) {
	if g.cfg.Waiting == nil {
		return
	}
	if n.Overflow == ownership.OverflowQueue {
		list, err := g.cfg.Store.WaitingBreaches(ctx, n.Agent, 10_000)
		if err != nil {
			g.cfg.Log.Warn("guard: count waiting breaches", "agent", n.Agent, "err", err)
		}
		n.Waiting = max(n.Waiting, countSessions(list))
	}
	if err := g.cfg.Waiting(ctx, *n); err != nil {
		g.cfg.Log.Error("guard: announce waiting breaches", "agent", n.Agent, "err", err)
	}
}

// halts says whether b's on_breach asks for a halt.
func (g *Guard) halts(b Breach) bool {
	return b.Action != ownership.OnBreachAlert && g.cfg.Halt != nil
}

// halt runs b's automatic halt in incident (0: the agent's open one);
// overflow halts the whole agent by its escalation.overflow policy.
func (g *Guard) halt(ctx context.Context, b Breach, incident int64, overflow bool) haltAnswer {
	req := HaltRequest{Agent: b.Agent, SLA: b.SLA, Action: b.Action, IncidentID: incident, Reason: Reason(b),
		DryRun: b.DryRun, Overflow: overflow}
	if a := g.cfg.Registry.Current().Agent(b.Agent); a != nil {
		if sla := a.SLA(b.SLA); sla != nil {
			req.Fallback, req.Allow, req.Rate = sla.Fallback, sla.RestrictTo, sla.Rate
		}
	}
	switch {
	case overflow:
		req.Action = ownership.OnBreachHaltAgent
		req.Reason += " (escalation.overflow: halt_agent, the agent's automatic-halt budget is spent)"
	case b.Action != ownership.OnBreachHaltAgent:
		// restrict and throttle, like halt_session, contain the breaching
		// session: the agent's other sessions go on.
		req.Sessions = []string{b.Session}
	}
	res, err := g.cfg.Halt(ctx, req)
	if err != nil {
		g.cfg.Log.Error("guard: automatic halt; judged again", "agent", b.Agent, "sla", b.SLA, "session", b.Session,
			"in", retryFailed, "err", err)
		return haltAnswer{failed: true, incident: incident}
	}
	return haltAnswer{outcome: res.Outcome, incident: incident, retryAt: res.RetryAt}
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

// metricAction bounds the action label to known values.
func metricAction(outcome string) string {
	switch outcome {
	case ownership.OnBreachAlert, ownership.OnBreachHaltSession, ownership.OnBreachHaltAgent,
		ownership.OnBreachRestrict, ownership.OnBreachThrottle, incidents.AutoHaltDryRun, incidents.AutoHaltRateLimited, incidents.AutoHaltAlreadyHalted, OutcomeLeft:
		return outcome
	}
	return "failed"
}

func maxAutoHalts(a *ownership.Agent) int {
	if a != nil && a.Escalation.MaxAutoHaltsPerMinute > 0 {
		return a.Escalation.MaxAutoHaltsPerMinute
	}
	return ownership.DefaultMaxAutoHaltsPerMinute
}

// overflow is the agent's escalation.overflow, halt_agent by default.
func overflow(a *ownership.Agent) string {
	if a != nil && a.Escalation.Overflow == ownership.OverflowQueue {
		return ownership.OverflowQueue
	}
	return ownership.OverflowHaltAgent
}

func agentsOf(batch []Breach, idx []int) []string {
	seen := map[string]bool{}
	var out []string
	for _, i := range idx {
		if a := batch[i].Agent; !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

func countSessions(list []Breach) int {
	seen := map[string]bool{}
	for _, b := range list {
		if b.Action != ownership.OnBreachAlert {
			seen[b.Session] = true
		}
	}
	return len(seen)
}
