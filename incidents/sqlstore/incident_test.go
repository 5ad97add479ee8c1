package sqlstore_test

import (
	"encoding/json"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sqlstore"
)

func TestOpenIncident(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		first := &incidents.Incident{Agent: "support-bot", Title: "token spike", Severity: incidents.SeverityError,
			Source: "grafana", Sessions: []string{"s1"}, CreatedAt: t0, StartedAt: t0.Add(-time.Minute)}
		created, err := s.OpenIncident(ctx, first)
		if err != nil || !created || first.ID == 0 {
			t.Fatalf("OpenIncident = %v, %v, ID %d; want a new incident", created, err, first.ID)
		}
		if first.Status != incidents.StatusOpen || first.Version != 1 || !first.LastAlertAt.Equal(t0) {
			t.Errorf("new incident = status %q version %d last alert %v; want open, 1, %v",
				first.Status, first.Version, first.LastAlertAt, t0)
		}
		again := &incidents.Incident{Agent: "support-bot", Title: "other title", CreatedAt: t0.Add(time.Hour)}
		created, err = s.OpenIncident(ctx, again)
		if err != nil || created {
			t.Fatalf("OpenIncident again = %v, %v; want the existing one", created, err)
		}
		if !reflect.DeepEqual(again, first) {
			t.Errorf("OpenIncident loaded\n%+v\nwant\n%+v", again, first)
		}
		other := open(t, s, "support-bot", "latency")
		if other.ID == first.ID {
			t.Error("another group key joined the same incident")
		}
		if err := s.StopGrouping(ctx, first.ID); err != nil {
			t.Fatal(err)
		}
		next := open(t, s, "support-bot", "")
		if next.ID == first.ID {
			t.Error("an incident that stopped grouping still collected alerts")
		}
		still, err := s.FindIncident(ctx, first.ID)
		if err != nil || still.Status != incidents.StatusOpen || still.Version != 2 {
			t.Errorf("incident after StopGrouping = %+v, %v; want open, version 2", still, err)
		}
		wantCode(t, s.StopGrouping(ctx, 9999), incidents.ENOTFOUND)
	})
}

func TestOpenIncidentAfterResolve(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		first := open(t, s, "support-bot", "")
		resolved := t0.Add(time.Hour)
		first.Status, first.ResolvedAt, first.ResolvedBy = incidents.StatusResolved, &resolved, "slack:U1"
		if err := s.UpdateIncident(ctx, first); err != nil {
			t.Fatal(err)
		}
		if next := open(t, s, "support-bot", ""); next.ID == first.ID {
			t.Error("a resolved incident collected a new alert")
		}
	})
}

// TestOpenIncidentConcurrent races 20 callers (half in transactions) for
// one agent: the unique partial index leaves one incident.
func TestOpenIncidentConcurrent(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		const n = 20
		ids := make([]int64, n)
		created := make([]bool, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				inc := &incidents.Incident{Agent: "support-bot", Title: "storm", CreatedAt: t0}
				var err error
				if i%2 == 0 {
					created[i], err = s.OpenIncident(ctx, inc)
				} else {
					err = s.InTx(ctx, func(q incidents.Queries) error {
						created[i], err = q.OpenIncident(ctx, inc)
						return err
					})
				}
				if err != nil {
					t.Errorf("caller %d: %v", i, err)
				}
				ids[i] = inc.ID
			})
		}
		wg.Wait()
		nCreated := 0
		for i := range n {
			if ids[i] != ids[0] {
				t.Errorf("caller %d got incident %d, caller 0 got %d", i, ids[i], ids[0])
			}
			if created[i] {
				nCreated++
			}
		}
		if nCreated != 1 {
			t.Errorf("%d callers created an incident, want 1", nCreated)
		}
		all, err := s.FindIncidents(ctx, incidents.IncidentFilter{})
		if err != nil || len(all) != 1 {
			t.Errorf("FindIncidents = %d incidents, %v; want 1", len(all), err)
		}
	})
}

func TestUpdateIncidentRoundTrip(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		inc := open(t, s, "support-bot", "")
		paged, acked, resolved := t0.Add(time.Second), t0.Add(2*time.Minute), t0.Add(time.Hour)
		inc.Unowned = true
		inc.Title, inc.Severity = "new title", incidents.SeverityWarning
		inc.Sessions = []string{"sess-1", "sess-2"}
		inc.Links = []incidents.Link{{Text: "runbook", URL: "https://runbooks.example/support-bot"}}
		inc.SlackChannelID, inc.SlackChannelName = "C042", "inc-1-support-bot"
		inc.SummaryTS, inc.ChecklistTS, inc.PostmortemTS = "1.1", "1.2", "1.3"
		inc.PagerDutyKey = "reins-1"
		inc.PagedAt, inc.AckedAt, inc.AckedBy = &paged, &acked, "pagerduty:P1"
		inc.LastAlertAt = t0.Add(time.Minute)
		inc.Status, inc.ResolvedAt, inc.ResolvedBy = incidents.StatusResolved, &resolved, "slack:U1"
		if err := s.UpdateIncident(ctx, inc); err != nil {
			t.Fatal(err)
		}
		if inc.Version != 2 {
			t.Errorf("Version after update = %d, want 2", inc.Version)
		}
		for name, find := range map[string]func() (*incidents.Incident, error){
			"FindIncident":           func() (*incidents.Incident, error) { return s.FindIncident(ctx, inc.ID) },
			"FindIncidentByChannel":  func() (*incidents.Incident, error) { return s.FindIncidentByChannel(ctx, "C042") },
			"FindIncidentByPagerKey": func() (*incidents.Incident, error) { return s.FindIncidentByPagerKey(ctx, "reins-1") },
		} {
			got, err := find()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !reflect.DeepEqual(got, inc) {
				t.Errorf("%s =\n%+v\nwant\n%+v", name, got, inc)
			}
		}
	})
}

func TestFindIncidentErrNotFound(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		_, err := s.FindIncident(ctx, 42)
		wantCode(t, err, incidents.ENOTFOUND)
		_, err = s.FindIncidentByChannel(ctx, "C404")
		wantCode(t, err, incidents.ENOTFOUND)
		_, err = s.FindIncidentByChannel(ctx, "")
		wantCode(t, err, incidents.ENOTFOUND)
		_, err = s.FindIncidentByPagerKey(ctx, "nope")
		wantCode(t, err, incidents.ENOTFOUND)
		wantCode(t, s.UpdateIncident(ctx, &incidents.Incident{ID: 42, Status: incidents.StatusOpen}), incidents.ENOTFOUND)
	})
}

func TestUpdateIncidentErrReopenConflict(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		old := open(t, s, "support-bot", "")
		resolved := t0.Add(time.Hour)
		old.Status, old.ResolvedAt = incidents.StatusResolved, &resolved
		if err := s.UpdateIncident(ctx, old); err != nil {
			t.Fatal(err)
		}
		open(t, s, "support-bot", "")
		old.Status, old.ResolvedAt = incidents.StatusOpen, nil
		wantCode(t, s.UpdateIncident(ctx, old), incidents.ECONFLICT)
	})
}

func TestFindIncidents(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		var ids []int64
		for i, agent := range []string{"a", "b", "a", "a"} {
			inc := open(t, s, agent, string(rune('k'+i)))
			ids = append(ids, inc.ID)
		}
		resolved := t0
		inc, _ := s.FindIncident(ctx, ids[2])
		inc.Status, inc.ResolvedAt = incidents.StatusResolved, &resolved
		if err := s.UpdateIncident(ctx, inc); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			f    incidents.IncidentFilter
			want []int64
		}{
			{"All", incidents.IncidentFilter{}, []int64{ids[3], ids[2], ids[1], ids[0]}},
			{"Agent", incidents.IncidentFilter{Agent: "a"}, []int64{ids[3], ids[2], ids[0]}},
			{"AgentOpen", incidents.IncidentFilter{Agent: "a", Status: incidents.StatusOpen}, []int64{ids[3], ids[0]}},
			{"Resolved", incidents.IncidentFilter{Status: incidents.StatusResolved}, []int64{ids[2]}},
			{"Limit", incidents.IncidentFilter{Limit: 2}, []int64{ids[3], ids[2]}},
			{"Offset", incidents.IncidentFilter{Limit: 2, Offset: 2}, []int64{ids[1], ids[0]}},
			{"NoMatch", incidents.IncidentFilter{Agent: "zzz"}, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.FindIncidents(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				var gotIDs []int64
				for _, inc := range got {
					gotIDs = append(gotIDs, inc.ID)
				}
				if !reflect.DeepEqual(gotIDs, tt.want) {
					t.Errorf("FindIncidents(%+v) = %v, want %v", tt.f, gotIDs, tt.want)
				}
			})
		}
	})
}

// recordAlert records one alert, returning its previous status.
func recordAlert(q incidents.AlertStore, a *incidents.Alert) (string, error) {
	prev, err := q.RecordAlerts(ctx, []*incidents.Alert{a})
	if err != nil {
		return "", err
	}
	return prev[0], nil
}

func TestRecordAlert(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		inc := open(t, s, "support-bot", "")
		ends := t0.Add(time.Hour)
		a := &incidents.Alert{IncidentID: inc.ID, Source: "alertmanager", Fingerprint: "fp1", Agent: "support",
			Status: incidents.AlertFiring, Title: "TokenSpike", Summary: "tokens/min > 10k", Severity: "critical",
			Sessions: []string{"s1"}, Links: []incidents.Link{{Text: "graph", URL: "https://grafana.example/d/1"}},
			Labels: map[string]string{"agent": "support"}, Annotations: map[string]string{"summary": "x"},
			Details: json.RawMessage(`{"value":12000}`), StartsAt: t0.Add(-time.Minute), ReceivedAt: t0}
		steps := []struct {
			name   string
			status string
			want   string
			count  int
		}{
			{"New", incidents.AlertFiring, "", 1},
			{"Repeat", incidents.AlertFiring, incidents.AlertFiring, 2},
			{"Resolved", incidents.AlertResolved, incidents.AlertFiring, 3},
			{"RepeatResolved", incidents.AlertResolved, incidents.AlertResolved, 4},
		}
		for _, st := range steps {
			b := *a
			b.Status = st.status
			if st.status == incidents.AlertResolved {
				b.EndsAt = &ends
			}
			prev, err := recordAlert(s, &b)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if prev != st.want || b.Count != st.count || b.ID == 0 {
				t.Errorf("%s: RecordAlert = %q, count %d, ID %d; want %q, %d", st.name, prev, b.Count, b.ID, st.want, st.count)
			}
			a.ID = b.ID
		}
		got, err := s.FindAlerts(ctx, inc.ID)
		if err != nil || len(got) != 1 {
			t.Fatalf("FindAlerts = %d, %v; want 1", len(got), err)
		}
		want := *a
		want.Status, want.EndsAt, want.Count = incidents.AlertResolved, &ends, 4
		if !reflect.DeepEqual(got[0], &want) {
			t.Errorf("FindAlerts[0] =\n%+v\nwant\n%+v", got[0], &want)
		}
	})
}

func TestRecordAlertErrUnknownIncident(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		_, err := recordAlert(s, &incidents.Alert{IncidentID: 404, Fingerprint: "fp", Status: incidents.AlertFiring})
		wantCode(t, err, incidents.ENOTFOUND)
	})
}

func TestRecordAlertConcurrent(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		inc := open(t, s, "support-bot", "")
		const n = 20
		prevs := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				a := &incidents.Alert{IncidentID: inc.ID, Fingerprint: "fp", Status: incidents.AlertFiring, ReceivedAt: t0}
				err := s.InTx(ctx, func(q incidents.Queries) error {
					var err error
					prevs[i], err = recordAlert(q, a)
					return err
				})
				if err != nil {
					t.Errorf("caller %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		news := 0
		for _, p := range prevs {
			if p == "" {
				news++
			}
		}
		got, err := s.FindAlerts(ctx, inc.ID)
		if news != 1 || err != nil || len(got) != 1 || got[0].Count != n {
			t.Errorf("%d callers saw a new alert (want 1); alerts %d, %v", news, len(got), err)
		}
	})
}

func TestEvents(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		inc := open(t, s, "support-bot", "")
		evs := []*incidents.Event{
			{IncidentID: inc.ID, At: t0.Add(time.Second), Kind: incidents.EventPaged, Actor: incidents.System, Text: "paged"},
			{IncidentID: inc.ID, At: t0, Kind: incidents.EventIncidentOpened, Actor: incidents.System,
				Text: "opened", Data: json.RawMessage(`{"alerts":1}`)},
			{IncidentID: inc.ID, At: t0.Add(time.Second), Kind: incidents.EventHaltRequested,
				Actor: incidents.Actor{Kind: incidents.ActorSlack, ID: "U1", Name: "ana"}, Text: "kill"},
		}
		for _, e := range evs {
			if err := s.AppendEvent(ctx, e); err != nil || e.ID == 0 {
				t.Fatalf("AppendEvent = %v, ID %d", err, e.ID)
			}
		}
		got, err := s.FindEvents(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := []*incidents.Event{evs[1], evs[0], evs[2]} // by time, then as appended
		if !reflect.DeepEqual(got, want) {
			t.Errorf("FindEvents =\n%+v\nwant\n%+v", got, want)
		}
		err = s.AppendEvent(ctx, &incidents.Event{IncidentID: 404, Kind: incidents.EventNote})
		wantCode(t, err, incidents.ENOTFOUND)
	})
}
