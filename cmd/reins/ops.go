package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/integrations/api"
	"github.com/reins-oss/reins/migrations"
	"github.com/reins-oss/reins/ownership"
)

// Operations: how reins opens its database, guards its listener, reports
// its own health, and what it exports about itself beyond the domain metrics.

const (
	// maxHeaderBytes caps request headers: without it net/http accepts 1 MiB
	// per connection, and a few hundred unfinished ones cost hundreds of MB.
	maxHeaderBytes = 64 << 10
	// defaultMaxConns caps concurrent connections (REINS_MAX_CONNECTIONS).
	defaultMaxConns = 512
	// healthTimeout bounds each check of /readyz?verbose=1 and `reins doctor`.
	healthTimeout = 2 * time.Second
)

// openDB connects to the database. Commands that write migrate it (creating
// a SQLite file if needed); read-only commands refuse a database that is
// absent or not migrated, naming it, rather than create an empty one.
func (m *Main) openDB(ctx context.Context) (*sqlx.DB, migrations.Dialect, error) {
	db, d, err := m.openDBUnsized(ctx)
	if err == nil && d == migrations.Postgres {
		// Validated in config: a count of at least minDatabaseConns.
		if n, _ := strconv.Atoi(m.Config.DatabaseMaxConns); n > 0 {
			db.SetMaxOpenConns(n)
			db.SetMaxIdleConns(n)
		}
	}
	return db, d, err
}

// minDatabaseConns is the smallest pool reins works with: a scheduled job's
// lock holds one connection, the outbox and the intake each need one more.
const minDatabaseConns = 4

func (m *Main) openDBUnsized(ctx context.Context) (*sqlx.DB, migrations.Dialect, error) {
	if !m.readOnly {
		return migrations.Open(ctx, m.Config.DatabaseURL)
	}
	if err := sqliteExists(m.Config.DatabaseURL); err != nil {
		return nil, "", err
	}
	db, d, err := migrations.Connect(ctx, m.Config.DatabaseURL)
	if err != nil {
		return nil, "", err
	}
	pending, err := migrations.Pending(ctx, db, d)
	if err != nil {
		db.Close()
		return nil, "", err
	}
	if pending {
		db.Close()
		return nil, "", fmt.Errorf("database %s is not migrated to this version of reins: run `reins migrate` (or start `reins serve`) first",
			migrations.Redact(m.Config.DatabaseURL))
	}
	return db, d, nil
}

// sqliteExists reports an embedded-store URL whose file does not exist.
func sqliteExists(rawURL string) error {
	d, dsn, err := migrations.ParseURL(rawURL)
	if err != nil || d != migrations.SQLite {
		return err
	}
	path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if path == ":memory:" || strings.Contains(dsn, "mode=memory") {
		return nil
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no database at %s (REINS_DATABASE_URL): this command only reads and does not create one; "+
			"point REINS_DATABASE_URL at the database `reins serve` uses", migrations.Redact(rawURL))
	}
	return nil
}

// limitListener caps concurrent connections: Accept waits for a slot, and a
// connection frees its slot when closed. Excess clients queue in the
// kernel's backlog instead of costing memory here.
type limitListener struct {
	net.Listener
	sem        chan struct{}
	done       chan struct{} // closed by Close: a waiting Accept returns at once
	closeOnce  sync.Once
	open, peak atomic.Int64
}

func newLimitListener(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	n := l.open.Add(1)
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
	return &limitConn{Conn: c, l: l}, nil
}

// Close stops accepting, also for an Accept waiting for a free slot, so a
// shutdown under a flood of slow clients is not held up by them.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		<-c.l.sem
	})
	return err
}

// warnPublicURL says once at start that links will point at the default
// public URL while reins listens elsewhere.
func (m *Main) warnPublicURL() {
	if m.Config.PublicURLSet || m.Config.Listen == ":8080" {
		return
	}
	m.Log.Warn("REINS_PUBLIC_URL is not set: links in pages and Slack point at http://localhost:8080 while reins listens on "+
		m.Config.Listen+"; set REINS_PUBLIC_URL to the address people reach reins at", "listen", m.Config.Listen)
}

// healthCheck is one line of /readyz?verbose=1 and `reins doctor`.
type healthCheck struct {
	Part   string `json:"part"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// health checks every part reins depends on. ping checks the database;
// reg is the config in force; local are the lines the caller knows itself
// (config, telemetry, web view: see localChecks). Network checks run in
// parallel, each bounded.
func health(ctx context.Context, cfg Config, getenv func(string) string, reg *ownership.Registry,
	ping func(context.Context) error, local []healthCheck) []healthCheck {
	var (
		mu  sync.Mutex
		out []healthCheck
		wg  sync.WaitGroup
	)
	add := func(c healthCheck) { mu.Lock(); out = append(out, c); mu.Unlock() }
	probe := func(fn func(ctx context.Context) healthCheck) {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, healthTimeout)
			defer cancel()
			add(fn(ctx))
		})
	}
	db := migrations.Redact(cfg.DatabaseURL)
	probe(func(ctx context.Context) healthCheck {
		if err := ping(ctx); err != nil {
			return healthCheck{"database", false, err.Error()}
		}
		return healthCheck{"database", true, db + " reachable"}
	})
	add(durabilityCheck(cfg.DatabaseURL))
	for _, c := range local {
		add(c)
	}
	if cfg.SlackBotToken == "" {
		add(healthCheck{"slack", false, "SLACK_BOT_TOKEN is not set: no incident channels, no /agent command; run incidents with the CLI or API"})
	} else {
		probe(func(ctx context.Context) healthCheck {
			api := slack.New(cfg.SlackBotToken, slack.OptionAPIURL(cfg.slackAPIURL()))
			res, err := api.AuthTestContext(ctx)
			if err != nil {
				return healthCheck{"slack", false, "SLACK_BOT_TOKEN refused by Slack (" + err.Error() + "): check the token"}
			}
			return healthCheck{"slack", true, "bot token valid for " + res.Team}
		})
	}
	add(tokenCheck("api", cfg.APIToken, "REINS_API_TOKEN", "/api/v1 refuses every request"))
	add(tokenCheck("webhooks", cfg.WebhookToken, "REINS_WEBHOOK_TOKEN", "monitoring webhooks are refused, so alerts open no incidents"))
	if cfg.PagerDutyRoutingKey == "" {
		add(healthCheck{"pagerduty", false, "PAGERDUTY_ROUTING_KEY is not set: agents without a key of their own or their team's page nobody"})
	} else {
		add(healthCheck{"pagerduty", true, "default routing key set"})
	}
	for _, name := range reg.Names() {
		a := reg.Agent(name)
		if env, _ := reg.PageRoute(a); env != "" {
			switch {
			case getenv(env) != "":
				add(healthCheck{"pagerduty " + name, true, "routing key from " + env})
			case cfg.PagerDutyRoutingKey != "":
				add(healthCheck{"pagerduty " + name, false, env + " is not set: pages for " + name + " go to PAGERDUTY_ROUTING_KEY"})
			default:
				add(healthCheck{"pagerduty " + name, false, env + " is not set and neither is PAGERDUTY_ROUTING_KEY: nobody is paged for " + name})
			}
		}
		for _, env := range a.Halt.EnvVars() {
			if env == "" {
				continue
			}
			if getenv(env) == "" {
				add(healthCheck{"secret " + env, false, "not set: halting " + name + " through its " + a.Halt.Adapter + " adapter will fail"})
			} else {
				add(healthCheck{"secret " + env, true, "set (for " + name + ")"})
			}
		}
		if a.Halt.Adapter == "flag" {
			add(healthCheck{"halt " + name, true, "built-in kill flag (the agent polls reins)"})
		} else if a.Halt.Setting("url") != "" {
			u := a.Halt.Setting("url")
			probe(func(ctx context.Context) healthCheck { return endpointCheck(ctx, "halt "+name, u) })
		}
	}
	wg.Wait()
	order := map[string]int{"database": 0, "config": 1, "slack": 2, "api": 3, "webhooks": 4, "telemetry": 5, "web": 6, "pagerduty": 7}
	rank := func(p string) int {
		if r, ok := order[p]; ok {
			return r
		}
		if first, _, _ := strings.Cut(p, " "); order[first] > 0 {
			return order[first] // "pagerduty support-bot" after "pagerduty"
		}
		return len(order)
	}
	slices.SortStableFunc(out, func(a, b healthCheck) int {
		if d := rank(a.Part) - rank(b.Part); d != 0 {
			return d
		}
		return strings.Compare(a.Part, b.Part)
	})
	return out
}

func tokenCheck(part, val, env, effect string) healthCheck {
	if val == "" {
		return healthCheck{part, false, env + " is not set: " + effect}
	}
	return healthCheck{part, true, env + " set"}
}

// endpointCheck dials a halt endpoint's host: it proves the address resolves
// and accepts connections, without sending a halt.
func endpointCheck(ctx context.Context, part, raw string) healthCheck {
	u, err := url.Parse(strings.ReplaceAll(raw, ownership.SessionPlaceholder, "s"))
	if err != nil || u.Host == "" {
		return healthCheck{part, false, "halt URL is not an absolute URL"}
	}
	host := u.Host
	if u.Port() == "" {
		port := "443"
		if u.Scheme == "http" {
			port = "80"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return healthCheck{part, false, "cannot reach " + host + ": " + err.Error()}
	}
	c.Close()
	return healthCheck{part, true, host + " accepts connections"}
}

// durabilityCheck says what survives a power loss with the store in use: a
// SQLite URL that weakens synchronous below FULL is degraded, so `reins
// doctor` names the choice (docs/deploy.md, "Durability").
func durabilityCheck(rawURL string) healthCheck {
	level, weak, err := migrations.SQLiteSynchronous(rawURL)
	switch {
	case err != nil:
		return healthCheck{"durability", false, err.Error()}
	case weak:
		return healthCheck{"durability", false, weakSyncWarning(level)}
	}
	if mode, notWAL, _ := migrations.SQLiteJournalMode(rawURL); notWAL {
		return healthCheck{"durability", false, weakJournalWarning(mode)}
	}
	switch {
	case level == "":
		return healthCheck{"durability", true, "PostgreSQL: a commit is as durable as the server's fsync and synchronous_commit make it"}
	}
	return healthCheck{"durability", true, "SQLite fsyncs every commit (synchronous=" + level + "): what reins acknowledged survives a power loss"}
}

// weakJournalWarning explains a SQLite journal mode other than WAL.
func weakJournalWarning(mode string) string {
	return "SQLite journal_mode=" + mode + " (set in REINS_DATABASE_URL): reins' durability relies on the write-ahead log (WAL); " +
		"with another journal a power loss can undo acknowledged alerts, halts and flag changes (with MEMORY or OFF even a crash of reins can corrupt the database); remove the _pragma"
}

// weakSyncWarning explains a SQLite synchronous level below FULL.
func weakSyncWarning(level string) string {
	return "SQLite synchronous=" + level + " (set in REINS_DATABASE_URL): a commit survives a crash of reins but a power loss or kernel panic can undo the last acknowledged alerts, halts and flag changes (an agent polling its flag may resume); remove the _pragma to fsync every commit"
}

// degraded returns the checks that failed.
func degraded(checks []healthCheck) []healthCheck {
	var bad []healthCheck
	for _, c := range checks {
		if !c.OK {
			bad = append(bad, c)
		}
	}
	return bad
}

// maxConns is REINS_MAX_CONNECTIONS, or the default.
func (m *Main) maxConns() (int, error) {
	v := strings.TrimSpace(m.getenv("REINS_MAX_CONNECTIONS"))
	if v == "" {
		return defaultMaxConns, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("REINS_MAX_CONNECTIONS: %q is not a positive whole number", v)
	}
	return n, nil
}

func (m *Main) getenv(k string) string {
	if m.Getenv == nil {
		return os.Getenv(k)
	}
	return m.Getenv(k)
}

// configLevel is the level of config warnings: warn for the server, debug
// (shown with --verbose) for one-shot commands, whose one result line they
// would bury; `reins validate` and `reins doctor` print them as such.
func (m *Main) configLevel() slog.Level {
	if m.cli {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// readyzVerbose answers GET /readyz?verbose=1: every part with its state.
// Only the database decides readiness: a replica without Slack or a secret
// still takes alerts, halts through the other adapters and pages.
func (m *Main) readyzVerbose(w http.ResponseWriter, r *http.Request) {
	checks := m.healthCache.get(func() []healthCheck {
		reg := m.Registry.Current()
		checks := append(health(r.Context(), m.Config, m.getenv, reg, m.Store.Ping, m.localChecks(reg)),
			deliveryChecks(r.Context(), m.Store, m.Clock.Now())...)
		return append(checks, refusalChecks(r.Context(), m.Store.FindRefusals, reg, time.Now())...)
	})
	status, code := "ready", http.StatusOK
	for _, c := range checks {
		if c.Part == "database" && !c.OK {
			status, code = "not ready", http.StatusServiceUnavailable
		}
	}
	bad := degraded(checks)
	if bad == nil {
		bad = []healthCheck{}
	}
	api.WriteJSON(w, code, map[string]any{"status": status, "degraded": bad, "checks": checks})
}

// healthCache keeps the last verbose health report a few seconds: the route
// needs no token, and each report dials every halt endpoint, so a flood of
// requests must not become a flood of outbound connections.
type healthCache struct {
	mu     sync.Mutex
	at     time.Time
	checks []healthCheck
}

const healthCacheFor = 5 * time.Second

// reset drops the cached report: a reload changes what it says.
func (c *healthCache) reset() {
	c.mu.Lock()
	c.checks = nil
	c.mu.Unlock()
}

func (c *healthCache) get(compute func() []healthCheck) []healthCheck {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.checks == nil || time.Since(c.at) > healthCacheFor {
		c.checks, c.at = compute(), time.Now()
	}
	return c.checks
}
