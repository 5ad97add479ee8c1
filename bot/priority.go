package bot

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reins-oss/reins/incidents"
)

// Acks before answers. Each slash command's ack is a verified signature and
// an empty 200, which Slack must have within 3 s or the user sees an error;
// its answer (a status, a confirmation) comes later on the response_url,
// which stays good for 30 minutes. Under a burst of commands the work after
// the acks (queries, store writes, posts) costs several times the acks
// themselves, and on a small host it took the CPU the next acks needed
// (issue 25). So a command's work is queued, not started, by its ack: one
// goroutine per replica (releaseLater) lets the queue go, a chunk at a time
// while the acks stay quiet, once no ack has begun for two spans of
// ackQuiet, or at the latest ackYield after the oldest queued command's
// ack; the work then waits once more, if a new burst began, before it
// starts on its worker. Alone, a command's work starts a few milliseconds
// after its ack; in a burst, the answers start when the burst ends, and the
// last one comes about when it would have anyway, since the same work is
// done on the same cores. A burst's ack pays for an append to the queue,
// not for a goroutine and its timer. Interactions (a confirm click, a
// checklist answer) do not wait: the halt a click confirms is the
// product's fastest path.
const (
	// ackQuiet is a span without a new ack; two are taken as the end of
	// a burst (one alone is often only the host pausing the process,
	// clients and server alike).
	ackQuiet = 2 * time.Millisecond
	// ackYield bounds how long a command's work waits for acks: a
	// command sent during a long burst is still answered.
	ackYield = time.Second
	// ackOversleep is how late a wake-up from a span of ackQuiet may be
	// and still count as a span watched (see waitBurst). Go's timers wake
	// well within it on an idle host.
	ackOversleep = time.Millisecond
)

// ackClock tracks the acks this replica is serving.
type ackClock struct {
	start    time.Time    // monotonic origin of last
	begun    atomic.Int64 // acks begun so far
	inFlight atomic.Int64 // acks being served
	last     atomic.Int64 // when the last ack ended, in ns since start
	// sleep is time.Sleep; tests pause the "process" with it.
	sleep func(time.Duration)
}

func newAckClock() *ackClock { return &ackClock{start: time.Now(), sleep: time.Sleep} }

// serving marks an ack begun; call served when it is written.
func (a *ackClock) serving() {
	a.begun.Add(1)
	a.inFlight.Add(1)
}

// served marks an ack written.
func (a *ackClock) served() {
	a.last.Store(int64(time.Since(a.start)))
	a.inFlight.Add(-1)
}

// quietAt says whether no ack is being served at now and none ended within
// ackQuiet before it.
func (a *ackClock) quietAt(now time.Time) bool {
	return a.inFlight.Load() == 0 && time.Duration(int64(now.Sub(a.start))-a.last.Load()) >= ackQuiet
}

// yield returns at once if acks are quiet for ackQuiet, and otherwise
// waits as releaseLater does, until ackYield after queued (when the work was
// handed off) at the latest. Only the jobs on a worker call it, so a few
// goroutines poll the clock, not a burst's thousands.
func (a *ackClock) yield(queued time.Time) {
	if a.quietAt(time.Now()) {
		return
	}
	a.waitBurst(queued.Add(ackYield))
}

// waitBurst returns once no ack has begun for two spans of ackQuiet and
// none is being served, or at deadline. A span this goroutine overslept
// (by ackOversleep or more) is not counted either way: the host or the
// runtime paused the process, its clients' requests with it, so no ack
// beginning then says nothing of the burst. On a busy 2-core host such
// pauses came often enough that two in a row released a burst's work in
// its middle (issue 25: hundreds of kills' marks and confirmations taking
// the cores from the acks still arriving).
func (a *ackClock) waitBurst(deadline time.Time) {
	for calm := 0; calm < 2; {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		switch a.watch(min(ackQuiet, left)) {
		case spanBusy:
			calm = 0
		case spanQuiet:
			calm++
		}
	}
}

// spanSaw is what a span watched by ackClock.watch says of the acks.
type spanSaw int

const (
	spanQuiet  spanSaw = iota // no ack begun or being served
	spanBusy                  // an ack began, or was being served
	spanPaused                // no ack began, but the watch overslept: it says nothing
)

// watch sleeps for d and says what the acks did meanwhile.
func (a *ackClock) watch(d time.Duration) spanSaw {
	begun, idle, slept := a.begun.Load(), a.inFlight.Load() == 0, time.Now()
	a.sleep(d)
	switch {
	case !idle || a.inFlight.Load() != 0 || a.begun.Load() != begun:
		return spanBusy
	case time.Since(slept) >= d+ackOversleep:
		return spanPaused
	}
	return spanQuiet
}

// laterJob is a command's work, queued by its ack.
type laterJob struct {
	queued time.Time
	sem    chan struct{}
	what   string
	gate   func(ctx context.Context) bool
	fn     func(ctx context.Context)
}

// laterQueue holds the work of commands acknowledged during a burst.
type laterQueue struct {
	mu      sync.Mutex
	jobs    []laterJob
	running bool // a releaseLater goroutine is on the queue
}

// afterAcks queues a command's work until the acks are quiet (see above):
// spawnAfter's, started by releaseLater.
func (h *Handler) afterAcks(sem chan struct{}, what string, gate func(ctx context.Context) bool, fn func(ctx context.Context)) {
	h.wg.Add(1) // done by the job's goroutine, so Wait covers queued work
	q := &h.later
	q.mu.Lock()
	q.jobs = append(q.jobs, laterJob{queued: time.Now(), sem: sem, what: what, gate: gate, fn: fn})
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		go h.releaseLater()
	}
}

// releaseLater starts the queued work each time the acks go quiet, until
// the queue is empty.
func (h *Handler) releaseLater() {
	q := &h.later
	for {
		q.mu.Lock()
		if len(q.jobs) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		oldest := q.jobs[0].queued
		q.mu.Unlock()
		h.acks.waitBurst(oldest.Add(ackYield))
		h.startWhileQuiet()
	}
}

// releaseChunk is how much queued work startWhileQuiet starts at a time:
// far more than the workers get through in a span of ackQuiet, so a burst
// really over is not kept waiting.
const releaseChunk = 64

// startWhileQuiet starts the queued work a chunk at a time, watching for a
// span of ackQuiet after each chunk whether acks began again; if so it
// returns, and the rest waits for the burst's end once more. A burst's end
// is a guess (two spans without a new ack), and a wrong guess had started
// a whole burst's work, hundreds of commands' marks and writes, in the
// middle of it (issue 25); now it starts a chunk. Work whose oldest command
// was acknowledged ackYield ago is all started at once, as waitBurst gives
// up on the burst.
func (h *Handler) startWhileQuiet() {
	q := &h.later
	for {
		q.mu.Lock()
		n := len(q.jobs)
		if n > releaseChunk && time.Since(q.jobs[0].queued) < ackYield {
			n = releaseChunk
		}
		jobs, rest := q.jobs[:n:n], len(q.jobs)-n
		if q.jobs = q.jobs[n:]; rest == 0 {
			q.jobs = nil
		}
		q.mu.Unlock()
		for _, j := range jobs {
			go h.runJob(j.sem, j.what, j.gate, j.fn)
		}
		if rest == 0 {
			return
		}
		if h.acks.watch(ackQuiet) == spanBusy {
			return
		}
	}
}

// statusReads lets the `/agent status` commands of a burst share their
// reads. Each status is two statements over every halt and open incident;
// a burst of them, released together once the acks stop, read the same
// rows thousands of times over. A command may take the result of a read of
// the same agent (or of all) that began after the command reached this
// replica, under way or finished, and so saw every change committed before
// it was asked: the answer is as fresh as a read of its own, only not begun
// by it.
type statusReads struct {
	mu     sync.Mutex
	latest map[string]*statusRead // the last read begun, by agent argument ("" for all)
}

// statusRead is one Status call that later askers may take.
type statusRead struct {
	began time.Time
	done  chan struct{}
	list  []incidents.AgentStatus
	err   error
}

// maxStatusReads bounds statusReads.latest: the agent argument is whatever
// a user typed.
const maxStatusReads = 64

// sharedStatus is svc.Status(ctx, agent) for a command asked at asked
// (zero: now), shared with other commands as statusReads says.
func (h *Handler) sharedStatus(ctx context.Context, agent string, asked time.Time) ([]incidents.AgentStatus, error) {
	if asked.IsZero() {
		asked = time.Now()
	}
	r := &h.statuses
	r.mu.Lock()
	if c := r.latest[agent]; c != nil && !c.began.Before(asked) {
		r.mu.Unlock()
		select {
		case <-c.done:
			return c.list, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &statusRead{began: time.Now(), done: make(chan struct{})}
	if r.latest == nil || len(r.latest) >= maxStatusReads {
		// Forgetting reads only costs reads: a command that finds none
		// begins its own.
		r.latest = map[string]*statusRead{}
	}
	r.latest[agent] = c
	r.mu.Unlock()
	defer close(c.done)
	c.err = errors.New("status read stopped") // what others get should Status panic
	c.list, c.err = h.svc.Status(ctx, agent)
	return c.list, c.err
}
