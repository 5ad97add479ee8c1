package main

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// deployMetricFiles are the files under examples/deploy that query /metrics.
var deployMetricFiles = []string{
	"../../examples/deploy/prometheus/reins-alerts.yaml",
	"../../examples/deploy/grafana/reins-dashboard.json",
}

// metricsNotFromReins are series Prometheus makes itself, not reins.
var metricsNotFromReins = map[string]string{
	"up": "Prometheus's own scrape health, used by ReinsNoReplicaUp",
}

// awaitedMetrics are names the alert rules use for signals reins does not
// export yet. Each is a known gap, listed here so it cannot hide: the alert
// stays silent until the metric exists. Remove an entry when it lands.
var awaitedMetrics = map[string]string{}

// Every metric name the shipped alert rules and dashboard query is exported by
// a running reins once it has done the work the metric counts: an alert, a
// refused webhook, a retried and a given-up delivery, a halt, a drill, and a
// session step that breaches an SLA.
func TestDeployMetricNamesExist(t *testing.T) {
	e := guardEnv(t, false, `      - metric: tool_scope
        allow: ["salesforce.*"]
`)
	e.PD.FailNext(1, http.StatusBadRequest, "")               // the page is refused for good: buried
	e.Slack.RateLimit("conversations.create", 1, 1)           // the channel is retried once
	e.Slack.Fail("conversations.setTopic", "invalid_auth", 1) // the token is refused once
	if status, body := e.webhook("generic", []byte(`{"agent":"support-bot","summary":"spend"}`)); status != http.StatusOK {
		t.Fatalf("webhook: %d %s", status, body)
	}
	if status, _ := e.do(http.MethodPost, "/webhooks/generic", http.Header{"Content-Type": {"application/json"}}, []byte(`{}`)); status != http.StatusUnauthorized {
		t.Fatalf("webhook without token: %d, want 401", status)
	}
	if status, body := e.api(http.MethodPost, "/agents/support-bot/halt", map[string]any{"reason": "runaway", "actor": "ops"}); status != http.StatusOK {
		t.Fatalf("halt: %d %s", status, body)
	}
	if _, err := e.Main.Drills.RunDrill(context.Background(), "support-bot", time.Now()); err != nil {
		t.Fatalf("drill: %v", err)
	}

	run := newAgentRun(t, e, "s-metrics")
	run.chat(1_000)
	run.tool("shell.exec", `{"cmd":"true"}`) // outside tool_scope: a breach

	var exported map[string]bool
	e.eventually("every metric the work produces", func() bool {
		exported = scrapeMetricNames(t, e)
		return exported["reins_outbox_failed_total"] && exported["reins_outbox_retries_total"] &&
			exported["reins_outbox_delivered_total"] && exported["reins_integration_auth_failures_total"] &&
			exported["reins_sla_breaches_total"] && exported["reins_agent_tokens_total"] && exported["reins_agent_cost_usd_total"]
	})

	name := regexp.MustCompile(`\b(reins_[a-z0-9_]+|up)\b`)
	for _, file := range deployMetricFiles {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		used := name.FindAllString(string(b), -1)
		slices.Sort(used)
		for _, m := range slices.Compact(used) {
			switch {
			case exported[m]:
			case metricsNotFromReins[m] != "":
			case awaitedMetrics[m] != "":
				t.Logf("%s: %s is not exported yet (%s)", file, m, awaitedMetrics[m])
			default:
				t.Errorf("%s uses %s, which reins does not export", file, m)
			}
		}
	}
}

// scrapeMetricNames returns the sample names in GET /metrics.
func scrapeMetricNames(t *testing.T, e *testEnv) map[string]bool {
	t.Helper()
	status, body := e.do(http.MethodGet, "/metrics", nil, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /metrics: %d", status)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}
