package main

import (
	"context"
	"fmt"
	"net/url"
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

// sessionPage is the web view's page of agent's session, "" without a public URL.
func (m *Main) sessionPage(agent, id string) string {
	if m.Config.PublicURL == "" {
		return ""
	}
	return strings.TrimRight(m.Config.PublicURL, "/") + "/sessions/" + url.PathEscape(id) + "?agent=" + url.QueryEscape(agent)
}

// autoHalt runs the halt a breach calls for: Service.AutoHalt decides the
// fallback, the per-agent rate limit and "already halted" from the store.
func (m *Main) autoHalt(ctx context.Context, req guard.HaltRequest) (string, error) {
	out, err := m.Service.AutoHalt(ctx, incidents.AutoHaltCommand{Agent: req.Agent, SLA: req.SLA, Action: req.Action,
		Fallback: req.Fallback, Sessions: req.Sessions, IncidentID: req.IncidentID, Reason: req.Reason, DryRun: req.DryRun,
		Allow: req.Allow, Rate: req.Rate})
	if err != nil {
		return "", err
	}
	if out.Halt != nil && out.Halt.Status != incidents.HaltVerified {
		return "", fmt.Errorf("halt %d not verified: %s", out.Halt.ID, out.Halt.Error)
	}
	return out.Action, nil
}
