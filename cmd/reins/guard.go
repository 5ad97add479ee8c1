package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/guard"
	"github.com/reins-oss/reins/ownership"
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
		Page:       m.sessionPage,
		Now:        m.Clock.Now,
		Log:        m.Log,
		Registerer: prometheus.DefaultRegisterer,
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

// autoHalt runs the halt a breach calls for through the same path as a
// person's, as actor policy:<agent>/<sla>.
// TODO(16a merge): call Service.AutoHalt, which adds fallbacks, the
// per-agent rate limit and the "already halted" check from the store.
func (m *Main) autoHalt(ctx context.Context, req guard.HaltRequest) (string, error) {
	if req.DryRun {
		return "dry_run", nil
	}
	cmd := incidents.HaltCommand{Action: incidents.ActionHalt, Agent: req.Agent, Reason: req.Reason,
		Actor: incidents.Actor{Kind: "policy", ID: req.Agent + "/" + req.SLA}, IncidentID: req.IncidentID,
		BreakGlass: true}
	if req.Action == ownership.OnBreachHaltSession {
		cmd.Sessions = req.Sessions
	}
	h, err := m.Service.Halt(ctx, cmd)
	if err != nil {
		var ie *incidents.Error
		if errors.As(err, &ie) && ie.Code == incidents.EINVALID {
			return ownership.OnBreachAlert, nil
		}
		return "", err
	}
	if h.Status != incidents.HaltVerified {
		return "", fmt.Errorf("halt %d: %s", h.ID, h.Error)
	}
	return req.Action, nil
}
