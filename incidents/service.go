package incidents

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/ownership"
)

// Authority decides who may halt an agent. Implemented by ownership.Authorizer.
type Authority interface {
	Authorize(ctx context.Context, agent *ownership.Agent, person string) ownership.Decision
	// Holders resolves the agent's kill authority to people now; unavailable
	// names the sources that could not be asked.
	Holders(ctx context.Context, agent *ownership.Agent) (holders, unavailable []string)
}

// Config holds the service's settings.
type Config struct {
	PublicURL         string // base URL for links back to reins
	DefaultRoutingKey string // PAGERDUTY_ROUTING_KEY
	// Getenv reads the variables named by the config (routing_key_env,
	// secret_env). Defaults to os.Getenv.
	Getenv func(string) string

	HaltTimeout  time.Duration // per adapter call; default 5s
	HaltAttempts int           // adapter calls before a halt is failed; default 3

	DeliveryAttempts int           // outbox attempts before an item is buried; default 8
	DeliveryLease    time.Duration // how long a claimed item is leased; default 30s
	// DeliveryProbeInterval is how often a failing Slack is probed when it
	// gave no Retry-After; default outbox.DefaultProbeInterval (3s).
	DeliveryProbeInterval time.Duration

	NudgeInterval time.Duration // stalled checklist nudge interval; default 30m
	NudgeMax      int           // nudges per stall; default 3
	PostmortemDue time.Duration // remind about unfinished postmortems after; default 48h
}

// Deps are the service's collaborators. Chat and Pager may be nil: Slack or
// PagerDuty is then not configured and nothing is queued for it.
type Deps struct {
	Store     Store
	Registry  *ownership.Holder
	Authority Authority
	Chat      Chat
	Pager     Pager
	Halter    Halter
	Clock     Clock
	Log       *slog.Logger
	Sessions  SessionRecords // optional: the session record (docs/config.md, sessions)
	// Metrics are the series the service counts in; nil: unregistered ones
	// (cmd/reins registers them with its Main's registry).
	Metrics *Metrics
}

// Service is the use cases not cut out into packages of their own: the
// outbox handlers (Slack, PagerDuty, PagerDuty sync), reads and status, the
// ownership audit, the session record's links. It embeds the Core, which
// incidents/intake, incidents/aftermath and incidents/halting are built on.
type Service struct {
	*Core
}

// New returns a Service. Zero settings get their defaults.
func New(d Deps, cfg Config) *Service {
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.HaltTimeout == 0 {
		cfg.HaltTimeout = 5 * time.Second
	}
	if cfg.HaltAttempts == 0 {
		cfg.HaltAttempts = 3
	}
	if cfg.NudgeInterval == 0 {
		cfg.NudgeInterval = 30 * time.Minute
	}
	if cfg.NudgeMax == 0 {
		cfg.NudgeMax = 3
	}
	if cfg.PostmortemDue == 0 {
		cfg.PostmortemDue = 48 * time.Hour
	}
	if d.Clock == nil {
		d.Clock = SystemClock{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	core := &Core{auth: d.Authority, halter: d.Halter, metrics: d.Metrics, sessions: d.Sessions, store: d.Store, reg: d.Registry, chat: d.Chat, pager: d.Pager,
		clock: d.Clock, log: d.Log, cfg: cfg}
	s := &Service{Core: core}
	s.outbox = outbox.New(outbox.Config{Store: d.Store, Clock: d.Clock, Log: d.Log,
		Attempts: cfg.DeliveryAttempts, Lease: cfg.DeliveryLease, Registerer: d.Metrics.reg, Bury: s.bury,
		Destinations: Destinations(), ProbeInterval: cfg.DeliveryProbeInterval})
	s.registerHandlers(s.outbox)
	return s
}
