package otlp_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

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
