package outbox_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func enqueue(t *testing.T, s *incidentstest.Store, kind, key string) {
	t.Helper()
	it, err := outbox.NewItem(0, outbox.LaneChat, kind, key, nil, t0, t0)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.EnqueueOutbox(context.Background(), it); err != nil || n != 1 {
		t.Fatalf("EnqueueOutbox(%s) = %v, %v", key, n, err)
	}
}

func state(t *testing.T, s *incidentstest.Store, key string) outbox.Item {
	t.Helper()
	for _, it := range s.OutboxItems() {
		if it.Key == key {
			return it
		}
	}
	t.Fatalf("no item %s", key)
	return outbox.Item{}
}

// Each kind goes to its handler; a kind nobody handles is buried at once,
// a failure is retried, and a permanent failure is buried with its reason.
func TestDeliverDueOutcomes(t *testing.T) {
	s := incidentstest.NewStore()
	clock := incidentstest.NewClock(t0)
	w := outbox.New(outbox.Config{Store: s, Clock: clock, Attempts: 3})
	var handled []string
	w.Handle("ok", func(_ context.Context, it *outbox.Item) error { handled = append(handled, it.Key); return nil })
	w.Handle("flaky", func(context.Context, *outbox.Item) error { return errors.New("timeout") })
	w.Handle("broken", func(context.Context, *outbox.Item) error { return outbox.Permanent(errors.New("no such channel")) })
	enqueue(t, s, "ok", "a")
	enqueue(t, s, "flaky", "b")
	enqueue(t, s, "broken", "c")
	enqueue(t, s, "unknown", "d")

	n, err := w.DeliverDue(context.Background(), outbox.LaneChat)
	if err != nil || n != 3 {
		t.Fatalf("DeliverDue = %d, %v; want 3 finished (a delivered, c and d buried)", n, err)
	}
	if len(handled) != 1 || handled[0] != "a" {
		t.Errorf("handled %v, want [a]", handled)
	}
	for key, want := range map[string]string{"a": outbox.Done, "b": outbox.Pending, "c": outbox.Dead, "d": outbox.Dead} {
		if got := state(t, s, key).State; got != want {
			t.Errorf("%s: state %s, want %s", key, got, want)
		}
	}
	if b := state(t, s, "b"); b.Attempts != 1 || !b.NextAttemptAt.After(t0) || b.LastError != "timeout" {
		t.Errorf("retried item = %+v, want attempt 1 due later with its error", b)
	}
	if c := state(t, s, "c"); c.LastError != "permanent: no such channel" {
		t.Errorf("buried item's error = %q", c.LastError)
	}
}

// series returns the values of the named metric's series in reg (a gauge's
// or a counter's), failing the test when gathering fails.
func series(t *testing.T, reg prometheus.Gatherer, name string) []float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	var out []float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetGauge() != nil {
				out = append(out, m.GetGauge().GetValue())
			} else {
				out = append(out, m.GetCounter().GetValue())
			}
		}
	}
	return out
}

// Two Workers on one Registerer do not clash: they count together, and the
// backlog is read from the store of the one created last.
func TestTwoWorkersShareARegisterer(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	first, second := incidentstest.NewStore(), incidentstest.NewStore()
	enqueue(t, first, "ok", "a")
	enqueue(t, second, "ok", "a")
	enqueue(t, second, "ok", "b")
	clock := incidentstest.NewClock(t0)
	ok := func(context.Context, *outbox.Item) error { return nil }
	for i, s := range []*incidentstest.Store{first, second} {
		w := outbox.New(outbox.Config{Store: s, Clock: clock, Registerer: reg})
		w.Handle("ok", ok)
		pending := series(t, reg, "reins_outbox_pending")
		total := 0.0
		for _, v := range pending {
			total += v
		}
		if want := float64(i + 1); total != want {
			t.Errorf("Worker %d: reins_outbox_pending = %v, want its own store's %v pending", i+1, pending, want)
		}
		if _, err := w.DeliverDue(context.Background(), outbox.LaneChat); err != nil {
			t.Fatal(err)
		}
	}
	if got := series(t, reg, "reins_outbox_delivered_total"); len(got) != 1 || got[0] != 3 {
		t.Errorf("reins_outbox_delivered_total = %v, want one series counting 3 from both Workers", got)
	}
}

// A kick wakes an idle worker well before its next poll.
func TestKickWakesRun(t *testing.T) {
	s := incidentstest.NewStore()
	w := outbox.New(outbox.Config{Store: s})
	done := make(chan string, 1)
	w.Handle("ok", func(_ context.Context, it *outbox.Item) error { done <- it.Key; return nil })
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { w.Run(ctx, outbox.LaneChat, 1); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	time.Sleep(50 * time.Millisecond) // let the worker go idle
	it, _ := outbox.NewItem(0, outbox.LaneChat, "ok", "k", nil, time.Now(), time.Now())
	if _, err := s.EnqueueOutbox(ctx, it); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	w.Kick()
	select {
	case <-done:
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("delivered %v after the kick, want well under the 500 ms poll", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("not delivered within 2 s")
	}
}

// cutClaimStore leases as SQLite does when shutdown cancels a claim after
// its statement ran: the leases are committed, and the claim still answers
// with the context's error. stop is the shutdown, begun during the claim.
type cutClaimStore struct {
	*incidentstest.Store
	stop func()
}

func (s cutClaimStore) ClaimOutbox(ctx context.Context, lane string, now time.Time, lease time.Duration, limit int) ([]*outbox.Item, error) {
	items, err := s.Store.ClaimOutbox(context.WithoutCancel(ctx), lane, now, lease, limit)
	s.stop()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return items, err
}

// A shutdown that begins while a pass claims leaves no item leased: the
// next worker (after a restart) delivers it at once, instead of after the
// lease, which holds up every later item of its incident meanwhile.
func TestShutdownDuringClaimLeavesNoLease(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	s := incidentstest.NewStore()
	clock := incidentstest.NewClock(t0)
	enqueue(t, s, "ok", "a")
	w := outbox.New(outbox.Config{Store: cutClaimStore{Store: s, stop: stop}, Clock: clock})
	delivered := 0
	w.Handle("ok", func(context.Context, *outbox.Item) error { delivered++; return nil })
	if n, err := w.DeliverDue(ctx, outbox.LaneChat); n != 0 || delivered != 0 {
		t.Fatalf("DeliverDue during shutdown = %d, %v (%d delivered); want nothing delivered", n, err, delivered)
	}

	restarted := outbox.New(outbox.Config{Store: s, Clock: clock})
	restarted.Handle("ok", func(context.Context, *outbox.Item) error { delivered++; return nil })
	if n, err := restarted.DeliverDue(context.Background(), outbox.LaneChat); err != nil || n != 1 {
		t.Fatalf("DeliverDue after the restart = %d, %v; want the item delivered, not held by a lease (%+v)",
			n, err, state(t, s, "a"))
	}
}
