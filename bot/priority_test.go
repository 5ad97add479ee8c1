package bot

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
)

// A command's work waits while acks are being served and starts once they
// stop; under acks that never stop it still starts, ackYield after its ack.
func TestCommandWorkWaitsForAcks(t *testing.T) {
	hs := newHarness(t, &fakeService{StatusFn: func(string) ([]incidents.AgentStatus, error) { return nil, nil }})
	send := func() time.Time {
		form := url.Values{"command": {"/agent"}, "text": {"status"}, "user_id": {"U01ALICE"}, "user_name": {"alice"},
			"channel_id": {"C0GENERAL"}, "response_url": {hs.slack.ResponseURL()}, "trigger_id": {fmt.Sprintf("T.%d", clicks.Add(1))}}
		if rec := hs.serve(hs.h.Commands(), form.Encode(), nil); rec.Code != http.StatusOK {
			t.Fatalf("status %d, body %s", rec.Code, rec.Body)
		}
		return time.Now()
	}
	answered := func(n int, within time.Duration) bool {
		deadline := time.Now().Add(within)
		for len(hs.slack.Responses()) < n {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(time.Millisecond)
		}
		return true
	}

	// Another ack in flight: the answer waits for it.
	hs.h.acks.serving()
	send()
	if answered(1, 200*time.Millisecond) {
		t.Fatal("the command was answered while an ack was being served")
	}
	hs.h.acks.served()
	if !answered(1, 500*time.Millisecond) {
		t.Fatal("no answer 500 ms after the acks stopped")
	}

	// Acks that never stop: the answer comes at ackYield, not never.
	hs.h.acks.serving()
	defer hs.h.acks.served()
	acked := send()
	if !answered(2, ackYield+time.Second) {
		t.Fatalf("no answer %v after the ack under endless acks", ackYield+time.Second)
	}
	if waited := hs.slack.Responses()[1].At.Sub(acked); waited < ackYield-50*time.Millisecond {
		t.Errorf("answered %v after the ack under endless acks, want about %v", waited, ackYield)
	}
}

// Status commands share a read only if it began after they were asked (under
// way or finished): a burst's commands share one, a command asked after the
// last read began gets one of its own, which sees what was committed before
// it asked.
func TestStatusReadsShared(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	svc := &fakeService{StatusFn: func(string) ([]incidents.AgentStatus, error) {
		calls.Add(1)
		<-release
		return []incidents.AgentStatus{{Halted: true}}, nil
	}}
	hs := newHarness(t, svc)
	ctx := context.Background()
	beforeFirst := time.Now()
	time.Sleep(time.Millisecond)
	results := make(chan []incidents.AgentStatus, 3)
	ask := func(asked time.Time) {
		list, err := hs.h.sharedStatus(ctx, "", asked)
		if err != nil {
			t.Error(err)
		}
		results <- list
	}
	go ask(time.Now())
	waitFor := func(n int32) {
		deadline := time.Now().Add(2 * time.Second)
		for calls.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d status reads, want %d", calls.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(1)
	go ask(beforeFirst) // asked before the read began: shares it
	time.Sleep(20 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Fatalf("a command asked before the read began started read %d, want it to share the first", n)
	}
	go ask(time.Now()) // asked after it began: a read of its own
	waitFor(2)
	close(release)
	for range 3 {
		if list := <-results; len(list) != 1 || !list[0].Halted {
			t.Errorf("got %+v, want the read's result", list)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d status reads, want 2", n)
	}
	// A finished read serves those asked before it began, not those after.
	go ask(beforeFirst)
	if list := <-results; len(list) != 1 || calls.Load() != 2 {
		t.Errorf("asked before the last read began: got %+v after %d reads, want its result after 2", list, calls.Load())
	}
	go ask(time.Now())
	<-results
	if n := calls.Load(); n != 3 {
		t.Errorf("asked after the last read: %d reads, want a third", n)
	}
}

// A span the clock overslept (the process was paused, and its clients'
// requests with it) is not taken as a span without acks: paused spans alone
// never end a burst, spans watched on time between them do.
func TestBurstNotEndedByPauses(t *testing.T) {
	a := newAckClock()
	a.sleep = func(d time.Duration) { time.Sleep(d + 5*time.Millisecond) }
	start := time.Now()
	a.waitBurst(start.Add(200 * time.Millisecond))
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Fatalf("a burst was taken as ended after %v of paused spans; want none until the deadline (200 ms)", waited)
	}

	var paused bool
	a.sleep = func(d time.Duration) {
		if paused = !paused; paused {
			d += 5 * time.Millisecond
		}
		time.Sleep(d)
	}
	start = time.Now()
	a.waitBurst(start.Add(5 * time.Second))
	if waited := time.Since(start); waited > 4*time.Second {
		t.Fatalf("spans watched on time between pauses did not end the burst (waited %v)", waited)
	}
}

// When acks begin again just after the queue was let go (the burst's end
// was guessed wrong), only the first chunk of the work has started; the
// rest waits for the burst's real end.
func TestWorkStartsInChunksWhileAcksStayQuiet(t *testing.T) {
	hs := newHarness(t, &fakeService{})
	h := hs.h
	const queued = 3 * releaseChunk
	var started atomic.Int32
	var burstBack atomic.Bool
	h.acks.sleep = func(d time.Duration) {
		time.Sleep(d)
		h.later.mu.Lock()
		released := len(h.later.jobs) < queued
		h.later.mu.Unlock()
		// The first sleep after work was let go: an ack begins, as the burst goes on.
		if released && burstBack.CompareAndSwap(false, true) {
			h.acks.serving()
		}
	}
	sem := make(chan struct{}, queued)
	for range queued {
		h.afterAcks(sem, "test work", nil, func(context.Context) { started.Add(1) })
	}
	deadline := time.Now().Add(ackYield / 2)
	for !burstBack.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	for deadline := time.Now().Add(2 * time.Second); started.Load() < releaseChunk && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // time for any work beyond the chunk to show
	if n := started.Load(); n != releaseChunk {
		t.Fatalf("%d of %d commands' work started before the burst went on, want one chunk (%d)", n, queued, releaseChunk)
	}
	h.acks.served()
	h.Wait()
	if n := started.Load(); n != queued {
		t.Fatalf("%d of %d commands' work ran once the burst ended", n, queued)
	}
}
