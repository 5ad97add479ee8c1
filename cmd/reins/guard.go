package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/guard"
)

// openGuard builds the guard that judges every stored step against the
// agents' SLAs (docs/architecture.md, guard).
func (m *Main) openGuard() error {
	g, err := guard.New(guard.Config{
		Registry:   m.Registry,
		Store:      m.Store,
		Steps:      m.Store,
		Alerts:     m.Service,
		Halt:       m.autoHalt,
		Waiting:    m.announceWaiting,
		Incidents:  m.Service,
		Page:       m.sessionPage,
		Now:        m.Clock.Now,
		Log:        m.Log,
		Registerer: m.metrics().reg,
	})
	if err != nil {
		return fmt.Errorf("guard: %w", err)
	}
	m.Guard = g
	m.Sessions.Observe(g.Observe)
	return nil
}

// sessionPage is the web view's page of a session, "" without a public URL.
func (m *Main) sessionPage(id string) string {
	if m.Config.PublicURL == "" {
		return ""
	}
	return strings.TrimRight(m.Config.PublicURL, "/") + "/sessions/" + id
}

// autoHalt runs the halt a breach calls for: Service.AutoHalt decides the
// fallback, the per-agent rate limit and "already halted" from the store.
// Beyond max_auto_halts_per_minute the breach waits (Queue): the guard keeps
// it and asks again when the budget frees.
func (m *Main) autoHalt(ctx context.Context, req guard.HaltRequest) (guard.HaltResult, error) {
	out, err := m.Service.AutoHalt(ctx, incidents.AutoHaltCommand{Agent: req.Agent, SLA: req.SLA, Action: req.Action,
		Fallback: req.Fallback, Sessions: req.Sessions, IncidentID: req.IncidentID, Reason: req.Reason, DryRun: req.DryRun,
		Queue: true, Overflow: req.Overflow})
	if err != nil {
		return guard.HaltResult{}, err
	}
	if out.Halt != nil && out.Halt.Status != incidents.HaltVerified {
		return guard.HaltResult{}, fmt.Errorf("halt %d not verified: %s", out.Halt.ID, out.Halt.Error)
	}
	if out.Action == incidents.AutoHaltQueued {
		return guard.HaltResult{Outcome: guard.OutcomeQueued, RetryAt: out.RetryAt}, nil
	}
	return guard.HaltResult{Outcome: out.Action}, nil
}

// announceWaiting posts and pages the breaches waiting for an agent's
// automatic-halt budget (once per incident).
func (m *Main) announceWaiting(ctx context.Context, n guard.WaitingNote) error {
	return m.Service.AnnounceWaiting(ctx, incidents.AutoHaltWaiting{Agent: n.Agent, IncidentID: n.IncidentID,
		Waiting: n.Waiting, Limit: n.Limit, RetryAt: n.RetryAt, Overflow: n.Overflow})
}
