package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/integrations/pagerduty/pdfake"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// replicaSLAYAML is one SLA of each kind whose state spans steps: a
// window, loops (windowed and whole-session), an error rate, windowed and
// whole-session totals. Every breach halts its session.
const replicaSLAYAML = `    slas:
      - metric: tool_calls_per_minute
        max: 6
        on_breach: halt_session
      - metric: loop
        count: 3
        window: 2m
        on_breach: halt_session
      - name: loop_total
        metric: loop
        count: 5
        on_breach: halt_session
      - metric: error_rate
        max: 0.4
        steps: 10
        on_breach: halt_session
      - name: tokens_window
        metric: tokens_per_session
        max: 9000
        window: 1m
        on_breach: halt_session
      - metric: tokens_per_session
        max: 15000
        on_breach: halt_session
      - metric: steps_per_session
        max: 25
        on_breach: halt_session
    escalation:
      max_auto_halts_per_minute: 10000
`

// replicaRunResult is what one run of replicaGuardRun recorded: each
// session's breaches as SLA → crossing step, and the halt requests each
// session's agent endpoint received.
type replicaRunResult struct {
	breaches map[string]map[string]int64
	halts    map[string]int
	verified map[string]int
}

// Issue 28, item 1 and acceptance 1: three `reins serve` on one PostgreSQL,
// the spans of 50 sessions sent round-robin to them (each session's
// requests one after the other, as one agent sends them, but each to the
// next replica). Every SLA breaches at the same step as when one replica
// takes them all, and each breaching session is halted once.
func TestSessionsSpreadOverThreeReplicasBreachAsOnOne(t *testing.T) {
	if testing.Short() {
		t.Skip("starts reins processes")
	}
	one := replicaGuardRun(t, 1)
	three := replicaGuardRun(t, 3)
	kinds := map[string]bool{}
	for _, s := range slices.Sorted(maps.Keys(one.breaches)) {
		for sla := range one.breaches[s] {
			kinds[sla] = true
		}
		if !maps.Equal(three.breaches[s], one.breaches[s]) {
			t.Errorf("session %s on three replicas breached %v, on one %v", s, three.breaches[s], one.breaches[s])
		}
	}
	for s := range three.breaches {
		if one.breaches[s] == nil {
			t.Errorf("session %s breached %v on three replicas only", s, three.breaches[s])
		}
	}
	// Equality proves little unless the run crosses every SLA somewhere.
	for _, sla := range []string{"tool_calls_per_minute", "loop", "loop_total", "error_rate", "tokens_window",
		"tokens_per_session", "steps_per_session"} {
		if !kinds[sla] {
			t.Errorf("no session breached %s in the one-replica run: the scenario does not test it", sla)
		}
	}
	for name, r := range map[string]replicaRunResult{"one replica": one, "three replicas": three} {
		if len(r.breaches) < 40 {
			t.Errorf("%s: only %d of 50 sessions breached", name, len(r.breaches))
		}
		for s := range r.breaches {
			if r.halts[s] != 1 || r.verified[s] != 1 {
				t.Errorf("%s: session %s got %d halt requests, %d verified halts; want 1 each", name, s, r.halts[s], r.verified[s])
			}
		}
		for s, n := range r.halts {
			if r.breaches[s] == nil {
				t.Errorf("%s: session %s halted %d times without a breach", name, s, n)
			}
		}
	}
}

// replicaGuardRun starts n `reins serve` on a fresh PostgreSQL database and
// sends the 50 sessions' spans round-robin to them.
func replicaGuardRun(t *testing.T, n int) replicaRunResult {
	t.Helper()
	db := dbtest.PostgresURL(t)
	hook := halttest.NewWebhook(t, haltSecret)
	pd := pdfake.New()
	t.Cleanup(pd.Close)
	tmpl, err := os.ReadFile("testdata/reins.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.ReplaceAll(string(tmpl), "{{HALT_URL}}", hook.URL())
	if !strings.Contains(yaml, templateSLAs) {
		t.Fatal("testdata/reins.yaml.tmpl no longer holds the SLA block this test replaces")
	}
	yaml = strings.Replace(yaml, templateSLAs, replicaSLAYAML, 1)
	cfgPath := filepath.Join(t.TempDir(), "reins.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = freeAddr(t)
		startChild(t, map[string]string{
			"REINS_DATABASE_URL": db, "REINS_CONFIG": cfgPath, "REINS_LISTEN": addrs[i],
			"REINS_API_TOKEN": apiToken, "REINS_OTLP_TOKEN": otlpToken, "SUPPORT_BOT_HALT_SECRET": haltSecret,
			"PD_SUPPORT_AI_KEY": "k", "PAGERDUTY_EVENTS_URL": pd.URL, "PAGERDUTY_API_URL": pd.URL,
		})
	}
	for _, a := range addrs {
		waitHTTP(t, "http://"+a+"/readyz")
	}

	const sessionsN, requests, senders = 50, 16, 10
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := w; s < sessionsN; s += senders {
				i := 0 // the session's step count so far
				for k := range requests {
					var spans []string
					for range 1 + (k+s)%3 {
						spans = append(spans, replicaSpan(s, i))
						i++
					}
					body := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"support-bot"}}]},
					  "scopeSpans":[{"spans":[` + strings.Join(spans, ",") + `]}]}]}`
					if err := exportAsExporters(client, "http://"+addrs[(k+s)%n]+"/v1/traces", body); err != nil {
						errs <- fmt.Errorf("session %d request %d: %w", s, k, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	store := openStore(t, db)
	out := replicaRunResult{breaches: map[string]map[string]int64{}, halts: map[string]int{}, verified: map[string]int{}}
	// Every breach acted on, then a moment for a second halt, if any, to show.
	for end := time.Now().Add(30 * time.Second); ; {
		list, err := store.FindBreaches(context.Background(), "support-bot", time.Time{}, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		waiting := 0
		for _, b := range list {
			if b.Outcome == "" {
				waiting++
			}
		}
		if waiting == 0 && len(list) > 0 {
			for _, b := range list {
				if out.breaches[b.Session] == nil {
					out.breaches[b.Session] = map[string]int64{}
				}
				out.breaches[b.Session][b.RepeatKey()] = b.StepN
			}
			break
		}
		if time.Now().After(end) {
			t.Fatalf("%d replica(s): %d of %d breaches not acted on after 30 s", n, waiting, len(list))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	for _, m := range hook.Messages() {
		if m.Action == "halt" {
			for _, s := range m.Sessions {
				out.halts[s]++
			}
		}
	}
	halts, err := store.FindHalts(context.Background(), "support-bot", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range halts {
		if h.Action == incidents.ActionHalt && h.Status == incidents.HaltVerified {
			for _, s := range h.Sessions {
				out.verified[s]++
			}
		}
	}
	return out
}

// replicaSpan is step i of session s: every third a tool call, its
// arguments one of two (loops), the others chats of varying tokens; some
// sessions fail often (error rate).
func replicaSpan(s, i int) string {
	attrs := []string{fmt.Sprintf(`{"key":"session.id","value":{"stringValue":"rr-%02d"}}`, s)}
	if (i+s)%3 == 0 {
		attrs = append(attrs, `{"key":"gen_ai.operation.name","value":{"stringValue":"execute_tool"}}`,
			`{"key":"gen_ai.tool.name","value":{"stringValue":"crm_lookup"}}`,
			fmt.Sprintf(`{"key":"gen_ai.tool.call.arguments","value":{"stringValue":"{\"id\":%d}"}}`, (i+s)%2))
	} else {
		attrs = append(attrs, `{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}}`,
			fmt.Sprintf(`{"key":"gen_ai.usage.input_tokens","value":{"intValue":"%d"}}`, 400+100*((i*7+s)%9)))
	}
	status := ""
	if (i+s)%5 < s%4 {
		status = `,"status":{"code":2,"message":"upstream failed"}`
	}
	return fmt.Sprintf(`{"traceId":"7a8efff798038103d269b633813f%04x","spanId":"%04x%04x00000000","name":"step",
	  "startTimeUnixNano":"1765000000000000000","endTimeUnixNano":"1765000001000000000","attributes":[%s]%s}`,
		s, s, i, strings.Join(attrs, ","), status)
}

// exportAsExporters posts one OTLP/JSON export and, as the OpenTelemetry
// exporters do, sends it again after Retry-After when reins answers 429 or
// 503 (busy, or its database refusing connections for a moment), for up to a
// minute. Anything else but 200 is an error.
func exportAsExporters(client *http.Client, url, body string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+otlpToken)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		res.Body.Close()
		switch {
		case res.StatusCode == http.StatusOK:
			return nil
		case (res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable) &&
			time.Now().Before(deadline):
			wait, err := strconv.Atoi(res.Header.Get("Retry-After"))
			if err != nil {
				return fmt.Errorf("%s without Retry-After", res.Status)
			}
			time.Sleep(time.Duration(wait) * time.Second)
		default:
			return errors.New(res.Status)
		}
	}
}
