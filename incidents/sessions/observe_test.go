package sessions_test

import (
	"context"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/ownership"
)

type pullerFunc func(ctx context.Context, a *ownership.Agent, id string) ([]sessions.Step, error)

func (f pullerFunc) Pull(ctx context.Context, a *ownership.Agent, id string) ([]sessions.Step, error) {
	return f(ctx, a, id)
}

// Steps pulled from a trace tool reach every observer, in the order they
// were added, as OTLP steps do (Recorded): the guard and the incidents'
// summaries listen in one place, so a pulled session refreshes summaries too.
func TestPulledStepsReachEveryObserver(t *testing.T) {
	reg := incidentstest.Registry()
	reg.Agents["support-bot"].Sessions.Source = ownership.SourceLangfuse
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	pull := pullerFunc(func(_ context.Context, a *ownership.Agent, id string) ([]sessions.Step, error) {
		return []sessions.Step{{Agent: a.Name, Session: id, SpanID: "a1", Kind: "llm", Start: now}}, nil
	})
	svc := sessions.New(incidentstest.NewSessionStore(), ownership.NewHolder(reg), pull, func() time.Time { return now }, nil)
	var seen []string
	for _, name := range []string{"guard", "summaries"} {
		svc.Observe(func(_ context.Context, steps []sessions.Step, totals []sessions.Totals) {
			if len(steps) == 1 && len(totals) == 1 && totals[0].Session == "s-9" {
				seen = append(seen, name)
			}
		})
	}
	pulled, err := svc.Pull(context.Background(), "support-bot", "s-9")
	if err != nil || !pulled {
		t.Fatalf("Pull = %v, %v; want pulled", pulled, err)
	}
	if len(seen) != 2 || seen[0] != "guard" || seen[1] != "summaries" {
		t.Errorf("observers saw the pulled steps as %v, want [guard summaries]", seen)
	}
}
