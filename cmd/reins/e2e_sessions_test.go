package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/reins-oss/reins/incidents/sessions"
)

const otlpToken = "test-otlp-token"

// supportSession is the session the acceptance test's agent runs: three LLM
// calls, three Salesforce tool calls (one failing), one SendGrid call and a
// tool no blast-radius entry declares.
func supportSession(ctx context.Context, tr trace.Tracer, session string) {
	ctx, root := tr.Start(ctx, "invoke_agent support-bot", trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "invoke_agent"),
		attribute.String("gen_ai.agent.name", "support-bot"),
		attribute.String("gen_ai.conversation.id", session)))
	chat := func() {
		_, sp := tr.Start(ctx, "chat gpt-4.1", trace.WithAttributes(
			attribute.String("gen_ai.operation.name", "chat"),
			attribute.String("gen_ai.request.model", "gpt-4.1"),
			attribute.String("gen_ai.response.model", "gpt-4.1-2025-04-14"),
			attribute.Int("gen_ai.usage.input_tokens", 1000),
			attribute.Int("gen_ai.usage.output_tokens", 200)))
		time.Sleep(time.Millisecond)
		sp.End()
	}
	tool := func(name string, fail bool) {
		_, sp := tr.Start(ctx, "execute_tool "+name, trace.WithAttributes(
			attribute.String("gen_ai.operation.name", "execute_tool"),
			attribute.String("gen_ai.tool.name", name)))
		if fail {
			sp.SetAttributes(attribute.String("error.type", "SalesforceTimeout"))
			sp.SetStatus(codes.Error, "timed out")
		}
		time.Sleep(time.Millisecond)
		sp.End()
	}
	chat()
	tool("salesforce.get_case", false)
	chat()
	tool("salesforce.update_record", false)
	tool("salesforce.update_record", true)
	chat()
	tool("sendgrid.send_email", false)
	tool("zendesk.close_ticket", false)
	root.End()
}

// exportSession runs supportSession through the OpenTelemetry SDK and its
// real OTLP/HTTP exporter pointed at reins, and returns the spans sent.
func exportSession(t *testing.T, e *testEnv, session string) tracetest.SpanStubs {
	t.Helper()
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(e.URL+"/v1/traces"),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + otlpToken}))
	if err != nil {
		t.Fatal(err)
	}
	mem := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSyncer(mem),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "support-bot-v2"))))
	supportSession(ctx, tp.Tracer("support-bot"), session)
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatalf("export: %v", err)
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	return tracetest.SpanStubsFromReadOnlySpans(mem.GetSpans().Snapshots())
}

func TestSessionsOTLPIntake(t *testing.T) {
	for _, store := range []struct {
		name string
		pg   bool
	}{{"SQLite", false}, {"PostgreSQL", true}} {
		t.Run(store.name, func(t *testing.T) {
			e := startTestMain(t, testOptions{Postgres: store.pg, Env: map[string]string{"REINS_OTLP_TOKEN": otlpToken}})
			sent := exportSession(t, e, "s-8812")

			rec := e.session("s-8812")
			want := sessions.Totals{Session: "s-8812", Agent: "support-bot", Steps: 9, Stored: 9, ToolCalls: 5,
				Errors: 1, InputTokens: 3000, OutputTokens: 600}
			got := rec.Totals
			got.Cost, got.First, got.Last = 0, time.Time{}, time.Time{}
			if got != want {
				t.Errorf("totals:\n got %+v\nwant %+v", got, want)
			}
			if math.Abs(rec.Totals.Cost-0.0108) > 1e-9 || rec.Totals.Unpriced != 0 {
				t.Errorf("cost = %v (unpriced %d), want 0.0108 USD: 3,000 in and 600 out at gpt-4.1's 2/8 USD per 1M", rec.Totals.Cost, rec.Totals.Unpriced)
			}
			// First and last seen are when reins received the spans (one
			// batch here), not the agent's clock.
			if rec.Totals.First.IsZero() || rec.Totals.Last.Before(rec.Totals.First) || time.Since(rec.Totals.First) > time.Minute {
				t.Errorf("first %v, last %v: want when the spans arrived", rec.Totals.First, rec.Totals.Last)
			}
			if rec.Link != "https://langfuse.example.com/project/p1/sessions/s-8812" {
				t.Errorf("link = %q", rec.Link)
			}
			systems := map[string]int{}
			for _, st := range rec.Steps {
				if st.Tool != "" {
					systems[st.System]++
				}
				if st.Kind == sessions.KindChat && (st.Model != "gpt-4.1-2025-04-14" || !st.Priced) {
					t.Errorf("chat step %+v: want the response model, priced", st)
				}
				if st.Tool == "salesforce.update_record" && st.Error && st.ErrorType != "SalesforceTimeout" {
					t.Errorf("failed tool call error type = %q, want error.type", st.ErrorType)
				}
			}
			if systems["Salesforce"] != 3 || systems["SendGrid"] != 1 || systems[""] != 1 {
				t.Errorf("tool calls per blast-radius system = %v, want Salesforce 3, SendGrid 1, none 1", systems)
			}

			// Exporters retry: the same spans again change nothing.
			exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(e.URL+"/v1/traces"),
				otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + otlpToken}))
			if err != nil {
				t.Fatal(err)
			}
			if err := exp.ExportSpans(context.Background(), sent.Snapshots()); err != nil {
				t.Fatalf("re-export: %v", err)
			}
			_ = exp.Shutdown(context.Background())
			again := e.session("s-8812")
			if again.Totals != rec.Totals || len(again.Steps) != 9 {
				t.Errorf("after a duplicate export: totals %+v with %d steps stored; want them unchanged", again.Totals, len(again.Steps))
			}

			// The command line shows the same record.
			code, out, errOut := cli(t, e.env, "session", "s-8812")
			if code != 0 || !strings.Contains(out, "9 steps · 5 tool calls · 1 error · 3,600 tokens (3,000 in / 600 out) · $0.0108") ||
				!strings.Contains(out, "execute_tool salesforce.update_record") || !strings.Contains(out, "ERROR SalesforceTimeout") {
				t.Errorf("reins session: exit %d\n%s%s", code, out, errOut)
			}
			code, out, _ = cli(t, e.env, "session", "s-8812", "--format", "json")
			var fromCLI sessions.Record
			if err := json.Unmarshal([]byte(out), &fromCLI); code != 0 || err != nil || fromCLI.Totals != again.Totals || len(fromCLI.Steps) != 9 {
				t.Errorf("reins session --format json: exit %d, %v: %s", code, err, out)
			}

			status, body := e.api(http.MethodGet, "/agents/support-bot/sessions?since=1h", nil)
			if status != http.StatusOK || !strings.Contains(string(body), `"session": "s-8812"`) {
				t.Errorf("agent sessions: %d %s", status, body)
			}
			if status, body := e.api(http.MethodGet, "/agents/support-bot/sessions?since=yesterday", nil); status != http.StatusBadRequest {
				t.Errorf("since=yesterday: %d %s, want 400", status, body)
			}
			if status, _ := e.api(http.MethodGet, "/agents/nobody/sessions", nil); status != http.StatusNotFound {
				t.Errorf("unknown agent: %d, want 404", status)
			}
			if status, _ := e.api(http.MethodGet, "/sessions/s-none", nil); status != http.StatusNotFound {
				t.Errorf("unknown session: %d, want 404", status)
			}
		})
	}
}

// sessionDoc is GET /api/v1/sessions/{id}.
func (e *testEnv) session(id string) sessions.Record {
	e.t.Helper()
	status, body := e.api(http.MethodGet, "/sessions/"+id, nil)
	if status != http.StatusOK {
		e.t.Fatalf("GET session %s: %d %s", id, status, body)
	}
	var d sessions.Record
	if err := json.Unmarshal(body, &d); err != nil {
		e.t.Fatalf("decode session: %v", err)
	}
	return d
}

func TestSessionsOTLPBadInput(t *testing.T) {
	e := startTestMain(t, testOptions{Env: map[string]string{"REINS_OTLP_TOKEN": otlpToken}})
	auth := http.Header{"Authorization": {"Bearer " + otlpToken}}
	with := func(h http.Header, kv ...string) http.Header {
		c := h.Clone()
		for i := 0; i < len(kv); i += 2 {
			c.Set(kv[i], kv[i+1])
		}
		return c
	}
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write(make([]byte, 9<<20))
	_ = zw.Close()
	for _, tc := range []struct {
		name   string
		header http.Header
		body   []byte
		status int
		says   string
	}{
		{"ErrNoToken", http.Header{"Content-Type": {"application/json"}}, []byte(`{}`), 401, "bearer token"},
		{"ErrWrongToken", http.Header{"Authorization": {"Bearer nope"}, "Content-Type": {"application/json"}}, []byte(`{}`), 401, "bearer token"},
		{"ErrMediaType", with(auth, "Content-Type", "text/plain"), []byte(`hi`), 415, "application/x-protobuf"},
		{"ErrBadJSON", with(auth, "Content-Type", "application/json"), []byte(`{"resourceSpans": [`), 400, "cannot decode"},
		{"ErrBadProtobuf", with(auth, "Content-Type", "application/x-protobuf"), []byte{0x0a, 0xff, 0xff, 0xff}, 400, "cannot decode"},
		{"ErrGzipBomb", with(auth, "Content-Type", "application/json", "Content-Encoding", "gzip"), bomb.Bytes(), 413, "after decompression"},
		{"ErrTooLarge", with(auth, "Content-Type", "application/json"), bytes.Repeat([]byte(" "), 9<<20), 413, "after decompression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.do(http.MethodPost, "/v1/traces", tc.header, tc.body)
			if status != tc.status || !strings.Contains(string(body), tc.says) {
				t.Errorf("got %d %s, want %d saying %q", status, body, tc.status, tc.says)
			}
		})
	}
	if len(bomb.Bytes()) > 64<<10 {
		t.Fatalf("the bomb is %d bytes compressed: not a bomb", bomb.Len())
	}

	t.Run("DroppedAndCounted", func(t *testing.T) {
		before := e.metric(`reins_otlp_spans_dropped_total{reason="unknown_agent"}`) + e.metric(`reins_otlp_spans_dropped_total{reason="no_session"}`)
		body := []byte(`{"resourceSpans":[
		 {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"ghost-bot"}}]},
		  "scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"chat",
		   "startTimeUnixNano":"1765000000000000000","endTimeUnixNano":"1765000001000000000",
		   "attributes":[{"key":"session.id","value":{"stringValue":"s-ghost"}}]}]}]},
		 {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"support-bot"}}]},
		  "scopeSpans":[{"spans":[{"traceId":"6b8efff798038103d269b633813fc60c","spanId":"fee19b7ec3c1b174","name":"GET /health",
		   "startTimeUnixNano":"1765000000000000000","endTimeUnixNano":"1765000001000000000"}]}]},
		 {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"support-bot"}}]},
		  "scopeSpans":[{"spans":[{"traceId":"7b8efff798038103d269b633813fc60c","spanId":"aee19b7ec3c1b174","name":"chat",
		   "startTimeUnixNano":"1765000000000000000","endTimeUnixNano":"1765000001000000000",
		   "attributes":[{"key":"session.id","value":{"stringValue":"bad\u0007id"}}]}]}]}]}`)
		status, resp := e.do(http.MethodPost, "/v1/traces", with(auth, "Content-Type", "application/json"), body)
		if status != 200 || !strings.Contains(string(resp), `"rejectedSpans":"2"`) || !strings.Contains(string(resp), "ghost-bot") ||
			!strings.Contains(string(resp), "control characters") {
			t.Errorf("got %d %s, want 200 with partial_success rejecting the unknown agent's span and the bad session ID", status, resp)
		}
		if after := e.metric(`reins_otlp_spans_dropped_total{reason="unknown_agent"}`) + e.metric(`reins_otlp_spans_dropped_total{reason="no_session"}`); after-before != 2 {
			t.Errorf("dropped spans counted %v, want 2 more (unknown agent, no session)", after-before)
		}
		if status, _ := e.api(http.MethodGet, "/sessions/s-ghost", nil); status != http.StatusNotFound {
			t.Errorf("an unknown agent's session was stored: %d", status)
		}
		status, _ = e.api(http.MethodGet, "/incidents", nil)
		if status != 200 {
			t.Fatalf("incidents: %d", status)
		}
	})
}

// metric reads one sample from /metrics, 0 when absent.
func (e *testEnv) metric(series string) float64 {
	e.t.Helper()
	_, body := e.do(http.MethodGet, "/metrics", nil, nil)
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}
