package incidents

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	incidentsOpened = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "reins_incidents_opened_total",
		Help: "Incidents opened, by whether the agent is in the registry.",
	}, []string{"owned"})
	alertsOverflowed = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "reins_alerts_overflowed_total",
		Help: "Firing alerts that joined their source's overflow incident because the source had opened alerts.max_new_incidents_per_minute incidents in the last minute.",
	}, []string{"source"})
	authFailures = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "reins_integration_auth_failures_total",
		Help: "Credentials refused by an outside system (slack: invalid or revoked token; pagerduty: refused routing key or API token).",
	}, []string{"system"})
	drillsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "reins_drills_total",
		Help: "Kill-switch drills run, by agent and result (passed or failed).",
	}, []string{"agent", "result"})
	haltsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "reins_halts_total",
		Help: "Halts and resumes, by adapter, action and result (verified or failed).",
	}, []string{"adapter", "action", "result"})
	timeToHalt = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "reins_time_to_halt_seconds",
		Help:    "From a halt request to its verification.",
		Buckets: []float64{.1, .25, .5, 1, 2, 5, 10, 30},
	}, []string{"adapter"})
)

// CountAuthFailure counts credentials that system refused: a revoked Slack
// token or a wrong PagerDuty key is an outage of the kill switch's voice,
// and reins' own alert rules page on it.
func CountAuthFailure(system string) { authFailures.WithLabelValues(system).Inc() }
