package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sqlstore"
	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/integrations/pagerduty/pdfake"
	"github.com/reins-oss/reins/migrations"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// Issue 23, acceptance 4: `reins serve` processes SIGKILLed while breaching
// spans stream in. After the restart every session whose breaching span was
// answered 200 is halted, and exactly once (one verified halt): on
// PostgreSQL with two replicas (the senders keep going to the survivor), on
// SQLite with one process.
func TestGuardKilledMidStreamLosesNoAnsweredBreach(t *testing.T) {
	if testing.Short() {
		t.Skip("starts reins processes")
	}
	t.Run("PostgreSQL", func(t *testing.T) { testGuardKilledMidStream(t, dbtest.PostgresURL(t), 2) })
	t.Run("SQLite", func(t *testing.T) { testGuardKilledMidStream(t, dbtest.SQLiteURL(t), 1) })
}

func testGuardKilledMidStream(t *testing.T, db string, replicas int) {
	hook := halttest.NewWebhook(t, haltSecret)
	pd := pdfake.New()
	t.Cleanup(pd.Close)
	tmpl, err := os.ReadFile("testdata/reins.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.ReplaceAll(string(tmpl), "{{HALT_URL}}", hook.URL())
	yaml = strings.Replace(yaml, templateSLAs, `    slas:
      - metric: steps_per_session
        max: 3
        on_breach: halt_session
    escalation:
      max_auto_halts_per_minute: 10000
`, 1)
	cfgPath := filepath.Join(t.TempDir(), "reins.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func() map[string]string {
		return map[string]string{
			"REINS_DATABASE_URL": db, "REINS_CONFIG": cfgPath, "REINS_LISTEN": freeAddr(t),
			"REINS_API_TOKEN": apiToken, "REINS_OTLP_TOKEN": otlpToken, "SUPPORT_BOT_HALT_SECRET": haltSecret,
			"PD_SUPPORT_AI_KEY": "k", "PAGERDUTY_EVENTS_URL": pd.URL, "PAGERDUTY_API_URL": pd.URL,
		}
	}
	envs := make([]map[string]string, replicas)
	children := make([]*childProc, replicas)
	for i := range envs {
		envs[i] = env()
		children[i] = &childProc{cmd: startChild(t, envs[i]).Process}
		waitHTTP(t, "http://"+envs[i]["REINS_LISTEN"]+"/readyz")
	}

	var (
		mu    sync.Mutex
		acked = map[string]bool{} // sessions whose breaching request was answered 200
		sent  atomic.Int64
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	hdr := http.Header{"Authorization": {"Bearer " + otlpToken}, "Content-Type": {"application/json"}}
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				session := fmt.Sprintf("s-crash-%d-%d", w, n)
				// Five steps in one request: the fourth crosses max 3.
				var spans []string
				for k := range 5 {
					spans = append(spans, fmt.Sprintf(`{"traceId":"5b8efff798038103d269b633813f%02x%02x","spanId":"%02x%04x%02x00000000","name":"chat",
					 "startTimeUnixNano":"1765000000000000000","endTimeUnixNano":"1765000001000000000",
					 "attributes":[{"key":"session.id","value":{"stringValue":"%s"}}]}`, w, n%256, w, n, k, session))
				}
				body := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"support-bot"}}]},
				  "scopeSpans":[{"spans":[` + strings.Join(spans, ",") + `]}]}]}`
				target := envs[(w+n)%replicas]["REINS_LISTEN"]
				if replicas > 1 && children[0].killed.Load() {
					target = envs[1]["REINS_LISTEN"] // the senders move to the survivor
				}
				req, _ := http.NewRequest(http.MethodPost, "http://"+target+"/v1/traces", strings.NewReader(body))
				req.Header = hdr.Clone()
				res, err := client.Do(req)
				sent.Add(1)
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					mu.Lock()
					acked[session] = true
					mu.Unlock()
				}
			}
		}()
	}
	// Kill the first process mid-stream, once it has taken some.
	deadline := time.Now().Add(20 * time.Second)
	for sent.Load() < 60 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	children[0].kill(t)
	time.Sleep(500 * time.Millisecond) // the survivor keeps taking spans meanwhile
	close(stop)
	wg.Wait()
	// Restart the killed one on the same database.
	envs[0] = env()
	children[0] = &childProc{cmd: startChild(t, envs[0]).Process}
	waitHTTP(t, "http://"+envs[0]["REINS_LISTEN"]+"/readyz")

	mu.Lock()
	want := make([]string, 0, len(acked))
	for s := range acked {
		want = append(want, s)
	}
	mu.Unlock()
	if len(want) < 20 {
		t.Fatalf("only %d sessions answered 200: the stream did not get going", len(want))
	}
	store := openStore(t, db)
	verified := func() map[string]int {
		halts, err := store.FindHalts(context.Background(), "support-bot", 0)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, h := range halts {
			if h.Action == incidents.ActionHalt && h.Status == incidents.HaltVerified {
				for _, s := range h.Sessions {
					out[s]++
				}
			}
		}
		return out
	}
	// A killed replica's leases (20 s) and unjudged marks (10 s) run out
	// before the others take its work over; a halt it left "requested"
	// after the agent took it is settled once no process can still be
	// running it (about a minute: incidents.FinishInterruptedHalts).
	var missing []string
	for end := time.Now().Add(150 * time.Second); ; {
		got := verified()
		missing = missing[:0]
		for _, s := range want {
			if got[s] == 0 {
				missing = append(missing, s)
			}
		}
		if len(missing) == 0 || time.Now().After(end) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(missing) > 0 {
		// What the store holds of each: the breach row and every halt that
		// names it, so a failure says where the chain broke.
		halts, _ := store.FindHalts(context.Background(), "support-bot", 0)
		for _, s := range missing {
			bs, err := store.SessionBreaches(context.Background(), "support-bot", s)
			t.Logf("session %s: breaches %+v (err %v)", s, bs, err)
			for _, h := range halts {
				if slices.Contains(h.Sessions, s) {
					t.Logf("session %s: halt %d %s %s by %s: %s", s, h.ID, h.Action, h.Status, h.Actor, h.Error)
				}
			}
		}
		t.Fatalf("%d of %d sessions answered 200 never halted: %v", len(missing), len(want), missing)
	}
	time.Sleep(time.Second) // a second halt, if any, has its chance to show
	for s, n := range verified() {
		if n != 1 {
			t.Errorf("session %s halted %d times, want once", s, n)
		}
	}
	t.Logf("%d sessions answered 200, each halted once; %d requests sent; %d halt requests at the agent",
		len(want), sent.Load(), len(hook.Messages()))
}

type childProc struct {
	cmd    interface{ Signal(os.Signal) error }
	killed atomic.Bool
}

func (c *childProc) kill(t *testing.T) {
	t.Helper()
	c.killed.Store(true)
	if err := c.cmd.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// openStore opens reins' store on db from the test process.
func openStore(t *testing.T, db string) *sqlstore.Store {
	t.Helper()
	x, d, err := migrations.Connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = x.Close() })
	return sqlstore.New(x, d)
}
