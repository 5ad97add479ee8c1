package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reins-oss/reins/bot"
	"github.com/reins-oss/reins/bot/slackfake"
	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/integrations/pagerduty/pdfake"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// People of the fake workspace: who holds kill authority for support-bot and how.
const (
	alice   = "U01ALICE"   // listed by ID
	bob     = "U02BOB"     // listed by e-mail
	carol   = "U03CAROL"   // member of the S0ONCALL user group
	dave    = "U04DAVE"    // on call for PABC123 in PagerDuty
	mallory = "U05MALLORY" // nobody

	apiToken      = "test-api-token"
	webhookToken  = "test-webhook-token"
	signingSecret = "test-signing-secret"
	haltSecret    = "test-halt-secret"
	pdHookSecret  = "test-pd-webhook-secret"
)

type testOptions struct {
	Postgres bool              // run on PostgreSQL (skipped without REINS_TEST_POSTGRES_URL)
	DBURL    string            // reuse this database (restarts); "" for a fresh one
	Config   string            // config file to use; "" for testdata/reins.yaml.tmpl
	Env      map[string]string // extra or overriding environment
	Slack    *slackfake.Server // reuse fakes across a restart
	PD       *pdfake.Server
	Halt     *halttest.Webhook
	LogTo    io.Writer   // receives the server log at info, as `reins serve` writes it
	Setup    func(*Main) // runs on the Main before Run, e.g. to plug in a fake
}

// testEnv is a running reins with every outside system faked.
type testEnv struct {
	t     testing.TB
	Main  *Main
	URL   string
	DBURL string
	Slack *slackfake.Server
	PD    *pdfake.Server
	Halt  *halttest.Webhook
	env   map[string]string
	opts  testOptions
}

// startTestMain runs the real Main against fakes of Slack, PagerDuty and the
// agent's halt endpoint.
func startTestMain(t testing.TB, o testOptions) *testEnv {
	t.Helper()
	e := &testEnv{t: t, opts: o, Slack: o.Slack, PD: o.PD, Halt: o.Halt, DBURL: o.DBURL}
	if e.Slack == nil {
		e.Slack = slackfake.New()
		t.Cleanup(e.Slack.Close)
		e.Slack.AddUser(alice, "alice@example.com")
		e.Slack.AddUser(bob, "bob@example.com")
		e.Slack.AddUser(carol, "carol@example.com")
		e.Slack.AddUser(dave, "dave@example.com")
		e.Slack.AddUser(mallory, "mallory@example.com")
		e.Slack.AddUsergroup("S0ONCALL", carol)
		e.Slack.AddUsergroup("S0SUPPORTAI", alice, bob)
		e.Slack.AddUsergroup("S0SECURITY", mallory)
		e.Slack.AddChannel("C0SUPPORTAI", "support-ai")
		e.Slack.AddChannel("C0GOVERN", "agent-governance")
		e.Slack.AddChannel("C0LEADS", "support-leads")
	}
	if e.PD == nil {
		e.PD = pdfake.New()
		t.Cleanup(e.PD.Close)
		e.PD.AddEscalationPolicy("PABC123")
		e.PD.SetOnCall("PABC123", "dave@example.com")
	}
	if e.Halt == nil {
		e.Halt = halttest.NewWebhook(t, haltSecret)
	}
	if e.DBURL == "" {
		if o.Postgres {
			e.DBURL = dbtest.PostgresURL(t)
		} else {
			e.DBURL = dbtest.SQLiteURL(t)
		}
	}
	cfgPath := o.Config
	if cfgPath == "" {
		tmpl, err := os.ReadFile("testdata/reins.yaml.tmpl")
		if err != nil {
			t.Fatal(err)
		}
		cfgPath = filepath.Join(t.TempDir(), "reins.yaml")
		yaml := strings.ReplaceAll(string(tmpl), "{{HALT_URL}}", e.Halt.URL())
		if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.env = map[string]string{
		"REINS_CONFIG":             cfgPath,
		"REINS_DATABASE_URL":       e.DBURL,
		"REINS_LISTEN":             "127.0.0.1:0",
		"REINS_PUBLIC_URL":         "http://reins.test",
		"REINS_API_TOKEN":          apiToken,
		"REINS_WEBHOOK_TOKEN":      webhookToken,
		"SLACK_BOT_TOKEN":          "xoxb-test",
		"SLACK_SIGNING_SECRET":     signingSecret,
		"SLACK_API_URL":            e.Slack.APIURL(),
		"PAGERDUTY_EVENTS_URL":     e.PD.URL,
		"PAGERDUTY_API_URL":        e.PD.URL,
		"PAGERDUTY_API_TOKEN":      "test-pd-token",
		"PAGERDUTY_ROUTING_KEY":    "default-routing-key",
		"PAGERDUTY_WEBHOOK_SECRET": pdHookSecret,
		"PD_SUPPORT_AI_KEY":        "support-ai-routing-key",
		"SUPPORT_BOT_HALT_SECRET":  haltSecret,
	}
	for k, v := range o.Env {
		e.env[k] = v
	}
	e.start()
	return e
}

func (e *testEnv) getenv(k string) string { return e.env[k] }

func (e *testEnv) start() {
	e.t.Helper()
	cfg := ConfigFromEnv(e.getenv)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if e.opts.LogTo != nil {
		log = slog.New(slog.NewJSONHandler(e.opts.LogTo, nil))
	}
	m := NewMain(cfg, log)
	m.Getenv = e.getenv
	if e.opts.Setup != nil {
		e.opts.Setup(m)
	}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		e.t.Fatalf("start reins: %v", err)
	}
	e.Main, e.URL = m, "http://"+m.Addr()
	e.t.Cleanup(func() { _ = m.Close() })
}

// restart stops reins and starts it again on the same database and fakes.
func (e *testEnv) restart() {
	e.t.Helper()
	if err := e.Main.Close(); err != nil {
		e.t.Fatalf("close: %v", err)
	}
	e.start()
}

// do sends a request and returns the status and body.
func (e *testEnv) do(method, path string, header http.Header, body []byte) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// webhook posts an alert body with the webhook token.
func (e *testEnv) webhook(source string, body []byte) (int, []byte) {
	return e.do(http.MethodPost, "/webhooks/"+source, http.Header{
		"Authorization": {"Bearer " + webhookToken}, "Content-Type": {"application/json"},
	}, body)
}

// api calls /api/v1 with the API token.
func (e *testEnv) api(method, path string, body any) (int, []byte) {
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	return e.do(method, "/api/v1"+path, http.Header{
		"Authorization": {"Bearer " + apiToken}, "Content-Type": {"application/json"},
	}, b)
}

// slashes numbers commands: Slack gives each its own trigger_id, so two
// commands are never the same signed request (a replay is dropped).
var slashes atomic.Int64

// slash sends a signed `/agent` command as user from channel.
func (e *testEnv) slash(user, channel, text string) (int, []byte) {
	form := url.Values{
		"command": {"/agent"}, "text": {text}, "user_id": {user}, "user_name": {strings.ToLower(user)},
		"channel_id": {channel}, "team_id": {"T0TEST"}, "trigger_id": {fmt.Sprintf("trig-%d", slashes.Add(1))},
		"response_url": {e.Slack.ResponseURL()},
	}
	return e.signed("/slack/commands", []byte(form.Encode()))
}

// interact sends a signed interaction payload.
func (e *testEnv) interact(payload any) (int, []byte) {
	js, err := json.Marshal(payload)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.signed("/slack/interactions", []byte(url.Values{"payload": {string(js)}}.Encode()))
}

func (e *testEnv) signed(path string, body []byte) (int, []byte) {
	h := bot.Sign(signingSecret, time.Now(), body)
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.do(http.MethodPost, path, h, body)
}

// eventually polls cond until it holds or 15 s pass.
func (e *testEnv) eventually(what string, cond func() bool) {
	e.t.Helper()
	e.eventuallyWithin(15*time.Second, what, cond)
}

func (e *testEnv) eventuallyWithin(d time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func timeNow() time.Time { return time.Now() }
