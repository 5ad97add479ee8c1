package otlp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/integrations/otlp"
	"github.com/reins-oss/reins/ownership"
)

// captured is one request a real library sent (testdata/capture/README.md).
type captured struct {
	File        string `json:"file"`
	ContentType string `json:"content_type"`
	AfterMS     int64  `json:"after_ms"`
	body        []byte
}

func loadCapture(t testing.TB, name string) []captured {
	t.Helper()
	dir := filepath.Join("testdata", "capture", "requests", name)
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var reqs []captured
	if err := json.Unmarshal(b, &reqs); err != nil {
		t.Fatal(err)
	}
	for i := range reqs {
		if reqs[i].body, err = os.ReadFile(filepath.Join(dir, reqs[i].File)); err != nil {
			t.Fatal(err)
		}
	}
	return reqs
}

// captureWant is what reins must make of a capture's agent loop: 10 model
// turns, 9 tool calls (get_order and search_docs 4 times each,
// delete_account once), 5,500 input and 200 output tokens on gpt-4.1 at
// $2/$8 per 1M, and the failed call when the library exported a span for it.
type captureWant struct {
	session string
	steps   int64
	errors  int64
}

var captures = []struct {
	name string
	want captureWant
}{
	// gen_ai.conversation.id on the root span only, which arrives in the
	// second request after its 20 children.
	{"otel-genai", captureWant{"sess-otel-1", 21, 1}},
	// traceloop.association.properties.session_id; tools by
	// traceloop.span.kind=tool + traceloop.entity.name; token counts as
	// strings; no span for the failed call.
	{"openllmetry", captureWant{"sess-openllmetry-1", 20, 0}},
	// ai.telemetry.metadata.sessionId, ai.toolCall.name, ai.usage.*; two
	// ai.generateText wrappers repeat the usage and the error.
	{"vercel-ai", captureWant{"sess-vercel-1", 22, 1}},
	// session.id, openinference.span.kind, tool.name, llm.token_count.*;
	// no span for the failed call.
	{"openinference", captureWant{"sess-openinference-1", 20, 0}},
	// session.id (propagated), langfuse.observation.type,
	// usage_details JSON, level ERROR.
	{"langfuse", captureWant{"sess-langfuse-1", 21, 1}},
}

func captureRegistry() *ownership.Registry {
	max := 1e9
	bot := &ownership.Agent{Name: "support-bot", Sessions: ownership.SessionSettings{MaxSteps: 10_000},
		SLAs: []ownership.SLA{{Name: "tool_scope", Metric: ownership.SLAToolScope, Allow: []string{"get_order", "search_docs"}},
			{Name: "tokens_per_session", Metric: ownership.SLATokensPerSession, Max: &max}}}
	reg := ownership.Empty()
	reg.Agents = map[string]*ownership.Agent{"support-bot": bot}
	reg.Pricing = map[string]ownership.Price{"gpt-4.1": {Input: 2, Output: 8}}
	return reg
}

type replay struct {
	h     *otlp.Handler
	svc   *sessions.Service
	store *incidentstest.SessionStore
}

func newReplay(reg *ownership.Registry) replay {
	store := incidentstest.NewSessionStore()
	holder := ownership.NewHolder(reg)
	svc := sessions.New(store, holder, nil, nil, nil)
	h := otlp.NewHandler(otlp.Config{Token: "t", Recorder: svc,
		Resolve: func(name string) *ownership.Agent { return holder.Current().Agent(name) }})
	return replay{h: h, svc: svc, store: store}
}

// send posts one captured request and returns the partial success answer.
func (r replay) send(t testing.TB, c captured) (rejected int64, msg string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(c.body))
	req.Header.Set("Content-Type", c.ContentType)
	req.Header.Set("Authorization", "Bearer t")
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("%s: status %d: %s", c.File, w.Code, w.Body.String())
	}
	resp := ptraceotlp.NewExportResponse()
	var err error
	if c.ContentType == "application/json" {
		err = resp.UnmarshalJSON(w.Body.Bytes())
	} else {
		err = resp.UnmarshalProto(w.Body.Bytes())
	}
	if err != nil {
		t.Fatalf("%s: answer: %v", c.File, err)
	}
	return resp.PartialSuccess().RejectedSpans(), resp.PartialSuccess().ErrorMessage()
}

// TestCaptures replays what each real library sent, split across requests
// as its batch processor split it (children first, the root last), then in
// the reverse order, and checks the session record reins keeps.
func TestCaptures(t *testing.T) {
	for _, c := range captures {
		reqs := loadCapture(t, c.name)
		if len(reqs) < 2 {
			t.Fatalf("%s: %d requests: the capture must show the exporter's split", c.name, len(reqs))
		}
		for _, order := range []string{"as exported", "reversed"} {
			t.Run(c.name+"/"+order, func(t *testing.T) {
				r := newReplay(captureRegistry())
				sent := slices.Clone(reqs)
				if order == "reversed" {
					slices.Reverse(sent)
				}
				for _, q := range sent {
					if n, msg := r.send(t, q); n != 0 {
						t.Errorf("%s: %d spans rejected: %s", q.File, n, msg)
					}
				}
				checkRecord(t, r.svc, c.want)
			})
		}
	}
}

func checkRecord(t *testing.T, svc *sessions.Service, want captureWant) {
	t.Helper()
	rec, err := svc.Session(context.Background(), "", want.session)
	if err != nil {
		t.Fatalf("session %s: %v", want.session, err)
	}
	tot := rec.Totals
	wantCost := (5500*2 + 200*8) / 1e6
	got := fmt.Sprintf("agent %s, steps %d, tool calls %d, errors %d, tokens %d/%d", tot.Agent, tot.Steps, tot.ToolCalls,
		tot.Errors, tot.InputTokens, tot.OutputTokens)
	wantS := fmt.Sprintf("agent support-bot, steps %d, tool calls 9, errors %d, tokens 5500/200", want.steps, want.errors)
	if got != wantS {
		t.Errorf("totals: %s\n                  want %s", got, wantS)
	}
	if math.Abs(tot.Cost-wantCost) > 1e-9 {
		t.Errorf("cost = %v, want %v", tot.Cost, wantCost)
	}
	tools := map[string]int{}
	for _, st := range rec.Steps {
		if st.Tool != "" {
			tools[st.Tool]++
			if st.Kind != sessions.KindTool {
				t.Errorf("tool step %s has kind %q", st.Tool, st.Kind)
			}
		}
	}
	if want := map[string]int{"get_order": 4, "search_docs": 4, "delete_account": 1}; fmt.Sprint(tools) != fmt.Sprint(want) {
		t.Errorf("tools = %v, want %v", tools, want)
	}
}

// TestCaptureRootArrivesLast pins what makes the OpenTelemetry capture hard:
// the first request names no session at all (its spans wait for the root).
func TestCaptureRootArrivesLast(t *testing.T) {
	reqs := loadCapture(t, "otel-genai")
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalJSON(reqs[0].body); err != nil {
		t.Fatal(err)
	}
	res := otlp.Map(req.Traces(), func(string) *ownership.Agent { return captureRegistry().Agent("support-bot") })
	if len(res.Steps) != 0 || len(res.Pending) != 16 || len(res.Bindings) != 0 {
		t.Fatalf("first request: %d steps, %d pending, %d bindings; want 0, 16, 0", len(res.Steps), len(res.Pending), len(res.Bindings))
	}
}
