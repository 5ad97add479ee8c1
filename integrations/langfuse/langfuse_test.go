package langfuse_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/integrations/langfuse"
	"github.com/reins-oss/reins/integrations/otlp"
	"github.com/reins-oss/reins/ownership"
)

// fakeLangfuse answers GET /api/public/v2/observations like Langfuse: Basic
// auth, the sessionId filter, pages of pageSize with meta.cursor, and a 429
// with Retry-After on the first request.
type fakeLangfuse struct {
	t        *testing.T
	obs      []map[string]any
	session  string
	pageSize int
	mu       sync.Mutex
	requests int
}

func (f *fakeLangfuse) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	n := f.requests
	f.mu.Unlock()
	if user, pass, ok := r.BasicAuth(); !ok || user != "pk-lf-test" || pass != "sk-lf-test" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"Invalid credentials"}`))
		return
	}
	if r.URL.Path != "/api/public/v2/observations" {
		http.NotFound(w, r)
		return
	}
	if n == 1 {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	var filter []map[string]string
	if err := json.Unmarshal([]byte(r.URL.Query().Get("filter")), &filter); err != nil || len(filter) != 1 ||
		filter[0]["column"] != "sessionId" || filter[0]["operator"] != "=" || filter[0]["type"] != "string" {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"message":"invalid filter"}`))
		return
	}
	var data []map[string]any
	if filter[0]["value"] == f.session {
		data = f.obs
	}
	start, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	end := min(start+f.pageSize, len(data))
	resp := map[string]any{"data": data[start:end], "meta": map[string]any{}}
	if end < len(data) {
		resp["meta"] = map[string]any{"cursor": strconv.Itoa(end)}
	}
	_ = json.NewEncoder(w).Encode(resp)
}

func agent(host string) *ownership.Agent {
	return &ownership.Agent{Name: "support-bot", Sessions: ownership.SessionSettings{Source: ownership.SourceLangfuse,
		Langfuse:  ownership.LangfuseSettings{Host: host, PublicKeyEnv: "LF_PK", SecretKeyEnv: "LF_SK"},
		Retention: 7 * 24 * time.Hour, MaxSteps: 10000},
		BlastRadius: []ownership.BlastItem{{System: "Salesforce", Tools: []string{"salesforce.*"}}}}
}

// traces is a support-bot session as an OTel SDK exports it.
func traces(t0 time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "support-bot")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	trace := pcommon.TraceID([16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	for i := range 7 {
		sp := spans.AppendEmpty()
		sp.SetTraceID(trace)
		sp.SetSpanID(pcommon.SpanID([8]byte{0, 0, 0, 0, 0, 0, 1, byte(i + 1)}))
		if i > 0 {
			sp.SetParentSpanID(pcommon.SpanID([8]byte{0, 0, 0, 0, 0, 0, 1, 1}))
		}
		start := t0.Add(time.Duration(i) * time.Second)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(250 * time.Millisecond)))
		a := sp.Attributes()
		a.PutStr("session.id", "s-8812")
		switch {
		case i == 0:
			sp.SetName("invoke_agent support-bot")
			a.PutStr("gen_ai.operation.name", "invoke_agent")
		case i%2 == 1:
			sp.SetName("chat gpt-4.1")
			a.PutStr("gen_ai.operation.name", "chat")
			a.PutStr("gen_ai.response.model", "gpt-4.1")
			a.PutInt("gen_ai.usage.input_tokens", int64(100*i))
			a.PutInt("gen_ai.usage.output_tokens", int64(10*i))
		default:
			sp.SetName("execute_tool salesforce.update_record")
			a.PutStr("gen_ai.operation.name", "execute_tool")
			a.PutStr("gen_ai.tool.name", "salesforce.update_record")
			if i == 4 {
				sp.Status().SetCode(ptrace.StatusCodeError)
				a.PutStr("error.type", "SalesforceTimeout")
			}
		}
	}
	return td
}

// observations is what Langfuse serves for those spans.
func observations(td ptrace.Traces) []map[string]any {
	var out []map[string]any
	types := map[string]string{"chat": "GENERATION", "execute_tool": "TOOL", "invoke_agent": "AGENT"}
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := 0; i < spans.Len(); i++ {
		sp := spans.At(i)
		attrs := sp.Attributes().AsRaw()
		o := map[string]any{"id": sp.SpanID().String(), "traceId": sp.TraceID().String(), "name": sp.Name(),
			"type":      types[attrs["gen_ai.operation.name"].(string)],
			"startTime": sp.StartTimestamp().AsTime().Format(time.RFC3339Nano),
			"endTime":   sp.EndTimestamp().AsTime().Format(time.RFC3339Nano), "level": "DEFAULT",
			"metadata": map[string]any{"attributes": attrs}, "sessionId": "s-8812"}
		if !sp.ParentSpanID().IsEmpty() {
			o["parentObservationId"] = sp.ParentSpanID().String()
		}
		if m, ok := attrs["gen_ai.response.model"]; ok {
			o["providedModelName"] = m
			o["usageDetails"] = map[string]any{"input": attrs["gen_ai.usage.input_tokens"], "output": attrs["gen_ai.usage.output_tokens"]}
		}
		if sp.Status().Code() == ptrace.StatusCodeError {
			o["level"], o["statusMessage"] = "ERROR", "timed out"
		}
		out = append(out, o)
	}
	return out
}

func registry(a *ownership.Agent) *ownership.Holder {
	return ownership.NewHolder(&ownership.Registry{Agents: map[string]*ownership.Agent{a.Name: a},
		Pricing: map[string]ownership.Price{"gpt-4.1": {Input: 2, Output: 8}}})
}

// Acceptance 2 of issue 15: a session pulled from Langfuse is the same
// record as the same session received over OTLP.
func TestPullGivesTheOTLPRecord(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 14, 3, 22, 0, time.UTC)
	td := traces(t0)
	fake := &fakeLangfuse{t: t, obs: observations(td), session: "s-8812", pageSize: 3}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	a := agent(srv.URL)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()

	// Both arrive at the same moment: arrival time is part of the record.
	arrived := func() time.Time { return time.Date(2026, 12, 6, 14, 5, 0, 0, time.UTC) }
	viaOTLP := sessions.New(incidentstest.NewSessionStore(), registry(a), nil, arrived, log)
	res := otlp.Map(td, func(name string) *ownership.Agent {
		if name == a.Name {
			return a
		}
		return nil
	})
	if _, err := viaOTLP.Record(ctx, res.Steps); err != nil {
		t.Fatal(err)
	}
	want, err := viaOTLP.Session(ctx, "", "s-8812")
	if err != nil {
		t.Fatal(err)
	}

	client := langfuse.NewClient(func(k string) string {
		return map[string]string{"LF_PK": "pk-lf-test", "LF_SK": "sk-lf-test"}[k]
	})
	var waited []time.Duration
	client.Sleep = func(ctx context.Context, d time.Duration) error { waited = append(waited, d); return nil }
	viaLangfuse := sessions.New(incidentstest.NewSessionStore(), registry(a), client, arrived, log)
	got, err := viaLangfuse.Session(ctx, "support-bot", "s-8812")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pulled record differs from the OTLP one:\n got %+v\nwant %+v", got, want)
	}
	if want.Totals.Steps != 7 || want.Totals.Errors != 1 || want.Totals.ToolCalls != 3 {
		t.Errorf("the OTLP record itself is off: %+v", want.Totals)
	}
	if len(waited) != 1 || waited[0] != time.Second {
		t.Errorf("waited %v, want one wait of Retry-After: 1s", waited)
	}
	if fake.requests != 1+3 {
		t.Errorf("%d requests, want a refused one and 3 pages of 3", fake.requests)
	}
}

func TestPullErrWrongKeys(t *testing.T) {
	srv := httptest.NewServer(&fakeLangfuse{t: t, session: "s-1", pageSize: 3})
	defer srv.Close()
	client := langfuse.NewClient(func(k string) string { return "wrong" })
	_, err := client.Pull(context.Background(), agent(srv.URL), "s-1")
	if err == nil || !strings.Contains(err.Error(), "refused the keys") {
		t.Errorf("err = %v, want the keys refused", err)
	}
}

func TestPullErrNoKeys(t *testing.T) {
	client := langfuse.NewClient(func(string) string { return "" })
	_, err := client.Pull(context.Background(), agent("http://127.0.0.1:1"), "s-1")
	if err == nil || !strings.Contains(err.Error(), "LF_PK") {
		t.Errorf("err = %v, want the variables named", err)
	}
}
