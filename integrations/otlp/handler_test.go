package otlp_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/integrations/otlp"
)

type recorder func(ctx context.Context, steps []sessions.Step) ([]sessions.Totals, error)

func (r recorder) Record(ctx context.Context, steps []sessions.Step) ([]sessions.Totals, error) {
	return r(ctx, steps)
}

func post(h http.Handler, ct string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer tok")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestHandlerProtobufOK(t *testing.T) {
	var got []sessions.Step
	h := otlp.NewHandler(otlp.Config{Token: "tok", Resolve: resolve,
		Recorder: recorder(func(ctx context.Context, steps []sessions.Step) ([]sessions.Totals, error) {
			got = steps
			return nil, nil
		})})
	js, _ := os.ReadFile("testdata/genai_current.json")
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalJSON(js); err != nil {
		t.Fatal(err)
	}
	pb, _ := req.MarshalProto()
	w := post(h, "application/x-protobuf", pb)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/x-protobuf" || len(got) != 3 {
		t.Fatalf("got %d %q with %d steps, want 200 protobuf with 3 steps", w.Code, w.Header().Get("Content-Type"), len(got))
	}
	resp := ptraceotlp.NewExportResponse()
	if err := resp.UnmarshalProto(w.Body.Bytes()); err != nil || resp.PartialSuccess().RejectedSpans() != 0 {
		t.Errorf("answer %v, rejected %d: want an ExportTraceServiceResponse rejecting nothing", err, resp.PartialSuccess().RejectedSpans())
	}
}

func TestHandlerErrOverloaded(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	h := otlp.NewHandler(otlp.Config{Token: "tok", Resolve: resolve, MaxInFlight: 1, Wait: 20 * time.Millisecond,
		Recorder: recorder(func(ctx context.Context, steps []sessions.Step) ([]sessions.Totals, error) {
			started <- struct{}{}
			<-release
			return nil, nil
		})})
	body, _ := os.ReadFile("testdata/genai_current.json")
	done := make(chan int)
	go func() { done <- post(h, "application/json", body).Code }()
	<-started
	w := post(h, "application/json", body)
	close(release)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("second export while the store is busy: %d Retry-After %q, want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if code := <-done; code != 200 {
		t.Errorf("first export: %d", code)
	}
}

func TestHandlerErrDisabled(t *testing.T) {
	h := otlp.NewHandler(otlp.Config{Resolve: resolve})
	if w := post(h, "application/json", []byte(`{}`)); w.Code != http.StatusUnauthorized || !bytes.Contains(w.Body.Bytes(), []byte("REINS_OTLP_TOKEN")) {
		t.Errorf("without a token: %d %s, want 401 naming REINS_OTLP_TOKEN", w.Code, w.Body)
	}
}

// A request takes its share of the in-flight budget before its body is
// read: while one large body holds it, the next is answered 429 with
// Retry-After without a byte of its body read.
func TestHandlerErrOverBudget(t *testing.T) {
	h := otlp.NewHandler(otlp.Config{Token: "tok", Resolve: resolve, MaxBytes: 1 << 20, MaxInflightBytes: 1 << 20,
		Recorder: recorder(func(ctx context.Context, steps []sessions.Step) ([]sessions.Totals, error) { return nil, nil })})
	pr, pw := io.Pipe()
	first := httptest.NewRequest(http.MethodPost, "/v1/traces", pr)
	first.ContentLength = 1 << 20 // declared: the whole budget
	first.Header.Set("Content-Type", "application/json")
	first.Header.Set("Authorization", "Bearer tok")
	done := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, first)
		done <- w.Code
	}()
	_, _ = pw.Write([]byte(`{"resourceSpans":[`)) // under way, holding its share
	read := &countingReader{r: bytes.NewReader(make([]byte, 300<<10))}
	second := httptest.NewRequest(http.MethodPost, "/v1/traces", read)
	second.ContentLength = 300 << 10 // more than the budget has left
	second.Header.Set("Content-Type", "application/json")
	second.Header.Set("Authorization", "Bearer tok")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, second)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || read.n != 0 {
		t.Errorf("second request: %d Retry-After %q, %d bytes read; want 429 with Retry-After, nothing read",
			w.Code, w.Header().Get("Retry-After"), read.n)
	}
	_, _ = pw.Write([]byte(`]}`))
	pw.Close()
	if code := <-done; code != 200 {
		t.Errorf("first request: %d", code)
	}
	// Its share given back, the next one goes through.
	if w := post(h, "application/json", []byte(`{"resourceSpans":[]}`)); w.Code != 200 {
		t.Errorf("after the first: %d %s", w.Code, w.Body)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// Spans past the cap of a request are rejected, attributes past the cap of
// a span ignored: both said in partial_success.
func TestHandlerCapsSpansAndAttributes(t *testing.T) {
	var got []sessions.Step
	h := otlp.NewHandler(otlp.Config{Token: "tok", Resolve: resolve, MaxSpans: 2, MaxAttributes: 16,
		Recorder: recorder(func(ctx context.Context, steps []sessions.Step) ([]sessions.Totals, error) {
			got = steps
			return nil, nil
		})})
	span := func(id string, extra int) string {
		attrs := `{"key":"session.id","value":{"stringValue":"s-1"}}`
		for k := range extra {
			attrs += fmt.Sprintf(`,{"key":"x.%d","value":{"intValue":"%d"}}`, k, k)
		}
		return `{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"` + id + `","name":"chat",
		  "startTimeUnixNano":"1765000000000000000","endTimeUnixNano":"1765000001000000000","attributes":[` + attrs + `]}`
	}
	body := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"support-bot"}}]},
	  "scopeSpans":[{"spans":[` + span("eee19b7ec3c1b171", 20) + `,` + span("eee19b7ec3c1b172", 0) + `,` + span("eee19b7ec3c1b173", 0) + `]}]}]}`
	w := post(h, "application/json", []byte(body))
	resp := ptraceotlp.NewExportResponse()
	if err := resp.UnmarshalJSON(w.Body.Bytes()); err != nil || w.Code != 200 {
		t.Fatalf("%d %s: %v", w.Code, w.Body, err)
	}
	ps := resp.PartialSuccess()
	if ps.RejectedSpans() != 1 || !strings.Contains(ps.ErrorMessage(), "1 spans over the cap of 2 per request were rejected") ||
		!strings.Contains(ps.ErrorMessage(), "5 attributes over the cap of 16 per span or resource were ignored") {
		t.Errorf("partial_success = %d %q", ps.RejectedSpans(), ps.ErrorMessage())
	}
	if len(got) != 2 {
		t.Errorf("stored %d steps, want the 2 under the cap", len(got))
	}
}

// Issue 28, item 3: a small export (a span sent as it ended, such as the one
// crossing an SLA) does not wait behind bulk exports for a write: those
// take their own lane, and the small one's writes are marked urgent, so
// the store lets them pass queued writers too.
func TestHandlerSmallExportPassesTheBulkLane(t *testing.T) {
	type urgentKey struct{}
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	urgent := make(chan bool, 1)
	h := otlp.NewHandler(otlp.Config{Token: "tok", Resolve: resolve, SmallSpans: 2, BulkWrites: 1, Wait: 20 * time.Millisecond,
		Urgent: func(ctx context.Context) context.Context { return context.WithValue(ctx, urgentKey{}, true) },
		Recorder: recorder(func(ctx context.Context, steps []sessions.Step) ([]sessions.Totals, error) {
			if len(steps) > 2 {
				started <- struct{}{}
				<-release
				return nil, nil
			}
			urgent <- ctx.Value(urgentKey{}) != nil
			return nil, nil
		})})
	bulk, _ := os.ReadFile("testdata/genai_current.json") // 3 spans: bulk
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalJSON(bulk); err != nil {
		t.Fatal(err)
	}
	spans := req.Traces().ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	n := 0
	spans.RemoveIf(func(ptrace.Span) bool { n++; return n > 1 })
	small, _ := req.MarshalJSON()

	done := make(chan int)
	go func() { done <- post(h, "application/json", bulk).Code }()
	<-started
	if w := post(h, "application/json", bulk); w.Code != http.StatusServiceUnavailable {
		t.Errorf("a second bulk export while the bulk lane is full: %d, want 503", w.Code)
	}
	if w := post(h, "application/json", small); w.Code != http.StatusOK {
		t.Errorf("a one-span export while the bulk lane is full: %d %s, want 200 at once", w.Code, w.Body)
	}
	if !<-urgent {
		t.Error("the one-span export's write was not marked urgent")
	}
	close(release)
	if code := <-done; code != 200 {
		t.Errorf("first bulk export: %d", code)
	}
}
