package incidentstest

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/aftermath"
	"github.com/reins-oss/reins/incidents/halting"
	"github.com/reins-oss/reins/incidents/intake"
	"github.com/reins-oss/reins/ownership"
)

// Epoch is the time every Env's clock starts at.
var Epoch = time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)

// Registry returns a registry with two teams and three agents:
//   - support-bot (team support-ai, webhook adapter, sessions link, two blast
//     radius items, kill authority U01ALICE and usergroup S0ONCALL, alias
//     support-bot-v2, its own routing key in PD_SUPPORT_BOT_KILL_KEY);
//   - billing-agent (team billing, kubernetes adapter: no single sessions,
//     the team's routing key in PD_BILLING_KEY);
//   - orphan-agent (no team, flag adapter, no routing key of its own).
func Registry() *ownership.Registry {
	return &ownership.Registry{
		Slack:  ownership.SlackSettings{ChannelPrefix: "inc", GovernanceChannel: "agent-governance"},
		Alerts: ownership.AlertSettings{AgentLabels: []string{"agent"}, SessionLabels: []string{"session_id"}, GroupWindow: 4 * time.Hour},
		Teams: map[string]*ownership.Team{
			"support-ai": {Name: "support-ai", SlackChannel: "support-ai", SlackUsergroup: "S0SUPPORTAI",
				PagerDuty: ownership.PagerDutySettings{RoutingKeyEnv: "PD_SUPPORT_AI_KEY", EscalationPolicy: "PABC123"}},
			"billing": {Name: "billing", SlackChannel: "billing-eng",
				PagerDuty: ownership.PagerDutySettings{RoutingKeyEnv: "PD_BILLING_KEY"}},
		},
		Agents: map[string]*ownership.Agent{
			"support-bot": {
				Name: "support-bot", Team: "support-ai", Description: "Customer-facing support agent",
				Runbook: "https://wiki.example.com/agents/support-bot",
				RACI: ownership.RACI{Responsible: []string{"U01ALICE"}, Accountable: []string{"alice@example.com"},
					Informed: []string{"support-leads"}},
				KillAuthority: ownership.Authority{Users: []string{"U01ALICE", "U02BOB"}, Usergroups: []string{"S0ONCALL"}},
				PagerDuty:     ownership.PagerDutySettings{RoutingKeyEnv: "PD_SUPPORT_BOT_KILL_KEY"},
				Halt: ownership.HaltSpec{Adapter: "webhook", Confirm: true,
					Settings: map[string]string{"url": "https://support-bot.internal/reins/halt"}},
				Sessions: ownership.SessionSettings{Link: "https://langfuse.example.com/sessions/{session}"},
				Aliases:  []string{"support-bot-v2"},
				BlastRadius: []ownership.BlastItem{
					{System: "Salesforce", Access: []string{"read", "write"}, Owner: "crm-oncall"},
					{System: "SendGrid", Access: []string{"send"}, Owner: "email-platform"},
				},
			},
			"billing-agent": {
				Name: "billing-agent", Team: "billing",
				RACI:          ownership.RACI{Responsible: []string{"U03CAROL"}},
				KillAuthority: ownership.Authority{Users: []string{"U03CAROL"}},
				Halt: ownership.HaltSpec{Adapter: "kubernetes",
					Settings: map[string]string{"namespace": "billing", "deployment": "billing-agent"}},
			},
			"orphan-agent": {
				Name:          "orphan-agent",
				KillAuthority: ownership.Authority{Users: []string{"U04DAN"}},
				Halt:          ownership.HaltSpec{Adapter: "flag"},
			},
		},
		LoadedAt: Epoch,
	}
}

// Alert returns a firing critical alert for support-bot naming session
// s-8812, changed by each mod in turn.
func Alert(mods ...func(*incidents.Alert)) incidents.Alert {
	a := incidents.Alert{
		Source:      "generic",
		Fingerprint: "tok-spike",
		Agent:       "support-bot",
		Status:      incidents.AlertFiring,
		Title:       "Token spend 12x baseline",
		Summary:     "tokens_per_session 240000 > 200000",
		Severity:    incidents.SeverityCritical,
		Sessions:    []string{"s-8812"},
		Links:       []incidents.Link{{Text: "Dashboard", URL: "https://grafana.example.com/d/tok"}},
	}
	for _, m := range mods {
		m(&a)
	}
	return a
}

// Env is a Service wired to fakes, for service tests.
type Env struct {
	Store    *Store
	Clock    *Clock
	Chat     *Chat
	Pager    *Pager
	Halter   *Halter
	Auth     *Authority
	Registry *ownership.Holder
	// Vars are the environment the Service reads through Config.Getenv.
	Vars    map[string]string
	Config  incidents.Config
	Service *incidents.Service
	Intake  *intake.Service
	// Aftermath is the resolve, checklist and postmortem use cases.
	Aftermath *aftermath.Service
	// Reminders is the aftermath's scheduled nudges.
	Reminders *aftermath.Reminders
	// Halting is the halts a person asks for, Policy those by policy, Drills
	// the kill switches' drills.
	Halting *halting.Service
	Policy  *halting.Policy
	Drills  *halting.Drills
	// Metrics is the registry the Service's series are registered with.
	Metrics *prometheus.Registry
}

// NewEnv returns an Env on Registry(), with routing keys for support-bot and
// the billing team set, short halt timeouts, and the clock at Epoch. Each
// option may change the deps or config before the Service is built; setting
// Deps.Chat or Deps.Pager to nil disables Slack or PagerDuty.
func NewEnv(opts ...func(*incidents.Deps, *incidents.Config)) *Env {
	e := &Env{
		Store:    NewStore(),
		Clock:    NewClock(Epoch),
		Chat:     &Chat{},
		Pager:    &Pager{},
		Halter:   &Halter{},
		Auth:     &Authority{},
		Registry: ownership.NewHolder(Registry()),
		Vars: map[string]string{
			"PD_SUPPORT_BOT_KILL_KEY": "rk-support-bot",
			"PD_BILLING_KEY":          "rk-billing",
		},
	}
	deps := incidents.Deps{Store: e.Store, Registry: e.Registry, Authority: e.Auth, Chat: e.Chat,
		Pager: e.Pager, Halter: e.Halter, Clock: e.Clock}
	e.Metrics = prometheus.NewPedanticRegistry()
	deps.Metrics = incidents.NewMetrics(e.Metrics)
	e.Config = incidents.Config{
		PublicURL:    "https://reins.example.com",
		Getenv:       func(k string) string { return e.Vars[k] },
		HaltTimeout:  time.Second,
		HaltAttempts: 3,
	}
	for _, o := range opts {
		o(&deps, &e.Config)
	}
	e.Service = incidents.New(deps, e.Config)
	e.Intake = intake.New(e.Service.Core)
	e.Aftermath = aftermath.New(e.Service.Core)
	e.Reminders = aftermath.NewReminders(e.Service.Core)
	e.Halting = halting.New(e.Service.Core)
	e.Policy = halting.NewPolicy(e.Halting)
	e.Drills = halting.NewDrills(e.Service.Core)
	return e
}
