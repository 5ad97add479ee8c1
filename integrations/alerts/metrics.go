package alerts

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Reasons a webhook is refused, the `reason` label of reins_alerts_refused_total.
const (
	reasonMethod       = "method"
	reasonUnauthorized = "unauthorized"
	reasonMediaType    = "media_type"
	reasonTooLarge     = "too_large"
	reasonSignature    = "signature"
	reasonMalformed    = "malformed"
	reasonInvalid      = "invalid"
	reasonIngest       = "ingest_failed"
)

var (
	alertsReceived = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "reins_alerts_received_total",
		Help: "Alerts accepted from monitoring webhooks and stored, per source.",
	}, []string{"source"})
	alertsRefused = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "reins_alerts_refused_total",
		Help: "Monitoring webhook requests refused, per source and reason.",
	}, []string{"source", "reason"})
	alertsDeduplicated = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "reins_alerts_deduplicated_total",
		Help: "Alerts received again with an unchanged status (repeat notifications), per source.",
	}, []string{"source"})
	webhookDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "reins_webhook_duration_seconds",
		Help:    "Time to handle a monitoring webhook, storing included, per source.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"source"})
)
