// Package guard watches every step an agent reports against the agent's
// behavioural SLAs (docs/config.md, slas) and contains a breach: it raises an
// alert (source "reins", one per agent, SLA and session) and, per the SLA's
// on_breach, asks the incidents service to halt the session or the agent.
//
// Evaluation runs in the intake's request, in memory and per session, and
// the breaches it finds are stored before the intake answers: the store
// marked the session as to be judged in the transaction that stored its
// steps, and the judgement clears the mark in the transaction that stores
// the breaches, so a crash in between is judged again from the store. What a
// breach sets off (the incident, the halt) runs on workers that claim
// waiting breach rows under a lease, on any replica, in the order they
// crossed; a breach waiting for the agent's automatic-halt budget stays
// waiting until the budget frees (or the overflow policy halts the agent).
package guard

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/ownership"
)

// Source is the alert source of breaches.
const Source = "reins"

// Breach is one SLA crossed by one session.
type Breach struct {
	ID    int64  `json:"id"`
	Agent string `json:"agent"`
	SLA   string `json:"sla"` // the SLA's name
	// Repeat counts this session's breaches of the SLA, from 1: an SLA with
	// a ladder breaches again when the session goes on (ladder.go).
	Repeat     int       `json:"repeat,omitempty"`
	Metric     string    `json:"metric"` // its kind
	Session    string    `json:"session"`
	Value      float64   `json:"value"`
	Threshold  float64   `json:"threshold"`
	Detail     string    `json:"detail,omitempty"` // the tool out of scope, the looping tool
	Step       string    `json:"step"`             // span ID of the crossing step
	StepN      int64     `json:"step_n"`           // its position in the session, from 1
	Action     string    `json:"action"`           // on_breach
	DryRun     bool      `json:"dry_run,omitempty"`
	Outcome    string    `json:"outcome,omitempty"` // what was done; "" while waiting to be acted on
	IncidentID int64     `json:"incident_id,omitempty"`
	At         time.Time `json:"at"`
	// Due is when a waiting breach is tried next (zero: at once): when its
	// agent's automatic-halt budget frees.
	Due time.Time `json:"due,omitempty"`
	// ClaimedUntil, set when the breach is recorded, claims it for this
	// process until then: the guard hands it to its workers in memory, and
	// only a crash leaves it for the lease to run out.
	ClaimedUntil time.Time `json:"-"`
}

// Judged is a session the guard judged, up to its step count Steps: the
// mark the intake wrote for it (sessions.Step.Judged) is cleared up to there.
type Judged struct {
	Agent   string
	Session string
	Steps   int64
}

// OutcomeLeft is the outcome of a waiting breach a person with kill
// authority said to leave running (/agent leave).
const OutcomeLeft = "left"

// Store is what the guard needs from storage.
type Store interface {
	// InsertBreach stores b unless (agent, SLA, session) breached before; it
	// sets b.ID and says whether b is new.
	InsertBreach(ctx context.Context, b *Breach) (bool, error)
	// SetBreachOutcome records what was done about breach id.
	SetBreachOutcome(ctx context.Context, id, incident int64, outcome string) error
	// FindBreaches returns the breaches at or after since, of agent ("" for
	// all), most recent first, at most limit.
	FindBreaches(ctx context.Context, agent string, since time.Time, limit int) ([]Breach, error)
	// SessionBreaches returns the breaches of one session.
	SessionBreaches(ctx context.Context, agent, session string) ([]Breach, error)
	// RecordJudgement stores the breaches a judgement found (setting the
	// ID of each new one, leaving 0 on a repeat) and clears the judged
	// sessions' marks, in one transaction: what the intake answers 200 for
	// is durable.
	RecordJudgement(ctx context.Context, breaches []Breach, judged []Judged) error
	// Unjudged returns sessions marked to be judged since before before:
	// their steps were stored, their judgement never recorded (a crash).
	Unjudged(ctx context.Context, before time.Time, limit int) ([]Judged, error)
	// ClaimBreaches leases up to limit waiting breaches that are due
	// until now+lease, in crossing order: the breach row is its own outbox
	// item, shared by the replicas.
	ClaimBreaches(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Breach, error)
	// DeferBreach hands a claimed breach back to wait until due, with the
	// incident its alert joined (0: unchanged).
	DeferBreach(ctx context.Context, id, incident int64, due time.Time) error
	// WaitingBreaches returns agent's breaches not acted on yet, in
	// crossing order.
	WaitingBreaches(ctx context.Context, agent string, limit int) ([]Breach, error)
	// LeaveSession ends the waiting breaches of a session with outcome
	// OutcomeLeft, recording who said so, and says how many there were.
	LeaveSession(ctx context.Context, agent, session, by string) (int, error)
}

// StepReader reads stored sessions (sessions.Store): a session's steps to
// rebuild its state after a restart, an agent's recent sessions for status.
type StepReader interface {
	FindSession(ctx context.Context, agent, id string) (sessions.Record, error)
	FindSessions(ctx context.Context, agent string, since time.Time, limit int) ([]sessions.Totals, error)
}

// Alerter raises the alert of a breach (intake.Service, incidents/intake).
type Alerter interface {
	Ingest(ctx context.Context, alerts []incidents.Alert) (incidents.IngestResult, error)
}

// IncidentReader reads one incident (incidents.Service).
type IncidentReader interface {
	FindIncident(ctx context.Context, id int64) (*incidents.Incident, error)
}

// HaltRequest asks for the automatic halt on_breach calls for.
type HaltRequest struct {
	Agent      string
	SLA        string
	Action     string // ownership.OnBreachRestrict | OnBreachThrottle | OnBreachHaltSession | OnBreachHaltAgent
	Fallback   string
	Allow      []string // restrict: the SLA's restrict_to
	Rate       int      // throttle: the SLA's rate
	Sessions   []string
	IncidentID int64
	Reason     string
	DryRun     bool
	// Overflow is the whole-agent halt of escalation.overflow: it is not
	// held to max_auto_halts_per_minute.
	Overflow bool
}

// HaltResult is what an automatic halt did (incidents.Service AutoHalt:
// halt_session, halt_agent, alert, dry_run, already_halted), or Queued with
// when the agent's max_auto_halts_per_minute frees a halt.
type HaltResult struct {
	Outcome string
	RetryAt time.Time // with OutcomeQueued
}

// OutcomeQueued says an automatic halt must wait for the agent's
// automatic-halt budget (incidents.AutoHaltQueued).
const OutcomeQueued = "queued"

// Halter runs an automatic halt; a halt that ran but was not verified is an
// error (the breach is judged again).
type Halter func(ctx context.Context, req HaltRequest) (HaltResult, error)

// WaitingNote tells the kill authority that breaches of one agent wait for
// its automatic-halt budget, and what the overflow policy does about them.
type WaitingNote struct {
	Agent      string
	IncidentID int64
	Waiting    int       // sessions waiting
	Limit      int       // max_auto_halts_per_minute
	RetryAt    time.Time // when the budget frees the next halt
	Overflow   string    // ownership.OverflowHaltAgent | ownership.OverflowQueue
}

// Notifier posts and pages a WaitingNote once per incident
// (incidents.Service AutoHaltWaiting).
type Notifier func(ctx context.Context, n WaitingNote) error

// Config configures a Guard.
type Config struct {
	Registry *ownership.Holder
	Store    Store
	Steps    StepReader
	Alerts   Alerter
	Halt     Halter // nil: breaches alert only
	// Waiting, when set, posts and pages the queue of an agent whose
	// breaches wait for its automatic-halt budget.
	Waiting Notifier
	// Incidents, when set, reads an incident (incidents.Service): a halt
	// then joins the agent's open incident without waiting for its alert.
	Incidents IncidentReader
	// Page is the web page of agent's session (PublicURL/sessions/{id}?agent=), "" for none.
	Page func(agent, session string) string
	Now  func() time.Time
	Log  *slog.Logger
	// Registerer receives the guard's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Workers act on waiting breaches, claiming up to Batch at a time
	// under a lease of Lease (another replica takes them over after it).
	Workers int
	Batch   int
	Lease   time.Duration
	// Rejudge is how long a session may stay marked to be judged before
	// a worker judges it from the store (a crash between storing and
	// judging); Poll is how often the workers look for work they were not
	// woken for.
	Rejudge time.Duration
	Poll    time.Duration
	// MaxSessions bounds the sessions held in memory; the least recently
	// active go first (a session seen again is rebuilt from the store).
	MaxSessions int
}

// alert is the alert a breach raises.
func (g *Guard) alert(b Breach) incidents.Alert {
	labels := map[string]string{
		"agent": b.Agent, "sla": b.SLA, "session": b.Session, "metric": b.Metric,
		"value": formatValue(b.Metric, b.Value), "threshold": formatValue(b.Metric, b.Threshold),
		"step": fmt.Sprintf("%d", b.StepN), "span_id": b.Step,
	}
	if b.Detail != "" {
		labels["detail"] = b.Detail
	}
	sev := incidents.SeverityError
	if b.Action != ownership.OnBreachAlert {
		sev = incidents.SeverityCritical
	}
	summary := "Session " + b.Session + " of " + b.Agent + " breached SLA " + b.SLA + ": " + Reason(b) + "."
	switch {
	case b.DryRun:
		summary += " The SLA is dry_run: reins halts nothing for it."
	case b.Action == ownership.OnBreachHaltSession:
		summary += " reins halts the session automatically (on_breach: halt_session)."
	case b.Action == ownership.OnBreachHaltAgent:
		summary += " reins halts the agent automatically (on_breach: halt_agent)."
	case b.Action == ownership.OnBreachRestrict:
		summary += " reins restricts the session's tools automatically (on_breach: restrict)."
	case b.Action == ownership.OnBreachThrottle:
		summary += " reins throttles the session automatically (on_breach: throttle)."
	}
	// Details carry the observed value the postmortem's SLA table shows.
	details, _ := json.Marshal(map[string]any{"sla": b.SLA, "metric": b.Metric, "session": b.Session,
		"value": labels["value"], "threshold": labels["threshold"], "step": b.StepN, "span_id": b.Step})
	a := incidents.Alert{
		Details: details,
		Source:  Source, Fingerprint: "sla/" + b.Agent + "/" + b.SLA + "/" + b.Session, Agent: b.Agent,
		Status: incidents.AlertFiring, Title: clip("SLA "+b.SLA+" breached: "+Reason(b), 200), Summary: summary,
		Severity: sev, Sessions: []string{b.Session}, Labels: labels, StartsAt: b.At, ReceivedAt: b.At,
	}
	if g.cfg.Page != nil {
		if u := g.cfg.Page(b.Agent, b.Session); u != "" {
			a.Links = append(a.Links, incidents.Link{Text: "Session " + b.Session, URL: u})
		}
	}
	return a
}

func clip(s string, n int) string { return sessions.Truncate(s, n) }
