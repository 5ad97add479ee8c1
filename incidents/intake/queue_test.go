package intake_test

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
	"github.com/reins-oss/reins/incidents/intake"
	"github.com/reins-oss/reins/incidents/outbox"
)

var errBadAlert = errors.New("store rejects alert")

// gatedStore counts transactions, holds the first call of method (InTx, or
// a query's name) until gate is closed, so later Ingest calls line up
// behind it, and fails recording an alert with the fingerprint "bad".
type gatedStore struct {
	*incidentstest.Store
	method  string
	txs     atomic.Int32
	once    sync.Once
	entered chan struct{}
	gate    chan struct{}
}

func newGatedStore() *gatedStore {
	return &gatedStore{Store: incidentstest.NewStore(), entered: make(chan struct{}), gate: make(chan struct{})}
}

// arm makes the next call of method the one held at the gate.
func (s *gatedStore) arm(method string) {
	s.method = method
	if method != "InTx" {
		s.Store.Hook = func(m string) error {
			if m == method {
				s.hold()
			}
			return nil
		}
	}
}

// hold blocks the first caller until the gate opens.
func (s *gatedStore) hold() {
	s.once.Do(func() {
		close(s.entered)
		<-s.gate
	})
}

func (s *gatedStore) InTx(ctx context.Context, fn func(q incidents.Queries) error) error {
	s.txs.Add(1)
	if s.method == "InTx" {
		s.hold()
	}
	return s.Store.InTx(ctx, func(q incidents.Queries) error { return fn(rejecting{q}) })
}

type rejecting struct{ incidents.Queries }

func (q rejecting) RecordAlerts(ctx context.Context, alerts []*incidents.Alert) ([]string, error) {
	for _, a := range alerts {
		if a.Fingerprint == "bad" {
			return nil, errBadAlert
		}
	}
	return q.Queries.RecordAlerts(ctx, alerts)
}

type ingested struct {
	res incidents.IngestResult
	err error
}

// ingestBehindGate runs first alone, holds it in the store while every call
// of rest queues behind it, in order, then lets everything commit.
func ingestBehindGate(t *testing.T, env *incidentstest.Env, store *gatedStore, first incidents.Alert, rest []incidents.Alert) (ingested, []ingested) {
	t.Helper()
	var wg sync.WaitGroup
	var head ingested
	wg.Go(func() { head.res, head.err = env.Intake.Ingest(ctx, []incidents.Alert{first}) })
	<-store.entered
	got := make([]ingested, len(rest))
	deadline := time.Now().Add(10 * time.Second)
	for i, a := range rest {
		wg.Go(func() { got[i].res, got[i].err = env.Intake.Ingest(ctx, []incidents.Alert{a}) })
		for intake.IngestQueued(env.Intake) < i+1 {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d calls queued behind the running batch", intake.IngestQueued(env.Intake), len(rest))
			}
			time.Sleep(time.Millisecond)
		}
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
	store.arm("InTx")
	const calls = 8
	var rest []incidents.Alert
	for i := range calls - 1 {
		rest = append(rest, incidentstest.Alert(incidentstest.WithFingerprint(fmt.Sprintf("fp-%d", i), fmt.Sprintf("s-%d", i))))
	}
	// Another agent's alert in the batch opens an incident of its own.
	rest = append(rest, incidentstest.Alert(func(a *incidents.Alert) { a.Agent, a.Fingerprint = "billing-agent", "fp-bill" }))

	head, got := ingestBehindGate(t, env, store, incidentstest.Alert(incidentstest.WithFingerprint("fp-head")), rest)

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
	for _, k := range incidentstest.EventKinds(t, env, 1) {
		if k == incidents.EventAlertFired {
			fired++
		}
	}
	if got := fired; got != calls {
		t.Errorf("alert_fired events in incident 1: got %d, want %d", got, calls)
	}
	inc := incidentstest.FindIncident(t, env, 1)
	for i := range calls - 1 {
		if s := fmt.Sprintf("s-%d", i); !slices.Contains(inc.Sessions, s) {
			t.Errorf("session %s lost; have %v", s, inc.Sessions)
		}
	}
	if got, want := incidentstest.OutboxKeys(env, incidents.KindPage), []string{"inc-1/page", "inc-2/page"}; !slices.Equal(got, want) {
		t.Errorf("pages: got %v, want %v", got, want)
	}
}

func TestIngestBatchWithAFailingCallCommitsTheOthers(t *testing.T) {
	env, store := newGatedEnv()
	store.arm("InTx")
	rest := []incidents.Alert{
		incidentstest.Alert(incidentstest.WithFingerprint("fp-1")),
		incidentstest.Alert(incidentstest.WithFingerprint("bad")),
		incidentstest.Alert(incidentstest.WithFingerprint("fp-2")),
	}
	head, got := ingestBehindGate(t, env, store, incidentstest.Alert(incidentstest.WithFingerprint("fp-head")), rest)

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

func TestIngestBatchOfRepeatsTakesOneStatementAndNoTransaction(t *testing.T) {
	env, store := newGatedEnv()
	var all []incidents.Alert
	for i := range 8 {
		all = append(all, incidentstest.Alert(incidentstest.WithFingerprint(fmt.Sprintf("fp-%d", i))))
	}
	incidentstest.Ingest(t, env, all...)
	env.Store.ResetCalls()
	txs := store.txs.Load()
	store.arm("RecordRepeats")

	head, got := ingestBehindGate(t, env, store, all[0], all[1:])

	for i, g := range append([]ingested{head}, got...) {
		if want := (incidents.IngestResult{Incidents: []int64{1}, Repeated: 1}); g.err != nil || !equalResult(g.res, want) {
			t.Errorf("call %d: got %+v, %v; want %+v", i, g.res, g.err, want)
		}
	}
	if got, want := env.Store.Calls("RecordRepeats"), 2; got != want || env.Store.TotalCalls() != want {
		t.Errorf("store calls: %d RecordRepeats of %d in all, want %d and nothing else (the first call, then one for the 7 behind it)",
			got, env.Store.TotalCalls(), want)
	}
	if got := store.txs.Load() - txs; got != 0 {
		t.Errorf("transactions: got %d, want none for pure repeats", got)
	}
	alerts, err := env.Service.Alerts(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		if a.Count != 2 {
			t.Errorf("alert %s received %d times, want 2", a.Fingerprint, a.Count)
		}
	}
}

// A batch holding a recovery and then a re-fire of one alert ends as the
// two calls would one after the other: fired again, not resolved. Only the
// batch's first alert per fingerprint may take the bulk repeat statement,
// which runs before everything else in the batch.
func TestIngestBatchKeepsOrderWithinAFingerprint(t *testing.T) {
	env, store := newGatedEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.WithFingerprint("fp-head")), incidentstest.Alert(incidentstest.WithFingerprint("fp-1")))
	store.arm("RecordRepeats")
	resolved := incidentstest.Alert(incidentstest.WithFingerprint("fp-1"), func(a *incidents.Alert) { a.Status = incidents.AlertResolved })

	head, got := ingestBehindGate(t, env, store, incidentstest.Alert(incidentstest.WithFingerprint("fp-head")),
		[]incidents.Alert{resolved, incidentstest.Alert(incidentstest.WithFingerprint("fp-1"))})

	if head.err != nil {
		t.Fatalf("first call: %v", head.err)
	}
	for i, g := range got {
		if want := (incidents.IngestResult{Incidents: []int64{1}, Changed: 1}); g.err != nil || !equalResult(g.res, want) {
			t.Errorf("call %d: got %+v, %v; want %+v", i, g.res, g.err, want)
		}
	}
	alerts, err := env.Service.Alerts(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		if a.Fingerprint == "fp-1" && a.Status != incidents.AlertFiring {
			t.Errorf("fp-1 ends %s, want firing (resolved, then fired again)", a.Status)
		}
	}
	kinds := incidentstest.EventKinds(t, env, 1)
	if n := len(kinds); n < 2 || kinds[n-2] != incidents.EventAlertResolved || kinds[n-1] != incidents.EventAlertFired {
		t.Errorf("timeline ends %v, want alert_resolved then alert_fired", kinds)
	}
}

// meddling records a Slack channel on the incident, as a delivery worker
// would, right before intake writes the incident back, once armed.
type meddling struct {
	*incidentstest.Store
	armed atomic.Bool
	once  sync.Once
}

func (s *meddling) InTx(ctx context.Context, fn func(q incidents.Queries) error) error {
	return s.Store.InTx(ctx, func(q incidents.Queries) error { return fn(meddlingQueries{q, s}) })
}

type meddlingQueries struct {
	incidents.Queries
	s *meddling
}

func (q meddlingQueries) WriteIntake(ctx context.Context, incs []*incidents.Incident, events []*incidents.Event, items []*outbox.Item) ([]bool, error) {
	var err error
	if !q.s.armed.Load() {
		return q.Queries.WriteIntake(ctx, incs, events, items)
	}
	q.s.once.Do(func() {
		var cur *incidents.Incident
		if cur, err = q.FindIncident(ctx, incs[0].ID); err == nil {
			cur.SlackChannelID = "C0INC1"
			err = q.UpdateIncident(ctx, cur)
		}
	})
	if err != nil {
		return nil, err
	}
	return q.Queries.WriteIntake(ctx, incs, events, items)
}

func TestIngestKeepsAChangeMadeSinceItReadTheIncident(t *testing.T) {
	store := &meddling{Store: incidentstest.NewStore()}
	env := incidentstest.NewEnv(func(d *incidents.Deps, _ *incidents.Config) { d.Store = store })
	env.Store = store.Store
	id := incidentstest.Ingest(t, env, incidentstest.Alert()).Incidents[0]
	store.armed.Store(true)

	incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.WithFingerprint("fp-2", "s-new")))

	inc := incidentstest.FindIncident(t, env, id)
	if inc.SlackChannelID != "C0INC1" || !slices.Contains(inc.Sessions, "s-new") {
		t.Errorf("incident: channel %q, sessions %v; want the channel recorded meanwhile and s-new both kept", inc.SlackChannelID, inc.Sessions)
	}
}

// New alerts for agents with open incidents cost a statement of each kind
// for the whole batch, not one per alert: the incidents are read in one
// query, and the alerts, events and incident writes go in bulk at its end.
func TestIngestBatchOfNewAlertsWritesEachKindOnce(t *testing.T) {
	env := incidentstest.NewEnv()
	billing := func(a *incidents.Alert) { a.Agent = "billing-agent" }
	first := incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.WithFingerprint("fp-s", "s-s")), incidentstest.Alert(incidentstest.WithFingerprint("fp-b", "s-b"), billing))
	env.Store.ResetCalls()

	var batch []incidents.Alert
	for i := range 3 {
		batch = append(batch,
			incidentstest.Alert(incidentstest.WithFingerprint(fmt.Sprintf("fp-s%d", i), fmt.Sprintf("s-s%d", i))),
			incidentstest.Alert(incidentstest.WithFingerprint(fmt.Sprintf("fp-b%d", i), fmt.Sprintf("s-b%d", i)), billing))
	}
	res := incidentstest.Ingest(t, env, batch...)

	if want := (incidents.IngestResult{Incidents: first.Incidents, New: 6}); !equalResult(res, want) {
		t.Errorf("result: got %+v, want %+v", res, want)
	}
	for method, want := range map[string]int{"FindGroupingIncidents": 1, "RecordAlerts": 1, "WriteIntake": 1,
		"OpenIncident": 0, "AppendEvent": 0, "UpdateIncident": 0, "RecordRepeats": 0} {
		if got := env.Store.Calls(method); got != want {
			t.Errorf("%s calls: got %d, want %d", method, got, want)
		}
	}
	for _, id := range first.Incidents {
		if got := len(incidentstest.FindIncident(t, env, id).Sessions); got != 4 {
			t.Errorf("incident %d has %d sessions, want 4", id, got)
		}
		fired := 0
		for _, k := range incidentstest.EventKinds(t, env, id) {
			if k == incidents.EventAlertFired {
				fired++
			}
		}
		if fired != 4 {
			t.Errorf("incident %d: %d alert_fired events, want 4", id, fired)
		}
	}
}

// A recovery queued behind the first receipt of its alert, in one batch,
// finds the alert recorded: it ends resolved, its timeline says fired then
// recovered.
func TestIngestBatchRecordsAnAlertBeforeItsRecovery(t *testing.T) {
	env, store := newGatedEnv()
	store.arm("InTx")
	head, got := ingestBehindGate(t, env, store, incidentstest.Alert(incidentstest.WithFingerprint("fp-head")),
		[]incidents.Alert{incidentstest.Alert(incidentstest.WithFingerprint("fp-1", "s-1")), incidentstest.Alert(incidentstest.WithFingerprint("fp-1"), incidentstest.Resolved)})

	if head.err != nil {
		t.Fatalf("first call: %v", head.err)
	}
	for i, want := range []incidents.IngestResult{{Incidents: []int64{1}, New: 1}, {Incidents: []int64{1}, Changed: 1}} {
		if got[i].err != nil || !equalResult(got[i].res, want) {
			t.Errorf("call %d: got %+v, %v; want %+v", i, got[i].res, got[i].err, want)
		}
	}
	if got := int(store.txs.Load()); got != 2 {
		t.Errorf("transactions: got %d, want 2 (the first call, then one for both behind it)", got)
	}
	alerts, err := env.Service.Alerts(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		if a.Fingerprint == "fp-1" && (a.Status != incidents.AlertResolved || a.Count != 2) {
			t.Errorf("fp-1: %s, received %d times; want resolved, 2", a.Status, a.Count)
		}
	}
	kinds := incidentstest.EventKinds(t, env, 1)
	if n := len(kinds); n < 2 || kinds[n-2] != incidents.EventAlertFired || kinds[n-1] != incidents.EventAlertResolved {
		t.Errorf("timeline ends %v, want alert_fired then alert_resolved", kinds)
	}
}

// A batch's alerts for agents with no open incident open theirs in one
// statement, numbered in the order of their first alerts. code-agent is in
// no registry: its alerts go to the source's unrouted incident, which pages
// nobody without a default routing key.
func TestIngestBatchOpensItsIncidentsTogether(t *testing.T) {
	env := incidentstest.NewEnv()
	agent := func(name string) func(*incidents.Alert) { return func(a *incidents.Alert) { a.Agent = name } }
	res := incidentstest.Ingest(t, env,
		incidentstest.Alert(incidentstest.WithFingerprint("fp-1"), agent("code-agent")),
		incidentstest.Alert(incidentstest.WithFingerprint("fp-2")),
		incidentstest.Alert(incidentstest.WithFingerprint("fp-3"), agent("code-agent")),
		incidentstest.Alert(incidentstest.WithFingerprint("fp-4"), agent("billing-agent")))

	if want := (incidents.IngestResult{Incidents: []int64{1, 2, 3}, Opened: 3, New: 4}); !equalResult(res, want) {
		t.Errorf("result: got %+v, want %+v", res, want)
	}
	for method, want := range map[string]int{"FindGroupingIncidents": 1, "InsertIncidents": 1, "OpenIncident": 0, "UpdateIncident": 0} {
		if got := env.Store.Calls(method); got != want {
			t.Errorf("%s calls: got %d, want %d", method, got, want)
		}
	}
	for id, agent := range map[int64]string{1: "unrouted:generic", 2: "support-bot", 3: "billing-agent"} {
		inc := incidentstest.FindIncident(t, env, id)
		if inc.Agent != agent || inc.PagerDutyKey != fmt.Sprintf("reins-%d", id) {
			t.Errorf("incident %d: agent %s, PagerDuty key %q; want %s, reins-%d", id, inc.Agent, inc.PagerDutyKey, agent, id)
		}
		if kinds := incidentstest.EventKinds(t, env, id); len(kinds) == 0 || kinds[0] != incidents.EventIncidentOpened {
			t.Errorf("incident %d: timeline %v, want it to start with incident_opened", id, kinds)
		}
	}
	if !incidentstest.FindIncident(t, env, 1).Unowned || incidentstest.FindIncident(t, env, 2).Unowned {
		t.Errorf("unowned: incident 1 %v, 2 %v; want true, false", incidentstest.FindIncident(t, env, 1).Unowned, incidentstest.FindIncident(t, env, 2).Unowned)
	}
	if got, want := incidentstest.OutboxKeys(env, incidents.KindPage), []string{"inc-2/page", "inc-3/page"}; !slices.Equal(got, want) {
		t.Errorf("pages: got %v, want %v", got, want)
	}
}
