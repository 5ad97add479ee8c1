package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
)

// slackDown is a handler for a destination that fails every call until up
// is set, recording the keys it was called with.
type slackDown struct {
	up    bool
	after time.Duration // the Retry-After it answers while down
	calls []string
}

func (s *slackDown) handle(ctx context.Context, it *outbox.Item) error {
	s.calls = append(s.calls, it.Key)
	if s.up {
		outbox.Answered(ctx)
		return nil
	}
	return outbox.Unavailable(errors.New("slack: 500 Internal Server Error"), s.after)
}

func enqueueLane(t *testing.T, s *incidentstest.Store, incident int64, lane, kind, key string) {
	t.Helper()
	it, err := outbox.NewItem(incident, lane, kind, key, nil, t0, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnqueueOutbox(context.Background(), it); err != nil {
		t.Fatal(err)
	}
}

// While Slack fails, its lanes send one probe per interval (or per
// Retry-After when longer), count no attempts and bury nothing however long
// it lasts; pages are never held back; the first answer makes everything
// that waited due at once, delivered in queue order.
func TestOutageProbesSteadilyAndDrainsAtOnce(t *testing.T) {
	ctx := context.Background()
	s := incidentstest.NewStore()
	clock := incidentstest.NewClock(t0)
	reg := prometheus.NewPedanticRegistry()
	w := outbox.New(outbox.Config{Store: s, Clock: clock, Attempts: 3, Registerer: reg, ProbeInterval: 3 * time.Second,
		Destinations: map[string]string{outbox.LaneChat: "slack", outbox.LaneRefresh: "slack"}})
	slack := &slackDown{}
	w.Handle("slack", slack.handle)
	var pages []string
	w.Handle("page", func(_ context.Context, it *outbox.Item) error { pages = append(pages, it.Key); return nil })
	for _, k := range []string{"1/channel", "1/summary", "1/halt"} {
		enqueueLane(t, s, 1, outbox.LaneChat, "slack", k)
	}
	for _, k := range []string{"2/channel", "2/summary"} {
		enqueueLane(t, s, 2, outbox.LaneChat, "slack", k)
	}
	enqueueLane(t, s, 1, outbox.LaneRefresh, "slack", "1/update")

	pass := func(lane string) {
		t.Helper()
		if _, err := w.DeliverDue(ctx, lane); err != nil {
			t.Fatal(err)
		}
	}
	pass(outbox.LaneChat)
	if !slices.Equal(slack.calls, []string{"1/channel"}) {
		t.Fatalf("first pass called %v; want the first item only, the rest held once Slack failed", slack.calls)
	}
	if got := series(t, reg, "reins_delivery_destination_unreachable"); !slices.Equal(got, []float64{1}) {
		t.Errorf("reins_delivery_destination_unreachable = %v, want [1]", got)
	}
	outages, _ := s.Outages(ctx)
	if len(outages) != 1 || outages[0].Destination != "slack" || !outages[0].Since.Equal(t0) ||
		!outages[0].NextProbeAt.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("outages = %+v, want slack since t0, next probe in 3 s", outages)
	}

	// A page queued during the outage goes at once.
	enqueueLane(t, s, 1, outbox.LaneUrgent, "page", "1/page")
	pass(outbox.LaneUrgent)
	if !slices.Equal(pages, []string{"1/page"}) {
		t.Fatalf("pages = %v during the Slack outage", pages)
	}

	// Ten minutes of outage, passes every half second on both lanes: one
	// call per 3 s, then per 10 s once Slack asks for that.
	slack.calls = nil
	for range 1200 {
		clock.Advance(500 * time.Millisecond)
		if clock.Now().Sub(t0) == 5*time.Minute {
			slack.after = 10 * time.Second
		}
		pass(outbox.LaneChat)
		pass(outbox.LaneRefresh)
	}
	if n := len(slack.calls); n < 100+28 || n > 100+31 {
		t.Errorf("%d calls in 10 minutes of outage; want ~100 (every 3 s) + ~30 (every 10 s)", n)
	}
	for _, it := range s.OutboxItems() {
		if it.Lane != outbox.LaneUrgent && (it.State != outbox.Pending || it.Attempts != 0) {
			t.Errorf("%s after the outage: %s with %d attempts; want pending with none counted", it.Key, it.State, it.Attempts)
		}
	}
	outages, _ = s.Outages(ctx)
	if len(outages) != 1 || !outages[0].Since.Equal(t0) {
		t.Fatalf("outages = %+v, want since kept at t0", outages)
	}
	reports, err := outbox.Reports(ctx, s, map[string]string{outbox.LaneChat: "slack", outbox.LaneRefresh: "slack"}, clock.Now())
	if err != nil || len(reports) != 1 || reports[0].Waiting != 6 || !reports[0].Live {
		t.Fatalf("Reports = %+v, %v; want slack live with 6 waiting", reports, err)
	}

	// Slack answers: the next probe closes the circuit and one pass per
	// lane delivers the head of each incident's queue, so a few passes
	// deliver all, in order per incident.
	slack.up, slack.calls = true, nil
	clock.Advance(10 * time.Second)
	for range 4 {
		pass(outbox.LaneChat)
		pass(outbox.LaneRefresh)
	}
	// The probe (1/channel), then per pass the head of each incident's chat
	// queue; the refresh lane's item goes on its own.
	chat := slices.DeleteFunc(slices.Clone(slack.calls), func(k string) bool { return k == "1/update" })
	if want := []string{"1/channel", "1/summary", "2/channel", "1/halt", "2/summary"}; !slices.Equal(chat, want) ||
		len(slack.calls) != 6 {
		t.Errorf("after Slack answered: calls %v, want chat items in %v and 1/update once", slack.calls, want)
	}
	for _, it := range s.OutboxItems() {
		if it.State != outbox.Done {
			t.Errorf("%s: %s", it.Key, it.State)
		}
	}
	if outages, _ := s.Outages(ctx); len(outages) != 0 {
		t.Errorf("outages after recovery = %+v", outages)
	}
	if got := series(t, reg, "reins_delivery_destination_unreachable"); !slices.Equal(got, []float64{0}) {
		t.Errorf("reins_delivery_destination_unreachable = %v after recovery, want [0]", got)
	}
}

// A failure of the item itself (not an UnavailableError) in a lane with a
// destination still backs off per item, and counts as Slack answering.
func TestItemFailureKeepsBackoff(t *testing.T) {
	s := incidentstest.NewStore()
	clock := incidentstest.NewClock(t0)
	w := outbox.New(outbox.Config{Store: s, Clock: clock, Destinations: map[string]string{outbox.LaneChat: "slack"}})
	w.Handle("bad", func(ctx context.Context, _ *outbox.Item) error {
		outbox.Answered(ctx)
		return errors.New("invalid_blocks?")
	})
	var ok []string
	w.Handle("ok", func(_ context.Context, it *outbox.Item) error { ok = append(ok, it.Key); return nil })
	enqueue(t, s, "bad", "a")
	enqueue(t, s, "ok", "b")
	if _, err := w.DeliverDue(context.Background(), outbox.LaneChat); err != nil {
		t.Fatal(err)
	}
	if a := state(t, s, "a"); a.Attempts != 1 || !a.NextAttemptAt.After(t0) {
		t.Errorf("a = %+v, want one attempt and a later retry", a)
	}
	if !slices.Equal(ok, []string{"b"}) {
		t.Errorf("delivered %v, want [b]: nothing is held back", ok)
	}
}

// A rate limit while Slack answers is one method's or channel's: that item
// (and its incident's later items) waits exactly its Retry-After with no
// attempt counted, other incidents go on, and the circuit stays closed.
// Rate limits on three calls in a row mean Slack throttles everything: the
// circuit opens and probes per Retry-After.
func TestRateLimitWaitsPerItemUntilItIsEverything(t *testing.T) {
	ctx := context.Background()
	s := incidentstest.NewStore()
	clock := incidentstest.NewClock(t0)
	w := outbox.New(outbox.Config{Store: s, Clock: clock, Destinations: map[string]string{outbox.LaneChat: "slack"}})
	limited := map[string]bool{"1/a": true}
	var calls []string
	w.Handle("post", func(ctx context.Context, it *outbox.Item) error {
		calls = append(calls, it.Key)
		if limited[it.Key] {
			return outbox.Unavailable(&outbox.RetryAfterError{After: 2 * time.Second, Err: errors.New("ratelimited")}, 2*time.Second)
		}
		outbox.Answered(ctx)
		return nil
	})
	for _, k := range []string{"1/a", "1/b"} {
		enqueueLane(t, s, 1, outbox.LaneChat, "post", k)
	}
	for _, k := range []string{"2/a", "2/b"} {
		enqueueLane(t, s, 2, outbox.LaneChat, "post", k)
	}
	for range 3 {
		if _, err := w.DeliverDue(ctx, outbox.LaneChat); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"1/a", "2/a", "2/b"}; !slices.Equal(calls, want) {
		t.Fatalf("calls %v, want %v: incident 2 goes on while incident 1 waits", calls, want)
	}
	if a := state(t, s, "1/a"); a.Attempts != 0 || !a.NextAttemptAt.Equal(t0.Add(2*time.Second)) {
		t.Errorf("1/a = %+v, want due after its Retry-After with no attempt", a)
	}
	if o, _ := s.Outages(ctx); len(o) != 0 {
		t.Errorf("outages after one rate limit: %+v", o)
	}
	delete(limited, "1/a")
	clock.Advance(2 * time.Second)
	for range 2 {
		if _, err := w.DeliverDue(ctx, outbox.LaneChat); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"1/a", "2/a", "2/b", "1/a", "1/b"}; !slices.Equal(calls, want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}

	// Everything rate-limited: the third in a row opens the circuit.
	calls = nil
	for i := range 3 {
		k := fmt.Sprintf("%d/x", 10+i)
		limited[k] = true
		enqueueLane(t, s, int64(10+i), outbox.LaneChat, "post", k)
	}
	if _, err := w.DeliverDue(ctx, outbox.LaneChat); err != nil {
		t.Fatal(err)
	}
	if o, _ := s.Outages(ctx); len(calls) != 3 || len(o) != 1 || !o[0].NextProbeAt.Equal(clock.Now().Add(2*time.Second)) {
		t.Errorf("after 3 rate limits in a row: calls %v, outages %+v; want the circuit open, probing in 2 s", calls, o)
	}
}

// A probe whose item is done without reaching Slack (a step skipped) proves
// nothing: the circuit stays open, its outage keeps its start, and the next
// item is probed at once.
func TestProbeWithoutAnAnswerKeepsTheCircuitOpen(t *testing.T) {
	ctx := context.Background()
	s := incidentstest.NewStore()
	clock := incidentstest.NewClock(t0)
	w := outbox.New(outbox.Config{Store: s, Clock: clock, Destinations: map[string]string{outbox.LaneChat: "slack"}})
	slack := &slackDown{}
	w.Handle("slack", slack.handle)
	w.Handle("skip", func(context.Context, *outbox.Item) error { return nil })
	enqueueLane(t, s, 1, outbox.LaneChat, "slack", "1/channel")
	enqueueLane(t, s, 2, outbox.LaneChat, "skip", "2/skipped")
	enqueueLane(t, s, 3, outbox.LaneChat, "slack", "3/channel")
	pass := func() {
		t.Helper()
		if _, err := w.DeliverDue(ctx, outbox.LaneChat); err != nil {
			t.Fatal(err)
		}
	}
	pass() // 1/channel fails: open
	clock.Advance(3 * time.Second)
	// 1/channel is the oldest due: the probe; it fails again.
	pass()
	if !slices.Equal(slack.calls, []string{"1/channel", "1/channel"}) {
		t.Fatalf("calls %v", slack.calls)
	}
	// Deliver the skip item as a probe by making it the oldest due.
	if err := s.DeferOutbox(ctx, state(t, s, "1/channel").ID, clock.Now().Add(time.Hour), "held"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(3 * time.Second)
	pass() // probes 2/skipped: done, but Slack never answered
	if st := state(t, s, "2/skipped"); st.State != outbox.Done {
		t.Fatalf("2/skipped = %s", st.State)
	}
	if o, _ := s.Outages(ctx); len(o) != 1 || !o[0].Since.Equal(t0) {
		t.Fatalf("outages after a probe that never reached Slack = %+v, want still open since t0", o)
	}
	pass() // the next probe goes at once: 3/channel
	if !slices.Equal(slack.calls, []string{"1/channel", "1/channel", "3/channel"}) {
		t.Errorf("calls %v, want 3/channel probed at once after the probe without an answer", slack.calls)
	}
}

// Two replicas on one store each keep a circuit and probe at the steady
// rate (two probes per interval); the first answered drains the shared
// outbox, once each, and clears the recorded outage for both.
func TestReplicasProbeEachAndDrainOnce(t *testing.T) {
	ctx := context.Background()
	s := incidentstest.NewStore()
	clock := incidentstest.NewClock(t0)
	slack := &slackDown{}
	regs := []*prometheus.Registry{prometheus.NewPedanticRegistry(), prometheus.NewPedanticRegistry()}
	var replicas []*outbox.Worker
	for i := range 2 {
		w := outbox.New(outbox.Config{Store: s, Clock: clock, Registerer: regs[i], Destinations: map[string]string{outbox.LaneChat: "slack"}})
		w.Handle("slack", slack.handle)
		replicas = append(replicas, w)
	}
	for i := range 4 {
		enqueueLane(t, s, int64(i%2+1), outbox.LaneChat, "slack", fmt.Sprintf("%d/%d", i%2+1, i))
	}
	passAll := func() {
		t.Helper()
		for _, w := range replicas {
			if _, err := w.DeliverDue(ctx, outbox.LaneChat); err != nil {
				t.Fatal(err)
			}
		}
	}
	passAll() // each replica meets the outage once
	for range 20 {
		clock.Advance(500 * time.Millisecond)
		passAll()
	}
	if n := len(slack.calls); n < 2+6 || n > 2+8 {
		t.Errorf("%d calls in 10 s with two replicas, want 2 + ~7 (each probes every 3 s)", n)
	}
	// Slack answers replica 1's probe, and replica 1 drains everything
	// before replica 2's next probe is due.
	slack.up, slack.calls = true, nil
	clock.Advance(3 * time.Second)
	for range 4 {
		if _, err := replicas[0].DeliverDue(ctx, outbox.LaneChat); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"1/0", "2/1", "1/2", "2/3"}; !slices.Equal(slices.Sorted(slices.Values(slack.calls)), slices.Sorted(slices.Values(want))) {
		t.Errorf("after Slack answered: calls %v, want each of %v once", slack.calls, want)
	}
	if o, _ := s.Outages(ctx); len(o) != 0 {
		t.Errorf("outages after recovery: %+v", o)
	}
	// The replica whose probe was not the one answered sees the outage
	// cleared at its next probe, with nothing left to deliver.
	clock.Advance(3 * time.Second)
	passAll()
	for i, reg := range regs {
		if got := series(t, reg, "reins_delivery_destination_unreachable"); !slices.Equal(got, []float64{0}) {
			t.Errorf("replica %d: reins_delivery_destination_unreachable = %v after recovery, want 0", i+1, got)
		}
	}
}
