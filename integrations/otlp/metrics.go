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
	spansHeld     prometheus.Counter
	spansJoined   prometheus.Counter
	// HeldSpans and HeldBytes are what waits for its trace's session now,
	// set by the held-span sweep.
	HeldSpans    prometheus.Gauge
	HeldBytes    prometheus.Gauge
	attrsIgnored *prometheus.CounterVec
	refused      *prometheus.CounterVec
	duration     prometheus.Histogram
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
			Help: "Spans refused, by reason: no_session (after the wait), hold_full, unknown_agent, bad_session, no_span_id, other_agent.",
		}, []string{"reason"}),
		spansHeld: f.NewCounter(prometheus.CounterOpts{
			Name: "reins_otlp_spans_held_total",
			Help: "Spans without a session put to wait for their trace's session (telemetry.hold).",
		}),
		spansJoined: f.NewCounter(prometheus.CounterOpts{
			Name: "reins_otlp_spans_joined_total",
			Help: "Spans given the session their trace names in another request (held or not).",
		}),
		HeldSpans: f.NewGauge(prometheus.GaugeOpts{
			Name: "reins_otlp_held_spans",
			Help: "Spans waiting for their trace's session, on every replica (the store's count).",
		}),
		HeldBytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "reins_otlp_held_bytes",
			Help: "Bytes of the spans waiting for their trace's session.",
		}),
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
