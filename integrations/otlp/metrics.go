package otlp

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the /v1/traces handler's series, registered with the
// Registerer handed to NewMetrics, so two Mains in one process each count
// their own.
type Metrics struct {
	spansReceived prometheus.Counter
	stepsStored   prometheus.Counter
	spansDropped  *prometheus.CounterVec
	attrsIgnored  *prometheus.CounterVec
	refused       *prometheus.CounterVec
	duration      prometheus.Histogram
}

// NewMetrics creates the series and registers them with reg; a nil reg
// leaves them unregistered. Call it once per registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		spansReceived: f.NewCounter(prometheus.CounterOpts{
			Name: "reins_otlp_spans_received_total",
			Help: "Spans received on /v1/traces in decoded requests.",
		}),
		stepsStored: f.NewCounter(prometheus.CounterOpts{
			Name: "reins_otlp_steps_accepted_total",
			Help: "Spans mapped to session steps and handed to the store (retried spans included; the store keeps each once).",
		}),
		spansDropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "reins_otlp_spans_dropped_total",
			Help: "Spans not stored, by reason: no_session, unknown_agent, bad_session, no_span_id.",
		}, []string{"reason"}),
		attrsIgnored: f.NewCounterVec(prometheus.CounterOpts{
			Name: "reins_otlp_attributes_ignored_total",
			Help: "Attributes ignored because of a wrong type (the span is kept), by attribute name.",
		}, []string{"attribute"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "reins_otlp_requests_refused_total",
			Help: "/v1/traces requests refused, by reason.",
		}, []string{"reason"}),
		duration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "reins_otlp_request_duration_seconds",
			Help:    "Time to handle a /v1/traces request, storing included.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
}
