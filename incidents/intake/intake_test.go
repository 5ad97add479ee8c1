package intake_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
)

func TestIngestStormIsOneIncident(t *testing.T) {
	env := incidentstest.NewEnv()

	res := incidentstest.Ingest(t, env, incidentstest.Alert())
	if got, want := res, (incidents.IngestResult{Incidents: []int64{1}, Opened: 1, New: 1}); !equalResult(got, want) {
		t.Fatalf("first alert: got %+v, want %+v", got, want)
	}
	wantOpening := []string{"inc-1/create_channel", "inc-1/post_summary", "inc-1/set_topic", "inc-1/invite",
		"inc-1/bookmark", "inc-1/announce", "inc-1/page"}
	if got := incidentstest.OutboxKeys(env, ""); !slices.Equal(got, wantOpening) {
		t.Fatalf("outbox after opening: got %v, want %v", got, wantOpening)
	}

	env.Store.ResetCalls()
	res = incidentstest.Ingest(t, env, incidentstest.Alert())
	if res.Repeated != 1 || res.New != 0 || res.Opened != 0 {
		t.Errorf("repeat: got %+v, want one repeat", res)
	}
	if got := env.Store.TotalCalls(); got > 2 {
		t.Errorf("a pure repeat cost %d store calls, want at most 2 (open incident, record alert)", got)
	}

	res = incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.WithFingerprint("tool-scope", "s-8813")))
	if res.New != 1 {
		t.Errorf("second alert: got %+v, want one new alert", res)
	}
	for range 50 {
		incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.WithFingerprint("tool-scope", "s-8813")))
	}
	env.Clock.Advance(time.Second)
	res = incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.Resolved))
	if res.Changed != 1 {
		t.Errorf("recovery: got %+v, want one change", res)
	}

	if got := len(env.Store.Incidents()); got != 1 {
		t.Fatalf("got %d incidents, want 1", got)
	}
	inc := incidentstest.FindIncident(t, env, 1)
	if got, want := inc.Sessions, []string{"s-8812", "s-8813"}; !slices.Equal(got, want) {
		t.Errorf("sessions: got %v, want %v", got, want)
	}
	if inc.PagerDutyKey != "reins-1" {
		t.Errorf("PagerDutyKey: got %q, want reins-1", inc.PagerDutyKey)
	}
	wantKinds := []incidents.EventKind{incidents.EventIncidentOpened, incidents.EventAlertFired,
		incidents.EventAlertFired, incidents.EventAlertResolved}
	if got := incidentstest.EventKinds(t, env, 1); !slices.Equal(got, wantKinds) {
		t.Errorf("timeline: got %v, want %v", got, wantKinds)
	}
	if got := incidentstest.OutboxKeys(env, incidents.KindPage); len(got) != 1 {
		t.Errorf("pages queued: got %v, want one", got)
	}
	if got := incidentstest.OutboxKeys(env, incidents.KindUpdateSummary); len(got) != 1 {
		t.Errorf("summary updates queued for one debounce window: got %v, want one", got)
	}
	posts := incidentstest.OutboxKeys(env, incidents.KindPost)
	if len(posts) != 1 || !strings.HasPrefix(posts[0], "inc-1/recovered/") {
		t.Errorf("posts: got %v, want one recovery post", posts)
	}
}

func equalResult(a, b incidents.IngestResult) bool {
	return slices.Equal(a.Incidents, b.Incidents) && a.Opened == b.Opened && a.New == b.New &&
		a.Repeated == b.Repeated && a.Changed == b.Changed
}

func TestIngestRaisesSeverity(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert(func(a *incidents.Alert) { a.Severity = incidents.SeverityWarning }))
	incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.WithFingerprint("b"), func(a *incidents.Alert) { a.Severity = "CRITICAL" }))
	incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.WithFingerprint("c"), func(a *incidents.Alert) { a.Severity = incidents.SeverityInfo }))
	if got := incidentstest.FindIncident(t, env, 1).Severity; got != incidents.SeverityCritical {
		t.Errorf("severity: got %q, want critical", got)
	}
}

func TestIngestAgents(t *testing.T) {
	tests := []struct {
		name        string
		agent       string
		defaultKey  string
		wantAgent   string
		wantUnowned bool
		wantPage    bool
	}{
		{name: "OK", agent: "support-bot", wantAgent: "support-bot", wantPage: true},
		{name: "Alias", agent: "Support-Bot-V2", wantAgent: "support-bot", wantPage: true},
		{name: "UnownedNotPaged", agent: "mystery-bot", wantAgent: "unrouted:generic", wantUnowned: true},
		{name: "UnownedPagedByDefault", agent: "mystery-bot", defaultKey: "rk-default", wantAgent: "unrouted:generic",
			wantUnowned: true, wantPage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := incidentstest.NewEnv(func(_ *incidents.Deps, c *incidents.Config) { c.DefaultRoutingKey = tt.defaultKey })
			incidentstest.Ingest(t, env, incidentstest.Alert(func(a *incidents.Alert) { a.Agent = tt.agent }))
			inc := incidentstest.FindIncident(t, env, 1)
			if inc.Agent != tt.wantAgent || inc.Unowned != tt.wantUnowned {
				t.Errorf("got agent %q unowned %v, want %q %v", inc.Agent, inc.Unowned, tt.wantAgent, tt.wantUnowned)
			}
			if got := len(incidentstest.OutboxKeys(env, incidents.KindPage)) == 1; got != tt.wantPage {
				t.Errorf("page queued: got %v, want %v", got, tt.wantPage)
			}
			if got := len(incidentstest.OutboxKeys(env, incidents.KindAnnounce)); got != 1 {
				t.Errorf("announcements queued: got %d, want 1", got)
			}
		})
	}
}

func TestIngestGroupWindow(t *testing.T) {
	tests := []struct {
		name          string
		gap           time.Duration
		wantIncidents []int64
	}{
		{name: "WithinWindowJoins", gap: 3 * time.Hour, wantIncidents: []int64{1}},
		{name: "ExpiredOpensSecond", gap: 5 * time.Hour, wantIncidents: []int64{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := incidentstest.NewEnv()
			incidentstest.Ingest(t, env, incidentstest.Alert())
			env.Clock.Advance(tt.gap)
			res := incidentstest.Ingest(t, env, incidentstest.Alert())
			if !slices.Equal(res.Incidents, tt.wantIncidents) {
				t.Fatalf("incidents: got %v, want %v", res.Incidents, tt.wantIncidents)
			}
			if got := incidentstest.FindIncident(t, env, 1).Status; got != incidents.StatusOpen {
				t.Errorf("first incident: got status %q, want it to stay open", got)
			}
			last := incidentstest.FindIncident(t, env, tt.wantIncidents[0]).LastAlertAt
			if want := env.Clock.Now(); !last.Equal(want) {
				t.Errorf("LastAlertAt: got %v, want %v", last, want)
			}
		})
	}
}

func TestIngestRecoveryWithoutIncidentIsDropped(t *testing.T) {
	env := incidentstest.NewEnv()
	res := incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.Resolved))
	if len(res.Incidents) != 0 || len(env.Store.Incidents()) != 0 {
		t.Errorf("got %+v and %d incidents, want none", res, len(env.Store.Incidents()))
	}
}

func TestIngestFlapFiresAgain(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())
	incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.Resolved))
	res := incidentstest.Ingest(t, env, incidentstest.Alert())
	if res.Changed != 1 {
		t.Errorf("got %+v, want one change", res)
	}
	want := []incidents.EventKind{incidents.EventIncidentOpened, incidents.EventAlertFired,
		incidents.EventAlertResolved, incidents.EventAlertFired}
	if got := incidentstest.EventKinds(t, env, 1); !slices.Equal(got, want) {
		t.Errorf("timeline: got %v, want %v", got, want)
	}
}

func TestIngestNewAndRecoveredInOneBatch(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())
	res := incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.WithFingerprint("b")), incidentstest.Alert(incidentstest.Resolved))
	if res.New != 1 || res.Changed != 1 || !slices.Equal(res.Incidents, []int64{1}) {
		t.Errorf("got %+v, want one new alert and one recovery in incident 1", res)
	}
	if kinds := incidentstest.EventKinds(t, env, 1); !slices.Contains(kinds, incidents.EventAlertResolved) {
		t.Errorf("timeline %v lacks alert_resolved", kinds)
	}
}

func TestIngestWithoutSlackOrPagerDuty(t *testing.T) {
	env := incidentstest.NewEnv(func(d *incidents.Deps, _ *incidents.Config) { d.Chat, d.Pager = nil, nil })
	incidentstest.Ingest(t, env, incidentstest.Alert())
	incidentstest.Ingest(t, env, incidentstest.Alert(incidentstest.WithFingerprint("b")))
	if got := incidentstest.OutboxKeys(env, ""); len(got) != 0 {
		t.Errorf("outbox: got %v, want nothing queued", got)
	}
}

func TestIngestRetriesConflictedTransaction(t *testing.T) {
	env := incidentstest.NewEnv()
	failed := false
	env.Store.Hook = func(method string) error {
		if method == "RecordAlerts" && !failed {
			failed = true
			return errors.New(`pq: duplicate key value violates unique constraint "alerts_fingerprint"`)
		}
		return nil
	}
	res := incidentstest.Ingest(t, env, incidentstest.Alert())
	if !failed || res.Opened != 1 {
		t.Fatalf("got %+v (hook fired %v), want the retry to open one incident", res, failed)
	}
	if got := len(env.Store.Incidents()); got != 1 {
		t.Errorf("incidents: got %d, want 1 (the failed attempt rolled back)", got)
	}
	if got := incidentstest.OutboxKeys(env, incidents.KindPage); len(got) != 1 {
		t.Errorf("pages: got %v, want one", got)
	}
}

func TestIngestFailsOnStoreError(t *testing.T) {
	env := incidentstest.NewEnv()
	env.Store.Hook = func(method string) error {
		if method == "WriteIntake" {
			return errors.New("disk full")
		}
		return nil
	}
	if _, err := env.Intake.Ingest(ctx, []incidents.Alert{incidentstest.Alert()}); err == nil {
		t.Fatal("Ingest: got nil error, want the store's")
	}
	if got := len(env.Store.Incidents()); got != 0 {
		t.Errorf("incidents: got %d, want none committed", got)
	}
}

func TestDeclare(t *testing.T) {
	env := incidentstest.NewEnv()
	alice := incidents.Actor{Kind: incidents.ActorSlack, ID: "U01ALICE"}

	_, _, err := env.Intake.Declare(ctx, alice, "suport-bot", "refunds look wrong")
	if code := incidents.ErrorCode(err); code != incidents.ENOTFOUND || !strings.Contains(incidents.ErrorMessage(err), "support-bot") {
		t.Fatalf("misspelt agent: got %v, want ENOTFOUND suggesting support-bot", err)
	}

	inc, created, err := env.Intake.Declare(ctx, alice, "support-bot", "refunds look wrong")
	if err != nil || !created {
		t.Fatalf("Declare: got created %v, err %v; want a new incident", created, err)
	}
	if inc.Source != "manual" || inc.Title != "refunds look wrong" || inc.PagerDutyKey != "reins-1" {
		t.Errorf("got %+v, want a manual incident titled as asked", inc)
	}
	events, _ := env.Service.Timeline(ctx, inc.ID)
	if len(events) != 1 || events[0].Kind != incidents.EventIncidentOpened || events[0].Actor != alice {
		t.Errorf("timeline: got %+v, want incident_opened by alice", events)
	}
	if got := incidentstest.OutboxKeys(env, incidents.KindPage); len(got) != 1 {
		t.Errorf("pages: got %v, want one", got)
	}

	again, created, err := env.Intake.Declare(ctx, alice, "support-bot", "still wrong")
	if err != nil || created || again.ID != inc.ID {
		t.Errorf("second Declare: got #%d created %v err %v, want #%d not created", again.ID, created, err, inc.ID)
	}
}

// BenchmarkIngestRepeat measures the storm path: an alert the open incident
// already has, on the in-memory store (the service's own cost).
func BenchmarkIngestRepeat(b *testing.B) {
	env := incidentstest.NewEnv()
	alerts := []incidents.Alert{incidentstest.Alert()}
	if _, err := env.Intake.Ingest(ctx, alerts); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := env.Intake.Ingest(ctx, alerts); err != nil {
			b.Fatal(err)
		}
	}
}
