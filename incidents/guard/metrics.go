package guard

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	breaches *prometheus.CounterVec
	tokens   *prometheus.CounterVec
	cost     *prometheus.CounterVec
}

// newMetrics registers the guard's metrics with r (none when r is nil). A
// second Guard on the same registerer reuses the first one's collectors.
func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		breaches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reins_sla_breaches_total",
			Help: "SLA breaches, each (agent, SLA, session) counted once, by what was done about it."},
			[]string{"agent", "sla", "action"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reins_agent_tokens_total",
			Help: "Tokens (input plus output) agents reported in session steps."}, []string{"agent"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reins_agent_cost_usd_total",
			Help: "Cost in US dollars of agents' session steps, from the pricing table."}, []string{"agent"}),
	}
	if r == nil {
		return m, nil
	}
	for _, c := range []**prometheus.CounterVec{&m.breaches, &m.tokens, &m.cost} {
		if err := r.Register(*c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
			*c = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	return m, nil
}
