package pagerduty_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/pagerduty"
	"github.com/reins-oss/reins/integrations/pagerduty/pdfake"
)

const secret = "whsec-test-0123456789"

// call is one sink invocation.
type call struct {
	Op, DedupKey, By string
	At               time.Time
}

// sink records calls and answers err (when set) for each.
type sink struct {
	mu    sync.Mutex
	calls []call
	err   func(dedupKey string) error
}

func (s *sink) record(op, key, by string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call{op, key, by, at})
	if s.err != nil {
		return s.err(key)
	}
	return nil
}

func (s *sink) PagerAcknowledged(_ context.Context, key, by string, at time.Time) error {
	return s.record("ack", key, by, at)
}

func (s *sink) PagerResolved(_ context.Context, key, by string, at time.Time) error {
	return s.record("resolve", key, by, at)
}

func (s *sink) Calls() []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]call(nil), s.calls...)
}

// memory is an in-memory Rememberer.
type memory struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (m *memory) Remember(_ context.Context, key string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == nil {
		m.keys = map[string]bool{}
	}
	first := !m.keys[key]
	m.keys[key] = true
	return first, nil
}

var at = time.Date(2026, 11, 28, 2, 14, 5, 123e6, time.UTC)

// post sends body to h signed with sig (none when ""), as PagerDuty would.
func post(t *testing.T, h http.Handler, body []byte, sig, webhookID string) (int, map[string]string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhooks/pagerduty", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set("X-PagerDuty-Signature", sig)
	}
	if webhookID != "" {
		req.Header.Set("X-Webhook-Id", webhookID)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("answer %d is not a JSON object: %q", rec.Code, rec.Body.String())
	}
	return rec.Code, out
}

func TestWebhookSignature(t *testing.T) {
	body := pdfake.WebhookBody("incident.acknowledged", "reins-42", "Ana Oncall", at)
	for _, tt := range []struct {
		name, secret, sig string
		wantCode, calls   int
	}{
		{"OK_Signed", secret, pdfake.SignV3(secret, body), 200, 1},
		{"OK_RotatedSecretSecondSignature", secret, pdfake.SignV3("old-secret", body) + "," + pdfake.SignV3(secret, body), 200, 1},
		{"OK_RotatedSecretFirstSignature", secret, pdfake.SignV3(secret, body) + "," + pdfake.SignV3("new-secret", body), 200, 1},
		{"ErrForged", secret, pdfake.SignV3("guess", body), 401, 0},
		{"ErrSignedOtherBody", secret, pdfake.SignV3(secret, append([]byte(" "), body...)), 401, 0},
		{"ErrNotHex", secret, "v1=zz", 401, 0},
		{"ErrWrongVersion", secret, strings.Replace(pdfake.SignV3(secret, body), "v1=", "v0=", 1), 401, 0},
		{"ErrMissing", secret, "", 401, 0},
		{"ErrNoSecretConfigured", "", pdfake.SignV3("", body), 401, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &sink{}
			code, out := post(t, pagerduty.NewWebhookHandler(tt.secret, s, &memory{}, nil), body, tt.sig, "W1")
			if code != tt.wantCode || len(s.Calls()) != tt.calls {
				t.Errorf("got %d %v with %d sink calls, want %d with %d", code, out, len(s.Calls()), tt.wantCode, tt.calls)
			}
			if code == 401 && out["error"] == "" {
				t.Errorf("401 without an error message: %v", out)
			}
			if tt.secret == "" && !strings.Contains(out["error"], "PAGERDUTY_WEBHOOK_SECRET") {
				t.Errorf("error %q should name PAGERDUTY_WEBHOOK_SECRET", out["error"])
			}
		})
	}
}

func TestWebhookEvents(t *testing.T) {
	for _, tt := range []struct {
		name, eventType string
		want            []call
		status          string
	}{
		{"OK_AcknowledgedCallsSink", "incident.acknowledged", []call{{"ack", "reins-42", "Ana Oncall", at}}, "ok"},
		{"OK_ResolvedCallsSink", "incident.resolved", []call{{"resolve", "reins-42", "Ana Oncall", at}}, "ok"},
		{"OK_UnrelatedEventIgnored", "incident.priority_updated", nil, "ignored"},
		{"OK_TriggeredIgnored", "incident.triggered", nil, "ignored"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &sink{}
			body := pdfake.WebhookBody(tt.eventType, "reins-42", "Ana Oncall", at)
			code, out := post(t, pagerduty.NewWebhookHandler(secret, s, &memory{}, nil), body, pdfake.SignV3(secret, body), "W1")
			if code != 200 || out["status"] != tt.status {
				t.Errorf("got %d %v, want 200 status %s", code, out, tt.status)
			}
			if got := s.Calls(); !equalCalls(got, tt.want) {
				t.Errorf("sink calls = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestWebhookDelivery(t *testing.T) {
	body := pdfake.WebhookBody("incident.acknowledged", "reins-42", "Ana Oncall", at)
	sig := pdfake.SignV3(secret, body)

	t.Run("OK_DuplicateWebhookIDCallsSinkOnce", func(t *testing.T) {
		s := &sink{}
		h := pagerduty.NewWebhookHandler(secret, s, &memory{}, nil)
		for i, want := range []string{"ok", "duplicate"} {
			if code, out := post(t, h, body, sig, "W-dup"); code != 200 || out["status"] != want {
				t.Errorf("delivery %d: got %d %v, want 200 %s", i+1, code, out, want)
			}
		}
		if n := len(s.Calls()); n != 1 {
			t.Errorf("sink called %d times, want 1", n)
		}
		if code, _ := post(t, h, body, sig, "W-other"); code != 200 || len(s.Calls()) != 2 {
			t.Errorf("another webhook ID: got %d with %d calls, want 200 with 2", code, len(s.Calls()))
		}
	})

	t.Run("OK_UnknownDedupKeyIsNotOurs", func(t *testing.T) {
		s := &sink{err: func(string) error { return incidents.Errorf(incidents.ENOTFOUND, "No incident.") }}
		code, out := post(t, pagerduty.NewWebhookHandler(secret, s, &memory{}, nil), body, sig, "W1")
		if code != 200 || out["status"] != "not_ours" {
			t.Errorf("got %d %v, want 200 not_ours", code, out)
		}
	})

	t.Run("OK_ConflictIsNotRetried", func(t *testing.T) {
		s := &sink{err: func(string) error { return incidents.Errorf(incidents.ECONFLICT, "Already resolved.") }}
		if code, out := post(t, pagerduty.NewWebhookHandler(secret, s, &memory{}, nil), body, sig, "W1"); code != 200 {
			t.Errorf("got %d %v, want 200", code, out)
		}
	})

	t.Run("OK_RetryAfterSinkFailureGetsThrough", func(t *testing.T) {
		fail := true
		s := &sink{err: func(string) error {
			if fail {
				fail = false
				return errors.New("database is down")
			}
			return nil
		}}
		h := pagerduty.NewWebhookHandler(secret, s, &memory{}, nil)
		for i, want := range []int{503, 200} {
			if code, out := post(t, h, body, sig, "W-retry"); code != want {
				t.Errorf("delivery %d: got %d %v, want %d", i+1, code, out, want)
			}
		}
		if code, out := post(t, h, body, sig, "W-retry"); code != 200 || out["status"] != "duplicate" || len(s.Calls()) != 2 {
			t.Errorf("third delivery: got %d %v with %d calls, want 200 duplicate with 2", code, out, len(s.Calls()))
		}
	})

	t.Run("OK_NoRemembererStillDelivers", func(t *testing.T) {
		s := &sink{}
		if code, _ := post(t, pagerduty.NewWebhookHandler(secret, s, nil, nil), body, sig, "W1"); code != 200 || len(s.Calls()) != 1 {
			t.Errorf("got %d with %d calls, want 200 with 1", code, len(s.Calls()))
		}
	})
}

func TestWebhookBadRequests(t *testing.T) {
	big := bytes.Repeat([]byte("a"), 2<<20)
	for _, tt := range []struct {
		name     string
		method   string
		body     []byte
		wantCode int
	}{
		{"ErrTwoMiBBody", http.MethodPost, big, 413},
		{"ErrMalformedJSON", http.MethodPost, []byte(`{"event": {"event_type": "incident.resolved"`), 400},
		{"ErrNoEventObject", http.MethodPost, []byte(`{"messages": []}`), 400},
		{"ErrResolvedWithoutTime", http.MethodPost, []byte(`{"event":{"event_type":"incident.resolved","data":{"type":"incident","incident_key":"k"}}}`), 400},
		{"ErrEmptyBody", http.MethodPost, nil, 400},
		{"ErrGet", http.MethodGet, nil, 405},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &sink{}
			req := httptest.NewRequest(tt.method, "/webhooks/pagerduty", bytes.NewReader(tt.body))
			req.Header.Set("X-PagerDuty-Signature", pdfake.SignV3(secret, tt.body))
			rec := httptest.NewRecorder()
			pagerduty.NewWebhookHandler(secret, s, &memory{}, nil).ServeHTTP(rec, req)
			var out map[string]string
			_ = json.Unmarshal(rec.Body.Bytes(), &out)
			if rec.Code != tt.wantCode || out["error"] == "" || len(s.Calls()) != 0 {
				t.Errorf("got %d %q with %d sink calls, want %d with an error and none", rec.Code, rec.Body.String(), len(s.Calls()), tt.wantCode)
			}
		})
	}
}

func equalCalls(got, want []call) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].Op != want[i].Op || got[i].DedupKey != want[i].DedupKey || got[i].By != want[i].By || !got[i].At.Equal(want[i].At) {
			return false
		}
	}
	return true
}
