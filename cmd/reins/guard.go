package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/guard"
	"github.com/reins-oss/reins/incidents/intake"
	"github.com/reins-oss/reins/incidents/sqlstore"
)

// openGuard builds the guard that judges every stored step against the
// agents' SLAs (docs/architecture.md, guard).
func (m *Main) openGuard() error {
	g, err := guard.New(guard.Config{
		Registry:   m.Registry,
		Store:      m.Store,
		Steps:      m.Store,
		Alerts:     urgentAlerts{m.Intake},
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

// urgentAlerts raises breach alerts with their writes marked urgent: on
// SQLite they pass the intake's queued writes on the way to the halt.
type urgentAlerts struct{ s *intake.Service }

func (u urgentAlerts) Ingest(ctx context.Context, alerts []incidents.Alert) (incidents.IngestResult, error) {
	return u.s.Ingest(sqlstore.Urgent(ctx), alerts)
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
// Beyond max_auto_halts_per_minute the breach waits (Queue): the guard keeps
// it and asks again when the budget frees.
func (m *Main) autoHalt(ctx context.Context, req guard.HaltRequest) (guard.HaltResult, error) {
	ctx = sqlstore.Urgent(ctx) // on SQLite, past the intake's queued writes
	out, err := m.Policy.AutoHalt(ctx, incidents.AutoHaltCommand{Agent: req.Agent, SLA: req.SLA, Action: req.Action,
		Fallback: req.Fallback, Sessions: req.Sessions, IncidentID: req.IncidentID, Reason: req.Reason, DryRun: req.DryRun,
		Queue: true, Overflow: req.Overflow, Allow: req.Allow, Rate: req.Rate})
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
	return m.Policy.AnnounceWaiting(ctx, incidents.AutoHaltWaiting{Agent: n.Agent, IncidentID: n.IncidentID,
		Waiting: n.Waiting, Limit: n.Limit, RetryAt: n.RetryAt, Overflow: n.Overflow})
}

// leaveSession is `/agent leave` and POST /api/v1/agents/{agent}/sessions/{session}/leave:
// a person with kill authority says to leave a breaching session running;
// its waiting breaches end as "left" and the incident's timeline says who.
// Through the API the token is the authority (as for halts); in Slack the
// person must hold kill authority.
func (m *Main) leaveSession(ctx context.Context, actor incidents.Actor, agent, session string) (string, error) {
	allowed := func(ctx context.Context, actor incidents.Actor, agent string) (bool, string, error) {
		if actor.Kind == incidents.ActorAPI {
			return true, "", nil
		}
		d, _, err := m.Halting.CheckAuthority(ctx, actor, agent, incidents.ActionHalt)
		if err != nil {
			return false, "", err
		}
		return d.Allowed, d.Reason, nil
	}
	n, err := m.Guard.Leave(ctx, guard.LeaveCommand{Agent: agent, Session: session, Actor: actor}, allowed)
	if err != nil {
		return "", err
	}
	if err := m.Policy.RecordLeave(ctx, agent, session, actor, n); err != nil {
		return "", err
	}
	return fmt.Sprintf("Session %s of %s is left running: %d waiting breach(es) will not be acted on. To halt it after all: /agent kill %s %s",
		session, agent, n, agent, session), nil
}
