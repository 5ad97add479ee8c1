package sqlstore_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sqlstore"
)

func TestRecordRepeatsOne(t *testing.T) {
	later := t0.Add(30 * time.Second)
	tests := []struct {
		name   string
		setup  func(t *testing.T, s *sqlstore.Store, inc *incidents.Incident)
		change func(a *incidents.Alert)
		since  time.Time
		wantOK bool
	}{
		{name: "OK", wantOK: true},
		{name: "OKNewLabelsAndDetails", wantOK: true, change: func(a *incidents.Alert) {
			a.Labels = map[string]string{"agent": "support-bot", "replica": "2"}
			a.Details = json.RawMessage(`{"value":13000}`)
		}},
		{name: "StatusChanged", change: func(a *incidents.Alert) { a.Status = incidents.AlertResolved }},
		{name: "TitleChanged", change: func(a *incidents.Alert) { a.Title = "TokenFlood" }},
		{name: "SummaryChanged", change: func(a *incidents.Alert) { a.Summary = "tokens/min > 20k" }},
		{name: "SeverityChanged", change: func(a *incidents.Alert) { a.Severity = "warning" }},
		{name: "NewSession", change: func(a *incidents.Alert) { a.Sessions = append(a.Sessions, "s2") }},
		{name: "NoSessions", change: func(a *incidents.Alert) { a.Sessions = nil }},
		{name: "NewLink", change: func(a *incidents.Alert) {
			a.Links = append(a.Links, incidents.Link{Text: "logs", URL: "https://logs.example/1"})
		}},
		{name: "UnknownFingerprint", change: func(a *incidents.Alert) { a.Fingerprint = "fp2" }},
		{name: "OtherAgent", change: func(a *incidents.Alert) { a.Agent = "billing-bot" }},
		{name: "Stale", since: t0.Add(time.Second)},
		{name: "IncidentResolved", setup: func(t *testing.T, s *sqlstore.Store, inc *incidents.Incident) {
			resolved := later
			inc.Status, inc.ResolvedAt = incidents.StatusResolved, &resolved
			if err := s.UpdateIncident(ctx, inc); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "IncidentNotGrouping", setup: func(t *testing.T, s *sqlstore.Store, inc *incidents.Incident) {
			if err := s.StopGrouping(ctx, inc.ID); err != nil {
				t.Fatal(err)
			}
		}},
	}
	each(t, func(t *testing.T, s *sqlstore.Store) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				agent := "support-bot-" + tt.name
				inc := open(t, s, agent, "")
				a := incidents.Alert{IncidentID: inc.ID, Source: "alertmanager", Fingerprint: "fp1", Agent: agent,
					Status: incidents.AlertFiring, Title: "TokenSpike", Summary: "tokens/min > 10k", Severity: "critical",
					Sessions: []string{"s1"}, Links: []incidents.Link{{Text: "graph", URL: "https://grafana.example/d/1"}},
					Labels: map[string]string{"agent": agent}, Details: json.RawMessage(`{"value":12000}`),
					StartsAt: t0.Add(-time.Minute), ReceivedAt: t0}
				first := a
				if _, err := recordAlert(s, &first); err != nil {
					t.Fatal(err)
				}
				if tt.setup != nil {
					tt.setup(t, s, inc)
				}
				b := a
				b.IncidentID, b.ReceivedAt = 0, later
				if tt.change != nil {
					tt.change(&b)
				}
				since := tt.since
				if since.IsZero() {
					since = t0.Add(-time.Minute)
				}
				recorded, err := s.RecordRepeats(ctx, []incidents.Repeat{{Alert: &b, FreshSince: since}})
				if err != nil {
					t.Fatal(err)
				}
				if ok := recorded[0]; ok != tt.wantOK {
					t.Fatalf("RecordRepeats ok = %v, want %v", ok, tt.wantOK)
				}
				id := b.IncidentID
				stored, err := s.FindAlerts(ctx, inc.ID)
				if err != nil || len(stored) != 1 {
					t.Fatalf("FindAlerts = %d alerts, %v; want 1", len(stored), err)
				}
				got := stored[0]
				if !tt.wantOK {
					if id != 0 || got.Count != 1 || !got.ReceivedAt.Equal(t0) {
						t.Errorf("not a repeat: got ID %d, count %d, received %v; want 0, 1, %v (unchanged)", id, got.Count, got.ReceivedAt, t0)
					}
					return
				}
				if id != inc.ID || b.IncidentID != inc.ID || b.ID != first.ID || b.Count != 2 {
					t.Errorf("got incident %d, alert %+v; want incident %d, alert %d counted twice", id, b, inc.ID, first.ID)
				}
				if got.Count != 2 || !got.ReceivedAt.Equal(later) || string(got.Details) != string(b.Details) ||
					got.Labels["replica"] != b.Labels["replica"] {
					t.Errorf("stored %+v, want count 2, received %v and the repeat's labels and details", got, later)
				}
				// The next full upsert sees the repeat as the status before it.
				again := a
				if prev, err := recordAlert(s, &again); err != nil || prev != incidents.AlertFiring || again.Count != 3 {
					t.Errorf("RecordAlert after the repeat = %q, count %d, %v; want firing, 3", prev, again.Count, err)
				}
			})
		}
	})
}

// TestRecordRepeatsMany records 150 alerts of three agents in one call, more
// than one statement holds, of which every third brings a change.
func TestRecordRepeatsMany(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		agents := []string{"support-bot", "billing-bot", "code-bot"}
		incs := map[string]*incidents.Incident{}
		for _, ag := range agents {
			incs[ag] = open(t, s, ag, "")
		}
		alert := func(i int) incidents.Alert {
			ag := agents[i%len(agents)]
			return incidents.Alert{IncidentID: incs[ag].ID, Source: "alertmanager", Fingerprint: fmt.Sprintf("fp-%d", i),
				Agent: ag, Status: incidents.AlertFiring, Title: "TokenSpike", Severity: "critical",
				Sessions: []string{"s1"}, StartsAt: t0.Add(-time.Minute), ReceivedAt: t0}
		}
		const n = 150
		for i := range n {
			a := alert(i)
			if _, err := recordAlert(s, &a); err != nil {
				t.Fatal(err)
			}
		}
		reps := make([]incidents.Repeat, n)
		for i := range n {
			a := alert(i)
			a.IncidentID, a.ReceivedAt = 0, t0.Add(time.Second)
			if i%3 == 1 {
				a.Title = "TokenFlood"
			}
			reps[i] = incidents.Repeat{Alert: &a, FreshSince: t0.Add(-time.Minute)}
		}
		recorded, err := s.RecordRepeats(ctx, reps)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range reps {
			want := i%3 != 1
			if recorded[i] != want {
				t.Errorf("alert %d: recorded %v, want %v", i, recorded[i], want)
				continue
			}
			if want && (r.Alert.IncidentID != incs[r.Alert.Agent].ID || r.Alert.Count != 2) {
				t.Errorf("alert %d: incident %d, count %d; want %d, 2", i, r.Alert.IncidentID, r.Alert.Count, incs[r.Alert.Agent].ID)
			}
		}
		for _, ag := range agents {
			stored, err := s.FindAlerts(ctx, incs[ag].ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range stored {
				var i int
				fmt.Sscanf(a.Fingerprint, "fp-%d", &i)
				if want := map[bool]int{true: 1, false: 2}[i%3 == 1]; a.Count != want {
					t.Errorf("stored %s of %s: count %d, want %d", a.Fingerprint, ag, a.Count, want)
				}
			}
		}
	})
}

func TestRecordRepeatsRefusesTheSameAlertTwice(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		a := incidents.Alert{Fingerprint: "fp1", Agent: "support-bot", Status: incidents.AlertFiring, ReceivedAt: t0}
		b := a
		if _, err := s.RecordRepeats(ctx, []incidents.Repeat{{Alert: &a}, {Alert: &b}}); err == nil {
			t.Fatal("got no error for one alert given twice")
		}
	})
}
