package otlp

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	spansReceived = promauto.NewCounter(prometheus.CounterOpts{
		Name: "reins_otlp_spans_received_total",
		Help: "Spans received on /v1/traces in decoded requests.",
	})
	stepsStored = promauto.NewCounter(prometheus.CounterOpts{
		Name: "reins_otlp_steps_accepted_total",
		Help: "Spans mapped to session steps and handed to the store (retried spans included; the store keeps each once).",
	})
	spansDropped = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "reins_otlp_spans_dropped_total",
		Help: "Spans not stored, by reason: no_session, unknown_agent, bad_session, no_span_id.",
	}, []string{"reason"})
	attrsIgnored = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "reins_otlp_attributes_ignored_total",
		Help: "Attributes ignored because of a wrong type (the span is kept), by attribute name.",
	}, []string{"attribute"})
	refused = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "reins_otlp_requests_refused_total",
		Help: "/v1/traces requests refused, by reason.",
	}, []string{"reason"})
	duration = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "reins_otlp_request_duration_seconds",
		Help:    "Time to handle a /v1/traces request, storing included.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
)
