package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	claimBatch   = 20
	pollInterval = 500 * time.Millisecond
	backoffBase  = 2 * time.Second
	backoffCap   = 5 * time.Minute
	maxErrorText = 500
	// claimWait bounds a claim, which shutdown does not cancel: a store that
	// does not answer still lets the worker stop.
	claimWait = 5 * time.Second
)

// Handler performs one item. It returns nil when done, a *RetryAfterError
// or plain error to try again later, or a *PermanentError to give up now. It
// must be safe to run twice: a worker may crash between the side effect and
// recording it.
type Handler func(ctx context.Context, it *Item) error

// Clock tells the time; tests inject their own.
type Clock interface{ Now() time.Time }

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now().UTC() }

// Config holds a Worker's collaborators and settings. Zero settings get their
// defaults.
type Config struct {
	Store    Store
	Clock    Clock         // default: the wall clock, in UTC
	Log      *slog.Logger  // default: discarded
	Attempts int           // attempts before an item is buried; default 8
	Lease    time.Duration // how long a claimed item is leased; default 30s
	// Registerer receives the delivery counters, the latency histogram and
	// the backlog collector; nil registers nothing. A second Worker on the
	// same Registerer shares the first one's counters, and its backlog
	// collector takes over (the store of the Worker created last is read).
	Registerer prometheus.Registerer
	// Bury gives up on an item for good, given the error text to keep. Nil
	// buries it with Store.BuryOutbox alone; incidents passes one that also
	// tells the timeline and the governance channel in the same transaction.
	Bury func(ctx context.Context, it *Item, lastErr string) error
	// Destinations names the destination each lane delivers to (lane ->
	// "slack"): a lane named here gets that destination's circuit (see
	// circuit.go), shared with the other lanes naming it. A lane not named
	// (pages) keeps per-item backoff and is never held back by another.
	Destinations map[string]string
	// ProbeInterval is how often a failing destination is probed when it
	// gave no Retry-After; default DefaultProbeInterval.
	ProbeInterval time.Duration
}

// Worker delivers the items of a store through the handlers registered for
// their kinds.
type Worker struct {
	cfg      Config
	handlers map[string]Handler
	wake     waker
	m        *metrics
	circuits map[string]*circuit // by lane; lanes of one destination share one
}

// New returns a Worker with no handlers; register them with Handle before
// Run or DeliverDue.
func New(cfg Config) *Worker {
	if cfg.Clock == nil {
		cfg.Clock = wallClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Attempts == 0 {
		cfg.Attempts = 8
	}
	if cfg.Lease == 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Bury == nil {
		cfg.Bury = func(ctx context.Context, it *Item, lastErr string) error {
			if err := cfg.Store.BuryOutbox(ctx, it.ID, cfg.Clock.Now(), lastErr); err != nil {
				return fmt.Errorf("bury outbox item %d (%s): %w", it.ID, it.Key, err)
			}
			return nil
		}
	}
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	w := &Worker{cfg: cfg, handlers: map[string]Handler{}, m: newMetrics(cfg.Registerer, cfg.Store), circuits: map[string]*circuit{}}
	byDest := map[string]*circuit{}
	for lane, dest := range cfg.Destinations {
		c, ok := byDest[dest]
		if !ok {
			c = &circuit{destination: dest}
			byDest[dest] = c
			w.m.outageOpen.WithLabelValues(dest).Set(0)
		}
		w.circuits[lane] = c
	}
	return w
}

// Handle makes h the handler of kind. It is not safe to call while workers run.
func (w *Worker) Handle(kind string, h Handler) { w.handlers[kind] = h }

// DeliverDue makes one pass over a lane: it claims the items that are due,
// delivers each, and records the outcome (done, retry with backoff, or buried
// after Config.Attempts or a permanent failure). It returns how many items it
// finished, delivered or given up on; 0 means the lane is idle.
//
// A lane whose destination's circuit is open claims nothing, or one item as
// the probe when one is due (see circuit.go).
func (w *Worker) DeliverDue(ctx context.Context, lane string) (int, error) {
	c := w.circuits[lane]
	limit, probe := claimBatch, false
	if c != nil {
		if limit, probe = c.admit(w.cfg.Clock.Now()); limit == 0 {
			return 0, nil
		}
		if probe && w.peerAnswered(ctx, c) {
			w.destinationUp(ctx, c, w.cfg.Clock.Now())
			limit, probe = claimBatch, false
		}
	}
	// The claim is not cut short by shutdown: on SQLite an UPDATE … RETURNING
	// whose context ends after its first step still commits its leases, yet
	// returns the context's error, so this pass could neither deliver nor
	// hand back items nobody holds, and every later item of their incidents
	// (the next checklist item after a restart) waited out the 30 s lease.
	// Run to its end, the claim's items are handed back below when shutdown
	// has begun.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimWait)
	items, err := w.cfg.Store.ClaimOutbox(cctx, lane, w.cfg.Clock.Now(), w.cfg.Lease, limit)
	cancel()
	if err != nil {
		if probe {
			c.release()
		}
		return 0, fmt.Errorf("claim %s outbox: %w", lane, err)
	}
	if probe && len(items) == 0 {
		c.release()
	}
	finished := 0
	for i, it := range items {
		if ctx.Err() != nil {
			// Shutting down: hand the rest back now rather than let their
			// leases hold up every later item of their incidents.
			w.release(items[i:])
			break
		}
		if c != nil && !probe && c.isOpen() {
			// The destination failed under another item meanwhile: these
			// wait, in their place, for the probe.
			w.release(items[i:])
			break
		}
		done, err := w.deliverOne(ctx, it, c, probe)
		if err != nil {
			return finished, err
		}
		if done {
			finished++
		}
	}
	return finished, nil
}

func (w *Worker) deliverOne(ctx context.Context, it *Item, c *circuit, probe bool) (bool, error) {
	h, ok := w.handlers[it.Kind]
	answered := &answerMark{} // set by the destination's client (Answered)
	var err error
	if !ok {
		err = Permanent(fmt.Errorf("no worker for outbox kind %q", it.Kind))
	} else {
		// An item under way is finished even when shutdown begins (a lease
		// left behind would hold up its incident's later items), and well
		// inside the lease so no other worker starts the same item.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.Lease*2/3)
		dctx = context.WithValue(dctx, answerKey{}, answered)
		err = h(dctx, it)
		cancel()
	}
	// The outcome is recorded even when shutdown has begun.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	now := w.cfg.Clock.Now()
	if c != nil {
		var un *UnavailableError
		if errors.As(err, &un) {
			if probe {
				w.m.probes.WithLabelValues(c.destination, "failed").Inc()
			}
			if derr := w.destinationDown(ctx, c, it, un, now); derr != nil {
				return false, fmt.Errorf("hold outbox item %d (%s) for its destination: %w", it.ID, it.Key, derr)
			}
			return false, nil
		}
		switch {
		case answered.seen.Load():
			// Delivered, or refused for the item's own reasons: either way
			// the destination answered.
			if probe {
				w.m.probes.WithLabelValues(c.destination, "answered").Inc()
			}
			w.destinationUp(ctx, c, now)
		case probe:
			c.release() // the item never reached the destination: no verdict
		}
	}
	if err == nil {
		if err := w.cfg.Store.CompleteOutbox(ctx, it.ID, now); err != nil {
			return false, fmt.Errorf("complete outbox item %d (%s): %w", it.ID, it.Key, err)
		}
		w.m.delivered.WithLabelValues(it.Lane, it.Kind).Inc()
		w.m.latency.WithLabelValues(it.Lane).Observe(now.Sub(it.CreatedAt).Seconds())
		return true, nil
	}
	var perm *PermanentError
	if errors.As(err, &perm) || it.Attempts+1 >= w.cfg.Attempts {
		w.cfg.Log.Error("outbox delivery given up", "key", it.Key, "attempts", it.Attempts+1, "err", err)
		if err := w.cfg.Bury(ctx, it, errorText(err)); err != nil {
			return true, err
		}
		w.m.failed.WithLabelValues(it.Lane, it.Kind).Inc()
		return true, nil
	}
	next := now.Add(backoff(it.Attempts+1, err))
	w.cfg.Log.Warn("outbox delivery failed, will retry", "key", it.Key, "attempt", it.Attempts+1, "next", next, "err", err)
	if err := w.cfg.Store.RetryOutbox(ctx, it.ID, next, errorText(err)); err != nil {
		return false, fmt.Errorf("reschedule outbox item %d (%s): %w", it.ID, it.Key, err)
	}
	w.m.retries.WithLabelValues(it.Lane, it.Kind).Inc()
	return false, nil
}

// release hands claimed, undelivered items back, in their place and with no
// attempt counted, for the next worker here or on another replica.
func (w *Worker) release(items []*Item) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, it := range items {
		if err := w.cfg.Store.DeferOutbox(ctx, it.ID, time.Time{}, it.LastError); err != nil {
			w.cfg.Log.Warn("release outbox item", "key", it.Key, "err", err)
		}
	}
}

// backoff is exponential with full jitter on its upper half, never less than
// what the other side asked for with Retry-After.
func backoff(attempt int, err error) time.Duration {
	d := backoffCap
	if attempt <= 20 {
		d = min(backoffBase<<(attempt-1), backoffCap)
	}
	d = d/2 + rand.N(d/2+1)
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.After > d {
		d = ra.After
	}
	var un *UnavailableError
	if errors.As(err, &un) && un.After > d {
		d = un.After
	}
	return d
}

// errorText is err's text as kept on an item: trimmed, at most 500 characters.
func errorText(err error) string {
	s := strings.TrimSpace(err.Error())
	if r := []rune(s); len(r) > maxErrorText {
		return string(r[:maxErrorText-1]) + "…"
	}
	return s
}

// Run runs workers for a lane until ctx is done. Each worker polls every half
// second, and wakes at once when Kick is called after a commit.
func (w *Worker) Run(ctx context.Context, lane string, workers int) {
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() { w.loop(ctx, lane) })
	}
	wg.Wait()
}

func (w *Worker) loop(ctx context.Context, lane string) {
	timer := time.NewTimer(pollInterval)
	defer timer.Stop()
	for ctx.Err() == nil {
		wake := w.wake.wait() // taken before the pass, so a kick during it is not lost
		n, err := w.DeliverDue(ctx, lane)
		if err != nil && ctx.Err() == nil {
			w.cfg.Log.Error("outbox delivery pass failed", "lane", lane, "err", err)
		} else if n > 0 {
			continue // finishing an item may have made the incident's next one due
		}
		timer.Reset(pollInterval)
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-timer.C:
		}
	}
}

// Kick wakes every running worker, so that an item committed now is
// delivered within milliseconds rather than at the next poll.
func (w *Worker) Kick() { w.wake.kick() }

// waker is a broadcast: kick closes the channel every waiter holds.
type waker struct {
	mu sync.Mutex
	ch chan struct{}
}

func (w *waker) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

func (w *waker) kick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}
