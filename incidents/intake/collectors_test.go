package intake_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/ownership"
)

// A source opens at most alerts.max_new_incidents_per_minute incidents a
// minute (20 by default): the alerts of further agents join one overflow
// incident, agents with an open incident still get their alerts, and a
// minute later agents open their own incidents again.
func TestIngestCapsNewIncidentsPerSource(t *testing.T) {
	reg := incidentstest.Registry()
	for i := range 30 {
		name := fmt.Sprintf("agent-%02d", i)
		reg.Agents[name] = &ownership.Agent{Name: name, Team: "support-ai"}
	}
	env := incidentstest.NewEnv(func(d *incidents.Deps, _ *incidents.Config) { d.Registry = ownership.NewHolder(reg) })
	alertFor := func(agent string) incidents.Alert {
		return incidentstest.Alert(incidentstest.WithFingerprint("fp-"+agent), func(a *incidents.Alert) { a.Agent = agent })
	}
	incidentstest.Ingest(t, env, alertFor("support-bot"))
	var storm []incidents.Alert
	for i := range 30 {
		storm = append(storm, alertFor(fmt.Sprintf("agent-%02d", i)))
	}
	storm = append(storm, alertFor("support-bot"))
	res := incidentstest.Ingest(t, env, storm...)
	if res.Opened != 20 { // 19 agents + the overflow
		t.Errorf("opened %d incidents, want 20 (19 agents to reach the cap of 20, then the overflow)", res.Opened)
	}
	overflow := incidentstest.FindIncident(t, env, 21)
	if overflow.Agent != "overflow:generic" || !overflow.Unowned {
		t.Errorf("incident 21: agent %q unowned %v, want the unowned overflow:generic", overflow.Agent, overflow.Unowned)
	}
	alerts, err := env.Store.FindAlerts(ctx, overflow.ID)
	if err != nil || len(alerts) != 11 {
		t.Fatalf("overflow alerts: %d %v, want agent-19 to agent-29", len(alerts), err)
	}
	if first := incidentstest.FindIncident(t, env, 1); first.Agent != "support-bot" {
		t.Fatalf("incident 1 is %s", first.Agent)
	}
	if got, err := env.Store.FindAlerts(ctx, 1); err != nil || len(got) != 1 {
		t.Errorf("support-bot's open incident holds %d alerts (%v), want its one alert (a repeat joins it)", len(got), err)
	}

	env.Clock.Advance(time.Minute)
	res = incidentstest.Ingest(t, env, alertFor("agent-29"))
	if res.Opened != 1 || incidentstest.FindIncident(t, env, res.Incidents[0]).Agent != "agent-29" {
		t.Errorf("a minute later agent-29 got %+v, want its own incident", res)
	}
}

// Alerts for agents the registry does not have, whatever their names, go to
// one unrouted incident per source, and a generic dedup_key shared by two
// unknown agents stays two alerts there.
func TestIngestUnknownAgentsShareOneUnroutedIncident(t *testing.T) {
	env := incidentstest.NewEnv()
	var alerts []incidents.Alert
	for i := range 200 {
		alerts = append(alerts, incidentstest.Alert(incidentstest.WithFingerprint("same-key"), func(a *incidents.Alert) {
			a.Agent = fmt.Sprintf("ghost-%03d", i)
		}))
	}
	res := incidentstest.Ingest(t, env, alerts...)
	if res.Opened != 1 || len(res.Incidents) != 1 {
		t.Fatalf("result %+v, want one incident opened", res)
	}
	inc := incidentstest.FindIncident(t, env, 1)
	if inc.Agent != "unrouted:generic" || !inc.Unowned {
		t.Errorf("incident: agent %q unowned %v, want unowned unrouted:generic", inc.Agent, inc.Unowned)
	}
	if got, err := env.Store.FindAlerts(ctx, 1); err != nil || len(got) != 200 {
		t.Errorf("alerts: %d (%v), want 200", len(got), err)
	}
	if got := incidentstest.OutboxKeys(env, incidents.KindCreateChannel); len(got) != 1 {
		t.Errorf("channels queued: %v, want one", got)
	}
}

// An unknown agent's recovery finds its alert in the unrouted incident.
func TestIngestUnknownAgentRecovers(t *testing.T) {
	env := incidentstest.NewEnv()
	ghost := func(a *incidents.Alert) { a.Agent = "ghost-bot" }
	incidentstest.Ingest(t, env, incidentstest.Alert(ghost))
	res := incidentstest.Ingest(t, env, incidentstest.Alert(ghost, func(a *incidents.Alert) { a.Status = incidents.AlertResolved }))
	if res.Changed != 1 || len(res.Incidents) != 1 || res.Incidents[0] != 1 {
		t.Fatalf("recovery: %+v, want it to change the alert in incident 1", res)
	}
	alerts, err := env.Store.FindAlerts(ctx, 1)
	if err != nil || len(alerts) != 1 || alerts[0].Status != incidents.AlertResolved || alerts[0].Agent != "ghost-bot" {
		t.Fatalf("alerts of the unrouted incident: %+v %v", alerts, err)
	}
}
