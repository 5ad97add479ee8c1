package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/web"
)

// longSessions serves s-long, a 10,000-step session, for the session page.
type longSessions struct{}

func (longSessions) Session(ctx context.Context, agent, id string) (*web.SessionView, error) {
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	s := &web.SessionView{ID: id, Agent: "support-bot", Start: t0, Incident: 1}
	for i := range 10000 {
		st := web.StepView{Start: t0.Add(time.Duration(i) * 300 * time.Millisecond), Duration: 250 * time.Millisecond,
			Kind: "llm", Name: "answer customer", Model: "gpt-5", InputTokens: int64(2000 + i%700), OutputTokens: 300}
		if i%7 == 3 {
			st.Kind, st.Tool, st.System, st.Model = "tool", "salesforce.update", "Salesforce", ""
		}
		if i == 9000 {
			st.Breach = "tokens_per_session"
		}
		s.Steps = append(s.Steps, st)
	}
	return s, nil
}

// webBench is reins with 10,000 incidents (one in twenty open), the web view
// behind a trusted proxy header, and incident #1 opened by a real alert.
func webBench(b *testing.B, postgres bool) (*testEnv, func(path string) (time.Duration, int)) {
	b.Helper()
	if postgres && os.Getenv("REINS_TEST_POSTGRES_URL") == "" {
		b.Skip("REINS_TEST_POSTGRES_URL not set")
	}
	e := startTestMain(b, testOptions{Postgres: postgres,
		Env: map[string]string{"REINS_WEB_AUTH": "proxy", "REINS_WEB_USER_HEADER": "X-Forwarded-Email",
			"REINS_WEB_TRUSTED_PROXIES": "127.0.0.1"},
		Setup: func(m *Main) { m.WebSessions = longSessions{} },
	})
	body := []byte(`{"agent":"support-bot","summary":"Token spend 12x baseline","severity":"critical","status":"firing",
		"sessions":["s-long"],"dedup_key":"tok","details":{"tokens_per_session":240000}}`)
	if st, out := e.webhook("generic", body); st >= 300 {
		b.Fatalf("webhook: %d %s", st, out)
	}
	ctx := context.Background()
	agents := []string{"support-bot", "flag-bot", "ghost-agent"}
	for start := 0; start < 10000; start += 500 {
		var batch []*incidents.Incident
		for i := start; i < start+500; i++ {
			batch = append(batch, &incidents.Incident{Agent: agents[i%len(agents)], Unowned: i%3 == 2,
				GroupKey: fmt.Sprintf("bench-%d", i), Title: fmt.Sprintf("Synthetic incident %d", i),
				Severity: incidents.SeverityWarning, Source: "generic", Status: incidents.StatusOpen,
				CreatedAt: time.Now().Add(-time.Duration(10000-i) * time.Minute)})
		}
		if err := e.Main.Store.InTx(ctx, func(q incidents.Queries) error {
			_, err := q.InsertIncidents(ctx, batch)
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := e.Main.DB.ExecContext(ctx, e.Main.DB.Rebind(
		`UPDATE incidents SET status = 'resolved', resolved_at = created_at WHERE id > 1 AND id % 20 <> 0`)); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{}
	get := func(path string) (time.Duration, int) {
		req, _ := http.NewRequest(http.MethodGet, e.URL+path, nil)
		req.Header.Set("X-Forwarded-Email", "alice@example.com")
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		took := time.Since(start)
		if res.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d", path, res.StatusCode)
		}
		return took, int(n)
	}
	return e, get
}

// benchPages times each path in turn and reports p50 and p99 per request
// and the page weight, for docs/architecture.md, web view's budgets (list ≤ 100 ms p99, incident
// and session pages ≤ 150 ms p99 and ≤ 250 KB).
func benchPages(b *testing.B, postgres bool, paths ...string) {
	_, get := webBench(b, postgres)
	for _, p := range paths {
		get(p) // warm: prepared statements, template buffers
	}
	var took []time.Duration
	weight := 0
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		d, n := get(paths[i%len(paths)])
		took = append(took, d)
		weight = max(weight, n)
	}
	b.StopTimer()
	slices.Sort(took)
	pct := func(p float64) float64 {
		return float64(took[min(len(took)-1, int(float64(len(took))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(float64(weight)/1024, "max_KB")
}

// The first page, a page deep in the resolved ones, and filters.
var listPaths = []string{"/", "/?o=500&r=5000", "/?status=resolved&o=9000", "/?agent=flag-bot&status=open",
	"/?agent=ghost-agent"}

func BenchmarkWebListOf10000Incidents(b *testing.B) { benchPages(b, false, listPaths...) }

func BenchmarkWebListOf10000IncidentsPostgres(b *testing.B) { benchPages(b, true, listPaths...) }

func BenchmarkWebIncidentPage(b *testing.B) { benchPages(b, false, "/incidents/1", "/incidents/5000") }

func BenchmarkWebIncidentPagePostgres(b *testing.B) {
	benchPages(b, true, "/incidents/1", "/incidents/5000")
}

func BenchmarkWebSessionPage10000Steps(b *testing.B) { benchPages(b, false, "/sessions/s-long") }

// The list's queries use an index, whatever the filter.
func TestWebListQueriesAreIndexed(t *testing.T) {
	e := startTestMain(t, testOptions{})
	for _, q := range []string{
		`SELECT id FROM incidents WHERE status = 'open' ORDER BY id DESC LIMIT 51 OFFSET 0`,
		`SELECT id FROM incidents WHERE agent = 'a' AND status = 'resolved' ORDER BY id DESC LIMIT 51 OFFSET 0`,
	} {
		rows, err := e.Main.DB.Query("EXPLAIN QUERY PLAN " + q)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "; ")
		if !strings.Contains(joined, "USING INDEX") && !strings.Contains(joined, "USING COVERING INDEX") ||
			strings.Contains(joined, "TEMP B-TREE") {
			t.Errorf("%s\nplan: %s", q, joined)
		}
	}
}
