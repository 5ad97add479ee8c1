package incidents_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
)

var errBadAlert = errors.New("store rejects alert")

// gatedStore counts transactions, holds the first one until gate is closed
// (so later Ingest calls line up behind it), and fails RecordAlert for the
// fingerprint "bad".
type gatedStore struct {
	*incidentstest.Store
	txs     atomic.Int32
	once    sync.Once
	entered chan struct{}
	gate    chan struct{}
}

func newGatedStore() *gatedStore {
	return &gatedStore{Store: incidentstest.NewStore(), entered: make(chan struct{}), gate: make(chan struct{})}
}

func (s *gatedStore) InTx(ctx context.Context, fn func(q incidents.Queries) error) error {
	s.txs.Add(1)
	s.once.Do(func() {
		close(s.entered)
		<-s.gate
	})
	return s.Store.InTx(ctx, func(q incidents.Queries) error { return fn(rejecting{q}) })
}

type rejecting struct{ incidents.Queries }

func (q rejecting) RecordAlert(ctx context.Context, a *incidents.Alert) (string, error) {
	if a.Fingerprint == "bad" {
		return "", errBadAlert
	}
	return q.Queries.RecordAlert(ctx, a)
}

type ingested struct {
	res incidents.IngestResult
	err error
}

// ingestBehindGate runs first alone, holds its transaction open while every
// call of rest queues behind it, then lets everything commit.
func ingestBehindGate(t *testing.T, env *incidentstest.Env, store *gatedStore, first incidents.Alert, rest []incidents.Alert) (ingested, []ingested) {
	t.Helper()
	var wg sync.WaitGroup
	var head ingested
	wg.Go(func() { head.res, head.err = env.Service.Ingest(ctx, []incidents.Alert{first}) })
	<-store.entered
	got := make([]ingested, len(rest))
	for i, a := range rest {
		wg.Go(func() { got[i].res, got[i].err = env.Service.Ingest(ctx, []incidents.Alert{a}) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for incidents.IngestQueued(env.Service) < len(rest) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d calls queued behind the running transaction", incidents.IngestQueued(env.Service), len(rest))
		}
		time.Sleep(time.Millisecond)
	}
	close(store.gate)
	wg.Wait()
	return head, got
}

func newGatedEnv() (*incidentstest.Env, *gatedStore) {
	store := newGatedStore()
	env := incidentstest.NewEnv(func(d *incidents.Deps, _ *incidents.Config) { d.Store = store })
	env.Store = store.Store
	return env, store
}

func TestIngestConcurrentCallsShareOneTransaction(t *testing.T) {
	env, store := newGatedEnv()
	const calls = 8
	var rest []incidents.Alert
	for i := range calls - 1 {
		rest = append(rest, incidentstest.Alert(withFingerprint(fmt.Sprintf("fp-%d", i), fmt.Sprintf("s-%d", i))))
	}
	// Another agent's alert in the batch opens an incident of its own.
	rest = append(rest, incidentstest.Alert(func(a *incidents.Alert) { a.Agent, a.Fingerprint = "billing-agent", "fp-bill" }))

	head, got := ingestBehindGate(t, env, store, incidentstest.Alert(withFingerprint("fp-head")), rest)

	if head.err != nil || !equalResult(head.res, incidents.IngestResult{Incidents: []int64{1}, Opened: 1, New: 1}) {
		t.Errorf("first call: got %+v, %v; want incident 1 opened", head.res, head.err)
	}
	for i, g := range got {
		want := incidents.IngestResult{Incidents: []int64{1}, New: 1}
		if i == len(got)-1 {
			want = incidents.IngestResult{Incidents: []int64{2}, Opened: 1, New: 1}
		}
		if g.err != nil || !equalResult(g.res, want) {
			t.Errorf("call %d: got %+v, %v; want %+v", i, g.res, g.err, want)
		}
	}
	if got, want := int(store.txs.Load()), 2; got != want {
		t.Errorf("transactions for %d calls: got %d, want %d", calls+1, got, want)
	}
	fired := 0
	for _, k := range eventKinds(t, env, 1) {
		if k == incidents.EventAlertFired {
			fired++
		}
	}
	if got := fired; got != calls {
		t.Errorf("alert_fired events in incident 1: got %d, want %d", got, calls)
	}
	inc := findIncident(t, env, 1)
	for i := range calls - 1 {
		if s := fmt.Sprintf("s-%d", i); !slices.Contains(inc.Sessions, s) {
			t.Errorf("session %s lost; have %v", s, inc.Sessions)
		}
	}
	if got, want := outboxKeys(env, incidents.KindPage), []string{"inc-1/page", "inc-2/page"}; !slices.Equal(got, want) {
		t.Errorf("pages: got %v, want %v", got, want)
	}
}

func TestIngestBatchWithAFailingCallCommitsTheOthers(t *testing.T) {
	env, store := newGatedEnv()
	rest := []incidents.Alert{
		incidentstest.Alert(withFingerprint("fp-1")),
		incidentstest.Alert(withFingerprint("bad")),
		incidentstest.Alert(withFingerprint("fp-2")),
	}
	head, got := ingestBehindGate(t, env, store, incidentstest.Alert(withFingerprint("fp-head")), rest)

	if head.err != nil {
		t.Fatalf("first call: %v", head.err)
	}
	for i, g := range got {
		if rest[i].Fingerprint == "bad" {
			if !errors.Is(g.err, errBadAlert) {
				t.Errorf("bad call: got %+v, %v; want %v", g.res, g.err, errBadAlert)
			}
			continue
		}
		if want := (incidents.IngestResult{Incidents: []int64{1}, New: 1}); g.err != nil || !equalResult(g.res, want) {
			t.Errorf("call %d: got %+v, %v; want %+v", i, g.res, g.err, want)
		}
	}
	alerts, err := env.Service.Alerts(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var prints []string
	for _, a := range alerts {
		prints = append(prints, a.Fingerprint)
	}
	slices.Sort(prints)
	if want := []string{"fp-1", "fp-2", "fp-head"}; !slices.Equal(prints, want) {
		t.Errorf("alerts committed: got %v, want %v", prints, want)
	}
}
