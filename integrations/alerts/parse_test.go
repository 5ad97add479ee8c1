package alerts_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/alerts"
)

var now = time.Date(2026, 11, 28, 2, 1, 30, 0, time.UTC)

// registry resolves like a reins.yaml with support-bot (alias support-bot-v2)
// and refund-agent.
func testOptions() alerts.Options {
	known := map[string]string{"support-bot": "support-bot", "support-bot-v2": "support-bot", "refund-agent": "refund-agent"}
	return alerts.Options{
		AgentLabels:   []string{"agent", "service"},
		SessionLabels: []string{"session_id", "session_ids"},
		Resolve: func(name string) (string, bool) {
			c, ok := known[name]
			return c, ok
		},
		Now: now,
	}
}

func fixture(t testing.TB, source, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", source, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// summary is the part of an alert the tables check.
type summary struct {
	Agent, Fingerprint, Status, Severity, Title string
	Sessions                                    []string
	Links                                       []string // "text url"
}

func summarize(a incidents.Alert) summary {
	s := summary{Agent: a.Agent, Fingerprint: a.Fingerprint, Status: a.Status, Severity: a.Severity, Title: a.Title, Sessions: a.Sessions}
	for _, l := range a.Links {
		s.Links = append(s.Links, l.Text+" "+l.URL)
	}
	return s
}

const (
	generatorURL = "source http://prometheus.example.com:9090/graph?g0.expr=sum+by%28agent%2Csession_id%29%28rate%28llm_tokens_total%5B5m%5D%29%29+%3E+40000&g0.tab=1"
	runbook      = "runbook https://wiki.example.com/agents/support-bot#token-spike"
)

func TestParsers(t *testing.T) {
	spike := func(fp, session, status string) summary {
		return summary{Agent: "support-bot", Fingerprint: fp, Status: status, Severity: "critical", Title: "AgentTokenSpike on support-bot session " + session,
			Sessions: []string{session},
			Links:    []string{runbook, "session https://langfuse.example.com/project/p1/sessions/" + session, generatorURL}}
	}
	grafanaLinks := []string{
		"runbook https://wiki.example.com/agents/support-bot",
		"source https://grafana.example.com/alerting/grafana/be1kx0v8ey9s0b/view?orgId=1",
		"panel https://grafana.example.com/d/agents?orgId=1&viewPanel=4",
		"dashboard https://grafana.example.com/d/agents?orgId=1",
		"silence https://grafana.example.com/alerting/silence/new?alertmanager=grafana&matcher=__alert_rule_uid__%3Dbe1kx0v8ey9s0b&orgId=1",
	}
	firing := []summary{spike("3f6a9c2d1b7e4a05", "s-8812", "firing"), spike("8c1d2e3f4a5b6c7d", "s-8813", "firing")}
	tests := []struct {
		source, file string
		parse        alerts.Parser
		want         []summary
		wantErr      string
	}{
		{"alertmanager", "firing.json", alerts.ParseAlertmanager, firing, ""},
		{"alertmanager", "repeat.json", alerts.ParseAlertmanager, firing, ""},
		{"alertmanager", "grown.json", alerts.ParseAlertmanager, append(append([]summary{}, firing...), summary{
			Agent: "support-bot", Fingerprint: "b2c3d4e5f6a7b8c9", Status: "firing", Severity: "critical", Title: "support-bot called tools outside its scope",
			Sessions: []string{"s-8812", "s-8820"},
			Links:    []string{"dashboard https://grafana.example.com/d/agents/support-bot", generatorURL}}), ""},
		{"alertmanager", "resolved.json", alerts.ParseAlertmanager, []summary{
			spike("3f6a9c2d1b7e4a05", "s-8812", "resolved"), spike("8c1d2e3f4a5b6c7d", "s-8813", "resolved")}, ""},
		{"alertmanager", "truncated.json", alerts.ParseAlertmanager, firing, ""},
		{"alertmanager", "alias_no_fingerprint.json", alerts.ParseAlertmanager, []summary{{
			Agent: "support-bot", Fingerprint: "1534eb45cd01bdd4", Status: "firing", Severity: "warning", Title: "p95 latency above 20s",
			Sessions: []string{"s-9001", "s-9002"}, Links: []string{generatorURL}}}, ""},
		{"alertmanager", "unowned.json", alerts.ParseAlertmanager, []summary{{
			Agent: "mystery-bot", Fingerprint: "c0ffee0000000001", Status: "firing", Severity: "info", Title: "AgentErrorRate on support-bot session s-1",
			Sessions: []string{"s-1"}, Links: []string{runbook, "session https://langfuse.example.com/project/p1/sessions/s-1", generatorURL}}}, ""},
		{"alertmanager", "no_agent.json", alerts.ParseAlertmanager, nil, "none of the labels agent, service is set"},
		{"grafana", "firing.json", alerts.ParseAlertmanager, nil, `use /webhooks/grafana`},
		{"grafana", "firing.json", alerts.ParseGrafana, []summary{{
			Agent: "support-bot", Fingerprint: "7d2c1b0a9e8f7a6b", Status: "firing", Severity: "critical", Title: "Token spend 12x baseline",
			Sessions: []string{"s-8812"}, Links: grafanaLinks}}, ""},
		{"grafana", "resolved.json", alerts.ParseGrafana, []summary{{
			Agent: "support-bot", Fingerprint: "7d2c1b0a9e8f7a6b", Status: "resolved", Severity: "critical", Title: "Token spend 12x baseline",
			Sessions: []string{"s-8812"}, Links: grafanaLinks}}, ""},
		{"alertmanager", "firing.json", alerts.ParseGrafana, nil, `use /webhooks/alertmanager`},
		{"datadog", "triggered.json", alerts.ParseDatadog, []summary{{
			Agent: "support-bot", Fingerprint: "9bd4ac313a4d1e8fae2482df7b776280", Status: "firing", Severity: "critical",
			Title: "support-bot token spend", Sessions: []string{"s-8812", "s-8813"},
			Links: []string{"Datadog https://app.datadoghq.com/event/event?id=7701548306271935912"}}}, ""},
		{"datadog", "recovered.json", alerts.ParseDatadog, []summary{{
			Agent: "support-bot", Fingerprint: "9bd4ac313a4d1e8fae2482df7b776280", Status: "resolved", Severity: "critical",
			Title: "support-bot token spend", Sessions: []string{"s-8812", "s-8813"},
			Links: []string{"Datadog https://app.datadoghq.com/event/event?id=7701548306271935912"}}}, ""},
		{"datadog", "warn_alias.json", alerts.ParseDatadog, []summary{{
			Agent: "support-bot", Fingerprint: "monitor-148729362", Status: "firing", Severity: "warning",
			Title: "support-bot latency", Sessions: []string{"s-1"},
			Links: []string{"Datadog https://app.datadoghq.com/event/event?id=7701548306271935912"}}}, ""},
		{"datadog", "default_payload.json", alerts.ParseDatadog, nil, "none of the labels agent, service is set"},
		{"datadog", "date_number.json", alerts.ParseDatadog, nil, "date: want a string"},
		{"generic", "spec.json", alerts.ParseGeneric, []summary{{
			Agent: "support-bot", Fingerprint: "tok-spike", Status: "firing", Severity: "critical",
			Title: "Token spend 12x baseline", Sessions: []string{"s-8812", "s-8813"}}}, ""},
		{"generic", "minimal.json", alerts.ParseGeneric, []summary{{
			Agent: "support-bot", Fingerprint: "daa61676d4bfb707", Status: "firing", Severity: "error",
			Title: "Refund tool called 40 times in one session"}}, ""},
		{"generic", "resolved.json", alerts.ParseGeneric, []summary{{
			Agent: "support-bot", Fingerprint: "tok-spike", Status: "resolved", Severity: "error", Title: "Token spend 12x baseline"}}, ""},
		{"generic", "unknown_field.json", alerts.ParseGeneric, nil, `"sevrity" is not a field reins knows`},
		{"generic", "wrong_type.json", alerts.ParseGeneric, nil, "sessions: want an array, got JSON string"},
		{"generic", "bad_severity.json", alerts.ParseGeneric, nil, `severity: want critical, error, warning or info, got "sev1"`},
		{"generic", "missing_agent.json", alerts.ParseGeneric, nil, "agent: required"},
		{"langfuse", "alert.json", alerts.ParseLangfuse, []summary{{
			Agent: "support-bot", Fingerprint: "monitor-cmig3k2p10001ab12cd34ef56", Status: "firing", Severity: "critical",
			Title: "support-bot tokens per session crossed alert threshold",
			Links: []string{"Langfuse alert https://cloud.langfuse.com/project/cm1proj0000xyz/monitors/cmig3k2p10001ab12cd34ef56"}}}, ""},
		{"langfuse", "ok.json", alerts.ParseLangfuse, []summary{{
			Agent: "support-bot", Fingerprint: "monitor-cmig3k2p10001ab12cd34ef56", Status: "resolved", Severity: "info",
			Title: "support-bot tokens per session back within bounds",
			Links: []string{"Langfuse alert https://cloud.langfuse.com/project/cm1proj0000xyz/monitors/cmig3k2p10001ab12cd34ef56"}}}, ""},
		{"langfuse", "title_agent.json", alerts.ParseLangfuse, []summary{{
			Agent: "support-bot", Fingerprint: "monitor-cmig3k2p10002ab12cd34ef56", Status: "firing", Severity: "warning",
			Title: "[support-bot-v2] p95 latency crossed warning threshold", Sessions: []string{"s-77"},
			Links: []string{"Langfuse alert https://cloud.langfuse.com/project/cm1proj0000xyz/monitors/cmig3k2p10001ab12cd34ef56"}}}, ""},
		{"langfuse", "no_agent.json", alerts.ParseLangfuse, nil, `start its name with "[agent-name]"`},
		{"langfuse", "prompt_version.json", alerts.ParseLangfuse, nil, `type: want "monitor-alert"`},
	}
	for _, tt := range tests {
		name := tt.source + "/" + strings.TrimSuffix(tt.file, ".json")
		if tt.wantErr != "" {
			name += "/Err"
		}
		t.Run(name, func(t *testing.T) {
			got, err := tt.parse(fixture(t, tt.source, tt.file), nil, testOptions())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(incidents.ErrorMessage(err), tt.wantErr) {
					t.Fatalf("err = %v, want message containing %q", err, tt.wantErr)
				}
				if code := incidents.ErrorCode(err); code != incidents.EINVALID {
					t.Errorf("code = %q, want %q", code, incidents.EINVALID)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			var sums []summary
			for _, a := range got {
				sums = append(sums, summarize(a))
				checkCommon(t, a, tt.parse)
			}
			if !reflect.DeepEqual(sums, tt.want) {
				t.Errorf("got\n%+v\nwant\n%+v", sums, tt.want)
			}
		})
	}
}

// checkCommon checks what every parsed alert must hold.
func checkCommon(t *testing.T, a incidents.Alert, _ alerts.Parser) {
	t.Helper()
	if !a.ReceivedAt.Equal(now) {
		t.Errorf("ReceivedAt = %v, want %v", a.ReceivedAt, now)
	}
	if a.StartsAt.IsZero() {
		t.Error("StartsAt is zero")
	}
	if (a.Status == incidents.AlertResolved) != (a.EndsAt != nil) {
		t.Errorf("status %s with EndsAt %v", a.Status, a.EndsAt)
	}
	if a.Details != nil && !json.Valid(a.Details) {
		t.Errorf("Details is not JSON: %s", a.Details)
	}
}

func TestAlertmanagerTimesAndDetails(t *testing.T) {
	got, err := alerts.ParseAlertmanager(fixture(t, "alertmanager", "truncated.json"), nil, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 28, 2, 1, 7, 512000000, time.UTC); !got[0].StartsAt.Equal(want) {
		t.Errorf("StartsAt = %v, want %v", got[0].StartsAt, want)
	}
	if got[0].EndsAt != nil {
		t.Errorf("EndsAt = %v while firing (0001-01-01), want nil", got[0].EndsAt)
	}
	var d struct {
		Truncated int    `json:"truncated_alerts"`
		Note      string `json:"note"`
	}
	if err := json.Unmarshal(got[0].Details, &d); err != nil {
		t.Fatal(err)
	}
	if d.Truncated != 5 || !strings.Contains(d.Note, "5 more alerts") {
		t.Errorf("first alert Details = %s, want the 5 truncated alerts recorded", got[0].Details)
	}
	if strings.Contains(string(got[1].Details), "truncated") {
		t.Errorf("second alert Details = %s, want the note only once", got[1].Details)
	}
	if got[0].Labels["namespace"] != "agents" || got[0].Annotations["description"] == "" {
		t.Errorf("labels/annotations not copied: %v %v", got[0].Labels, got[0].Annotations)
	}
	if !strings.HasPrefix(got[0].Summary, "AgentTokenSpike on support-bot") {
		t.Errorf("Summary = %q, want the summary annotation", got[0].Summary)
	}
}

func TestResolvedTimes(t *testing.T) {
	tests := []struct {
		source, file string
		parse        alerts.Parser
		wantEnd      time.Time
	}{
		{"alertmanager", "resolved.json", alerts.ParseAlertmanager, time.Date(2026, 11, 28, 2, 41, 7, 512000000, time.UTC)},
		{"grafana", "resolved.json", alerts.ParseGrafana, time.Date(2026, 11, 28, 2, 31, 0, 0, time.UTC)},
		{"datadog", "recovered.json", alerts.ParseDatadog, time.UnixMilli(1795833060000).UTC()},
		{"langfuse", "ok.json", alerts.ParseLangfuse, time.Date(2026, 11, 28, 2, 31, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			got, err := tt.parse(fixture(t, tt.source, tt.file), nil, testOptions())
			if err != nil {
				t.Fatal(err)
			}
			if got[0].EndsAt == nil || !got[0].EndsAt.Equal(tt.wantEnd) {
				t.Errorf("EndsAt = %v, want %v", got[0].EndsAt, tt.wantEnd)
			}
		})
	}
}

func TestAgentResolution(t *testing.T) {
	opts := testOptions()
	tests := []struct {
		name   string
		labels string
		want   string
	}{
		{"OK", `{"agent":"support-bot"}`, "support-bot"},
		{"AliasResolved", `{"agent":"support-bot-v2"}`, "support-bot"},
		{"SecondLabelKnownWins", `{"agent":"billing-batch","service":"refund-agent"}`, "refund-agent"},
		{"FirstLabelWinsWhenBothKnown", `{"agent":"refund-agent","service":"support-bot"}`, "refund-agent"},
		{"UnownedFirstPresent", `{"agent":"ghost-bot","service":"other-bot"}`, "ghost-bot"},
		{"UnownedFromSecondLabel", `{"service":"other-bot"}`, "other-bot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"version":"4","status":"firing","alerts":[{"status":"firing","labels":` + tt.labels + `,"startsAt":"2026-11-28T02:00:00Z"}]}`
			got, err := alerts.ParseAlertmanager([]byte(body), nil, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got[0].Agent != tt.want {
				t.Errorf("Agent = %q, want %q", got[0].Agent, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	body := `{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"agent":"x","service":"support-bot","session_ids":"a,b"}}]}`
	got, err := alerts.ParseAlertmanager([]byte(body), nil, alerts.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Agent != "x" || !reflect.DeepEqual(got[0].Sessions, []string{"a", "b"}) {
		t.Errorf("with default labels got agent %q sessions %v, want x [a b]", got[0].Agent, got[0].Sessions)
	}
	if !got[0].StartsAt.Equal(now) {
		t.Errorf("StartsAt = %v, want now when absent", got[0].StartsAt)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name    string
		parse   alerts.Parser
		body    string
		wantErr string
	}{
		{"ErrEmptyGroup", alerts.ParseAlertmanager, `{"version":"4","alerts":[]}`, "alerts: the group holds no alert"},
		{"ErrLabelType", alerts.ParseAlertmanager, `{"version":"4","alerts":[{"labels":{"agent":1}}]}`, "alerts.labels: want a string, got JSON number"},
		{"ErrStatus", alerts.ParseAlertmanager, `{"version":"4","alerts":[{"status":"pending","labels":{"agent":"a"}}]}`, `alerts[0].status: want firing or resolved, got "pending"`},
		{"ErrStartsAt", alerts.ParseAlertmanager, `{"version":"4","alerts":[{"status":"firing","labels":{"agent":"a"},"startsAt":"yesterday"}]}`, `alerts[0].startsAt: "yesterday" is not an RFC 3339 time`},
		{"ErrVersion", alerts.ParseAlertmanager, `{"version":"3","alerts":[]}`, `version: want "4"`},
		{"ErrTruncated", alerts.ParseAlertmanager, `{"version":"4","truncatedAlerts":-1,"alerts":[{"labels":{"agent":"a"}}]}`, "truncatedAlerts: want a count"},
		{"ErrDatadogDate", alerts.ParseDatadog, `{"title":"t","tags":"agent:a","date":"soon"}`, "date: want epoch milliseconds"},
		{"ErrDatadogTitle", alerts.ParseDatadog, `{"tags":"agent:a"}`, "title: missing"},
		{"ErrGenericStatus", alerts.ParseGeneric, `{"agent":"a","summary":"s","status":"open"}`, `status: want firing or resolved, got "open"`},
		{"ErrGenericDetails", alerts.ParseGeneric, `{"agent":"a","summary":"s","details":[1]}`, "details: want an object"},
		{"ErrGenericSummary", alerts.ParseGeneric, `{"agent":"a","summary":"  "}`, "summary: required"},
		{"ErrGenericTrailing", alerts.ParseGeneric, `{"agent":"a","summary":"s"}{}`, "more than one JSON value"},
		{"ErrLangfusePayload", alerts.ParseLangfuse, `{"type":"monitor-alert"}`, "payload: missing"},
		{"ErrLangfuseMonitor", alerts.ParseLangfuse, `{"type":"monitor-alert","payload":{}}`, "payload.monitorId: missing"},
		{"ErrLangfuseTime", alerts.ParseLangfuse, `{"type":"monitor-alert","payload":{"monitorId":"m","message":{"title":"[a] x"},"fromTimestamp":"x"}}`, "payload.fromTimestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.parse([]byte(tt.body), nil, testOptions())
			if err == nil || !strings.Contains(incidents.ErrorMessage(err), tt.wantErr) {
				t.Fatalf("err = %v, want message containing %q", err, tt.wantErr)
			}
			if code := incidents.ErrorCode(err); code != incidents.EINVALID {
				t.Errorf("code = %q, want %q", code, incidents.EINVALID)
			}
		})
	}
}

func TestLinksOnlyHTTP(t *testing.T) {
	body := `{"version":"4","alerts":[{"status":"firing","labels":{"agent":"a"},"annotations":{"evil_url":"javascript:alert(1)","runbook_url":"https://r.example.com","rel_url":"/relative"},"generatorURL":"ftp://x"}]}`
	got, err := alerts.ParseAlertmanager([]byte(body), nil, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	want := []incidents.Link{{Text: "runbook", URL: "https://r.example.com"}}
	if !reflect.DeepEqual(got[0].Links, want) {
		t.Errorf("Links = %v, want %v", got[0].Links, want)
	}
}

func TestGenericDetailsKept(t *testing.T) {
	got, err := alerts.ParseGeneric(fixture(t, "generic", "spec.json"), nil, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]float64
	if err := json.Unmarshal(got[0].Details, &d); err != nil || d["tokens_per_session"] != 240000 {
		t.Errorf("Details = %s, want tokens_per_session 240000", got[0].Details)
	}
	if got[0].Labels["source"] != "langfuse" || got[0].Source != "generic" {
		t.Errorf("Source %q labels %v, want generic with source label langfuse", got[0].Source, got[0].Labels)
	}
}
