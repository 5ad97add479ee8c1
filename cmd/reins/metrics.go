package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/alerts"
	"github.com/reins-oss/reins/integrations/otlp"
)

// mainMetrics is one Main's Prometheus registry and the series registered
// with it. Each Main has its own, so two in one process (tests, an embedded
// reins) neither panic on duplicate registration nor mix their counts.
type mainMetrics struct {
	reg            *prometheus.Registry
	domain         *incidents.Metrics
	alerts         *alerts.Metrics
	otlp           *otlp.Metrics
	configReloadOK prometheus.Gauge
}

func newMainMetrics() *mainMetrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &mainMetrics{
		reg:    reg,
		domain: incidents.NewMetrics(reg),
		alerts: alerts.NewMetrics(reg),
		otlp:   otlp.NewMetrics(reg),
		configReloadOK: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "reins_config_last_reload_successful",
			Help: "1 when the config file in force loaded cleanly at start or on the last SIGHUP reload, 0 when that reload was rejected.",
		}),
	}
}

// metrics returns this Main's registry and series, made on first use (a
// Main is also built as a struct literal by the CLI commands).
func (m *Main) metrics() *mainMetrics {
	m.metricsOnce.Do(func() { m.prom = newMainMetrics() })
	return m.prom
}

// metricsHandler serves this Main's registry on GET /metrics: the domain's,
// the outbox's and the handlers' series, and the Go runtime and process
// collectors.
func (m *Main) metricsHandler() http.Handler {
	return promhttp.HandlerFor(m.metrics().reg, promhttp.HandlerOpts{})
}

// slackAuthFailed counts a token Slack refused.
func (m *Main) slackAuthFailed() { m.metrics().domain.AuthFailed("slack") }
