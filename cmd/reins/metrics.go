package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
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

// metricsHandler serves this Main's registry on GET /metrics, followed by
// the process-wide default registry: it holds the Go runtime and process
// series, and the outbox's (reins_outbox_*, reins_delivery_latency_seconds),
// which are still package-level in incidents until the outbox package takes
// them. Once it does, they belong in this Main's registry with the Go and
// process collectors, and the default registry can go.
func (m *Main) metricsHandler() http.Handler {
	return promhttp.HandlerFor(prometheus.Gatherers{m.metrics().reg, prometheus.DefaultGatherer}, promhttp.HandlerOpts{})
}

// exportBacklog makes reins_outbox_pending and reins_outbox_oldest_age_seconds
// report this Main's store.
func (m *Main) exportBacklog() {
	m.backlogOnce.Do(func() { m.metrics().reg.MustRegister(incidents.NewBacklogCollector(m.Store)) })
}

// slackAuthFailed counts a token Slack refused.
func (m *Main) slackAuthFailed() { m.metrics().domain.AuthFailed("slack") }
