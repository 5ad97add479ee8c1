package groupcommit

import (
	"sync"
	"testing"
	"time"
)

type call struct {
	n       int
	batchOf int
}

// Callers that arrive while a batch is written share the next batches:
// every caller is answered once and no batch exceeds max.
func TestDoBatchesCallersQueuedBehindALeader(t *testing.T) {
	var (
		l       Lane[*call]
		mu      sync.Mutex
		batches int
		wg      sync.WaitGroup
		holding = make(chan struct{})
		release = make(chan struct{})
	)
	write := func(batch []*call) {
		if batch[0].n == 0 {
			close(holding)
			<-release // the first batch holds the lane while the rest queue
		}
		mu.Lock()
		batches++
		mu.Unlock()
		for _, b := range batch {
			b.batchOf = len(batch)
		}
	}
	calls := make([]*call, 201)
	for i := range calls {
		calls[i] = &call{n: i}
	}
	do := func(c *call) {
		defer wg.Done()
		l.Do(c, 8, write, func([]*call, any) {})
	}
	wg.Add(len(calls))
	go do(calls[0])
	<-holding
	for _, c := range calls[1:] {
		go do(c)
	}
	for l.Waiting() < len(calls)-1 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	for _, c := range calls[1:] {
		if c.batchOf != 8 {
			t.Fatalf("call %d was written in a batch of %d, want 8", c.n, c.batchOf)
		}
	}
	if batches != 1+200/8 {
		t.Errorf("%d batches, want %d", batches, 1+200/8)
	}
}

// A panicking write answers the batch through failed and leaves the lane
// usable for the next caller.
func TestDoPanicReleasesTheLane(t *testing.T) {
	var l Lane[*call]
	failed := 0
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not go on")
			}
		}()
		l.Do(&call{}, 4, func([]*call) { panic("boom") }, func(b []*call, _ any) { failed += len(b) })
	}()
	if failed != 1 {
		t.Errorf("failed saw %d calls, want 1", failed)
	}
	c := &call{}
	l.Do(c, 4, func(b []*call) { b[0].batchOf = len(b) }, func([]*call, any) {})
	if c.batchOf != 1 {
		t.Errorf("the lane did not run the next caller's batch")
	}
}
