package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	delivered, failed, retries *prometheus.CounterVec
	latency                    *prometheus.HistogramVec
	outageOpen                 *prometheus.GaugeVec
	probes                     *prometheus.CounterVec
}

// newMetrics registers the delivery metrics and a backlog collector over s
// with reg (none when reg is nil).
func newMetrics(reg prometheus.Registerer, s Store) *metrics {
	m := &metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reins_outbox_delivered_total",
			Help: "Outbox items delivered.",
		}, []string{"lane", "kind"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reins_outbox_failed_total",
			Help: "Outbox items given up on (buried).",
		}, []string{"lane", "kind"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reins_outbox_retries_total",
			Help: "Failed outbox delivery attempts that will be retried.",
		}, []string{"lane", "kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "reins_delivery_latency_seconds",
			Help: "From an outbox item's creation to its delivery (debounced items include their delay).",
			// From a few milliseconds (kicked workers) to minutes (retries).
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"lane"}),
		outageOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "reins_delivery_destination_unreachable",
			Help: "1 while this replica holds a destination's deliveries back because it is failing (its circuit is open), else 0.",
		}, []string{"destination"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reins_delivery_probes_total",
			Help: "Probes of a destination held back as unreachable: result failed (still unreachable) or answered (its deliveries resume).",
		}, []string{"destination", "result"}),
	}
	if reg == nil {
		return m
	}
	m.delivered = register(reg, m.delivered)
	m.failed = register(reg, m.failed)
	m.retries = register(reg, m.retries)
	m.latency = register(reg, m.latency)
	m.outageOpen = register(reg, m.outageOpen)
	m.probes = register(reg, m.probes)
	if s != nil {
		// The newest Worker's store is the one to report: an older one's
		// may be closed (tests and two Mains in one process).
		c := NewBacklogCollector(s)
		reg.Unregister(c)
		if err := reg.Register(c); err != nil {
			panic(fmt.Errorf("register the outbox backlog collector: %w", err))
		}
	}
	return m
}

// register registers c with reg, or returns the collector of the same
// description registered before, so two Workers count together.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(fmt.Errorf("register outbox metrics: %w", err))
}

var (
	backlogPendingDesc = prometheus.NewDesc("reins_outbox_pending",
		"Outbox items waiting for delivery, per lane.", []string{"lane"}, nil)
	backlogAgeDesc = prometheus.NewDesc("reins_outbox_oldest_age_seconds",
		"Age of the oldest pending outbox item, per lane (0 when none).", []string{"lane"}, nil)
)

// backlogTimeout bounds the store query a scrape makes.
const backlogTimeout = 2 * time.Second

// Backlogger reads the pending work of each lane.
type Backlogger interface {
	OutboxBacklog(ctx context.Context) ([]LaneBacklog, error)
}

// NewBacklogCollector returns a collector reporting each lane's pending
// items and the age of the oldest, read from the store at scrape time.
func NewBacklogCollector(s Backlogger) prometheus.Collector {
	return &backlogCollector{store: s, now: time.Now}
}

type backlogCollector struct {
	store Backlogger
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
