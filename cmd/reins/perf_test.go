package main

// Shared machinery of the performance benchmarks (perf_bench_test.go) and the
// alert-storm test: a testing.TB variant of startTestMain, a load generator
// that records per-request latency, the floors (bare handlers reins is
// compared with) and the storm itself. docs/performance.md has the commands
// and the results.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/migrations"
	"github.com/reins-oss/reins/migrations/dbtest"
)

const flagToken = "poll-token"

// startPerfMain is startTestMain with the benchmarks' defaults: a config
// from perfConfig and a kill-flag token.
func startPerfMain(tb testing.TB, o testOptions) *testEnv {
	tb.Helper()
	if o.Halt == nil {
		o.Halt = halttest.NewWebhook(tb, haltSecret)
	}
	if o.Config == "" {
		o.Config = perfConfig(tb, 0, o.Halt.URL())
	}
	env := map[string]string{"REINS_FLAG_TOKEN": flagToken}
	for k, v := range o.Env {
		env[k] = v
	}
	o.Env = env
	return startTestMain(tb, o)
}

// perfConfig writes a reins.yaml with support-bot (webhook halt at haltURL,
// confirmation on) and flag-bot of testdata/reins.yaml.tmpl's shape, plus
// `extra` agents agent-000, agent-001, … of adapter flag in the same team.
func perfConfig(tb testing.TB, extra int, haltURL string) string {
	tb.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `slack:
  channel_prefix: inc
  governance_channel: agent-governance
alerts:
  agent_labels: [agent, service]
  session_labels: [session_id, session_ids]
  group_window: 4h
  # The storms measure intake, not the cap of new incidents a minute: at the
  # default 20, the warm-up's and the storm's 21 openings raced for it.
  max_new_incidents_per_minute: 1000
teams:
  support-ai:
    slack_channel: support-ai
    slack_usergroup: S0SUPPORTAI
    pagerduty:
      routing_key_env: PD_SUPPORT_AI_KEY
      escalation_policy: PABC123
agents:
  support-bot:
    description: Customer-facing support agent
    team: support-ai
    kill_authority:
      users: [U01ALICE]
    halt:
      adapter: webhook
      url: %s
      secret_env: SUPPORT_BOT_HALT_SECRET
      confirm: true
    sessions:
      link: https://langfuse.example.com/project/p1/sessions/{session}
  flag-bot:
    description: Batch summariser that polls reins' kill flag
    team: support-ai
    kill_authority:
      users: [U01ALICE]
    halt:
      adapter: flag
      confirm: false
`, haltURL)
	for i := range extra {
		fmt.Fprintf(&b, "  %s:\n    description: Load-test agent\n    team: support-ai\n"+
			"    kill_authority:\n      users: [U01ALICE]\n    halt:\n      adapter: flag\n      confirm: false\n", perfAgent(i))
	}
	path := filepath.Join(tb.TempDir(), "reins.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func perfAgent(i int) string { return fmt.Sprintf("agent-%03d", i) }

// alertBody is a real-shape Alertmanager v4 notification with one firing
// alert (fingerprint fp) for agent, like integrations/alerts/testdata.
func alertBody(agent string, fp int) []byte {
	fingerprint := fmt.Sprintf("%016x", uint64(fp)*0x9e3779b97f4a7c15)
	session := fmt.Sprintf("s-%05d", fp)
	body := map[string]any{
		"receiver": "reins", "status": "firing", "version": "4", "truncatedAlerts": 0,
		"alerts": []map[string]any{{
			"status": "firing",
			"labels": map[string]string{"alertname": "AgentTokenSpike", "agent": agent, "severity": "critical",
				"session_id": session, "namespace": "agents", "job": agent + "-metrics"},
			"annotations": map[string]string{
				"summary":     "AgentTokenSpike on " + agent + " session " + session,
				"description": "Tokens per session are 12x the 7-day baseline.",
				"runbook_url": "https://wiki.example.com/agents/" + agent + "#token-spike",
				"session_url": "https://langfuse.example.com/project/p1/sessions/" + session,
			},
			"startsAt": "2026-11-28T02:01:07.512Z", "endsAt": "0001-01-01T00:00:00Z",
			"generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=sum+by%28agent%2Csession_id%29%28rate%28llm_tokens_total%5B5m%5D%29%29+%3E+40000&g0.tab=1",
			"fingerprint":  fingerprint,
		}},
		"groupLabels":       map[string]string{"agent": agent, "session_id": session},
		"commonLabels":      map[string]string{"agent": agent, "namespace": "agents"},
		"commonAnnotations": map[string]string{},
		"externalURL":       "http://alertmanager.example.com:9093",
		"groupKey":          fmt.Sprintf(`{}/{agent=~".+"}:{agent=%q, session_id=%q}`, agent, session),
	}
	b, _ := json.Marshal(body)
	return b
}

var webhookHeader = http.Header{"Authorization": {"Bearer " + webhookToken}, "Content-Type": {"application/json"}}

// newClient returns a keep-alive client able to hold conc connections.
func newClient(conc int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: conc + 8, MaxIdleConnsPerHost: conc + 8, DisableCompression: true, IdleConnTimeout: time.Minute,
	}}
}

// send does one request and returns the body of a 200 answer.
func send(c *http.Client, method, url string, h http.Header, body []byte) ([]byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %d %s", method, url, res.StatusCode, out)
	}
	return out, nil
}

// loadRun is one load run: n requests from conc senders; do(i) is request i.
type loadRun struct {
	lat     []time.Duration
	elapsed time.Duration
	// cpu is the CPU time this process spent during the run (every
	// goroutine: the server under test, a floor served in process, the
	// senders): on a shared machine it moves far less with other loads
	// than elapsed does. A database server's own CPU is not in it.
	cpu time.Duration
}

// drive sends n requests from conc goroutines and records each one's
// latency; it stops at the first error.
func drive(n, conc int, do func(i int) error) (loadRun, error) {
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	lats := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	cpu0 := processCPU()
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := do(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					next.Store(int64(n))
					return
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	r := loadRun{elapsed: time.Since(start), lat: slices.Concat(lats...), cpu: processCPU() - cpu0}
	slices.Sort(r.lat)
	return r, firstErr
}

// pct is the p-th percentile (0 < p ≤ 1) of sorted latencies, in ms.
func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := max(int(math.Ceil(p*float64(len(sorted))))-1, 0)
	return float64(sorted[i].Microseconds()) / 1000
}

func (r loadRun) p50() float64  { return pct(r.lat, 0.50) }
func (r loadRun) p99() float64  { return pct(r.lat, 0.99) }
func (r loadRun) rate() float64 { return float64(len(r.lat)) / r.elapsed.Seconds() }

// cpuPer is the run's CPU time per unit in µs, units being n per request.
func (r loadRun) cpuPer(n int) float64 {
	return float64(r.cpu.Microseconds()) / float64(len(r.lat)*n)
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// floorURL is a fresh database for a floor. On SQLite it runs without an
// fsync per commit (synchronous NORMAL, reins' setting before issue 29): a
// floor that commits each request alone would otherwise be held to the
// disk's fsync rate, which reins' group commit beats, and would no longer be
// the least any implementation could do, nor comparable with the figures
// measured before.
func floorURL(tb testing.TB, d migrations.Dialect) string {
	u := dbtest.EmptyURL(tb, d)
	if d == migrations.SQLite {
		u += "?_pragma=synchronous(NORMAL)"
	}
	return u
}

// floorIntake serves the intake floor on a loopback server: the same route
// and token check, read the body, parse the JSON, INSERT it as one row of a
// one-table schema in a fresh database of dialect d, answer 200. On SQLite
// the INSERTs are serialised in the process, as reins' store does.
func floorIntake(tb testing.TB, d migrations.Dialect) string {
	tb.Helper()
	ctx := context.Background()
	db, _, err := migrations.Connect(ctx, floorURL(tb, d))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	schema := `CREATE TABLE floor_alerts (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL, agent TEXT NOT NULL,
		body TEXT NOT NULL, received_at TIMESTAMP NOT NULL)`
	if d == migrations.Postgres {
		schema = `CREATE TABLE floor_alerts (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
			fingerprint TEXT NOT NULL, agent TEXT NOT NULL, body TEXT NOT NULL, received_at TIMESTAMPTZ NOT NULL)`
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		tb.Fatal(err)
	}
	insert := db.Rebind(`INSERT INTO floor_alerts (fingerprint, agent, body, received_at) VALUES (?, ?, ?, ?)`)
	var writer sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhooks/alertmanager", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+webhookToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		var msg struct {
			Alerts []struct {
				Fingerprint string            `json:"fingerprint"`
				Labels      map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		if err != nil || json.Unmarshal(body, &msg) != nil || len(msg.Alerts) == 0 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if d == migrations.SQLite {
			writer.Lock()
			defer writer.Unlock()
		}
		a := msg.Alerts[0]
		if _, err := db.ExecContext(r.Context(), insert, a.Fingerprint, a.Labels["agent"], string(body), time.Now().UTC()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}` + "\n"))
	})
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return srv.URL
}

// storm is an alert storm: n notifications of one alert each, cycling over
// fingerprints spread over agents, sent by conc senders to the URLs in turn.
type storm struct {
	n, fingerprints, agents, conc int
}

func (s storm) bodies() [][]byte {
	out := make([][]byte, s.fingerprints)
	for fp := range out {
		out[fp] = alertBody(perfAgent(fp%s.agents), fp)
	}
	return out
}

// send runs the storm against the base URLs, alternating between them.
func (s storm) send(urls ...string) (loadRun, error) {
	bodies := s.bodies()
	c := newClient(s.conc)
	return drive(s.n, s.conc, func(i int) error {
		_, err := send(c, http.MethodPost, urls[i%len(urls)]+"/webhooks/alertmanager", webhookHeader, bodies[i%len(bodies)])
		return err
	})
}

// checkStorm waits for the storm's deliveries to settle, then checks it
// ended as one incident, one channel and one page per agent, with every
// notification recorded. warm is how many incidents warmUp opened before.
func checkStorm(tb testing.TB, e *testEnv, s storm, warm int) {
	tb.Helper()
	s.agents += warm
	s.fingerprints += warm
	s.n += 2 * warm
	ctx := context.Background()
	created := func() int {
		n := 0
		for _, c := range e.Slack.Calls("conversations.create") {
			if c.Error == "" {
				n++
			}
		}
		return n
	}
	triggers := func() map[string]int {
		keys := map[string]int{}
		for _, ev := range e.PD.Events() {
			if ev.Accepted() && ev.Action == "trigger" {
				keys[ev.DedupKey]++
			}
		}
		return keys
	}
	deadline := time.Now().Add(30 * time.Second)
	for created() < s.agents || len(triggers()) < s.agents {
		if time.Now().After(deadline) {
			tb.Fatalf("after 30 s: %d channels created, %d incidents paged, want %d each", created(), len(triggers()), s.agents)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // a duplicate would show up now
	var incidents, alerts, received int
	if err := e.Main.DB.GetContext(ctx, &incidents, `SELECT COUNT(*) FROM incidents`); err != nil {
		tb.Fatal(err)
	}
	if err := e.Main.DB.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(received_count), 0) FROM alerts`).Scan(&alerts, &received); err != nil {
		tb.Fatal(err)
	}
	if incidents != s.agents {
		tb.Errorf("got %d incidents, want %d", incidents, s.agents)
	}
	if alerts != s.fingerprints || received != s.n {
		tb.Errorf("got %d alerts received %d times, want %d alerts received %d times", alerts, received, s.fingerprints, s.n)
	}
	if n := created(); n != s.agents {
		tb.Errorf("got %d conversations.create, want %d", n, s.agents)
	}
	if n := len(incidentChannels(e.Slack)); n != s.agents {
		tb.Errorf("got %d incident channels, want %d", n, s.agents)
	}
	keys := triggers()
	pages := 0
	for _, n := range keys {
		pages += n
	}
	if len(keys) != s.agents || pages != s.agents {
		tb.Errorf("got %d pages for %d incidents, want %d pages, one per incident: %v", pages, len(keys), s.agents, keys)
	}
}

// An alert storm (many notifications, few fingerprints, few agents, many
// concurrent senders) ends as one incident, one channel and one page per
// agent, with every notification counted. The first half hits a cold
// process with all 32 senders at once (its first transactions are the ones
// that prepare statements: a pool exhausted there once deadlocked intake).
// On PostgreSQL a second replica runs throughout and takes half of the
// second half; it changes none of the counts.
func TestAlertStorm(t *testing.T) {
	s := storm{n: 2000, fingerprints: 500, agents: 20, conc: 32}
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			halt := halttest.NewWebhook(t, haltSecret)
			e := startPerfMain(t, testOptions{Postgres: db == "postgres", Halt: halt, Config: perfConfig(t, s.agents, halt.URL())})
			urls := []string{e.URL}
			if db == "postgres" {
				second := startPerfMain(t, testOptions{DBURL: e.DBURL, Config: e.env["REINS_CONFIG"], Slack: e.Slack, PD: e.PD, Halt: e.Halt})
				urls = append(urls, second.URL)
			}
			half := s
			half.n = s.n / 2
			if _, err := half.send(e.URL); err != nil {
				t.Fatalf("storm, first half: %v", err)
			}
			if _, err := half.send(urls...); err != nil {
				t.Fatalf("storm, second half: %v", err)
			}
			checkStorm(t, e, s, 0)
		})
	}
}
