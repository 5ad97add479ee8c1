package incidents

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	outboxDelivered = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "reins_outbox_delivered_total",
		Help: "Outbox items delivered.",
	}, []string{"lane", "kind"})
	outboxFailed = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "reins_outbox_failed_total",
		Help: "Outbox items given up on (buried).",
	}, []string{"lane", "kind"})
	outboxRetries = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "reins_outbox_retries_total",
		Help: "Failed outbox delivery attempts that will be retried.",
	}, []string{"lane", "kind"})
	deliveryLatency = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "reins_delivery_latency_seconds",
		Help: "From an outbox item's creation to its delivery (debounced items include their delay).",
		// From a few milliseconds (kicked workers) to minutes (retries).
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
	}, []string{"lane"})
)

var (
	backlogPendingDesc = prometheus.NewDesc("reins_outbox_pending",
		"Outbox items waiting for delivery, per lane.", []string{"lane"}, nil)
	backlogAgeDesc = prometheus.NewDesc("reins_outbox_oldest_age_seconds",
		"Age of the oldest pending outbox item, per lane (0 when none).", []string{"lane"}, nil)
)

// backlogTimeout bounds the store query a scrape makes.
const backlogTimeout = 2 * time.Second

// NewBacklogCollector returns a collector reporting each lane's pending
// outbox items and the age of the oldest, read from the store at scrape time.
func NewBacklogCollector(s Store) prometheus.Collector {
	return &backlogCollector{store: s, now: time.Now}
}

type backlogCollector struct {
	store Store
	now   func() time.Time
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogPendingDesc
	ch <- backlogAgeDesc
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), backlogTimeout)
	defer cancel()
	lanes, err := c.store.OutboxBacklog(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(backlogPendingDesc, err)
		return
	}
	seen := map[string]bool{}
	for _, b := range lanes {
		seen[b.Lane] = true
		age := 0.0
		if b.Oldest != nil {
			age = max(c.now().Sub(*b.Oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(backlogPendingDesc, prometheus.GaugeValue, float64(b.Pending), b.Lane)
		ch <- prometheus.MustNewConstMetric(backlogAgeDesc, prometheus.GaugeValue, age, b.Lane)
	}
	// Idle lanes report zero rather than vanish, so alerts on them resolve.
	for _, lane := range []string{LaneUrgent, LaneChat} {
		if !seen[lane] {
			ch <- prometheus.MustNewConstMetric(backlogPendingDesc, prometheus.GaugeValue, 0, lane)
			ch <- prometheus.MustNewConstMetric(backlogAgeDesc, prometheus.GaugeValue, 0, lane)
		}
	}
}

// Metrics are the domain's own series. They are registered with the
// Registerer handed to NewMetrics, not a process-wide one, so two Mains (or
// two services in one test binary) each count their own.
type Metrics struct {
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
