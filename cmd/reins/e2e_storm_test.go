package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/integrations/halt/halttest"
)

// alertmanagerBody is one Alertmanager notification with a firing alert per
// agent label value.
func alertmanagerBody(t *testing.T, agents ...string) []byte {
	t.Helper()
	alerts := make([]map[string]any, 0, len(agents))
	for _, ag := range agents {
		alerts = append(alerts, map[string]any{
			"status":      "firing",
			"labels":      map[string]string{"alertname": "AgentErrors", "agent": ag, "severity": "critical"},
			"annotations": map[string]string{"summary": "errors from " + ag},
			"startsAt":    time.Now().UTC().Format(time.RFC3339),
			"endsAt":      "0001-01-01T00:00:00Z",
		})
	}
	b, err := json.Marshal(map[string]any{"version": "4", "status": "firing", "receiver": "reins",
		"groupKey": "{}:{}", "alerts": alerts})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// triggers counts the accepted PagerDuty triggers.
func (e *testEnv) triggers() (n int, keys []string) {
	for _, ev := range e.PD.Events() {
		if ev.Accepted() && ev.Action == "trigger" {
			n++
			keys = append(keys, ev.RoutingKey)
		}
	}
	return n, keys
}

// incidentAgents lists the stored incidents' agents, newest first.
func (e *testEnv) incidentAgents() []string {
	e.t.Helper()
	status, body := e.api(http.MethodGet, "/incidents", nil)
	if status != http.StatusOK {
		e.t.Fatalf("list incidents: %d %s", status, body)
	}
	var got struct {
		Incidents []struct{ Agent string } `json:"incidents"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		e.t.Fatalf("list incidents: %v: %s", err, body)
	}
	var out []string
	for _, inc := range got.Incidents {
		out = append(out, inc.Agent)
	}
	return out
}

// One webhook body naming 200 agents reins.yaml does not have opens one
// unrouted incident: one channel, one governance post and one page (to
// PAGERDUTY_ROUTING_KEY), each saying to add the agent to reins.yaml and
// naming the label values seen.
func TestUnknownAgentStormOpensOneUnroutedIncident(t *testing.T) {
	e := startTestMain(t, testOptions{})
	var ghosts []string
	for i := range 200 {
		ghosts = append(ghosts, fmt.Sprintf("ghost-%03d", i))
	}
	if status, body := e.webhook("alertmanager", alertmanagerBody(t, ghosts...)); status != http.StatusOK {
		t.Fatalf("webhook: %d %s", status, body)
	}
	e.eventually("the unrouted incident's channel, summary and page", func() bool {
		chs := incidentChannels(e.Slack)
		n, _ := e.triggers()
		return len(chs) == 1 && len(e.Slack.Messages(chs[0].ID)) > 0 && n == 1
	})
	time.Sleep(500 * time.Millisecond) // nothing more is coming
	if chs := incidentChannels(e.Slack); len(chs) != 1 {
		t.Errorf("channels: got %d, want 1", len(chs))
	}
	if n, keys := e.triggers(); n != 1 || keys[0] != "default-routing-key" {
		t.Errorf("pages: got %d to %v, want 1 to PAGERDUTY_ROUTING_KEY", n, keys)
	}
	if agents := e.incidentAgents(); len(agents) != 1 || agents[0] != "unrouted:alertmanager" {
		t.Errorf("incidents: got %v, want one unrouted:alertmanager", agents)
	}
	ch := incidentChannels(e.Slack)[0]
	summary := e.Slack.Messages(ch.ID)[0]
	for _, want := range []string{"Add this agent to reins.yaml", "ghost-000", "ghost-019"} {
		if !strings.Contains(string(summary.Blocks), want) {
			t.Errorf("channel summary lacks %q:\n%s", want, summary.Blocks)
		}
	}
	e.eventually("the governance post", func() bool { return len(e.Slack.Messages("C0GOVERN")) > 0 })
	post := e.Slack.Messages("C0GOVERN")[0]
	for _, want := range []string{"add this agent to reins.yaml", "ghost-000", "and 180 more"} {
		if !strings.Contains(string(post.Blocks)+post.Text, want) {
			t.Errorf("governance post lacks %q:\n%s", want, post.Blocks)
		}
	}

	// The next storm of the same unknown agents joins it.
	if status, body := e.webhook("alertmanager", alertmanagerBody(t, ghosts[:50]...)); status != http.StatusOK {
		t.Fatalf("webhook: %d %s", status, body)
	}
	if agents := e.incidentAgents(); len(agents) != 1 {
		t.Errorf("incidents after a second storm: got %v, want the one", agents)
	}
}

// Without PAGERDUTY_ROUTING_KEY an unrouted incident pages nobody, and its
// timeline says so and why.
func TestUnroutedIncidentSaysWhyNobodyWasPaged(t *testing.T) {
	e := startTestMain(t, testOptions{Env: map[string]string{"PAGERDUTY_ROUTING_KEY": ""}})
	if status, body := e.webhook("alertmanager", alertmanagerBody(t, "ghost-bot")); status != http.StatusOK {
		t.Fatalf("webhook: %d %s", status, body)
	}
	status, body := e.api(http.MethodGet, "/incidents/1", nil)
	if status != http.StatusOK {
		t.Fatalf("incident: %d %s", status, body)
	}
	if !regexp.MustCompile(`Nobody was paged: [^"]*not in reins.yaml[^"]*PAGERDUTY_ROUTING_KEY is not set`).Match(body) {
		t.Errorf("the timeline does not say why nobody was paged:\n%s", body)
	}
	e.eventually("the channel", func() bool { return len(incidentChannels(e.Slack)) == 1 })
	if n, _ := e.triggers(); n != 0 {
		t.Errorf("pages: got %d, want none", n)
	}
}

// With alerts.max_new_incidents_per_minute: 2, the source's third new
// incident in a minute is not opened: its alert joins the source's overflow
// incident, and reins_alerts_overflowed_total counts it.
func TestNewIncidentCapSendsTheRestToOverflow(t *testing.T) {
	hook := halttest.NewWebhook(t, haltSecret)
	tmpl, err := os.ReadFile("testdata/reins.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.ReplaceAll(string(tmpl), "{{HALT_URL}}", hook.URL())
	cfg = strings.Replace(cfg, "  group_window: 4h\n", "  group_window: 4h\n  max_new_incidents_per_minute: 2\n", 1)
	path := filepath.Join(t.TempDir(), "reins.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startTestMain(t, testOptions{Config: path, Halt: hook})
	before := overflowed(t, e, "alertmanager")
	for _, agent := range []string{"ghost-bot", "support-bot", "flag-bot", "flag-bot"} {
		if status, body := e.webhook("alertmanager", alertmanagerBody(t, agent)); status != http.StatusOK {
			t.Fatalf("webhook %s: %d %s", agent, status, body)
		}
	}
	agents := e.incidentAgents()
	if strings.Join(agents, ",") != "overflow:alertmanager,support-bot,unrouted:alertmanager" {
		t.Errorf("incidents: got %v, want unrouted, support-bot, then the overflow", agents)
	}
	if got := overflowed(t, e, "alertmanager") - before; got != 2 {
		t.Errorf("reins_alerts_overflowed_total{source=alertmanager} grew by %v, want 2", got)
	}
	e.eventually("three channels and three pages", func() bool {
		n, _ := e.triggers()
		return len(incidentChannels(e.Slack)) == 3 && n == 3
	})
	ch := incidentChannels(e.Slack)
	var overflowSummary string
	for _, c := range ch {
		if strings.Contains(c.Name, "overflow") {
			e.eventually("the overflow summary", func() bool { return len(e.Slack.Messages(c.ID)) > 0 })
			overflowSummary = string(e.Slack.Messages(c.ID)[0].Blocks)
		}
	}
	if !strings.Contains(overflowSummary, "max_new_incidents_per_minute") || !strings.Contains(overflowSummary, "flag-bot") {
		t.Errorf("the overflow channel's summary does not explain itself:\n%s", overflowSummary)
	}
}

// overflowed reads reins_alerts_overflowed_total for source from /metrics.
func overflowed(t *testing.T, e *testEnv, source string) float64 {
	t.Helper()
	_, body := e.do(http.MethodGet, "/metrics", nil, nil)
	m := regexp.MustCompile(`(?m)^reins_alerts_overflowed_total\{source="` + source + `"\} (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
