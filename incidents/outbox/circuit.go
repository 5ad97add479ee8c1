package outbox

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// A destination's circuit, per replica. Per-item exponential backoff is
// right for an item that fails on its own, and wrong for an outage: every
// waiting item backs off on its own clock, and when the destination is back
// the last of them wait minutes more. So a failure that is the
// destination's (an UnavailableError) opens the circuit of every lane
// delivering there: the items keep their place and their attempts, one probe
// at a time goes out every ProbeInterval (or after the destination's
// Retry-After when it gave one), and the first answer (Answered) closes the
// circuit and wakes every worker, so the whole backlog is due at once and
// drains in queue order.
//
// A rate limit alone (a 429 with Retry-After while the circuit is closed)
// is the limit of one method or channel, not an outage: only that item
// waits, for exactly its Retry-After and with no attempt counted, and since
// a chat item holds back the later items of its incident (its channel),
// that channel waits while the others go on. Rate limits on throttledCalls
// calls in a row, with no answer between, mean Slack throttles everything:
// the circuit opens.
//
// Each replica keeps its own circuit: with N replicas, N probes per
// interval, which is modest; a replica whose probe is answered drains the
// shared outbox for all of them and clears the outage recorded in the store
// (Store.Outages, which /readyz?verbose=1 and `reins doctor` report). The
// others see it cleared when their next probe is due, and close too.
type circuit struct {
	destination string

	mu        sync.Mutex
	open      bool
	since     time.Time // the first failure while closed
	nextProbe time.Time
	probing   bool // a probe is out: no other pass may claim
	throttled int  // rate limits in a row while closed
}

// throttledCalls is how many rate limits in a row, with no answer between,
// open the circuit.
const throttledCalls = 3

// Answered tells delivery that the destination answered a call made for
// the item being delivered with ctx (any reply but a 5xx or a 429): the
// proof that closes an open circuit. A handler that returns nil without
// reaching the destination (a step skipped, a message with nowhere to go
// yet) proves nothing, so clients call this, not handlers. Outside a
// delivery it does nothing.
func Answered(ctx context.Context) {
	if m, ok := ctx.Value(answerKey{}).(*answerMark); ok {
		m.seen.Store(true)
	}
}

type answerKey struct{}

type answerMark struct{ seen atomic.Bool }

// DefaultProbeInterval is how often a replica probes a destination that is
// failing and gave no Retry-After.
const DefaultProbeInterval = 3 * time.Second

// maxProbeWait caps a Retry-After, so a destination asking for an hour is
// still probed now and then.
const maxProbeWait = 5 * time.Minute

// admit says how many items a pass over a lane delivering to this
// destination may claim now: a batch while closed; one, as the probe, when
// open and the probe is due and no other is out; none otherwise. A pass
// given a probe must call settle or release.
func (c *circuit) admit(now time.Time) (limit int, probe bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.open:
		return claimBatch, false
	case c.probing || now.Before(c.nextProbe):
		return 0, false
	}
	c.probing = true
	return 1, true
}

// release ends a probe that found nothing to deliver in its lane, or whose
// item never reached the destination: another may probe at once.
func (c *circuit) release() {
	c.mu.Lock()
	c.probing = false
	c.mu.Unlock()
}

// isOpen says whether the lane must hold its items back.
func (c *circuit) isOpen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

// rateLimited records a rate limit while closed: it says whether it is one
// item's (the item waits its Retry-After), or whether too many came in a
// row and the circuit must open.
func (c *circuit) rateLimited() (itemOnly bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open {
		return false
	}
	c.throttled++
	return c.throttled < throttledCalls
}

// failed records a failure of the destination at now: the circuit opens (or
// stays open) and the next probe goes out after wait. It says whether this
// failure opened it.
func (c *circuit) failed(now time.Time, wait time.Duration) (opened bool, since time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.throttled = 0
	opened = !c.open
	if opened {
		c.open, c.since = true, now
	}
	c.probing = false
	c.nextProbe = now.Add(wait)
	return opened, c.since
}

// answered records that the destination answered (delivered, or refused the
// item itself): it says whether this closed the circuit, and since when it
// had been open.
func (c *circuit) answered() (closed bool, since time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.probing, c.throttled = false, 0
	if !c.open {
		return false, time.Time{}
	}
	c.open = false
	return true, c.since
}

// probeWait is how long to wait before the next probe after err: the
// destination's Retry-After when it gave one (capped), else interval.
func probeWait(interval time.Duration, err *UnavailableError) time.Duration {
	if err.After > 0 {
		return min(err.After, maxProbeWait)
	}
	return interval
}

// destinationDown handles a delivery that failed because its destination
// did: the item goes back in its place with no attempt counted, the circuit
// opens, and the outage is recorded for doctor and /readyz. A rate limit
// that is not yet an outage only makes the item wait its Retry-After.
func (w *Worker) destinationDown(ctx context.Context, c *circuit, it *Item, err *UnavailableError, now time.Time) error {
	text := errorText(err)
	// Counted as a retry (it will be tried again), not as an attempt.
	w.m.retries.WithLabelValues(it.Lane, it.Kind).Inc()
	if err.After > 0 && c.rateLimited() {
		w.cfg.Log.Info("rate limited: the item waits its Retry-After", "destination", c.destination,
			"key", it.Key, "retry_after", err.After)
		return w.cfg.Store.DeferOutbox(ctx, it.ID, now.Add(min(err.After, maxProbeWait)), text)
	}
	wait := probeWait(w.cfg.ProbeInterval, err)
	opened, since := c.failed(now, wait)
	if opened {
		w.cfg.Log.Warn("delivery destination unreachable: holding its items, probing at a steady rate",
			"destination", c.destination, "probe_every", wait, "key", it.Key, "err", err)
		w.m.outageOpen.WithLabelValues(c.destination).Set(1)
	}
	if serr := w.cfg.Store.SaveOutage(ctx, Outage{Destination: c.destination, Since: since, FailedAt: now,
		NextProbeAt: now.Add(wait), LastError: text}); serr != nil {
		// Only the report suffers: delivery goes on.
		w.cfg.Log.Warn("record delivery outage", "destination", c.destination, "err", serr)
	}
	return w.cfg.Store.DeferOutbox(ctx, it.ID, time.Time{}, text)
}

// peerAnswered says whether another replica has seen the destination answer
// since this one's circuit opened: it cleared the recorded outage. Without
// it a replica with nothing left to probe (another drained the outbox)
// would say "unreachable" until its next item.
func (w *Worker) peerAnswered(ctx context.Context, c *circuit) bool {
	outages, err := w.cfg.Store.Outages(ctx)
	if err != nil {
		return false
	}
	for _, o := range outages {
		if o.Destination == c.destination {
			return false
		}
	}
	return true
}

// destinationUp handles an answer from the destination: when that closes
// the circuit, every worker wakes, since every item held back is due.
func (w *Worker) destinationUp(ctx context.Context, c *circuit, now time.Time) {
	closed, since := c.answered()
	if !closed {
		return
	}
	w.cfg.Log.Info("delivery destination answers again: delivering what waited",
		"destination", c.destination, "unreachable_for", now.Sub(since).Round(time.Second))
	w.m.outageOpen.WithLabelValues(c.destination).Set(0)
	if err := w.cfg.Store.ClearOutage(ctx, c.destination); err != nil {
		w.cfg.Log.Warn("clear delivery outage", "destination", c.destination, "err", err)
	}
	w.Kick()
}

// OutageReport is a recorded outage with the deliveries waiting for it.
type OutageReport struct {
	Outage
	Waiting int // pending items of the destination's lanes
	// Live says a replica is still probing: its next probe is at most
	// staleOutage past. A row no replica updates was left by one that
	// stopped while the destination failed.
	Live bool
}

// staleOutage is how long past its next probe an outage row is still live.
const staleOutage = time.Minute

// OutageReader reads what Reports needs.
type OutageReader interface {
	Outages(ctx context.Context) ([]Outage, error)
	OutboxBacklog(ctx context.Context) ([]LaneBacklog, error)
}

// Reports returns every recorded outage with the number of items waiting in
// the lanes that deliver to its destination (destinations: lane ->
// destination, as in Config.Destinations).
func Reports(ctx context.Context, s OutageReader, destinations map[string]string, now time.Time) ([]OutageReport, error) {
	outages, err := s.Outages(ctx)
	if err != nil || len(outages) == 0 {
		return nil, err
	}
	lanes, err := s.OutboxBacklog(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]OutageReport, len(outages))
	for i, o := range outages {
		out[i] = OutageReport{Outage: o, Live: !now.After(o.NextProbeAt.Add(staleOutage))}
		for _, b := range lanes {
			if destinations[b.Lane] == o.Destination {
				out[i].Waiting += b.Pending
			}
		}
	}
	return out, nil
}
