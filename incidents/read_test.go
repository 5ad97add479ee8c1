package incidents_test

import (
	"testing"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
)

func TestReads(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())
	incidentstest.Drain(t, env, outbox.LaneChat)
	if _, err := env.Halting.Halt(ctx, incidentstest.HaltCmd(alice)); err != nil {
		t.Fatalf("Halt: %v", err)
	}

	tests := []struct {
		name string
		run  func() (int, error)
		want int
	}{
		{name: "IncidentByChannel", want: 1, run: func() (int, error) {
			inc, err := env.Service.IncidentByChannel(ctx, "C001")
			if err != nil {
				return 0, err
			}
			return int(inc.ID), nil
		}},
		{name: "FindIncidentsOpen", want: 1, run: func() (int, error) {
			incs, err := env.Service.FindIncidents(ctx, incidents.IncidentFilter{Status: incidents.StatusOpen})
			return len(incs), err
		}},
		{name: "FindIncidentsResolved", want: 0, run: func() (int, error) {
			incs, err := env.Service.FindIncidents(ctx, incidents.IncidentFilter{Status: incidents.StatusResolved})
			return len(incs), err
		}},
		{name: "Alerts", want: 1, run: func() (int, error) {
			alerts, err := env.Service.Alerts(ctx, 1)
			return len(alerts), err
		}},
		{name: "HaltsByAlias", want: 1, run: func() (int, error) {
			halts, err := env.Service.Halts(ctx, "support-bot-v2", 0)
			return len(halts), err
		}},
		{name: "HaltsOfOtherIncident", want: 0, run: func() (int, error) {
			halts, err := env.Service.Halts(ctx, "", 2)
			return len(halts), err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.run()
			if err != nil || got != tt.want {
				t.Errorf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	env := incidentstest.NewEnv()
	if _, err := env.Service.IncidentByChannel(ctx, "C999"); incidents.ErrorCode(err) != incidents.ENOTFOUND {
		t.Errorf("IncidentByChannel: got %v, want ENOTFOUND", err)
	}
	if _, err := env.Service.Timeline(ctx, 42); incidents.ErrorCode(err) != incidents.ENOTFOUND {
		t.Errorf("Timeline: got %v, want ENOTFOUND", err)
	}
	if _, err := env.Service.FindIncidents(ctx, incidents.IncidentFilter{Limit: -1}); incidents.ErrorCode(err) != incidents.EINVALID {
		t.Errorf("FindIncidents: got %v, want EINVALID", err)
	}
}

func TestRemember(t *testing.T) {
	env := incidentstest.NewEnv()
	for i, want := range []bool{true, false} {
		got, err := env.Service.Remember(ctx, "slack:Ev123")
		if err != nil || got != want {
			t.Errorf("call %d: got %v, %v; want %v", i+1, got, err, want)
		}
	}
}
