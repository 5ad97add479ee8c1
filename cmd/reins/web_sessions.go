package main

import (
	"context"
	"errors"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/guard"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/integrations/web"
)

// webSessionSource shows the stored session record on the web view's
// session pages, in the page's own vocabulary.
type webSessionSource struct {
	svc      *sessions.Service
	breaches guard.Store // nil: steps are not marked with the SLA they crossed
}

func (w webSessionSource) Session(ctx context.Context, agent, id string) (*web.SessionView, error) {
	rec, err := w.svc.Session(ctx, agent, id)
	if errors.Is(err, sessions.ErrNotFound) {
		return nil, incidents.Errorf(incidents.ENOTFOUND, "reins has no record of session %s", id)
	}
	if err != nil {
		return nil, err
	}
	v := &web.SessionView{ID: id, Agent: rec.Totals.Agent, Start: rec.Totals.First, End: rec.Totals.Last}
	crossed := map[string]string{}
	if w.breaches != nil {
		list, err := w.breaches.SessionBreaches(ctx, rec.Totals.Agent, id)
		if err != nil {
			return nil, err
		}
		for _, b := range list {
			if crossed[b.Step] == "" {
				crossed[b.Step] = b.SLA
			}
		}
	}
	for _, s := range rec.Steps {
		st := web.StepView{
			Start: s.Start, Duration: s.Duration, Kind: webKind(s), Name: s.Name, Tool: s.Tool,
			Model: s.Model, InputTokens: s.InputTokens, OutputTokens: s.OutputTokens,
			CostUSD: s.Cost, System: s.System, Breach: crossed[s.SpanID],
		}
		if s.Error {
			st.Error = s.ErrorType
			if st.Error == "" {
				st.Error = "error"
			}
		}
		v.Steps = append(v.Steps, st)
	}
	return v, nil
}

func webKind(s sessions.Step) string {
	switch {
	case s.IsTool():
		return "tool"
	case s.Kind == sessions.KindChat || s.Kind == sessions.KindCompletion || s.Kind == sessions.KindEmbeddings:
		return "llm"
	case s.Kind == sessions.KindAgent:
		return "agent"
	}
	return "other"
}
