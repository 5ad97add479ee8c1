package main

// Benchmarks of the session record (issue 15, "Speed"): OTLP intake against
// a floor measured in the same run, `/agent session` on a 2,000-step
// session, and reading a 10,000-step session for an incident's summary.
// docs/performance.md has the commands and the figures.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/incidents/sqlstore"
	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/migrations"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// otlpBody is one export of n spans of session, as an SDK sends it:
// protobuf, an LLM call and a tool call alternating.
func otlpBody(session string, req, n int) []byte { return otlpTraceBody(session, req, req, n) }

// otlpTraceBody is otlpBody with spans of trace number trace; with session
// "" the spans name none (they wait for their trace's session).
func otlpTraceBody(session string, req, traceN, n int) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "support-bot")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	spans.EnsureCapacity(n)
	t0 := time.Now().Add(-time.Hour)
	var trace [16]byte
	binary.BigEndian.PutUint64(trace[:], uint64(traceN)+1)
	for i := range n {
		sp := spans.AppendEmpty()
		var id [8]byte
		binary.BigEndian.PutUint64(id[:], uint64(req)<<20|uint64(i)+1)
		sp.SetTraceID(pcommon.TraceID(trace))
		sp.SetSpanID(pcommon.SpanID(id))
		start := t0.Add(time.Duration(i) * time.Millisecond)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(500 * time.Microsecond)))
		a := sp.Attributes()
		if session != "" {
			a.PutStr("gen_ai.conversation.id", session)
		}
		if i%2 == 0 {
			sp.SetName("chat gpt-4.1")
			a.PutStr("gen_ai.operation.name", "chat")
			a.PutStr("gen_ai.response.model", "gpt-4.1")
			a.PutInt("gen_ai.usage.input_tokens", 1000)
			a.PutInt("gen_ai.usage.output_tokens", 100)
		} else {
			sp.SetName("execute_tool salesforce.update_record")
			a.PutStr("gen_ai.operation.name", "execute_tool")
			a.PutStr("gen_ai.tool.name", "salesforce.update_record")
		}
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		panic(err)
	}
	return b
}

// floorOTLP serves the OTLP floor on a loopback server: the token check,
// read the body, decode it with the same pdata library, and write each span
// as a row of the same shape as reins' session_steps (same columns and
// primary key) with one multi-row INSERT into a fresh database of dialect d:
// no agent look-up, no pricing, no totals, no duplicate accounting. On
// SQLite the INSERTs are serialised in the process, as reins' store does.
func floorOTLP(tb testing.TB, d migrations.Dialect) string {
	tb.Helper()
	ctx := context.Background()
	db, _, err := migrations.Connect(ctx, floorURL(tb, d))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.ExecContext(ctx, `CREATE TABLE floor_steps (session_id TEXT NOT NULL, span_id TEXT NOT NULL,
		trace_id TEXT NOT NULL, parent_id TEXT NOT NULL, agent TEXT NOT NULL, started_at TEXT NOT NULL,
		duration_us BIGINT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, tool TEXT NOT NULL, model TEXT NOT NULL,
		input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, cost REAL NOT NULL, priced INTEGER NOT NULL,
		error INTEGER NOT NULL, error_type TEXT NOT NULL, system TEXT NOT NULL, content TEXT NOT NULL,
		PRIMARY KEY (session_id, span_id))`); err != nil {
		tb.Fatal(err)
	}
	var gate sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+otlpToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var q strings.Builder
		var args []any
		q.WriteString(`INSERT INTO floor_steps (session_id, span_id, trace_id, parent_id, agent, started_at,
			duration_us, kind, name, tool, model, input_tokens, output_tokens, cost, priced, error, error_type,
			system, content) VALUES `)
		rss := req.Traces().ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			service, _ := rss.At(i).Resource().Attributes().Get("service.name")
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				spans := sss.At(j).Spans()
				for k := 0; k < spans.Len(); k++ {
					sp := spans.At(k)
					a := sp.Attributes()
					session, _ := a.Get("gen_ai.conversation.id")
					kind, _ := a.Get("gen_ai.operation.name")
					tool, _ := a.Get("gen_ai.tool.name")
					model, _ := a.Get("gen_ai.response.model")
					in, _ := a.Get("gen_ai.usage.input_tokens")
					out, _ := a.Get("gen_ai.usage.output_tokens")
					if len(args) > 0 {
						q.WriteString(", ")
					}
					q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
					args = append(args, session.Str(), sp.SpanID().String(), sp.TraceID().String(),
						sp.ParentSpanID().String(), service.Str(),
						sp.StartTimestamp().AsTime().UTC().Format(time.RFC3339Nano),
						int64(sp.EndTimestamp()-sp.StartTimestamp())/1000, kind.Str(), sp.Name(), tool.Str(),
						model.Str(), in.Int(), out.Int(), 0.0, 0, 0, "", "", "")
				}
			}
		}
		q.WriteString(" ON CONFLICT DO NOTHING")
		if d == migrations.SQLite {
			gate.Lock()
			defer gate.Unlock()
		}
		if _, err := db.ExecContext(r.Context(), db.Rebind(q.String()), args...); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// ceilingOTLP serves OTLP/HTTP the way the OpenTelemetry Collector's OTLP
// receiver does with the debug exporter behind it, the decode-only ceiling
// of issue 28: read the body, decode it with pdata into an export request,
// hand its traces to a consumer that only counts spans, answer with an
// encoded ExportResponse. No token, no mapping, no store.
func ceilingOTLP(tb testing.TB) string {
	tb.Helper()
	var spans atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		spans.Add(int64(req.Traces().SpanCount()))
		out, err := ptraceotlp.NewExportResponse().MarshalProto()
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// postOTLP sends one protobuf export and wants 200.
func postOTLP(url string, body []byte) error {
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/traces", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Authorization", "Bearer "+otlpToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /v1/traces: %d %q", res.StatusCode, out)
	}
	return nil
}

// perAgentTokenConfig is perfConfig with telemetry tokens for support-bot
// and flag-bot.
func perAgentTokenConfig(tb testing.TB, haltURL string) string {
	tb.Helper()
	return withTelemetryTokens(tb, perfConfig(tb, 0, haltURL))
}

// perAgentTokenEnv holds the tokens withTelemetryTokens names: support-bot's
// is the one the benchmarks' exporters send.
var perAgentTokenEnv = map[string]string{"SUPPORT_BOT_OTLP_TOKEN": otlpToken, "FLAG_BOT_OTLP_TOKEN": "flag-bot-otlp-token"}

// withTelemetryTokens gives support-bot and flag-bot of the perfConfig at
// path their own OTLP tokens, and returns path.
func withTelemetryTokens(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	y := strings.Replace(string(b), "    sessions:\n", "    telemetry: {token_env: SUPPORT_BOT_OTLP_TOKEN}\n    sessions:\n", 1)
	y = strings.Replace(y, "  flag-bot:\n", "  flag-bot:\n    telemetry: {token_env: FLAG_BOT_OTLP_TOKEN}\n", 1)
	if !strings.Contains(y, "SUPPORT_BOT_OTLP_TOKEN") || !strings.Contains(y, "FLAG_BOT_OTLP_TOKEN") {
		tb.Fatal("perfConfig no longer has the lines this inserts telemetry tokens after")
	}
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// BenchmarkOTLPIntake: 1,000-span requests from 16 concurrent exporters
// with support-bot's own token, reins against the floor. Issue 23 wants
// spans/s ≥ 0.6× the floor's (issue 15: p99 ≤ 2× the floor's).
func BenchmarkOTLPIntake(b *testing.B) {
	const exporters, requests, spans = 16, 96, 1000
	for _, store := range []struct {
		name string
		d    migrations.Dialect
	}{{"sqlite", migrations.SQLite}, {"postgres", migrations.Postgres}} {
		b.Run(store.name, func(b *testing.B) {
			// Per-agent tokens (issue 23): support-bot's own token, one more
			// agent's to compare against, no all-agents token.
			hook := halttest.NewWebhook(b, haltSecret)
			e := startPerfMain(b, testOptions{Postgres: store.d == migrations.Postgres, Halt: hook,
				Config: perAgentTokenConfig(b, hook.URL()),
				Env:    perAgentTokenEnv})
			floor := floorOTLP(b, store.d)
			ceiling := ceilingOTLP(b)
			collector := otelcolOTLP(b) // "" unless REINS_BENCH_OTELCOL names a built Collector
			bodies := make([][]byte, requests)
			for i := range bodies {
				bodies[i] = otlpBody(fmt.Sprintf("s-bench-%03d", i%exporters*7+i/exporters), i, spans)
			}
			for range b.N {
				fl, err := drive(requests, exporters, func(i int) error { return postOTLP(floor, bodies[i]) })
				if err != nil {
					b.Fatal(err)
				}
				got, err := drive(requests, exporters, func(i int) error { return postOTLP(e.URL, bodies[i]) })
				if err != nil {
					b.Fatal(err)
				}
				top, err := drive(requests, exporters, func(i int) error { return postOTLP(ceiling, bodies[i]) })
				if err != nil {
					b.Fatal(err)
				}
				rate, floorRate := got.rate()*spans, fl.rate()*spans
				b.ReportMetric(rate, "spans/s")
				b.ReportMetric(got.p99(), "p99_ms")
				b.ReportMetric(floorRate, "floor_spans/s")
				b.ReportMetric(fl.p99(), "floor_p99_ms")
				b.ReportMetric(rate/floorRate, "rate_ratio")
				b.ReportMetric(got.p99()/fl.p99(), "p99_ratio")
				b.ReportMetric(got.cpuPer(spans), "cpu_us/span")
				b.ReportMetric(fl.cpuPer(spans), "floor_cpu_us/span")
				// Issue 28 targets ≥ 0.3× the decode-only ceiling; reported,
				// not enforced: on 2 shared cores it moves with the other
				// loads more than reins does (docs/performance.md, "Capacity").
				b.ReportMetric(top.rate()*spans, "ceiling_spans/s")
				b.ReportMetric(rate/(top.rate()*spans), "ceiling_ratio")
				if collector != "" {
					col, err := drive(requests, exporters, func(i int) error { return postOTLP(collector, bodies[i]) })
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(col.rate()*spans, "collector_spans/s")
					b.ReportMetric(rate/(col.rate()*spans), "collector_ratio")
				}
				if rate < 0.6*floorRate || got.p99() > 2*fl.p99() {
					b.Errorf("reins %.0f spans/s p99 %.1f ms against the floor's %.0f spans/s p99 %.1f ms: issues 23 and 15 want ≥ 0.6× the rate and ≤ 2× the p99",
						rate, got.p99(), floorRate, fl.p99())
				}
			}
		})
	}
}

// BenchmarkOTLPIntakeHeld is BenchmarkOTLPIntake with the held-span path
// active: every fourth request's spans name no session and belong to the
// trace of the next request, which names it (an agent's children exported
// before its root). Issue 24 wants spans/s ≥ 0.6× the floor's.
var heldLog io.Writer = io.Discard

func BenchmarkOTLPIntakeHeld(b *testing.B) {
	if os.Getenv("REINS_BENCH_LOG") != "" {
		heldLog = os.Stderr
	}
	const exporters, requests, spans = 16, 96, 1000
	for _, store := range []struct {
		name string
		d    migrations.Dialect
	}{{"sqlite", migrations.SQLite}, {"postgres", migrations.Postgres}} {
		b.Run(store.name, func(b *testing.B) {
			e := startPerfMain(b, testOptions{Postgres: store.d == migrations.Postgres,
				Env: map[string]string{"REINS_OTLP_TOKEN": otlpToken}, LogTo: heldLog})
			floor := floorOTLP(b, store.d)
			bodies := make([][]byte, requests)
			sessionOf := func(i int) string { return fmt.Sprintf("s-held-%03d", i%exporters*7+i/exporters) }
			for i := range bodies {
				if i%4 == 0 {
					bodies[i] = otlpTraceBody("", i, i+1, spans) // the next request's trace
				} else {
					bodies[i] = otlpTraceBody(sessionOf(i), i, i, spans)
				}
			}
			for range b.N {
				fl, err := drive(requests, exporters, func(i int) error { return postOTLP(floor, bodies[i]) })
				if err != nil {
					b.Fatal(err)
				}
				got, err := drive(requests, exporters, func(i int) error { return postOTLP(e.URL, bodies[i]) })
				if err != nil {
					b.Fatal(err)
				}
				if err := e.Main.sweepHeldSpans(context.Background()); err != nil {
					b.Fatal(err)
				}
				rate, floorRate := got.rate()*spans, fl.rate()*spans
				b.ReportMetric(rate, "spans/s")
				b.ReportMetric(got.p99(), "p99_ms")
				b.ReportMetric(floorRate, "floor_spans/s")
				b.ReportMetric(rate/floorRate, "rate_ratio")
				b.ReportMetric(got.cpuPer(spans), "cpu_us/span")
				b.ReportMetric(fl.cpuPer(spans), "floor_cpu_us/span")
				if rate < 0.6*floorRate {
					b.Errorf("reins %.0f spans/s against the floor's %.0f spans/s with a quarter held: issue 24 wants ≥ 0.6×",
						rate, floorRate)
				}
			}
			if h := e.Main.Sessions.Holds(); h != nil {
				if n, _, _ := h.HeldStats(context.Background()); n != 0 {
					b.Errorf("%d spans still held after every trace named its session", n)
				}
			}
		})
	}
}

// seedSession stores a session of n steps (every tenth a tool call) directly.
func seedSession(tb testing.TB, e *testEnv, id string, n int) {
	tb.Helper()
	t0 := time.Now().Add(-time.Hour)
	for start := 0; start < n; start += 1000 {
		var steps []sessions.Step
		for i := start; i < min(start+1000, n); i++ {
			st := sessions.Step{Session: id, Agent: "support-bot", SpanID: fmt.Sprintf("%016x", i+1),
				Start: t0.Add(time.Duration(i) * time.Millisecond), Duration: time.Millisecond, Kind: sessions.KindChat,
				Name: "chat gpt-4.1", Model: "gpt-4.1", InputTokens: 100, OutputTokens: 10}
			if i%10 == 5 {
				st.Kind, st.Tool, st.Model, st.InputTokens, st.OutputTokens = sessions.KindTool, "salesforce.update_record", "", 0, 0
			}
			if i%500 == 7 {
				st.Error, st.ErrorType = true, "Timeout"
			}
			steps = append(steps, st)
		}
		if _, err := e.Main.Sessions.Record(context.Background(), steps); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkSessionTimeline: `/agent session ID` on a 2,000-step session in
// an incident channel, from the slash command to the timeline posted in the
// incident thread (Slack fake). Issue 15 wants p99 ≤ 300 ms.
func BenchmarkSessionTimeline(b *testing.B) {
	const rounds = 30
	e := startPerfMain(b, testOptions{Env: map[string]string{"REINS_OTLP_TOKEN": otlpToken}})
	seedSession(b, e, "s-2000", 2000)
	e.webhook("generic", []byte(`{"agent":"support-bot","summary":"loop","severity":"critical","status":"firing","sessions":["s-2000"]}`))
	e.eventually("incident channel", func() bool { return len(incidentChannels(e.Slack)) == 1 })
	ch := incidentChannels(e.Slack)[0].ID
	posted := func() int {
		n := 0
		for _, m := range e.Slack.Messages(ch) {
			if strings.Contains(string(m.Blocks), "Session s-2000 of support-bot: timeline") {
				n++
			}
		}
		return n
	}
	for range b.N {
		run, err := drive(rounds, 1, func(i int) error {
			e.slash(alice, ch, "session s-2000")
			deadline := time.Now().Add(5 * time.Second)
			for posted() < i+1 {
				if time.Now().After(deadline) {
					return fmt.Errorf("timeline %d not posted", i+1)
				}
				time.Sleep(2 * time.Millisecond)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(run.p50(), "p50_ms")
		b.ReportMetric(run.p99(), "p99_ms")
		if run.p99() > 300 {
			b.Errorf("p99 %.1f ms: issue 15 wants the timeline posted within 300 ms", run.p99())
		}
	}
}

// BenchmarkSessionForSummary: what an incident summary adds for a session
// of 10,000 steps: loading its record and finding its calls outside the
// blast radius. Issue 15 wants the summary rendered in under 50 ms.
func BenchmarkSessionForSummary(b *testing.B) {
	for _, store := range []struct {
		name string
		pg   bool
	}{{"sqlite", false}, {"postgres", true}} {
		b.Run(store.name, func(b *testing.B) {
			e := startPerfMain(b, testOptions{Postgres: store.pg, Env: map[string]string{"REINS_OTLP_TOKEN": otlpToken}})
			seedSession(b, e, "s-10k", 10000)
			a := e.Main.Registry.Current().Agent("support-bot")
			for range b.N {
				run, err := drive(20, 1, func(int) error {
					rec, err := e.Main.Sessions.Notable(context.Background(), "support-bot", "s-10k", true)
					if err != nil {
						return err
					}
					_ = sessions.FormatTotals(rec.Totals)
					_ = sessions.Outside(rec.Steps, a)
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(run.p50(), "p50_ms")
				b.ReportMetric(run.p99(), "p99_ms")
				if run.p99() > 50 {
					b.Errorf("p99 %.1f ms: issue 15 wants the summary of a 10,000-step session in under 50 ms", run.p99())
				}
			}
		})
	}
}

// TestIdleRSSWithMillionSteps: a `reins serve` process on a SQLite store
// holding 1,000,000 steps stays under 60 MB of RSS when idle (issue 15).
// It seeds for a while, so it runs only with REINS_PERF=1.
func TestIdleRSSWithMillionSteps(t *testing.T) {
	if os.Getenv("REINS_PERF") == "" {
		t.Skip("set REINS_PERF=1 to seed 1,000,000 steps and measure idle RSS")
	}
	dbURL := dbtest.SQLiteURL(t)
	db, d, err := migrations.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	store := sqlstore.New(db, d)
	t0 := time.Now().Add(-time.Hour)
	for s := range 100 {
		for start := 0; start < 10000; start += 1000 {
			steps := make([]sessions.Step, 0, 1000)
			for i := start; i < start+1000; i++ {
				steps = append(steps, sessions.Step{Session: fmt.Sprintf("s-%03d", s), Agent: "support-bot",
					SpanID: fmt.Sprintf("%016x", i), Start: t0.Add(time.Duration(i) * time.Millisecond),
					Kind: sessions.KindChat, Model: "gpt-4.1", InputTokens: 100, OutputTokens: 10, Priced: true})
			}
			if _, err := store.WriteSteps(context.Background(), steps); err != nil {
				t.Fatal(err)
			}
		}
	}
	db.Close()
	env := processEnv(t, dbURL)
	child := startChild(t, env)
	waitHTTP(t, "http://"+env["REINS_LISTEN"]+"/readyz")
	time.Sleep(3 * time.Second)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", child.Process.Pid))
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			t.Logf("idle RSS with 1,000,000 stored steps: %.1f MB", float64(kb)/1024)
			if kb > 60*1024 {
				t.Errorf("idle RSS %d kB, want under 60 MB", kb)
			}
		}
	}
}
