package alerts_test

import (
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/alerts"
)

// metricValue reads a counter or histogram sample count from g.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestMetrics(t *testing.T) {
	const source = "metrics-test"
	ing := &fakeIngester{IngestFn: func(a []incidents.Alert) (incidents.IngestResult, error) {
		return incidents.IngestResult{Incidents: []int64{7}, Repeated: len(a)}, nil
	}}
	reg := prometheus.NewPedanticRegistry()
	h := alerts.NewHandler(alerts.HandlerConfig{Source: source, Parse: alerts.ParseAlertmanager, Token: token, Ingest: ing, Options: testOptions,
		Metrics: alerts.NewMetrics(reg)})
	body := fixture(t, "alertmanager", "repeat.json")

	serve(t, h, post(source, body))
	serve(t, h, post(source, body).with("Authorization", "Bearer wrong"))
	serve(t, h, request{method: http.MethodPut, target: "/"})

	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"Received", "reins_alerts_received_total", map[string]string{"source": source}, 2},
		{"Deduplicated", "reins_alerts_deduplicated_total", map[string]string{"source": source}, 2},
		{"RefusedToken", "reins_alerts_refused_total", map[string]string{"source": source, "reason": "unauthorized"}, 1},
		{"RefusedMethod", "reins_alerts_refused_total", map[string]string{"source": source, "reason": "method"}, 1},
		{"Duration", "reins_webhook_duration_seconds", map[string]string{"source": source}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := metricValue(t, reg, tt.metric, tt.labels); got != tt.want {
				t.Errorf("%s%v = %v, want %v", tt.metric, tt.labels, got, tt.want)
			}
		})
	}
}
