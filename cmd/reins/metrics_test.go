package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Two Mains in one process each register their series with a registry of
// their own: neither panics on a duplicate, and each /metrics counts only
// the alerts it received.
func TestTwoMainsKeepTheirOwnMetrics(t *testing.T) {
	a := startTestMain(t, testOptions{})
	b := startTestMain(t, testOptions{})
	send := func(e *testEnv, n int) {
		t.Helper()
		for i := range n {
			body := fmt.Appendf(nil, `{"agent":"support-bot","summary":"Refund errors %d","severity":"critical"}`, i)
			if status, resp := e.webhook("generic", body); status != http.StatusOK {
				t.Fatalf("webhook: %d %s", status, resp)
			}
		}
	}
	send(a, 1)
	send(b, 3)
	tests := []struct {
		name string
		env  *testEnv
		want []string
	}{
		{"First", a, []string{`reins_alerts_received_total{source="generic"} 1`, `reins_incidents_opened_total{owned="true"} 1`}},
		{"Second", b, []string{`reins_alerts_received_total{source="generic"} 3`, `reins_incidents_opened_total{owned="true"} 1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := tt.env.do(http.MethodGet, "/metrics", nil, nil)
			if status != http.StatusOK {
				t.Fatalf("GET /metrics: %d", status)
			}
			for _, want := range tt.want {
				if !strings.Contains(string(body), want+"\n") {
					t.Errorf("/metrics lacks %s", want)
				}
			}
		})
	}
}
