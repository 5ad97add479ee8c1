package pdfake_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/PagerDuty/go-pagerduty/webhookv3"

	"github.com/reins-oss/reins/integrations/pagerduty/pdfake"
)

// enqueue posts body to the fake's Events API and decodes the answer.
func enqueue(t *testing.T, s *pdfake.Server, body string) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.Post(s.URL+"/v2/enqueue", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	return resp, out
}

const triggerBody = `{"routing_key":"K","event_action":"trigger","dedup_key":"reins-1",
	"payload":{"summary":"s","source":"reins","severity":"critical"}}`

func TestEnqueue(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		wantCode   int
		want       map[string]any
	}{
		{"OK_Trigger", triggerBody, 202,
			map[string]any{"status": "success", "message": "Event processed", "dedup_key": "reins-1"}},
		{"OK_Resolve", `{"routing_key":"K","event_action":"resolve","dedup_key":"reins-1"}`, 202,
			map[string]any{"status": "success", "message": "Event processed", "dedup_key": "reins-1"}},
		{"ErrMissingRoutingKey", `{"event_action":"trigger","payload":{"summary":"s","source":"r","severity":"info"}}`, 400,
			map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": []any{"'routing_key' is missing or blank"}}},
		{"ErrBadSeverity", `{"routing_key":"K","event_action":"trigger","payload":{"summary":"s","source":"r","severity":"sev1"}}`, 400,
			map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": []any{"'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')"}}},
		{"ErrAcknowledgeWithoutDedupKey", `{"routing_key":"K","event_action":"acknowledge"}`, 400,
			map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": []any{"'dedup_key' is missing or blank"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := pdfake.New()
			defer s.Close()
			resp, got := enqueue(t, s, tt.body)
			if resp.StatusCode != tt.wantCode || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %d %v, want %d %v", resp.StatusCode, got, tt.wantCode, tt.want)
			}
			if evs := s.Events(); len(evs) != 1 || evs[0].Status != tt.wantCode {
				t.Errorf("recorded %+v, want one event answered %d", evs, tt.wantCode)
			}
		})
	}
}

func TestFailNext(t *testing.T) {
	s := pdfake.New()
	defer s.Close()
	s.FailNext(2, 429, "12")
	for i := range 2 {
		resp, _ := enqueue(t, s, triggerBody)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "12" {
			t.Errorf("request %d: got %d Retry-After %q, want 429 12", i+1, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if resp, _ := enqueue(t, s, triggerBody); resp.StatusCode != 202 {
		t.Errorf("third request: got %d, want 202", resp.StatusCode)
	}
	if got := s.Triggers("reins-1"); got != 1 || len(s.Events()) != 3 {
		t.Errorf("Triggers = %d of %d events, want 1 of 3", got, len(s.Events()))
	}
}

func TestEventsConcurrent(t *testing.T) {
	s := pdfake.New()
	defer s.Close()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			resp, err := http.Post(s.URL+"/v2/enqueue", "application/json", bytes.NewReader([]byte(triggerBody)))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			_ = s.Events()
		})
	}
	wg.Wait()
	if got := s.Triggers("reins-1"); got != 20 {
		t.Errorf("Triggers = %d, want 20", got)
	}
}

func TestSignV3(t *testing.T) {
	body := pdfake.WebhookBody("incident.resolved", "reins-9", "Bo", time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC))
	for _, tt := range []struct {
		name, secret string
		wantErr      error
	}{
		{"OK", "s3cret", nil},
		{"ErrOtherSecret", "other", webhookv3.ErrNoValidSignatures},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			req.Header.Set("X-PagerDuty-Signature", pdfake.SignV3("s3cret", body))
			if err := webhookv3.VerifySignature(req, tt.secret); err != tt.wantErr {
				t.Errorf("VerifySignature = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestWebhookBody(t *testing.T) {
	at := time.Date(2026, 11, 28, 2, 14, 5, 123e6, time.UTC)
	var got struct {
		Event struct {
			EventType  string `json:"event_type"`
			OccurredAt string `json:"occurred_at"`
			Agent      struct{ Summary string }
			Data       struct {
				Type        string `json:"type"`
				Status      string `json:"status"`
				IncidentKey string `json:"incident_key"`
			}
		}
	}
	if err := json.Unmarshal(pdfake.WebhookBody("incident.acknowledged", "reins-42", "Ana", at), &got); err != nil {
		t.Fatal(err)
	}
	e := got.Event
	if e.EventType != "incident.acknowledged" || e.OccurredAt != "2026-11-28T02:14:05.123Z" || e.Agent.Summary != "Ana" ||
		e.Data.Type != "incident" || e.Data.Status != "acknowledged" || e.Data.IncidentKey != "reins-42" {
		t.Errorf("got %+v", e)
	}
}
