package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/integrations/pagerduty/pdfake"
	"github.com/reins-oss/reins/migrations"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logLines decodes JSON log lines.
func logLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

// writeTestConfig fills the test config template with the halt endpoint.
func writeTestConfig(t *testing.T, haltURL string) string {
	t.Helper()
	tmpl, err := os.ReadFile("testdata/reins.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "reins.yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(string(tmpl), "{{HALT_URL}}", haltURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Break-glass from a plain shell (no halt secret, no PagerDuty keys): one
// human line, no info logs, the adapter tried once (a missing secret is
// permanent), and the re-page left in the shared outbox for `reins serve`,
// which sends it: the timeline says re-paged, never "gave up".
func TestCLIKillFromPlainShellLeavesRepageToServe(t *testing.T) {
	hook := halttest.NewWebhook(t, haltSecret)
	cfg := writeTestConfig(t, hook.URL())
	dbURL := dbtest.SQLiteURL(t)
	shell := map[string]string{"REINS_DATABASE_URL": dbURL, "REINS_CONFIG": cfg}

	code, out, errOut := cli(t, shell, "kill", "support-bot", "--reason", "refunds to wrong accounts")
	if code != 1 {
		t.Fatalf("kill without the halt secret: exit %d, want 1\n%s%s", code, out, errOut)
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("kill printed %d lines, want one:\n%s", strings.Count(out, "\n"), out)
	}
	for _, want := range []string{"FAILED", "webhook adapter", "SUPPORT_BOT_HALT_SECRET", "reins serve", "Incident #1"} {
		if !strings.Contains(out, want) {
			t.Errorf("kill line %q does not mention %q", out, want)
		}
	}
	if strings.Contains(errOut, `"level":"INFO"`) || strings.Contains(errOut, `"level":"DEBUG"`) {
		t.Errorf("kill without --verbose logged below warn:\n%s", errOut)
	}
	if n := len(hook.Messages()); n != 0 {
		t.Errorf("the adapter got %d calls without a secret", n)
	}

	pd := pdfake.New()
	t.Cleanup(pd.Close)
	e := startTestMain(t, testOptions{DBURL: dbURL, Config: cfg, Halt: hook, PD: pd})
	e.eventually("serve sends the re-page", func() bool {
		for _, ev := range pd.Events() {
			if ev.Action == "trigger" && ev.Payload != nil && strings.HasPrefix(ev.Payload.Summary, "HALT FAILED") {
				return true
			}
		}
		return false
	})
	var inc struct {
		Timeline []struct{ Kind, Text string }
		Halts    []struct {
			Attempts int
			Status   string
		}
	}
	e.eventually("the timeline records the re-page", func() bool {
		_, body := e.api("GET", "/incidents/1", nil)
		_ = json.Unmarshal(body, &inc)
		return strings.Contains(string(body), "Re-paged")
	})
	_, body := e.api("GET", "/incidents/1", nil)
	if strings.Contains(string(body), "Gave up") {
		t.Errorf("the timeline gave up on a delivery:\n%s", body)
	}
	if len(inc.Halts) != 1 || inc.Halts[0].Attempts != 1 || inc.Halts[0].Status != "failed" {
		t.Errorf("halts = %+v, want one failed halt tried once (a missing secret is not retried)", inc.Halts)
	}
}

// exampleConfig copies examples/reins.yaml with every endpoint pointed at a
// closed local port, so no check leaves the machine.
func exampleConfig(t *testing.T) string {
	t.Helper()
	ex, err := os.ReadFile("../../examples/reins.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ex = regexp.MustCompile(`https://[a-z0-9.-]+(:\d+)?`).ReplaceAll(ex, []byte("http://127.0.0.1:1"))
	path := filepath.Join(t.TempDir(), "reins.yaml")
	if err := os.WriteFile(path, ex, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// plainEnv is a first-run environment: no Slack, no PagerDuty keys, no secrets.
var plainEnv = map[string]string{
	"SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": "", "PAGERDUTY_ROUTING_KEY": "", "PAGERDUTY_API_TOKEN": "",
	"PD_SUPPORT_AI_KEY": "", "SUPPORT_BOT_HALT_SECRET": "", "REINS_API_TOKEN": "", "REINS_WEBHOOK_TOKEN": "",
}

// The first five minutes: the example config starts with every secret
// unset, each missing variable is a warning naming what will not work,
// /readyz stays 200 and ?verbose=1 lists each degraded part on its own.
func TestServeStartsWithExampleConfigAndListsDegradedParts(t *testing.T) {
	cfg := exampleConfig(t)
	log := &syncBuffer{}
	// Only the API token is set: verbose readiness names hosts and secret
	// variables, so it takes the API token (issue 23).
	withAPI := map[string]string{}
	for k, v := range plainEnv {
		withAPI[k] = v
	}
	withAPI["REINS_API_TOKEN"] = apiToken
	e := startTestMain(t, testOptions{Config: cfg, Env: withAPI, LogTo: log})

	if !strings.Contains(log.String(), "SUPPORT_BOT_HALT_SECRET is not set: halting support-bot") {
		t.Errorf("serve did not warn about the unset halt secret:\n%s", log.String())
	}
	if code, body := e.do("GET", "/readyz", nil, nil); code != 200 {
		t.Fatalf("/readyz = %d %s, want 200", code, body)
	}
	if code, body := e.do("GET", "/readyz?verbose=1", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("/readyz?verbose=1 without the API token = %d %s, want 401", code, body)
	}
	code, body := e.do("GET", "/readyz?verbose=1", http.Header{"Authorization": {"Bearer " + apiToken}}, nil)
	var ready struct {
		Status   string
		Degraded []healthCheck
	}
	if err := json.Unmarshal(body, &ready); err != nil || code != 200 || ready.Status != "ready" {
		t.Fatalf("/readyz?verbose=1 = %d %s", code, body)
	}
	parts := map[string]string{}
	for _, c := range ready.Degraded {
		parts[c.Part] = c.Detail
	}
	for _, want := range []string{"slack", "pagerduty", "telemetry", "webhooks", "pagerduty support-bot",
		"secret SUPPORT_BOT_HALT_SECRET", "secret CODE_AGENT_K8S_TOKEN", "secret LD_API_TOKEN", "halt support-bot", "halt code-agent"} {
		if parts[want] == "" {
			t.Errorf("/readyz?verbose=1 does not list %q as degraded; got %s", want, body)
		}
	}
	if _, ok := parts["database"]; ok {
		t.Errorf("database listed as degraded: %s", body)
	}

	env := map[string]string{"REINS_DATABASE_URL": e.DBURL, "REINS_CONFIG": cfg}
	code, out, _ := cli(t, env, "validate")
	if code != 0 || !strings.Contains(out, "SUPPORT_BOT_HALT_SECRET is not set") {
		t.Errorf("validate: exit %d, want 0 with the same warning serve gives\n%s", code, out)
	}
	if code, out, _ = cli(t, env, "validate", "--strict"); code != 1 {
		t.Errorf("validate --strict with warnings: exit %d, want 1\n%s", code, out)
	}
	code, out, _ = cli(t, env, "doctor")
	if code != 1 {
		t.Errorf("doctor with degraded parts: exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{"ok        database", "DEGRADED  slack", "DEGRADED  secret SUPPORT_BOT_HALT_SECRET", "DEGRADED  halt support-bot"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(strings.Fields(want)[0]) + `\s+` + regexp.QuoteMeta(strings.Join(strings.Fields(want)[1:], " ")) + `\s`).MatchString(out) {
			t.Errorf("doctor output lacks the line %q:\n%s", want, out)
		}
	}
}

func TestCLIExplicitConfigMustExist(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	env := map[string]string{"REINS_DATABASE_URL": dbtest.SQLiteURL(t), "REINS_LISTEN": "127.0.0.1:0"}
	code, _, errOut := cli(t, env, "serve", "--config", missing)
	if code != 1 || !strings.Contains(errOut, missing) || !strings.Contains(errOut, "does not exist") {
		t.Errorf("serve --config missing.yaml: exit %d %q; want exit 1 naming the file", code, errOut)
	}
	env["REINS_CONFIG"] = missing
	if code, _, errOut = cli(t, env, "kill", "support-bot", "--reason", "x"); code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("REINS_CONFIG=missing.yaml reins kill: exit %d %q; want exit 1", code, errOut)
	}
}

func TestCLIHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, _ := cli(t, nil, args...)
		if code != 0 || !strings.Contains(out, "declare") || !strings.Contains(out, "doctor") {
			t.Errorf("reins %v: exit %d\n%s", args, code, out)
		}
	}
	for _, c := range commands() {
		if c.run == nil {
			continue
		}
		code, out, errOut := cli(t, nil, c.name, "--help")
		if code != 0 || !strings.Contains(out, "Usage: reins "+c.name) || !strings.Contains(out, "-config") {
			t.Errorf("reins %s --help: exit %d, stdout %q, stderr %q; want usage with flags and exit 0", c.name, code, out, errOut)
		}
	}
	if code, out, _ := cli(t, nil, "help", "kill"); code != 0 || !strings.Contains(out, "-reason") {
		t.Errorf("reins help kill: exit %d\n%s", code, out)
	}
	if code, out, _ := cli(t, nil, "validate", "--help"); code != 0 || !strings.Contains(out, "-strict") {
		t.Errorf("validate --help does not list --strict: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, out, _ := cli(t, nil, args...)
		if code != 0 || !regexp.MustCompile(`^reins \S+ \(commit \S+, built \S+\)\n$`).MatchString(out) {
			t.Errorf("reins %v: exit %d %q; want version, commit and build date", args, code, out)
		}
	}
	defer func(v, c, d string) { version, commit, date = v, c, d }(version, commit, date)
	version, commit, date = "v1.2.3", "abc1234", "2026-12-01T00:00:00Z"
	if _, out, _ := cli(t, nil, "version"); out != "reins v1.2.3 (commit abc1234, built 2026-12-01T00:00:00Z)\n" {
		t.Errorf("version with ldflags values = %q", out)
	}
}

// Read-only commands never create a database: an absent SQLite file is an
// error naming the URL, and the file is still absent afterwards.
func TestCLIReadOnlyCommandsCreateNoDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.db")
	env := map[string]string{"REINS_DATABASE_URL": "sqlite:" + path, "REINS_CONFIG": writeTestConfig(t, "http://127.0.0.1:1")}
	for _, args := range [][]string{{"incidents"}, {"incident", "1"}, {"postmortem", "1"}, {"agents"}} {
		code, _, errOut := cli(t, env, args...)
		if code != 1 || !strings.Contains(errOut, path) || !strings.Contains(errOut, "does not create") {
			t.Errorf("reins %v on an absent database: exit %d %q; want exit 1 naming it", args, code, errOut)
		}
	}
	code, out, _ := cli(t, env, "doctor")
	if code != 1 || !strings.Contains(out, "DEGRADED  database") {
		t.Errorf("doctor on an absent database: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a read-only command created %s (stat: %v)", path, err)
	}
}

func TestCLIValidateSaysWhatItCouldNotCheck(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "reins.yaml")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ := cli(t, nil, "validate", "--config", empty)
	if code != 0 || !strings.Contains(out, "no agent was checked") {
		t.Errorf("validate of an empty file: exit %d\n%s", code, out)
	}
	if code, _, _ := cli(t, nil, "validate", "--strict", "--config", empty); code != 1 {
		t.Errorf("validate --strict of an empty file: exit %d, want 1", code)
	}
	cfg := writeTestConfig(t, "http://127.0.0.1:1")
	code, out, _ = cli(t, map[string]string{"SUPPORT_BOT_HALT_SECRET": "x", "PD_SUPPORT_AI_KEY": "k"}, "validate", "--online", "--config", cfg)
	if code != 0 || !strings.Contains(out, "SLACK_BOT_TOKEN is not set: people, user groups and channels were not checked") ||
		!strings.Contains(out, "PAGERDUTY_API_TOKEN is not set") {
		t.Errorf("validate --online without credentials: exit %d\n%s", code, out)
	}
}

// A quiet server: one info line per incident opened, page sent and channel
// created; REINS_PUBLIC_URL unset while listening elsewhere is said once.
func TestServeLogIsQuietWhenThingsWork(t *testing.T) {
	log := &syncBuffer{}
	e := startTestMain(t, testOptions{LogTo: log, Env: map[string]string{"REINS_PUBLIC_URL": ""}})
	if code, body := e.webhook("generic", []byte(`{"agent":"support-bot","summary":"Token spend 12x baseline","severity":"critical"}`)); code != 200 {
		t.Fatalf("webhook: %d %s", code, body)
	}
	e.eventually("page and channel", func() bool {
		inc, err := e.Main.Service.FindIncident(t.Context(), 1)
		return len(e.PD.Events()) > 0 && err == nil && inc.SlackChannelID != ""
	})
	time.Sleep(300 * time.Millisecond) // let the rest of the channel set-up finish
	count := map[string]int{}
	warnedURL := 0
	for _, l := range logLines(t, log.String()) {
		msg, _ := l["msg"].(string)
		if l["level"] == "INFO" {
			count[msg]++
		}
		if strings.HasPrefix(msg, "REINS_PUBLIC_URL is not set") {
			warnedURL++
		}
	}
	want := map[string]int{"reins serving": 1, "incident opened": 1, "page sent": 1, "channel created": 1}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("info lines = %v, want %v\n%s", count, want, log.String())
	}
	if warnedURL != 1 {
		t.Errorf("REINS_PUBLIC_URL warning given %d times, want once", warnedURL)
	}
}

// Without Slack: declare, acknowledge, resolve and look at the agents from
// the terminal, with `reins serve` doing the paging; and a test alert.
func TestCLIRunsAnIncidentWithoutSlack(t *testing.T) {
	e := startTestMain(t, testOptions{})
	env := map[string]string{"REINS_DATABASE_URL": e.DBURL, "REINS_CONFIG": e.env["REINS_CONFIG"]}
	code, out, errOut := cli(t, env, "declare", "support-bot", "refunds", "to", "wrong", "accounts")
	if code != 0 || !strings.Contains(out, "Declared incident #1 for support-bot: refunds to wrong accounts") {
		t.Fatalf("declare: exit %d\n%s%s", code, out, errOut)
	}
	pdAction := func(action string) func() bool {
		return func() bool {
			for _, ev := range e.PD.Events() {
				if ev.Action == action && ev.DedupKey == "reins-1" {
					return true
				}
			}
			return false
		}
	}
	e.eventually("serve pages the declared incident", pdAction("trigger"))
	if code, out, errOut = cli(t, env, "ack", "1"); code != 0 || !strings.Contains(out, "acknowledged") {
		t.Fatalf("ack: exit %d\n%s%s", code, out, errOut)
	}
	e.eventually("serve acknowledges the page", pdAction("acknowledge"))
	if code, _, errOut = cli(t, env, "ack", "1"); code != 1 || !strings.Contains(errOut, "already acknowledged") {
		t.Errorf("second ack: exit %d %q", code, errOut)
	}
	code, out, _ = cli(t, env, "agents")
	if code != 0 || !regexp.MustCompile(`support-bot\s+running\s+webhook\s+.*U01ALICE.*#1`).MatchString(out) {
		t.Errorf("agents: exit %d\n%s", code, out)
	}
	if code, out, errOut = cli(t, env, "resolve", "1", "--note", "bad prompt rolled back"); code != 0 || !strings.Contains(out, "resolved") {
		t.Fatalf("resolve: exit %d\n%s%s", code, out, errOut)
	}
	e.eventually("serve resolves the page", pdAction("resolve"))
	inc, err := e.Main.Service.FindIncident(t.Context(), 1)
	if err != nil || inc.Status != "resolved" || inc.AckedAt == nil {
		t.Fatalf("incident 1 = %+v, %v", inc, err)
	}

	env["REINS_WEBHOOK_TOKEN"] = webhookToken
	code, out, errOut = cli(t, env, "test-alert", "support-bot", "--url", e.URL)
	if code != 0 || !strings.Contains(out, "incident #2") {
		t.Fatalf("test-alert: exit %d\n%s%s", code, out, errOut)
	}
	inc, err = e.Main.Service.FindIncident(t.Context(), 2)
	if err != nil || !strings.HasPrefix(inc.Title, "TEST (not a real incident)") {
		t.Fatalf("incident 2 = %+v, %v; want a title marked as a test", inc, err)
	}
	delete(env, "REINS_WEBHOOK_TOKEN")
	if code, _, errOut = cli(t, env, "test-alert", "support-bot", "--url", e.URL); code != 1 || !strings.Contains(errOut, "REINS_WEBHOOK_TOKEN") {
		t.Errorf("test-alert without the webhook token: exit %d %q", code, errOut)
	}
}

func TestAPIDeclareAckResolve(t *testing.T) {
	e := startTestMain(t, testOptions{})
	code, body := e.api("POST", "/incidents", map[string]string{"agent": "support-bot", "summary": "refunds to wrong accounts", "actor": "alice"})
	if code != http.StatusCreated || !strings.Contains(string(body), `"created": true`) {
		t.Fatalf("declare: %d %s", code, body)
	}
	if code, body = e.api("POST", "/incidents", map[string]string{"agent": "support-bot", "summary": "again", "actor": "bob"}); code != http.StatusOK || !strings.Contains(string(body), `"created": false`) {
		t.Errorf("declare while open: %d %s; want 200 with the open incident", code, body)
	}
	if code, body = e.api("POST", "/incidents/1/ack", map[string]string{"actor": "alice"}); code != 200 || !strings.Contains(string(body), `"acknowledged_at": "`) {
		t.Errorf("ack: %d %s", code, body)
	}
	if code, body = e.api("POST", "/incidents/1/resolve", map[string]string{"actor": "alice", "note": "rolled back"}); code != 200 || !strings.Contains(string(body), `"status": "resolved"`) {
		t.Errorf("resolve: %d %s", code, body)
	}
	for _, tt := range []struct {
		name, method, path string
		body               any
		token              bool
		status             int
		want               string
	}{
		{"AckTwice", "POST", "/incidents/1/ack", map[string]string{"actor": "bob"}, true, 409, "already"},
		{"ResolveTwice", "POST", "/incidents/1/resolve", map[string]string{"actor": "bob"}, true, 409, "already resolved"},
		{"UnknownAgent", "POST", "/incidents", map[string]string{"agent": "nobody", "summary": "x", "actor": "a"}, true, 404, "No agent named"},
		{"NoActor", "POST", "/incidents", map[string]string{"agent": "support-bot", "summary": "x"}, true, 422, "actor is required"},
		{"NoSummary", "POST", "/incidents", map[string]string{"agent": "support-bot", "actor": "a"}, true, 422, "summary"},
		{"UnknownField", "POST", "/incidents/1/ack", map[string]string{"actor": "a", "who": "b"}, true, 422, "unknown field"},
		{"BadID", "POST", "/incidents/x/ack", map[string]string{"actor": "a"}, true, 400, "positive number"},
		{"NoSuchIncident", "POST", "/incidents/99/resolve", map[string]string{"actor": "a"}, true, 404, "99"},
		{"NoToken", "POST", "/incidents", map[string]string{"agent": "support-bot", "summary": "x", "actor": "a"}, false, 401, "bearer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(tt.body)
			h := http.Header{"Content-Type": {"application/json"}}
			if tt.token {
				h.Set("Authorization", "Bearer "+apiToken)
			}
			code, body := e.do(tt.method, "/api/v1"+tt.path, h, b)
			var eb struct{ Error string }
			if code != tt.status || json.Unmarshal(body, &eb) != nil || !strings.Contains(eb.Error, tt.want) {
				t.Errorf("%s %s = %d %s; want %d with an error mentioning %q", tt.method, tt.path, code, body, tt.status, tt.want)
			}
		})
	}
}

func TestServerRefusesHugeHeaders(t *testing.T) {
	e := startTestMain(t, testOptions{})
	code, _ := e.do("GET", "/healthz", http.Header{"X-Big": {strings.Repeat("a", 100<<10)}}, nil)
	if code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("100 KiB of headers: %d, want 431", code)
	}
}

// A flood of slow, unfinished requests holds at most REINS_MAX_CONNECTIONS
// connections; the rest wait in the kernel's queue, costing reins nothing.
func TestServerCapsConcurrentConnections(t *testing.T) {
	const limit = 8
	e := startTestMain(t, testOptions{Env: map[string]string{"REINS_MAX_CONNECTIONS": fmt.Sprint(limit)}})
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 5 * limit {
		c, err := net.Dial("tcp", e.Main.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		// An unfinished header that keeps growing, as a slowloris would send.
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: %s", strings.Repeat("a", 1000))
	}
	ll := e.Main.listener.(*limitListener)
	e.eventually("the server takes as many connections as it may", func() bool { return ll.open.Load() == limit })
	time.Sleep(200 * time.Millisecond)
	if peak := ll.peak.Load(); peak > limit {
		t.Fatalf("peak open connections %d > cap %d", peak, limit)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	e.eventually("the server answers again once the flood is gone", func() bool {
		res, err := (&http.Client{Timeout: time.Second}).Get(e.URL + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err == nil && res.StatusCode == 200
	})
}

// /metrics exports the outbox backlog and whether the config in force loaded.
func TestMetricsOutboxBacklogAndConfigReload(t *testing.T) {
	e := startTestMain(t, testOptions{})
	metrics := func() string { _, b := e.do("GET", "/metrics", nil, nil); return string(b) }
	m := metrics()
	for _, want := range []string{`reins_outbox_pending{lane="urgent"}`, `reins_outbox_oldest_age_seconds{lane="chat"}`,
		"reins_config_last_reload_successful 1"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cfg := e.env["REINS_CONFIG"]
	good, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, []byte("agents: [not, a, mapping]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.Main.Reload(); err == nil {
		t.Fatal("reload of a broken config succeeded")
	}
	if m := metrics(); !strings.Contains(m, "reins_config_last_reload_successful 0") {
		t.Errorf("after a rejected reload /metrics lacks reins_config_last_reload_successful 0")
	}
	if err := os.WriteFile(cfg, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.Main.Reload(); err != nil {
		t.Fatal(err)
	}
	if m := metrics(); !strings.Contains(m, "reins_config_last_reload_successful 1") {
		t.Errorf("after a good reload /metrics lacks reins_config_last_reload_successful 1")
	}
}

// A page that cannot work (no routing key anywhere) is given up on at the
// first attempt, with the reason on the timeline, not retried.
func TestPageWithoutRoutingKeyIsBuriedAtOnce(t *testing.T) {
	e := startTestMain(t, testOptions{Env: map[string]string{"PAGERDUTY_ROUTING_KEY": "", "PD_SUPPORT_AI_KEY": ""}})
	if code, body := e.webhook("generic", []byte(`{"agent":"support-bot","summary":"Token spend 12x baseline"}`)); code != 200 {
		t.Fatalf("webhook: %d %s", code, body)
	}
	e.eventually("the page is given up on", func() bool {
		_, body := e.api("GET", "/incidents/1", nil)
		return strings.Contains(string(body), "Gave up on the PagerDuty page after 1 attempt:") &&
			strings.Contains(string(body), "PAGERDUTY_ROUTING_KEY")
	})
	if n := len(e.PD.Events()); n != 0 {
		t.Errorf("PagerDuty got %d events without a routing key", n)
	}
}

// On PostgreSQL a read-only command does not migrate an empty database: it
// says to run `reins migrate`, which then still has every migration to apply.
func TestCLIReadOnlyCommandsDoNotMigratePostgres(t *testing.T) {
	env := map[string]string{"REINS_DATABASE_URL": dbtest.EmptyURL(t, migrations.Postgres),
		"REINS_CONFIG": writeTestConfig(t, "http://127.0.0.1:1")}
	code, _, errOut := cli(t, env, "incidents")
	if code != 1 || !strings.Contains(errOut, "reins migrate") {
		t.Fatalf("incidents on an empty PostgreSQL database: exit %d %q", code, errOut)
	}
	if code, out, _ := cli(t, env, "migrate"); code != 0 || strings.Contains(out, " 0 migrations applied") {
		t.Errorf("migrate after a read-only command: exit %d %q; want every migration still to apply", code, out)
	}
}
