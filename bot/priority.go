package bot

import (
	"sync"
	"sync/atomic"
	"time"
)

// Acks before answers. Each slash command's ack is a verified signature and
// an empty 200, which Slack must have within 3 s or the user sees an error;
// its answer (a status, a confirmation) comes later on the response_url,
// which stays good for 30 minutes. Under a burst of commands the work after
// the acks (queries, store writes, posts) costs several times the acks
// themselves, and on a small host it took the CPU the next acks needed
// (issue 25). So a command's work waits while acks are still arriving (first
// to take its single-use mark, then again, if a new burst began, to start
// on its worker): until no ack has been served for ackQuiet, or at most
// until ackYield after its own ack. Alone, a command's work starts ackQuiet after its ack; in a
// burst, the answers start when the burst ends, and the last one comes
// about when it would have anyway, since the same work is done on the same
// cores. Interactions (a confirm click, a checklist answer) do not wait:
// the halt a click confirms is the product's fastest path.
const (
	// ackQuiet is the gap between acks taken as the end of a burst.
	ackQuiet = 2 * time.Millisecond
	// ackYield bounds how long a command's work waits for acks: a
	// command sent during a long burst is still answered.
	ackYield = time.Second
)

// ackClock tracks the acks this replica is serving.
type ackClock struct {
	start    time.Time    // monotonic origin of last
	inFlight atomic.Int64 // acks being served
	last     atomic.Int64 // when the last ack ended, in ns since start

	mu sync.Mutex
	// quiet is closed when acks go quiet, by the one goroutine watching
	// for it while anyone waits (nil: nobody waits). Waiters sleep on it
	// rather than each polling the clock: a burst leaves thousands.
	quiet chan struct{}
}

func newAckClock() *ackClock { return &ackClock{start: time.Now()} }

// serving marks an ack begun; call the returned func when it is written.
func (a *ackClock) serving() func() {
	a.inFlight.Add(1)
	return func() {
		a.last.Store(int64(time.Since(a.start)))
		a.inFlight.Add(-1)
	}
}

// quietAt says whether acks are quiet at now, and if not, how long until
// they may be.
func (a *ackClock) quietAt(now time.Time) (bool, time.Duration) {
	if a.inFlight.Load() > 0 {
		return false, ackQuiet
	}
	left := ackQuiet - time.Duration(int64(now.Sub(a.start))-a.last.Load())
	return left <= 0, left
}

// yield waits until acks have been quiet for ackQuiet, or until ackYield
// after queued (when the work was handed off), whichever comes first.
func (a *ackClock) yield(queued time.Time) {
	deadline := queued.Add(ackYield)
	for {
		now := time.Now()
		if quiet, _ := a.quietAt(now); quiet || !now.Before(deadline) {
			return
		}
		t := time.NewTimer(deadline.Sub(now))
		select {
		case <-a.quietChan():
			t.Stop()
		case <-t.C:
			return
		}
	}
}

func (a *ackClock) quietChan() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.quiet == nil {
		a.quiet = make(chan struct{})
		go a.watch(a.quiet)
	}
	return a.quiet
}

// watch closes ch once acks are quiet.
func (a *ackClock) watch(ch chan struct{}) {
	for {
		quiet, wait := a.quietAt(time.Now())
		if quiet {
			break
		}
		time.Sleep(wait)
	}
	a.mu.Lock()
	a.quiet = nil
	a.mu.Unlock()
	close(ch)
}
