package pagerduty

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "webhooks", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseWebhook(t *testing.T) {
	for _, tt := range []struct {
		file         string
		want         webhookEvent
		wantRelevant bool
	}{
		{"incident_acknowledged.json", webhookEvent{
			ID: "01DEN3FJ3GV8B1N1NJNTEW2N5Z", Type: eventAcknowledged, DedupKey: "reins-42", By: "Ana Oncall",
			At: time.Date(2026, 11, 28, 2, 14, 5, 123e6, time.UTC),
		}, true},
		{"incident_resolved_by_service.json", webhookEvent{
			ID: "01DEN3GQ7X2M4T9V0B6RZC1KYA", Type: eventResolved, DedupKey: "reins-42", By: "support-bot kill authority",
			At: time.Date(2026, 11, 28, 2, 41, 17, 906e6, time.UTC),
		}, true},
		{"incident_resolved_no_agent.json", webhookEvent{
			ID: "01DEN3GQ7X2M4T9V0B6RZC1KYA", Type: eventResolved, DedupKey: "reins-42", By: "PagerDuty",
			At: time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC),
		}, true},
		{"incident_acknowledged_no_key.json", webhookEvent{
			ID: "01DEN3JA0B1C2D3E4F5G6H7J8K", Type: eventAcknowledged, By: "Ana Oncall",
			At: time.Date(2026, 11, 28, 2, 14, 5, 123e6, time.UTC),
		}, false},
		{"incident_priority_updated.json", webhookEvent{ID: "01DEN3HZ5R8S2Q7W3E4T6Y1U0I", Type: "incident.priority_updated"}, false},
		{"incident_annotated.json", webhookEvent{ID: "01DEN3M1N2P3Q4R5S6T7U8V9W0", Type: "incident.annotated"}, false},
		{"service_updated.json", webhookEvent{ID: "01DEN3K9L8M7N6P5Q4R3S2T1U0", Type: "service.updated"}, false},
	} {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseWebhook(readFixture(t, tt.file))
			if err != nil {
				t.Fatalf("parseWebhook: %v", err)
			}
			if got != tt.want || got.relevant() != tt.wantRelevant {
				t.Errorf("got %+v (relevant %v)\nwant %+v (relevant %v)", got, got.relevant(), tt.want, tt.wantRelevant)
			}
		})
	}
}

func TestParseWebhookErrors(t *testing.T) {
	for name, body := range map[string]string{
		"ErrNotJSON":           `event_type=incident.resolved`,
		"ErrTruncated":         `{"event":{"event_type":"incident.resolved"`,
		"ErrNoEvent":           `{"messages":[{"event":"incident.resolve"}]}`,
		"ErrEventNull":         `{"event":null}`,
		"ErrNoOccurredAt":      `{"event":{"event_type":"incident.acknowledged","data":{"type":"incident","incident_key":"k"}}}`,
		"ErrBadOccurredAt":     `{"event":{"event_type":"incident.acknowledged","occurred_at":"yesterday","data":{"incident_key":"k"}}}`,
		"ErrDataNotAnIncident": `{"event":{"event_type":"incident.resolved","occurred_at":"2026-11-28T02:00:00Z","data":{"type":"service","incident_key":"k"}}}`,
		"ErrDataWrongShape":    `{"event":{"event_type":"incident.resolved","occurred_at":"2026-11-28T02:00:00Z","data":["k"]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if got, err := parseWebhook([]byte(body)); err == nil {
				t.Errorf("parseWebhook = %+v, nil; want an error", got)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		header string
		want   time.Duration
	}{
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"", defaultRetryAfter},
		{"soon", defaultRetryAfter},
		{"-5", defaultRetryAfter},
		{"0", time.Second},
		{"86400", maxRetryAfter},
		{"99999999999999999999", defaultRetryAfter},
		{now.Add(45 * time.Second).Format(http.TimeFormat), 45 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), time.Second},
	} {
		if got := retryAfter(tt.header, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven char", 10, "eleven ch…"},
		{"ééééé", 3, "éé…"},
	} {
		if got := truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// FuzzParseWebhook checks the parser never panics, and that whatever it
// accepts as an acknowledge or resolve carries what the sink needs.
func FuzzParseWebhook(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "webhooks"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		f.Add(readFixture(f, e.Name()))
	}
	f.Add([]byte(`{"event":{"event_type":"incident.resolved","occurred_at":"2026-11-28T02:00:00+01:00","data":{"incident_key":"k"}}}`))
	f.Add([]byte(`{"event":{"event_type":"incident.acknowledged","occurred_at":"2026-11-28T02:00:00Z","agent":{"summary":"  "},"data":null}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := parseWebhook(body)
		if err != nil {
			if ev != (webhookEvent{}) {
				t.Fatalf("error %v with a non-zero event %+v", err, ev)
			}
			return
		}
		if ev.Type != eventAcknowledged && ev.Type != eventResolved {
			if ev.DedupKey != "" || ev.By != "" || !ev.At.IsZero() {
				t.Fatalf("ignored event type %q carries fields: %+v", ev.Type, ev)
			}
			return
		}
		if ev.At.Location() != time.UTC {
			t.Fatalf("time %v is not UTC", ev.At)
		}
		if ev.By == "" {
			t.Fatalf("no actor in %+v", ev)
		}
		if ev.relevant() && ev.DedupKey == "" {
			t.Fatalf("relevant event without a dedup key: %+v", ev)
		}
		if utf8.ValidString(string(body)) && !utf8.ValidString(ev.By) {
			t.Fatalf("actor %q is not valid UTF-8", ev.By)
		}
	})
}
