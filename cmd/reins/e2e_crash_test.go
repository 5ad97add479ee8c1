package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reins-oss/reins/bot/slackfake"
	"github.com/reins-oss/reins/integrations/pagerduty/pdfake"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// Issue 13, acceptance 1: two `reins serve` processes on one fresh
// PostgreSQL database take an alert storm for several agents, spread over
// both; one is SIGKILLed mid-storm and the senders keep going to the other.
// Every alert either replica acknowledged (2xx) is stored, and each agent
// has one incident, one channel and one PagerDuty incident (one dedup key),
// whatever the killed replica had half done. Each webhook also carries an
// alert for an agent reins.yaml does not have, a new name each time: all of
// them make one unrouted incident, paged once to PAGERDUTY_ROUTING_KEY.
func TestReplicaKilledMidStormLosesNoAcknowledgedAlert(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two reins processes")
	}
	db := dbtest.PostgresURL(t)
	slack := slackfake.New()
	t.Cleanup(slack.Close)
	slack.AddUser(alice, "alice@example.com")
	slack.AddUsergroup("S0ONCALL", carol)
	slack.AddUsergroup("S0SUPPORTAI", alice)
	slack.AddUsergroup("S0SECURITY", alice)
	slack.AddChannel("C0SUPPORTAI", "support-ai")
	slack.AddChannel("C0GOVERN", "agent-governance")
	slack.AddChannel("C0LEADS", "support-leads")
	pd := pdfake.New()
	t.Cleanup(pd.Close)
	pd.AddEscalationPolicy("PABC123")

	const agents = 8
	tmpl, err := os.ReadFile("testdata/reins.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.ReplaceAll(string(tmpl), "{{HALT_URL}}", "http://127.0.0.1:1/halt")
	for i := range agents {
		cfg += fmt.Sprintf("  storm-%d:\n    team: support-ai\n    kill_authority:\n      users: [U01ALICE]\n    halt:\n      adapter: flag\n", i)
	}
	cfgPath := t.TempDir() + "/reins.yaml"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func() map[string]string {
		return map[string]string{
			"REINS_DATABASE_URL": db, "REINS_CONFIG": cfgPath, "REINS_LISTEN": freeAddr(t),
			"REINS_PUBLIC_URL": "http://reins.test", "REINS_API_TOKEN": apiToken, "REINS_WEBHOOK_TOKEN": webhookToken,
			"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": signingSecret, "SLACK_API_URL": slack.APIURL(),
			"PAGERDUTY_EVENTS_URL": pd.URL, "PAGERDUTY_API_URL": pd.URL, "PAGERDUTY_API_TOKEN": "test-pd-token",
			"PD_SUPPORT_AI_KEY": "support-ai-routing-key", "PAGERDUTY_ROUTING_KEY": "default-routing-key", "SUPPORT_BOT_HALT_SECRET": haltSecret,
		}
	}
	envA, envB := env(), env()
	a := startChild(t, envA)
	startChild(t, envB)
	urlA, urlB := "http://"+envA["REINS_LISTEN"], "http://"+envB["REINS_LISTEN"]
	waitHTTP(t, urlA+"/readyz")
	waitHTTP(t, urlB+"/readyz")

	type key struct{ agent, fingerprint string }
	var (
		mu      sync.Mutex
		acked   = map[key]bool{}
		sent    atomic.Int64
		killed  atomic.Bool
		refused atomic.Int64
	)
	client := &http.Client{Timeout: 10 * time.Second}
	send := func(sender, n int) {
		target := urlB
		if n%2 == 0 && !killed.Load() {
			target = urlA
		}
		var alerts []map[string]any
		var keys []key
		for j := range 4 {
			ag := fmt.Sprintf("storm-%d", rand.IntN(agents))
			fp := fmt.Sprintf("s%d-n%d-a%d", sender, n, j)
			keys = append(keys, key{ag, fp})
			if j == 3 {
				ag = fmt.Sprintf("ghost-%d-%d", sender, n)
				keys[j] = key{ag, ag + "|" + fp} // stored under its agent in the unrouted incident
			}
			alerts = append(alerts, map[string]any{"status": "firing", "fingerprint": fp,
				"labels":      map[string]string{"alertname": "StormAlert", "agent": ag, "severity": "critical"},
				"annotations": map[string]string{"summary": "storm " + fp},
				"startsAt":    time.Now().UTC().Format(time.RFC3339Nano), "endsAt": "0001-01-01T00:00:00Z"})
		}
		body, _ := json.Marshal(map[string]any{"version": "4", "status": "firing", "receiver": "reins", "alerts": alerts})
		req, _ := http.NewRequest(http.MethodPost, target+"/webhooks/alertmanager", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+webhookToken)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		sent.Add(1)
		if err != nil {
			refused.Add(1)
			return
		}
		res.Body.Close()
		if res.StatusCode/100 != 2 {
			refused.Add(1)
			return
		}
		mu.Lock()
		for _, k := range keys {
			acked[k] = true
		}
		mu.Unlock()
	}
	const senders, perSender = 4, 60
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range perSender {
				send(s, n)
			}
		}()
	}
	// SIGKILL replica A a third of the way into the storm, requests in flight.
	for sent.Load() < senders*perSender/3 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := a.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed.Store(true)
	wg.Wait()
	t.Logf("sent %d webhooks, %d alerts acknowledged, %d requests failed (to the killed replica)", sent.Load(), len(acked), refused.Load())

	conn, err := sql.Open("postgres", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Every acknowledged alert is stored.
	rows, err := conn.Query(`SELECT agent, fingerprint FROM alerts`)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[key]bool{}
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.agent, &k.fingerprint); err != nil {
			t.Fatal(err)
		}
		stored[k] = true
	}
	rows.Close()
	lost := 0
	for k := range acked {
		if !stored[k] {
			lost++
		}
	}
	if lost > 0 || len(acked) == 0 {
		t.Errorf("%d of %d acknowledged alerts are not stored", lost, len(acked))
	}
	// One incident per agent.
	incidentOf := map[string][]string{} // agent -> pagerduty keys
	rows, err = conn.Query(`SELECT agent, pagerduty_key FROM incidents`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var agent, pk string
		if err := rows.Scan(&agent, &pk); err != nil {
			t.Fatal(err)
		}
		incidentOf[agent] = append(incidentOf[agent], pk)
	}
	rows.Close()
	if len(incidentOf) != agents+1 || len(incidentOf["unrouted:alertmanager"]) != 1 {
		t.Errorf("incidents for %d agents, want %d and unrouted:alertmanager: %v", len(incidentOf), agents, incidentOf)
	}
	for agent, keys := range incidentOf {
		if len(keys) != 1 {
			t.Errorf("%s has %d incidents, want 1", agent, len(keys))
		}
	}
	// One channel and one PagerDuty incident per agent, once the surviving
	// replica has finished what the killed one left (its leases expire).
	pageKeys := func() map[string]int {
		out := map[string]int{}
		for _, ev := range pd.Events() {
			if ev.Accepted() && ev.Action == "trigger" {
				out[ev.DedupKey]++
			}
		}
		return out
	}
	deadline := time.Now().Add(90 * time.Second)
	for len(incidentChannels(slack)) < agents+1 || len(pageKeys()) < agents+1 {
		if time.Now().After(deadline) {
			t.Fatalf("after 90 s: %d channels, pages for %d dedup keys; want %d each", len(incidentChannels(slack)), len(pageKeys()), agents)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // nothing more is coming
	perAgent := map[string]int{}
	for _, ch := range incidentChannels(slack) {
		for i := range agents {
			if strings.Contains(ch.Name, fmt.Sprintf("-storm-%d-", i)) {
				perAgent[fmt.Sprintf("storm-%d", i)]++
			}
		}
	}
	for i := range agents {
		if n := perAgent[fmt.Sprintf("storm-%d", i)]; n != 1 {
			t.Errorf("storm-%d has %d channels, want 1", i, n)
		}
	}
	if n := len(incidentChannels(slack)); n != agents+1 {
		t.Errorf("%d incident channels, want %d (one per agent, one unrouted)", n, agents+1)
	}
	pages := pageKeys()
	if len(pages) != agents+1 {
		t.Errorf("PagerDuty incidents (dedup keys) %v, want one per agent", pages)
	}
	for agent, keys := range incidentOf {
		if pages[keys[0]] == 0 {
			t.Errorf("%s's incident (%s) was never paged", agent, keys[0])
		}
	}
	t.Logf("page triggers per dedup key: %v", pages)
}
