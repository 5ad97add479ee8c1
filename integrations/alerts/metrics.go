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

// Metrics are the webhook handlers' series, shared by the handlers of every
// source (the source is a label). Registered with the Registerer handed to
// NewMetrics, so two Mains in one process each count their own.
type Metrics struct {
	received     *prometheus.CounterVec
	refused      *prometheus.CounterVec
	deduplicated *prometheus.CounterVec
	duration     *prometheus.HistogramVec
}

// NewMetrics creates the series and registers them with reg; a nil reg
// leaves them unregistered. Call it once per registry.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		received: f.NewCounterVec(prometheus.CounterOpts{
			Name: "reins_alerts_received_total",
			Help: "Alerts accepted from monitoring webhooks and stored, per source.",
		}, []string{"source"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "reins_alerts_refused_total",
			Help: "Monitoring webhook requests refused, per source and reason.",
		}, []string{"source", "reason"}),
		deduplicated: f.NewCounterVec(prometheus.CounterOpts{
			Name: "reins_alerts_deduplicated_total",
			Help: "Alerts received again with an unchanged status (repeat notifications), per source.",
		}, []string{"source"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "reins_webhook_duration_seconds",
			Help:    "Time to handle a monitoring webhook, storing included, per source.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"source"}),
	}
}
