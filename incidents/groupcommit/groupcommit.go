// Package groupcommit lets concurrent callers share one write. Callers that
// arrive while a batch is being written queue, and the oldest of them writes
// the next batch for all: a storm pays BEGIN, COMMIT and the fsync once per
// batch instead of once per caller, while a lone caller writes at once and
// waits for nobody. Alert intake and Slack's single-use marks both use it.
package groupcommit

import (
	"hash/fnv"
	"sync"
)

// Lane is one queue of callers whose writes are batched; batches of one lane
// run one after another. The zero value is ready to use.
type Lane[T any] struct {
	mu    sync.Mutex
	busy  bool         // a leader is writing a batch
	queue []*waiter[T] // callers waiting for the next batch, oldest first
}

type waiter[T any] struct {
	v    T
	done chan struct{} // closed once the batch holding v was written
	lead chan struct{} // closed when this caller is to write the next batch
}

// Do queues v and returns once the batch holding v has been written. The
// caller that finds no batch running leads: it calls write with up to max
// queued values, oldest (its own) first, then hands the lane to the oldest
// waiter. write records each value's outcome in the value itself. Should
// write panic, failed records the failure on every value of the batch so
// that no follower waits forever, and the panic goes on.
func (l *Lane[T]) Do(v T, max int, write func(batch []T), failed func(batch []T, panicked any)) {
	w := &waiter[T]{v: v, done: make(chan struct{}), lead: make(chan struct{})}
	if !l.join(w) {
		select {
		case <-w.done:
			return
		case <-w.lead:
		}
	}
	batch := l.take(max)
	values := make([]T, len(batch))
	for i, b := range batch {
		values[i] = b.v
	}
	defer func() {
		if p := recover(); p != nil {
			failed(values, p)
			l.release(batch)
			panic(p)
		}
	}()
	write(values)
	l.release(batch)
}

// join queues w and says whether w leads, that is, no batch is running.
func (l *Lane[T]) join(w *waiter[T]) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queue = append(l.queue, w)
	if l.busy {
		return false
	}
	l.busy = true
	return true
}

// take removes the next batch, at most max callers, from the queue.
func (l *Lane[T]) take(max int) []*waiter[T] {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := min(len(l.queue), max)
	batch := make([]*waiter[T], n)
	copy(batch, l.queue)
	l.queue = append(l.queue[:0], l.queue[n:]...)
	return batch
}

// release hands the lane to the oldest waiter (or ends the busy spell when
// nobody waits), then answers the batch's callers.
func (l *Lane[T]) release(batch []*waiter[T]) {
	l.mu.Lock()
	if len(l.queue) == 0 {
		l.busy = false
	} else {
		close(l.queue[0].lead)
	}
	l.mu.Unlock()
	for _, w := range batch {
		close(w.done)
	}
}

// Waiting says how many callers wait for the next batch.
func (l *Lane[T]) Waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

// Lanes is two lanes, a key always going to the same one: batches of two
// lanes run at once (on PostgreSQL the second overlaps its round trips and
// commit with the first's; alert intake measured 4 lanes slower than 2),
// while two batches of one process never hold the same key. The zero value
// is ready to use.
type Lanes[T any] struct {
	lanes [2]Lane[T]
}

// Of returns the lane of key.
func (l *Lanes[T]) Of(key string) *Lane[T] {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &l.lanes[h.Sum32()%uint32(len(l.lanes))]
}

// Waiting says how many callers of all lanes wait for a next batch.
func (l *Lanes[T]) Waiting() int {
	n := 0
	for i := range l.lanes {
		n += l.lanes[i].Waiting()
	}
	return n
}
