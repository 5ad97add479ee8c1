package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/robfig/cron/v3"
	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/bot"
	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/aftermath"
	"github.com/reins-oss/reins/incidents/guard"
	"github.com/reins-oss/reins/incidents/halting"
	"github.com/reins-oss/reins/incidents/intake"
	"github.com/reins-oss/reins/incidents/jobs"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/incidents/sqlstore"
	"github.com/reins-oss/reins/incidents/words"
	"github.com/reins-oss/reins/integrations/halt"
	"github.com/reins-oss/reins/integrations/otlp"
	"github.com/reins-oss/reins/integrations/pagerduty"
	"github.com/reins-oss/reins/integrations/web"
	"github.com/reins-oss/reins/ownership"
)

// Main is reins assembled: the only place that knows every concrete type.
// Build it with the Config and call Run; Close shuts it down gracefully.
type Main struct {
	Config Config
	Getenv func(string) string
	Log    *slog.Logger
	Clock  incidents.Clock

	DB       *sqlx.DB
	Store    *sqlstore.Store
	Registry *ownership.Holder
	Service  *incidents.Service
	Intake   *intake.Service
	// Aftermath resolves incidents and runs their checklist and postmortem.
	Aftermath *aftermath.Service
	// Halting is the halts a person asks for; Policy, those no person asks
	// for; Drills, the kill switches' drills.
	Halting  *halting.Service
	Policy   *halting.Policy
	Drills   *halting.Drills
	Flags    *halt.Flags
	Halter   *halt.Registry
	Bot      *bot.Handler
	Slack    *slack.Client
	Pager    *pagerduty.Client
	Sessions *sessions.Service
	// intake is the /v1/traces handler (nil until the routes are built).
	intake *otlp.Handler
	Guard  *guard.Guard

	// Authority is the one kill-authority checker: the service's, and the
	// Slack handler's for refusals answered on the request path.
	Authority *ownership.Authorizer
	// WebSessions feeds the web view's session pages; nil: they say no
	// session records are kept.
	WebSessions web.SessionSource

	server      *http.Server
	listener    net.Listener
	cron        *cron.Cron
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	reloadMu    sync.Mutex
	jobs        *jobs.Runner
	readOnly    bool // commands that only read: never create or migrate a database
	cli         bool // a one-shot command: config warnings are for `reins validate`
	healthCache healthCache
	rejected    rejectedReload // the last reload refused, for /readyz?verbose=1
	// forAgent, set by break-glass commands, loads only that agent's entry
	// when the file is broken elsewhere; configNote then says what was left out.
	forAgent   string
	configNote string
	// routePatterns are the patterns the server registered (routeTable).
	routePatterns []string
	web           *web.Handler
	metricsOnce   sync.Once
	prom          *mainMetrics // metrics(): this Main's registry and series
	telemetry     atomic.Pointer[telemetryCreds]
}

// NewMain returns a Main reading the process environment.
func NewMain(cfg Config, log *slog.Logger) *Main {
	return &Main{Config: cfg, Getenv: os.Getenv, Log: log, Clock: incidents.SystemClock{}}
}

// Open builds everything that does not listen or run in the background: the
// store (migrated), the registry, the clients and the service. Commands that
// only read or halt (kill, incidents) use Open without Run.
func (m *Main) Open(ctx context.Context, strictEnv bool) error {
	if err := m.Config.Validate(); err != nil {
		return err
	}
	reg, err := m.loadRegistry(strictEnv)
	if err != nil {
		return err
	}
	m.Registry = ownership.NewHolder(reg)

	db, dialect, err := m.openDB(ctx)
	if err != nil {
		return err
	}
	m.DB, m.Store = db, sqlstore.New(db, dialect)

	now := func() time.Time { return m.Clock.Now() }
	var chat incidents.Chat
	var dir ownership.Directory
	if m.Config.SlackEnabled() {
		m.Slack = bot.NewClient(m.Config.SlackBotToken, m.Config.slackAPIURL(), m.slackAuthFailed)
		c := bot.NewChat(m.Slack, m.Log)
		chat, dir = c, bot.NewDirectory(m.Slack)
	}
	m.Pager = pagerduty.NewClient(pagerduty.Config{
		EventsURL: m.Config.PagerDutyEventsURL, APIURL: m.Config.PagerDutyAPIURL,
		APIToken: m.Config.PagerDutyAPIToken, Log: m.Log,
		AuthFailed: func() { m.metrics().domain.AuthFailed("pagerduty") },
	})
	var oncall ownership.OnCall
	if m.Config.PagerDutyAPIToken != "" {
		oncall = m.Pager
	}
	m.Sessions = sessions.New(m.Store, m.Registry, m.sessionPuller(), now, m.Log)
	m.Flags = halt.NewFlags(m.Store, now)
	if err := m.Flags.Load(ctx); err != nil {
		return fmt.Errorf("load kill flags: %w", err)
	}
	m.Halter = halt.NewRegistry(halt.Config{Getenv: m.Getenv, Flags: m.Flags, Now: now, Log: m.Log})
	m.Authority = ownership.NewAuthorizer(dir, oncall, 5*time.Minute, now, m.Log)
	m.Service = incidents.New(incidents.Deps{
		Store:     m.Store,
		Registry:  m.Registry,
		Authority: m.Authority,
		Chat:      chat,
		Pager:     m.Pager,
		Halter:    m.Halter,
		Clock:     m.Clock,
		Log:       m.Log,
		Sessions:  m.Sessions,
		Metrics:   m.metrics().domain,
	}, incidents.Config{
		PublicURL:         m.Config.PublicURL,
		DefaultRoutingKey: m.Config.PagerDutyRoutingKey,
		Getenv:            m.Getenv,
	})
	m.Intake = intake.New(m.Service.Core)
	m.Aftermath = aftermath.New(m.Service.Core)
	m.Halting = halting.New(m.Service.Core)
	m.Policy = halting.NewPolicy(m.Halting)
	m.Drills = halting.NewDrills(m.Service.Core)
	if err := m.openGuard(); err != nil {
		return err
	}
	// Stored steps, over OTLP or pulled, reach the guard first (openGuard),
	// then the summaries of the incidents naming their sessions.
	m.Sessions.Observe(m.Service.StepsRecorded)
	return nil
}

// loadRegistry reads the config file; a missing file means no agents.
func (m *Main) loadRegistry(strictEnv bool) (*ownership.Registry, error) {
	path := m.Config.ConfigPath
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if m.Config.ConfigExplicit {
			return nil, fmt.Errorf("config file %s does not exist (named by --config or REINS_CONFIG): "+
				"check the path, or start from examples/reins.yaml", path)
		}
		m.Log.Log(context.Background(), m.configLevel(), "no config file: running with no agents; create one from examples/reins.yaml", "config", path)
		return ownership.Empty(), nil
	}
	opts := ownership.Options{Getenv: m.Getenv, StrictEnv: strictEnv, Adapters: halt.Specs()}
	if m.forAgent != "" {
		return m.loadRegistryFor(path, opts)
	}
	reg, problems := ownership.Load(path, opts)
	for _, p := range problems.Warnings() {
		m.Log.Log(context.Background(), m.configLevel(), "config", "problem", p.String())
	}
	if err := problems.Err(); err != nil {
		return nil, &configError{problems: problems.Errors()}
	}
	return reg, nil
}

// loadRegistryFor loads what a command about m.forAgent alone needs (the
// break-glass kill and resume): that agent's entry and team, whatever is
// broken elsewhere in the file. What else is broken goes to m.configNote,
// one line for the command to print.
func (m *Main) loadRegistryFor(path string, opts ownership.Options) (*ownership.Registry, error) {
	reg, problems, elsewhere := ownership.LoadFor(path, m.forAgent, opts)
	for _, p := range problems.Warnings() {
		m.Log.Log(context.Background(), m.configLevel(), "config", "problem", p.String())
	}
	if reg == nil {
		// Problems naming the agent are its entry's own; otherwise the file
		// does not name it (or cannot be read) and all of them count.
		own := slices.ContainsFunc(problems, func(p ownership.Problem) bool {
			return strings.Contains(p.Message, "agents."+m.forAgent+".") || strings.Contains(p.Message, "agents."+m.forAgent+":")
		})
		if own {
			return nil, &configError{problems: problems.Errors(), agent: m.forAgent}
		}
		return nil, &configError{problems: problems.Errors()}
	}
	if n := len(problems.Errors()); n > 0 {
		m.configNote = fmt.Sprintf("warning: %s has %s outside %s's entry (in %s), left out for this command; `reins validate` lists them",
			path, words.Count(n, "problem"), m.forAgent, strings.Join(elsewhere, ", "))
	}
	return reg, nil
}

// configError carries every problem of an invalid config file, or of the
// entry of agent when a command needs only that.
type configError struct {
	problems ownership.Problems
	agent    string
}

func (e *configError) Error() string {
	if e.agent != "" {
		return fmt.Sprintf("the entry of %s in the config is invalid (%s):\n%s", e.agent, words.Count(len(e.problems), "problem"), e.problems.String())
	}
	return fmt.Sprintf("invalid config (%s):\n%s", words.Count(len(e.problems), "problem"), e.problems.String())
}

// Reload re-reads the config file (SIGHUP). An invalid file is rejected with
// its problems logged and the registry in force stays.
func (m *Main) Reload() error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	reg, err := m.loadRegistry(false)
	defer m.healthCache.reset()
	if err != nil {
		n := 1
		var ce *configError
		if errors.As(err, &ce) {
			n = len(ce.problems)
		}
		m.rejected.set(m.Clock.Now(), n)
		m.metrics().configReloadOK.Set(0)
		m.Log.Error("config reload rejected: keeping the registry in force", "config", m.Config.ConfigPath, "err", err)
		return err
	}
	m.Registry.Swap(reg)
	m.rejected.set(time.Time{}, 0)
	m.metrics().configReloadOK.Set(1)
	m.Log.Info("config reloaded", "config", m.Config.ConfigPath, "agents", len(reg.Agents))
	m.scheduleDrills()
	return nil
}

// Run opens everything and starts serving: HTTP, delivery workers, kill-flag
// refresh, Socket Mode and scheduled jobs. It returns once listening.
func (m *Main) Run(ctx context.Context) error {
	start := time.Now()
	// A secret variable the config names but the environment lacks is a
	// warning (logged by loadRegistry, listed by /readyz?verbose=1): reins
	// starts, and only what needs that secret fails.
	if err := m.Open(ctx, false); err != nil {
		return err
	}
	if m.Config.SlackEnabled() {
		m.Bot = bot.NewHandler(bot.Config{
			SigningSecret: m.Config.SlackSigningSecret,
			Service:       useCasesOf(m),
			State:         m.Store,
			Authorizer:    m.Authority,
			Now:           m.Clock.Now,
			Chat:          bot.NewChat(m.Slack, m.Log),
			Log:           m.Log,
			PublicURL:     m.Config.PublicURL,
			// Few workers for the work after an ack: a burst of commands then
			// queues instead of taking the CPU the next acks need.
			Workers: 2,
			SLAStatus: func(ctx context.Context, agent string) (string, error) {
				return m.Guard.StatusText(ctx, agent)
			},
			Leave: m.leaveSession,
		})
	} else {
		m.Log.Info("Slack disabled: set SLACK_BOT_TOKEN (and SLACK_SIGNING_SECRET or SLACK_APP_TOKEN) to enable it")
	}

	conns, err := m.maxConns()
	if err != nil {
		return err
	}
	if err := m.openWeb(ctx); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", m.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.Listen, err)
	}
	ln = newLimitListener(ln, conns)
	m.listener = ln
	m.metrics().configReloadOK.Set(1)
	m.warnPublicURL()
	rt := m.routeTable()
	m.routePatterns = rt.patterns
	m.server = &http.Server{
		Handler:           rt,
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		ErrorLog:          slog.NewLogLogger(m.Log.Handler(), slog.LevelWarn),
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.goLoop(func() {
		if err := m.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error("http server stopped", "err", err)
		}
	})
	m.startBackground(bg)
	m.Log.Info("reins serving", append(m.Config.Summary(), "addr", ln.Addr().String(),
		"agents", len(m.Registry.Current().Agents), "startup", time.Since(start).Round(time.Millisecond).String())...)
	return nil
}

// Addr is the address the HTTP server listens on (useful with :0).
func (m *Main) Addr() string { return m.listener.Addr().String() }

func (m *Main) goLoop(fn func()) {
	m.wg.Add(1)
	go func() { defer m.wg.Done(); fn() }()
}

// startBackground starts the workers that outlive requests.
func (m *Main) startBackground(ctx context.Context) {
	// Pages get their own workers so Slack cosmetics never delay them.
	m.goLoop(func() { m.Service.Outbox().Run(ctx, outbox.LaneUrgent, 2) })
	m.goLoop(func() { m.Service.Outbox().Run(ctx, outbox.LaneChat, 2) })
	m.goLoop(func() { m.Service.Outbox().Run(ctx, outbox.LaneRefresh, 1) })
	m.raiseRecordedHalts(ctx)
	m.goLoop(func() { m.Guard.Start(ctx); m.Guard.Wait() })
	// Replicas converge on kill flags set elsewhere (another replica, `reins kill`).
	m.goLoop(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := m.Flags.Load(ctx); err != nil && ctx.Err() == nil {
					m.Log.Warn("refresh kill flags", "err", err)
				}
			}
		}
	})
	if m.Config.SlackAppToken != "" && m.Bot != nil {
		api := bot.NewClient(m.Config.SlackBotToken, m.Config.slackAPIURL(), m.slackAuthFailed,
			slack.OptionAppLevelToken(m.Config.SlackAppToken))
		m.goLoop(func() {
			if err := m.Bot.RunSocketMode(ctx, api, m.Config.SlackAppToken); err != nil && ctx.Err() == nil {
				m.Log.Error("socket mode stopped", "err", err)
			}
		})
	}
	m.startJobs(ctx)
}

// Close stops accepting requests, lets in-flight ones finish, stops the
// workers and closes the store.
func (m *Main) Close() error {
	var errs []error
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := m.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	if m.jobs != nil {
		<-m.jobs.Stop().Done()
	}
	if m.Bot != nil {
		m.Bot.Wait()
	}
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	if m.DB != nil {
		if err := m.DB.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close database: %w", err))
		}
	}
	return errors.Join(errs...)
}

// useCases is the use cases the Slack side (bot.Service) and the REST API
// call, one service each: the incidents', the aftermath's, the halts', and
// the intake for declaring an incident.
type useCases struct {
	*incidents.Service
	*aftermathUseCases
	*haltingUseCases
	intake *intake.Service
}

// The use-case services, named apart where they are embedded together.
type (
	aftermathUseCases = aftermath.Service
	haltingUseCases   = halting.Service
)

func useCasesOf(m *Main) useCases {
	return useCases{m.Service, m.Aftermath, m.Halting, m.Intake}
}

func (u useCases) Declare(ctx context.Context, actor incidents.Actor, agent, title string) (*incidents.Incident, bool, error) {
	return u.intake.Declare(ctx, actor, agent, title)
}
