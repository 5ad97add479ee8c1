package incidents_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
)

// sample returns the value of the metric with these labels from g (a
// counter's value, a gauge's, or a histogram's sample count); ok is false
// when there is none.
func sample(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func TestBacklogCollector(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert())
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(outbox.NewBacklogCollector(env.Store))

	tests := []struct {
		name   string
		metric string
		lane   string
		want   float64
	}{
		{name: "ChatPending", metric: "reins_outbox_pending", lane: outbox.LaneChat, want: 6},
		{name: "UrgentPending", metric: "reins_outbox_pending", lane: outbox.LaneUrgent, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := sample(t, reg, tt.metric, map[string]string{"lane": tt.lane})
			if !ok || got != tt.want {
				t.Errorf("%s{lane=%s}: got %v (found %v), want %v", tt.metric, tt.lane, got, ok, tt.want)
			}
		})
	}
	// The items were created at the fake clock's epoch, long before the
	// collector's wall clock.
	if age, ok := sample(t, reg, "reins_outbox_oldest_age_seconds", map[string]string{"lane": outbox.LaneUrgent}); !ok || age < time.Hour.Seconds() {
		t.Errorf("oldest age: got %v (found %v), want the age of the page", age, ok)
	}
	incidentstest.Drain(t, env, outbox.LaneUrgent)
	if got, ok := sample(t, reg, "reins_outbox_pending", map[string]string{"lane": outbox.LaneUrgent}); !ok || got != 0 {
		t.Errorf("urgent lane after delivery: got %v (found %v), want 0", got, ok)
	}
}

func TestHaltMetrics(t *testing.T) {
	labels := map[string]string{"adapter": "webhook", "action": "halt", "result": "verified"}
	env := incidentstest.NewEnv()
	before, _ := sample(t, env.Metrics, "reins_halts_total", labels)
	if _, err := env.Halting.Halt(ctx, incidentstest.HaltCmd(alice)); err != nil {
		t.Fatalf("Halt: %v", err)
	}
	after, _ := sample(t, env.Metrics, "reins_halts_total", labels)
	if after != before+1 {
		t.Errorf("reins_halts_total: got %v, want %v", after, before+1)
	}
	if n, ok := sample(t, env.Metrics, "reins_time_to_halt_seconds", map[string]string{"adapter": "webhook"}); !ok || n < 1 {
		t.Errorf("reins_time_to_halt_seconds: got %v observations (found %v), want at least 1", n, ok)
	}
}
