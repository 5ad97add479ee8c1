package sqlstore_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/incidents/sqlstore"
)

// TestRecordAlertsInTurn records 75 alerts in one call, more than one
// statement holds, where one alert comes three times: each receipt must see
// the one before it, as separate RecordAlert calls would.
func TestRecordAlertsInTurn(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		a, b := open(t, s, "support-bot", ""), open(t, s, "billing-bot", "")
		alert := func(inc *incidents.Incident, fp, status string) *incidents.Alert {
			return &incidents.Alert{IncidentID: inc.ID, Source: "alertmanager", Fingerprint: fp, Agent: inc.Agent,
				Status: status, Title: "TokenSpike", Severity: "critical", Sessions: []string{"s-" + fp},
				Labels: map[string]string{"fp": fp}, StartsAt: t0, ReceivedAt: t0}
		}
		var list []*incidents.Alert
		var want []string
		for i := range 40 {
			list, want = append(list, alert(a, fmt.Sprintf("fp-%d", i), incidents.AlertFiring)), append(want, "")
		}
		list, want = append(list, alert(a, "fp-5", incidents.AlertResolved)), append(want, incidents.AlertFiring)
		list, want = append(list, alert(a, "fp-5", incidents.AlertFiring)), append(want, incidents.AlertResolved)
		list, want = append(list, alert(b, "fp-5", incidents.AlertFiring)), append(want, "") // same fingerprint, other incident
		for i := 40; i < 72; i++ {
			list, want = append(list, alert(b, fmt.Sprintf("fp-%d", i), incidents.AlertFiring)), append(want, "")
		}

		var got []string
		err := s.InTx(ctx, func(q incidents.Queries) (err error) {
			got, err = q.RecordAlerts(ctx, list)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("previous statuses:\n got %q\nwant %q", got, want)
		}
		for i, al := range list {
			if al.ID == 0 || al.Count == 0 {
				t.Errorf("alert %d (%s): ID %d, count %d; want both filled in", i, al.Fingerprint, al.ID, al.Count)
			}
		}
		stored, err := s.FindAlerts(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != 40 {
			t.Fatalf("alerts of incident %d: got %d, want 40", a.ID, len(stored))
		}
		if fp5 := stored[5]; fp5.Fingerprint != "fp-5" || fp5.Status != incidents.AlertFiring || fp5.Count != 3 {
			t.Errorf("fp-5: %s %s count %d; want fp-5 firing, received 3 times", fp5.Fingerprint, fp5.Status, fp5.Count)
		}
		if stored, err = s.FindAlerts(ctx, b.ID); err != nil || len(stored) != 33 {
			t.Errorf("alerts of incident %d: got %d (%v), want 33", b.ID, len(stored), err)
		}
	})
}

func TestRecordAlertsOfNoIncident(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		_, err := s.RecordAlerts(ctx, []*incidents.Alert{{IncidentID: 999, Fingerprint: "fp", Status: incidents.AlertFiring, ReceivedAt: t0}})
		wantCode(t, err, incidents.ENOTFOUND)
	})
}

func TestAppendEventsKeepsTheirOrder(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		inc := open(t, s, "support-bot", "")
		var events []*incidents.Event
		for i := range 70 {
			events = append(events, &incidents.Event{IncidentID: inc.ID, At: t0, Kind: incidents.EventAlertFired,
				Actor: incidents.System, Text: fmt.Sprintf("e-%d", i), Data: json.RawMessage(`{"i":` + fmt.Sprint(i) + `}`)})
		}
		if err := s.AppendEvents(ctx, events); err != nil {
			t.Fatal(err)
		}
		stored, err := s.FindEvents(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != len(events) {
			t.Fatalf("events: got %d, want %d", len(stored), len(events))
		}
		for i, e := range stored {
			if e.Text != fmt.Sprintf("e-%d", i) || e.Actor != incidents.System || string(e.Data) != fmt.Sprintf(`{"i":%d}`, i) || !e.At.Equal(t0) {
				t.Errorf("event %d: %q by %v at %v, data %s", i, e.Text, e.Actor, e.At, e.Data)
			}
		}
	})
}

func TestEnqueueOutboxesQueuesEachKeyOnce(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		inc := open(t, s, "support-bot", "")
		enqueue(t, s, inc.ID, outbox.LaneChat, "k1")
		item := func(key string) *outbox.Item {
			return &outbox.Item{IncidentID: inc.ID, Lane: outbox.LaneChat, Kind: "post", Key: key,
				Payload: json.RawMessage(`{"second":true}`), CreatedAt: t0, NextAttemptAt: t0}
		}
		items := []*outbox.Item{item("k1"), item("k2"), item("k2"), item("k3")}
		if n, err := s.EnqueueOutbox(ctx, items...); err != nil || n != 2 {
			t.Fatalf("EnqueueOutbox = %d, %v; want 2 added (k2 and k3)", n, err)
		}
		if items[0].ID != 0 || items[1].ID == 0 || items[2].ID != 0 || items[3].ID == 0 || items[1].State != outbox.Pending {
			t.Errorf("IDs = %d %d %d %d, want those of the added k2 (first) and k3 only", items[0].ID, items[1].ID, items[2].ID, items[3].ID)
		}
		if got, want := claim(t, s, outbox.LaneChat, t0, 10), []string{"k1"}; !slices.Equal(got, want) {
			t.Errorf("claimed first: %v, want %v (in order, one at a time per incident)", got, want)
		}
		backlog, err := s.OutboxBacklog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, b := range backlog {
			total += b.Pending
		}
		if total != 3 {
			t.Errorf("pending items: got %d, want 3 (k1, k2 and k3 once each)", total)
		}
		_, err = s.EnqueueOutbox(ctx, &outbox.Item{Lane: outbox.LaneChat, Kind: "post"})
		wantCode(t, err, incidents.EINVALID)
	})
}

func TestFindGroupingIncidents(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		want := open(t, s, "grouping", "")
		open(t, s, "keyed", "checkout")
		stopped := open(t, s, "stopped", "")
		if err := s.StopGrouping(ctx, stopped.ID); err != nil {
			t.Fatal(err)
		}
		resolved := open(t, s, "resolved", "")
		at := t0.Add(time.Hour)
		resolved.Status, resolved.ResolvedAt = incidents.StatusResolved, &at
		if err := s.UpdateIncident(ctx, resolved); err != nil {
			t.Fatal(err)
		}
		open(t, s, "not-asked", "")

		got, err := s.FindGroupingIncidents(ctx, []string{"grouping", "keyed", "stopped", "resolved", "none"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != want.ID || got[0].Agent != "grouping" || got[0].Version != want.Version {
			t.Errorf("got %v, want only incident %d of agent grouping", got, want.ID)
		}
		if got, err := s.FindGroupingIncidents(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("no agents: got %v, %v; want nothing", got, err)
		}
	})
}

func TestUpdateIntakeFieldsSkipsIncidentsChangedMeanwhile(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		incs := []*incidents.Incident{open(t, s, "a", ""), open(t, s, "b", ""), open(t, s, "c", "")}
		moved := *incs[1]
		moved.SlackChannelID = "C0MOVED"
		if err := s.UpdateIncident(ctx, &moved); err != nil {
			t.Fatal(err)
		}
		later := t0.Add(time.Minute)
		for _, inc := range incs {
			inc.Sessions = append(inc.Sessions, "s-"+inc.Agent)
			inc.Links = append(inc.Links, incidents.Link{Text: "trace", URL: "https://traces.example/" + inc.Agent})
			inc.Severity, inc.LastAlertAt = incidents.SeverityWarning, later
		}
		before := incs[0].Version
		written, err := s.UpdateIntakeFields(ctx, incs)
		if err != nil {
			t.Fatal(err)
		}
		if want := []bool{true, false, true}; !slices.Equal(written, want) {
			t.Errorf("written: got %v, want %v", written, want)
		}
		for i, inc := range incs {
			got, err := s.FindIncident(ctx, inc.ID)
			if err != nil {
				t.Fatal(err)
			}
			if i == 1 {
				if got.SlackChannelID != "C0MOVED" || len(got.Sessions) != 0 || got.Severity != incidents.SeverityCritical {
					t.Errorf("incident b: %+v; want it as the other writer left it", got)
				}
				continue
			}
			if !slices.Equal(got.Sessions, []string{"s-" + inc.Agent}) || len(got.Links) != 1 ||
				got.Severity != incidents.SeverityWarning || !got.LastAlertAt.Equal(later) || got.Version != before+1 || inc.Version != got.Version {
				t.Errorf("incident %s: %+v (caller's version %d); want the alert fields written and version %d", inc.Agent, got, inc.Version, before+1)
			}
		}
	})
}

func TestInsertIncidentsSkipsAgentsWithOneOpen(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		existing := open(t, s, "billing-bot", "")
		inc := func(agent string, unowned bool) *incidents.Incident {
			return &incidents.Incident{Agent: agent, Unowned: unowned, Title: agent + " misbehaves", Severity: incidents.SeverityCritical,
				Source: "alertmanager", Sessions: []string{"s-1"}, CreatedAt: t0, StartedAt: t0, LastAlertAt: t0}
		}
		incs := []*incidents.Incident{inc("support-bot", false), inc("billing-bot", false), inc("stray-bot", true)}
		created, err := s.InsertIncidents(ctx, incs)
		if err != nil {
			t.Fatal(err)
		}
		if want := []bool{true, false, true}; !slices.Equal(created, want) {
			t.Fatalf("created: got %v, want %v", created, want)
		}
		if !(existing.ID < incs[0].ID && incs[0].ID < incs[2].ID) || incs[0].Version != 1 || incs[0].Status != incidents.StatusOpen {
			t.Errorf("IDs %d, %d after %d, version %d, status %q; want them in order, version 1, open",
				incs[0].ID, incs[2].ID, existing.ID, incs[0].Version, incs[0].Status)
		}
		for _, want := range []*incidents.Incident{incs[0], incs[2]} {
			got, err := s.FindIncident(ctx, want.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Agent != want.Agent || got.Unowned != want.Unowned || !slices.Equal(got.Sessions, want.Sessions) || !got.CreatedAt.Equal(t0) {
				t.Errorf("stored %+v, want %+v", got, want)
			}
		}
		if got, err := s.FindGroupingIncidents(ctx, []string{"billing-bot"}); err != nil || len(got) != 1 || got[0].ID != existing.ID {
			t.Errorf("billing-bot: got %v, %v; want only incident %d", got, err, existing.ID)
		}
	})
}

// WriteIntake writes incidents, events and outbox rows together (one
// statement on PostgreSQL); each part behaves as its own method does.
func TestWriteIntake(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		a, b := open(t, s, "a", ""), open(t, s, "b", "")
		moved := *b
		moved.SlackChannelID = "C0MOVED"
		if err := s.UpdateIncident(ctx, &moved); err != nil {
			t.Fatal(err)
		}
		enqueue(t, s, a.ID, outbox.LaneChat, "taken")
		for _, inc := range []*incidents.Incident{a, b} {
			inc.Sessions, inc.PagerDutyKey = []string{"s-" + inc.Agent}, "reins-"+inc.Agent
		}
		var events []*incidents.Event
		for i := range 5 {
			events = append(events, &incidents.Event{IncidentID: a.ID, At: t0, Kind: incidents.EventAlertFired,
				Actor: incidents.System, Text: fmt.Sprintf("e-%d", i), Data: json.RawMessage(`{}`)})
		}
		item := func(key string) *outbox.Item {
			return &outbox.Item{IncidentID: a.ID, Lane: outbox.LaneRefresh, Kind: incidents.KindUpdateSummary, Key: key,
				Payload: json.RawMessage(`{}`), CreatedAt: t0, NextAttemptAt: t0}
		}
		var written []bool
		err := s.InTx(ctx, func(q incidents.Queries) (err error) {
			written, err = q.WriteIntake(ctx, []*incidents.Incident{a, b}, events, []*outbox.Item{item("taken"), item("new")})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := []bool{true, false}; !slices.Equal(written, want) {
			t.Errorf("written: got %v, want %v", written, want)
		}
		if got, err := s.FindIncident(ctx, a.ID); err != nil || got.PagerDutyKey != "reins-a" || !slices.Equal(got.Sessions, []string{"s-a"}) || got.Version != a.Version {
			t.Errorf("incident a: %+v, %v; want the intake fields written, version %d", got, err, a.Version)
		}
		if got, err := s.FindIncident(ctx, b.ID); err != nil || got.PagerDutyKey != "" || got.SlackChannelID != "C0MOVED" {
			t.Errorf("incident b: %+v, %v; want it as the other writer left it", got, err)
		}
		stored, err := s.FindEvents(ctx, a.ID)
		if err != nil || len(stored) != 5 || stored[0].Text != "e-0" || stored[4].Text != "e-4" {
			t.Errorf("events: %d (%v), want e-0..e-4 in order", len(stored), err)
		}
		backlog, err := s.OutboxBacklog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, l := range backlog {
			total += l.Pending
		}
		if total != 2 {
			t.Errorf("pending outbox items: got %d, want 2 (taken once, new)", total)
		}
		_, err = s.WriteIntake(ctx, nil, nil, []*outbox.Item{{Lane: outbox.LaneChat, Kind: "post"}})
		wantCode(t, err, incidents.EINVALID)
	})
}
