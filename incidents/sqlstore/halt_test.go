package sqlstore_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sqlstore"
)

var ana = incidents.Actor{Kind: incidents.ActorSlack, ID: "U01", Name: "ana"}

func TestHalts(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		inc := open(t, s, "support-bot", "")
		h1 := &incidents.Halt{IncidentID: inc.ID, Agent: "support-bot", Action: incidents.ActionHalt,
			Reason: "token spike", Actor: ana, Adapter: "flag", Status: incidents.HaltRequested, RequestedAt: t0}
		until := t0.Add(10 * time.Minute)
		h2 := &incidents.Halt{IncidentID: 0, Agent: "support-bot", Action: incidents.ActionRestrict, Sessions: []string{"s1"},
			Allow: []string{"salesforce.read", "zendesk.*"}, ProbationUntil: &until,
			Actor: ana, Adapter: "flag", Status: incidents.HaltRequested, RequestedAt: t0.Add(time.Minute)}
		h3 := &incidents.Halt{Agent: "sales-bot", Action: incidents.ActionResume, Actor: incidents.System,
			Adapter: "webhook", Status: incidents.HaltRequested, RequestedAt: t0.Add(2 * time.Minute)}
		for _, h := range []*incidents.Halt{h1, h2, h3} {
			if err := s.CreateHalt(ctx, h); err != nil || h.ID == 0 {
				t.Fatalf("CreateHalt = %v, ID %d", err, h.ID)
			}
		}
		done := t0.Add(800 * time.Millisecond)
		h1.Status, h1.Attempts, h1.FinishedAt, h1.Error = incidents.HaltVerified, 2, &done, "first try timed out"
		if err := s.UpdateHalt(ctx, h1); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name     string
			agent    string
			incident int64
			want     []*incidents.Halt
		}{
			{"All", "", 0, []*incidents.Halt{h3, h2, h1}},
			{"Agent", "support-bot", 0, []*incidents.Halt{h2, h1}},
			{"Incident", "", inc.ID, []*incidents.Halt{h1}},
			{"None", "nobody", 0, []*incidents.Halt{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.FindHalts(ctx, tt.agent, tt.incident)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("FindHalts(%q, %d) =\n%+v\nwant\n%+v", tt.agent, tt.incident, got, tt.want)
				}
			})
		}
		wantCode(t, s.UpdateHalt(ctx, &incidents.Halt{ID: 404, Status: incidents.HaltFailed}), incidents.ENOTFOUND)
	})
}

func TestKillFlags(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		flags := []incidents.KillFlag{
			{Agent: "support-bot", Halted: true, Reason: "spike", Actor: ana, IncidentID: 1, UpdatedAt: t0},
			{Agent: "support-bot", Session: "s1", Halted: true, Actor: ana, UpdatedAt: t0},
			{Agent: "support-bot", Halted: false, Reason: "fixed", Actor: ana, IncidentID: 1, UpdatedAt: t0.Add(time.Hour)},
		}
		for _, f := range flags {
			if err := s.SetKillFlag(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.KillFlags(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// the agent's flag was set twice: one row, updated; a flag without a
		// mode is stored with the mode its halted says.
		want := []incidents.KillFlag{flags[2], flags[1]}
		want[0].Mode, want[1].Mode = incidents.ModeRunning, incidents.ModeHalted
		if !reflect.DeepEqual(got, want) {
			t.Errorf("KillFlags =\n%+v\nwant\n%+v", got, want)
		}
		restricted := incidents.KillFlag{Agent: "support-bot", Session: "s2", Mode: incidents.ModeRestricted,
			Allow: []string{"salesforce.read", "zendesk.*"}, Actor: ana, UpdatedAt: t0}
		throttled := incidents.KillFlag{Agent: "support-bot", Session: "s3", Mode: incidents.ModeThrottled, Rate: 6,
			Actor: ana, UpdatedAt: t0}
		for _, f := range []incidents.KillFlag{restricted, throttled} {
			if err := s.SetKillFlag(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		got, err = s.KillFlags(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 || !reflect.DeepEqual(got[2], restricted) || !reflect.DeepEqual(got[3], throttled) {
			t.Errorf("KillFlags with rungs =\n%+v", got)
		}
	})
}

func TestAudit(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		entries := []*incidents.AuditEntry{
			{At: t0, Actor: ana, Action: "kill", Agent: "support-bot", Allowed: true, Detail: "token spike"},
			{At: t0.Add(time.Second), Actor: ana, Action: "kill_refused", Agent: "sales-bot", Allowed: false},
			{At: t0.Add(2 * time.Second), Actor: incidents.System, Action: "drill", Agent: "support-bot", Allowed: true},
		}
		for _, e := range entries {
			if err := s.AppendAudit(ctx, e); err != nil || e.ID == 0 {
				t.Fatalf("AppendAudit = %v, ID %d", err, e.ID)
			}
		}
		tests := []struct {
			name  string
			agent string
			limit int
			want  []*incidents.AuditEntry
		}{
			{"All", "", 0, []*incidents.AuditEntry{entries[2], entries[1], entries[0]}},
			{"Agent", "support-bot", 0, []*incidents.AuditEntry{entries[2], entries[0]}},
			{"Limit", "", 1, []*incidents.AuditEntry{entries[2]}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.FindAudit(ctx, tt.agent, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("FindAudit(%q, %d) =\n%+v\nwant\n%+v", tt.agent, tt.limit, got, tt.want)
				}
			})
		}
	})
}

func TestDrills(t *testing.T) {
	each(t, func(t *testing.T, s *sqlstore.Store) {
		drills := []*incidents.DrillResult{
			{Agent: "support-bot", Adapter: "flag", At: t0, OK: false, Error: "401 from flag service", Actor: incidents.System},
			{Agent: "support-bot", Adapter: "flag", At: t0.Add(time.Hour), OK: true, Actor: ana},
			{Agent: "sales-bot", Adapter: "webhook", At: t0, OK: true, Actor: incidents.System},
		}
		for _, d := range drills {
			if err := s.RecordDrill(ctx, d); err != nil || d.ID == 0 {
				t.Fatalf("RecordDrill = %v, ID %d", err, d.ID)
			}
		}
		got, err := s.LastDrills(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]*incidents.DrillResult{"support-bot": drills[1], "sales-bot": drills[2]}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("LastDrills =\n%+v\nwant\n%+v", got, want)
		}
	})
}
