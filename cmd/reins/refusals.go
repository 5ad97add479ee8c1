package main

import (
	"context"
	"time"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/ownership"
)

// refusalWindow is how far back reins doctor, /readyz?verbose=1 and the
// agents page look for refused spans.
const refusalWindow = time.Hour

// findRefusals reads refused spans (sessions.HoldStore.FindRefusals).
type findRefusals func(ctx context.Context, since time.Time, session string, limit int) ([]sessions.Refusal, error)

// refusalChecks are the health lines of spans refused in the last hour: one
// per reason and agent or service, degraded, so nothing is dropped in
// silence; one "ok" line when none was.
func refusalChecks(ctx context.Context, find findRefusals, reg *ownership.Registry, now time.Time) []healthCheck {
	rs, err := find(ctx, now.Add(-refusalWindow), "", 10_000)
	if err != nil {
		return []healthCheck{{"refused spans", false, "cannot read the refused spans: " + err.Error()}}
	}
	sums := sessions.Summarize(rs, func(name string) bool { return reg.Agent(name) != nil })
	if len(sums) == 0 {
		return []healthCheck{{"refused spans", true, "no spans refused in the last hour"}}
	}
	var out []healthCheck
	for _, s := range sums {
		out = append(out, healthCheck{"refused spans " + s.Agent, false, s.Sentence("hour")})
	}
	return out
}

// webRefusals feeds the web view's agents page.
type webRefusals struct{ m *Main }

func (w webRefusals) RefusedSpans(ctx context.Context) ([]string, error) {
	rs, err := w.m.Sessions.Refusals(ctx, w.m.Clock.Now().Add(-refusalWindow), "", 10_000)
	if err != nil {
		return nil, err
	}
	reg := w.m.Registry.Current()
	var out []string
	for _, s := range sessions.Summarize(rs, func(name string) bool { return reg.Agent(name) != nil }) {
		out = append(out, s.Sentence("hour"))
	}
	return out, nil
}
