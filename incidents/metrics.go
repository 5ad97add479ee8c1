package incidents

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the domain's own series. They are registered with the
// Registerer handed to NewMetrics, not a process-wide one, so two Mains (or
// two services in one test binary) each count their own.
type Metrics struct {
	reg              prometheus.Registerer // the outbox registers its series here too
	incidentsOpened  *prometheus.CounterVec
	alertsOverflowed *prometheus.CounterVec
	authFailures     *prometheus.CounterVec
	drills           *prometheus.CounterVec
	halts            *prometheus.CounterVec
	timeToHalt       *prometheus.HistogramVec
}

// NewMetrics creates the domain's series and registers them with reg; a nil
// reg leaves them unregistered (counted, never scraped). Registering twice
// with one reg panics, as it would for any duplicate series.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		reg: reg,
		incidentsOpened: f.NewCounterVec(prometheus.CounterOpts{
			Name: "reins_incidents_opened_total",
			Help: "Incidents opened, by whether the agent is in the registry.",
		}, []string{"owned"}),
		alertsOverflowed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "reins_alerts_overflowed_total",
			Help: "Firing alerts that joined their source's overflow incident because the source had opened alerts.max_new_incidents_per_minute incidents in the last minute.",
		}, []string{"source"}),
		authFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "reins_integration_auth_failures_total",
			Help: "Credentials refused by an outside system (slack: invalid or revoked token; pagerduty: refused routing key or API token).",
		}, []string{"system"}),
		drills: f.NewCounterVec(prometheus.CounterOpts{
			Name: "reins_drills_total",
			Help: "Kill-switch drills run, by agent and result (passed or failed).",
		}, []string{"agent", "result"}),
		halts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "reins_halts_total",
			Help: "Halts and resumes, by adapter, action and result (verified or failed).",
		}, []string{"adapter", "action", "result"}),
		timeToHalt: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "reins_time_to_halt_seconds",
			Help:    "From a halt request to its verification.",
			Buckets: []float64{.1, .25, .5, 1, 2, 5, 10, 30},
		}, []string{"adapter"}),
	}
}

// AuthFailed counts credentials that system refused: a revoked Slack token
// or a wrong PagerDuty key is an outage of the kill switch's voice, and
// reins' own alert rules page on it. The Slack and PagerDuty clients call it
// (cmd/reins hands it to them).
func (m *Metrics) AuthFailed(system string) { m.authFailures.WithLabelValues(system).Inc() }

// AlertOverflowed counts an alert of source that went to its overflow
// incident, past the source's cap of new incidents a minute.
func (m *Metrics) AlertOverflowed(source string) { m.alertsOverflowed.WithLabelValues(source).Inc() }

// DrillRan counts a drill of agent's kill switch and its result.
func (m *Metrics) DrillRan(agent, result string) { m.drills.WithLabelValues(agent, result).Inc() }

// HaltFinished counts a halt that reached its final status.
func (m *Metrics) HaltFinished(h *Halt) { m.halts.WithLabelValues(h.Adapter, h.Action, h.Status).Inc() }

// HaltVerified observes a verified halt's time to halt.
func (m *Metrics) HaltVerified(h *Halt) {
	m.timeToHalt.WithLabelValues(h.Adapter).Observe(h.TimeToHalt().Seconds())
}
