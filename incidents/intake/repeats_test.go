package intake_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
)

func TestIngestPureRepeatsTakeOneStatement(t *testing.T) {
	env := incidentstest.NewEnv()
	first := incidentstest.Ingest(t, env, incidentstest.Alert())
	id := first.Incidents[0]
	events, outbox := incidentstest.EventKinds(t, env, id), incidentstest.OutboxKeys(env, "")
	lastAlert := incidentstest.FindIncident(t, env, id).LastAlertAt

	env.Store.ResetCalls()
	for i := range 20 {
		env.Clock.Advance(time.Second)
		res := incidentstest.Ingest(t, env, incidentstest.Alert())
		if want := (incidents.IngestResult{Incidents: []int64{id}, Repeated: 1}); !equalResult(res, want) {
			t.Fatalf("repeat %d: got %+v, want %+v", i, res, want)
		}
	}
	if got, want := env.Store.TotalCalls(), 20; got != want {
		t.Errorf("20 pure repeats cost %d store calls, want %d (one RecordRepeat each)", got, want)
	}
	if got := incidentstest.EventKinds(t, env, id); !slices.Equal(got, events) {
		t.Errorf("timeline: got %v, want %v (repeats add nothing)", got, events)
	}
	if got := incidentstest.OutboxKeys(env, ""); !slices.Equal(got, outbox) {
		t.Errorf("outbox: got %v, want %v (repeats queue nothing)", got, outbox)
	}
	if got := incidentstest.FindIncident(t, env, id).LastAlertAt; !got.Equal(lastAlert) {
		t.Errorf("LastAlertAt: got %v, want %v (within a step of the last write)", got, lastAlert)
	}
	alerts, err := env.Store.FindAlerts(ctx, id)
	if err != nil || len(alerts) != 1 || alerts[0].Count != 21 {
		t.Fatalf("alerts: got %+v, %v; want one received 21 times", alerts, err)
	}
}

func TestIngestRepeatWithNewSessionMerges(t *testing.T) {
	env := incidentstest.NewEnv()
	id := incidentstest.Ingest(t, env, incidentstest.Alert()).Incidents[0]

	env.Clock.Advance(time.Second)
	res := incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.WithFingerprint("tok-spike", "s-8812", "s-9000")))
	if want := (incidents.IngestResult{Incidents: []int64{id}, Repeated: 1}); !equalResult(res, want) {
		t.Fatalf("got %+v, want %+v", res, want)
	}
	if got := incidentstest.FindIncident(t, env, id).Sessions; !slices.Contains(got, "s-9000") {
		t.Errorf("sessions: got %v, want s-9000 merged", got)
	}
	if got := incidentstest.OutboxKeys(env, incidents.KindUpdateSummary); len(got) != 1 {
		t.Errorf("summary updates: got %v, want one for the new session", got)
	}
}

func TestIngestLongRepeatRefreshesLastAlert(t *testing.T) {
	env := incidentstest.NewEnv()
	id := incidentstest.Ingest(t, env, incidentstest.Alert()).Incidents[0]

	// A repeat more than a step after the incident's last alert takes the full
	// path, which moves LastAlertAt, so a continuous alert keeps its incident.
	for range 3 * 60 {
		env.Clock.Advance(2 * time.Minute)
		if res := incidentstest.Ingest(t, env, incidentstest.Alert()); !equalResult(res, incidents.IngestResult{Incidents: []int64{id}, Repeated: 1}) {
			t.Fatalf("got %+v, want a repeat in incident %d", res, id)
		}
	}
	if got, want := incidentstest.FindIncident(t, env, id).LastAlertAt, env.Clock.Now(); !got.Equal(want) {
		t.Errorf("LastAlertAt: got %v, want %v", got, want)
	}
	if got := len(env.Store.Incidents()); got != 1 {
		t.Errorf("incidents: got %d, want 1 (six hours of repeats outlive no group window)", got)
	}
}

func TestIngestQueuesOneSummaryUpdatePerBucket(t *testing.T) {
	env := incidentstest.NewEnv()
	id := incidentstest.Ingest(t, env, incidentstest.Alert()).Incidents[0]
	env.Clock.Set(env.Clock.Now().Truncate(5 * time.Second).Add(5 * time.Second))

	env.Store.ResetCalls()
	for i := range 5 {
		env.Clock.Advance(100 * time.Millisecond)
		incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.WithFingerprint(fmt.Sprintf("fp-%d", i), fmt.Sprintf("s-%d", i))))
	}
	if got := env.Store.Calls(incidentstest.OutboxRows); got != 1 {
		t.Errorf("outbox rows written for 5 changes in one bucket: got %d, want 1", got)
	}
	env.Clock.Advance(5 * time.Second)
	incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.WithFingerprint("fp-next", "s-next")))
	if got := incidentstest.OutboxKeys(env, incidents.KindUpdateSummary); len(got) != 2 {
		t.Errorf("summary updates: got %v, want one per bucket, 2", got)
	}
	if got := incidentstest.FindIncident(t, env, id).Sessions; len(got) != 7 {
		t.Errorf("sessions: got %v, want all 7", got)
	}
}

// An alert this process has not received before takes the full path at
// once: trying it as a pure repeat would be a statement that finds nothing.
func TestIngestTriesOnlyAlertsReceivedBeforeAsRepeats(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())
	incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.WithFingerprint("fp-2")))
	if got := env.Store.Calls("RecordRepeats"); got != 0 {
		t.Errorf("RecordRepeats calls for two first receipts: got %d, want 0", got)
	}
	res := incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.WithFingerprint("fp-2")))
	if got := env.Store.Calls("RecordRepeats"); got != 1 || res.Repeated != 1 {
		t.Errorf("a second receipt: %d RecordRepeats calls, result %+v; want 1 call, a repeat", got, res)
	}
}
