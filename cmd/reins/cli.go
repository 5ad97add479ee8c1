package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/bot"
	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/aftermath"
	"github.com/reins-oss/reins/incidents/words"
	"github.com/reins-oss/reins/integrations/halt"
	"github.com/reins-oss/reins/integrations/pagerduty"
	"github.com/reins-oss/reins/migrations"
	"github.com/reins-oss/reins/ownership"
)

func cmdServe(ctx context.Context, e *env, args []string) error {
	fs := e.newFlags("serve")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	cfg := e.loadConfig()
	m := &Main{Config: cfg, Getenv: e.getenv, Log: e.logger(cfg), Clock: incidents.SystemClock{}}
	// SIGHUP is caught before serving: once /readyz answers, a reload may
	// come, and SIGHUP's default action would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := m.Run(ctx); err != nil {
		_ = m.Close()
		return err
	}
	for {
		select {
		case <-hup:
			_ = m.Reload() // logged inside; the registry in force stays on error
		case <-ctx.Done():
			m.Log.Info("shutting down: finishing in-flight requests")
			return m.Close()
		}
	}
}

func cmdMigrate(ctx context.Context, e *env, args []string) error {
	fs := e.newFlags("migrate")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	cfg := e.loadConfig()
	if _, _, err := migrations.ParseURL(cfg.DatabaseURL); err != nil {
		return fmt.Errorf("REINS_DATABASE_URL: %w", err)
	}
	db, d, err := migrations.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := migrations.Migrate(ctx, db, d)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: %s applied\n", migrations.Redact(cfg.DatabaseURL), words.Count(n, "migration"))
	return nil
}

func cmdValidate(ctx context.Context, e *env, args []string) error {
	fs := e.newFlags("validate")
	online := fs.Bool("online", false, "also ask Slack and PagerDuty whether the people, channels and policies exist")
	strict := fs.Bool("strict", false, "treat warnings (such as an unset secret variable) as errors, for CI")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	cfg := e.loadConfig()
	reg, problems := ownership.Load(cfg.ConfigPath, ownership.Options{Getenv: e.getenv, Adapters: halt.Specs()})
	var gaps []string
	if *online && problems.Err() != nil {
		gaps = append(gaps, "online checks skipped: fix the errors above first")
	}
	if *online && problems.Err() == nil {
		var sc ownership.SlackChecker
		var pc ownership.PagerChecker
		if cfg.SlackBotToken != "" {
			sc = bot.NewDirectory(slack.New(cfg.SlackBotToken, slack.OptionAPIURL(cfg.slackAPIURL())))
		}
		if cfg.PagerDutyAPIToken != "" {
			pc = pagerduty.NewClient(pagerduty.Config{APIURL: cfg.PagerDutyAPIURL,
				EventsURL: cfg.PagerDutyEventsURL, APIToken: cfg.PagerDutyAPIToken})
		}
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		problems = append(problems, ownership.CheckOnline(ctx, reg, sc, pc)...)
		gaps = append(gaps, onlineGaps(cfg, reg)...)
	}
	for _, p := range problems {
		fmt.Fprintln(e.stdout, p.String())
	}
	if cfg.OTLPToken != "" {
		gaps = append(gaps, "REINS_OTLP_TOKEN is set: it admits spans of every agent, so its holder can make reins halt any agent "+
			"(a forged span over an SLA is enough); keep it for a trusted Collector gateway and give agents their own telemetry.token_env")
	}
	// What could not be checked is said, never passed over in silence.
	for _, g := range gaps {
		fmt.Fprintf(e.stdout, "%s: warning: %s\n", cfg.ConfigPath, g)
	}
	errs, warns := len(problems.Errors()), len(problems.Warnings())+len(gaps)
	if level, weak, err := migrations.SQLiteSynchronous(cfg.DatabaseURL); err == nil && weak {
		fmt.Fprintf(e.stdout, "REINS_DATABASE_URL: warning: %s\n", weakSyncWarning(level))
		warns++
	}
	if mode, notWAL, err := migrations.SQLiteJournalMode(cfg.DatabaseURL); err == nil && notWAL {
		fmt.Fprintf(e.stdout, "REINS_DATABASE_URL: warning: %s\n", weakJournalWarning(mode))
		warns++
	}
	agents := 0
	if reg != nil {
		agents = len(reg.Agents)
	}
	if agents == 0 && errs == 0 {
		fmt.Fprintf(e.stdout, "%s: warning: no agents defined, so no agent was checked; start from examples/reins.yaml\n", cfg.ConfigPath)
		warns++
	}
	fmt.Fprintf(e.stdout, "%s: %s, %s, %s\n", cfg.ConfigPath, words.Count(agents, "agent"), words.Count(errs, "error"), words.Count(warns, "warning"))
	if errs > 0 || (*strict && warns > 0) {
		if errs == 0 {
			fmt.Fprintf(e.stdout, "--strict: warnings count as errors\n")
		}
		return exitError{1}
	}
	return nil
}

// osActor is the person at the shell, for break-glass audits.
func osActor() incidents.Actor {
	name := os.Getenv("SUDO_USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if name == "" {
		name = "unknown"
	}
	host, _ := os.Hostname()
	return incidents.Actor{Kind: incidents.ActorCLI, ID: name, Name: name + "@" + host}
}

func cmdKill(ctx context.Context, e *env, args []string) error {
	return haltCLI(ctx, e, args, incidents.ActionHalt)
}
func cmdResume(ctx context.Context, e *env, args []string) error {
	return haltCLI(ctx, e, args, incidents.ActionResume)
}

func cmdRestrict(ctx context.Context, e *env, args []string) error {
	return haltCLI(ctx, e, args, incidents.ActionRestrict)
}
func cmdThrottle(ctx context.Context, e *env, args []string) error {
	return haltCLI(ctx, e, args, incidents.ActionThrottle)
}

// sessionsFlag collects repeated --session flags.
type sessionsFlag []string

func (s *sessionsFlag) String() string     { return strings.Join(*s, ",") }
func (s *sessionsFlag) Set(v string) error { *s = append(*s, v); return nil }

// agentSessions reads the words a person types after a command about an
// agent: the agent first, then any session IDs, positional
// (`reins resume support-bot s-otel-3`) or with --session, in any mix.
// Every command that takes an agent and its sessions parses them here.
func agentSessions(pos []string, flagged sessionsFlag) (agent string, sessions []string, err error) {
	if len(pos) == 0 {
		return "", nil, usageError{"name the agent, then any session IDs: reins kill support-bot [SESSION...] --reason TEXT"}
	}
	agent = pos[0]
	seen := map[string]bool{}
	for _, s := range append(append([]string{}, pos[1:]...), flagged...) {
		s = strings.TrimSpace(s)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		sessions = append(sessions, s)
	}
	return agent, sessions, nil
}

func haltCLI(ctx context.Context, e *env, args []string, action string) error {
	fs := e.newFlags(action)
	var flagged sessionsFlag
	fs.Var(&flagged, "session", "only this session (repeatable; the same as naming it after the agent)")
	reason := fs.String("reason", "", "why (required for kill, restrict and throttle; recorded and audited)")
	var allow, rate *string
	switch action {
	case incidents.ActionRestrict:
		allow = fs.String("allow", "", "the tools still allowed: names or globs, comma-separated (e.g. salesforce.read,zendesk.*)")
	case incidents.ActionThrottle:
		rate = fs.String("rate", "", "model calls allowed per minute, as N/min (e.g. 6/min)")
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	agent, sessions, err := agentSessions(pos, flagged)
	if err != nil {
		return err
	}
	if incidents.IsContainAction(action) && strings.TrimSpace(*reason) == "" {
		return usageError{"--reason is required: say why the agent is " + incidents.ModeOf(action)}
	}
	globs, n, err := rungFlags(allow, rate)
	if err != nil {
		return err
	}
	e.forAgent = agent
	m, err := e.openMain(ctx, false)
	if err != nil {
		return err
	}
	defer m.Close()
	if m.configNote != "" {
		name := "kill"
		if action != incidents.ActionHalt {
			name = action
		}
		fmt.Fprintf(e.stderr, "reins %s: %s\n", name, m.configNote)
	}
	h, err := m.Halting.Halt(ctx, incidents.HaltCommand{
		Action: action, Agent: agent, Sessions: sessions, Reason: *reason, Allow: globs, Rate: n,
		Actor: osActor(), BreakGlass: true,
	})
	if err != nil {
		return fmt.Errorf("%s", incidents.ErrorMessage(err))
	}
	// Pages and Slack posts are left in the shared outbox for `reins serve`:
	// delivered from here they would use this shell's environment, which
	// rarely holds the server's keys, and be given up on for good.
	fmt.Fprintln(e.stdout, m.haltLine(h))
	if h.Status != incidents.HaltVerified {
		return exitError{1}
	}
	return nil
}

// haltLine is the one line a break-glass halt or resume prints: result,
// adapter, verification and what to do next.
func (m *Main) haltLine(h *incidents.Halt) string {
	scope := "all sessions"
	if len(h.Sessions) > 0 {
		scope = "sessions " + strings.Join(h.Sessions, ", ")
	}
	switch h.Action {
	case incidents.ActionRestrict:
		scope += " to " + strings.Join(h.Allow, ", ")
	case incidents.ActionThrottle:
		scope += fmt.Sprintf(" to %d/min", h.Rate)
	}
	if h.Status != incidents.HaltVerified {
		next := "it may still be halted: check the agent, and lift the halt another way if it is"
		if incidents.IsContainAction(h.Action) {
			next = m.serveSends(h.Agent, "", "re-pages the kill authority") + "; stop the agent another way now"
		}
		return fmt.Sprintf("%s of %s (%s) FAILED via %s adapter, NOT done: %s. Incident #%d: %s (see `reins incident %d`).",
			h.Action, h.Agent, scope, h.Adapter, strings.TrimSuffix(h.Error, "."), h.IncidentID, next, h.IncidentID)
	}
	return fmt.Sprintf("%s of %s (%s) done via %s adapter, verified by reading the state back in %s, as %s. Incident #%d: %s; `reins incident %d` shows the timeline.",
		h.Action, h.Agent, scope, h.Adapter, h.TimeToHalt().Round(time.Millisecond), h.Actor.ID, h.IncidentID,
		m.serveSends(h.Agent, "posts it in the incident's Slack channel", ""), h.IncidentID)
}

func cmdIncidents(ctx context.Context, e *env, args []string) error {
	fs := e.newFlags("incidents")
	open := fs.Bool("open", false, "only open incidents")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	m, err := e.openMain(ctx, true)
	if err != nil {
		return err
	}
	defer m.Close()
	f := incidents.IncidentFilter{Limit: 1000}
	if *open {
		f.Status = incidents.StatusOpen
	}
	list, err := m.Service.FindIncidents(ctx, f)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tSEVERITY\tAGENT\tOPENED (UTC)\tCHANNEL\tTITLE")
	for _, inc := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", inc.ID, inc.Status, inc.Severity, inc.Agent,
			inc.CreatedAt.UTC().Format("2006-01-02 15:04"), orDash(inc.SlackChannelName), inc.Title)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func parseID(pos []string) (int64, error) {
	if len(pos) != 1 {
		return 0, usageError{"name exactly one incident ID"}
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(pos[0], "#"), 10, 64)
	if err != nil || id <= 0 {
		return 0, usageError{"incident ID must be a positive number"}
	}
	return id, nil
}

// openIncidentCommand parses the flags and the incident ID of a command
// about one incident, runs check (the command's own flag checks; nil: none)
// before touching the database, and opens reins.
func (e *env) openIncidentCommand(ctx context.Context, fs *flag.FlagSet, args []string, readOnly bool, check func() error) (int64, *Main, error) {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 0, nil, err
	}
	id, err := parseID(pos)
	if err != nil {
		return 0, nil, err
	}
	if check != nil {
		if err := check(); err != nil {
			return 0, nil, err
		}
	}
	m, err := e.openMain(ctx, readOnly)
	return id, m, err
}

func cmdIncident(ctx context.Context, e *env, args []string) error {
	fs := e.newFlags("incident")
	id, m, err := e.openIncidentCommand(ctx, fs, args, true, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	inc, err := m.Service.FindIncident(ctx, id)
	if err != nil {
		return fmt.Errorf("%s", incidents.ErrorMessage(err))
	}
	events, err := m.Service.Timeline(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Incident #%d  %s  [%s, %s]\nAgent:    %s\nOpened:   %s\n", inc.ID, inc.Title,
		inc.Status, inc.Severity, inc.Agent, inc.CreatedAt.UTC().Format(time.RFC3339))
	if inc.SlackChannelName != "" {
		fmt.Fprintf(e.stdout, "Channel:  #%s\n", inc.SlackChannelName)
	}
	if len(inc.Sessions) > 0 {
		fmt.Fprintf(e.stdout, "Sessions: %s\n", strings.Join(inc.Sessions, ", "))
	}
	if inc.ResolvedAt != nil {
		fmt.Fprintf(e.stdout, "Resolved: %s by %s\n", inc.ResolvedAt.UTC().Format(time.RFC3339), inc.ResolvedBy)
	}
	alerts, err := m.Service.Alerts(ctx, id)
	if err != nil {
		return err
	}
	if len(alerts) > 0 {
		// Each alert with what its source says of it: the summary (an
		// Alertmanager summary annotation) and the rule that fired.
		fmt.Fprintf(e.stdout, "\nAlerts:\n")
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		for _, a := range alerts {
			rule := firstNonEmpty(a.Labels["alertname"], a.Source)
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", a.Status, orDash(a.Agent), clipCell(rule, 40),
				clipCell(strings.Join(strings.Fields(firstNonEmpty(a.Summary, a.Title)), " "), 120), words.Count(a.Count, "time"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "\nTimeline (UTC):\n")
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, ev := range events {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", ev.At.UTC().Format("2006-01-02 15:04:05"), ev.Kind, ev.Actor.String(), ev.Text)
	}
	return tw.Flush()
}

func cmdPostmortem(ctx context.Context, e *env, args []string) error {
	fs := e.newFlags("postmortem")
	format := fs.String("format", "markdown", "markdown or json")
	if pos, err := parseFlags(fs, args); err == nil && len(pos) > 1 {
		id, err := parseID(pos[:1])
		if err != nil {
			return err
		}
		return postmortemAnswer(ctx, e, id, pos[1:])
	}
	id, m, err := e.openIncidentCommand(ctx, fs, args, true, func() error {
		if *format != "markdown" && *format != "json" {
			return usageError{"--format must be markdown or json"}
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer m.Close()
	pm, err := m.Aftermath.Postmortem(ctx, id)
	if err != nil {
		return fmt.Errorf("%s", incidents.ErrorMessage(err))
	}
	if *format == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(pm)
	}
	_, err = fmt.Fprint(e.stdout, aftermath.RenderMarkdown(pm))
	return err
}

// noArgs parses flags for a command that takes no positional arguments.
func noArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parseFlags(fs, args)
	if err == nil && len(pos) > 0 {
		err = usageError{"unexpected argument " + pos[0]}
	}
	return err
}

// rungFlags reads --allow (restrict) and --rate (throttle) when the command
// has them (nil otherwise).
func rungFlags(allow, rate *string) ([]string, int, error) {
	var globs []string
	if allow != nil {
		for _, g := range strings.Split(*allow, ",") {
			if g = strings.TrimSpace(g); g != "" {
				globs = append(globs, g)
			}
		}
		if len(globs) == 0 {
			return nil, 0, usageError{"--allow is required: the tools the agent may still call, e.g. --allow salesforce.read,zendesk.*"}
		}
	}
	n := 0
	if rate != nil {
		num, unit, _ := strings.Cut(*rate, "/")
		v, err := strconv.Atoi(num)
		if err != nil || v < 1 || (unit != "min" && unit != "") {
			return nil, 0, usageError{"--rate is required as model calls per minute, e.g. --rate 6/min"}
		}
		n = v
	}
	return globs, n, nil
}
