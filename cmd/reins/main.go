// Command reins is the ChatOps incident bot for AI agents in production:
// alert intake, incident channels, pages to whoever may halt the agent, the
// kill switch, the blast-radius checklist and the postmortem.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// Build facts, set for release images with
// -ldflags "-X main.version=… -X main.commit=… -X main.date=…"; otherwise
// read from the module and VCS stamps of debug.ReadBuildInfo.
var (
	version = "dev"
	commit  = ""
	date    = ""
)

func main() {
	ctx, stop := signalNotify(context.Background())
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// signalNotify returns a context cancelled by SIGINT or SIGTERM.
func signalNotify(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// command is one subcommand of the reins binary.
type command struct {
	name, args, help string
	run              func(ctx context.Context, e *env, args []string) error
}

// env is what a subcommand runs with.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	config         string // --config, "" when not given
	verbose        bool   // --verbose: JSON logs at the configured level
	// forAgent: the command uses this agent alone (kill, resume), so only
	// its entry of the config file must be valid.
	forAgent string
	fs       *flag.FlagSet
}

// exitError carries an exit code without a further message.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// usageError is bad command-line input: usage and exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func commands() []command {
	return []command{
		{"serve", "", "run everything: HTTP server, Socket Mode, delivery workers, scheduled jobs", cmdServe},
		{"migrate", "", "apply pending database migrations and exit", cmdMigrate},
		{"validate", "[--online] [--strict]", "check the config file; print file:line: message per problem", cmdValidate},
		{"kill", "AGENT [SESSION]... --reason TEXT", "break-glass halt without Slack, audited as the OS user", cmdKill},
		{"resume", "AGENT [SESSION]...", "lift a halt (of the sessions named, else the agent's)", cmdResume},
		{"restrict", "AGENT [SESSION]... --allow GLOBS --reason TEXT", "let the agent (or sessions) call only the tools matching GLOBS", cmdRestrict},
		{"throttle", "AGENT [SESSION]... --rate N/min --reason TEXT", "allow the agent (or sessions) at most N model calls a minute", cmdThrottle},
		{"incidents", "[--open]", "list incidents", cmdIncidents},
		{"incident", "ID", "show one incident with its timeline", cmdIncident},
		{"checklist", "ID [answer ITEM CHOICE]", "list the blast-radius checklist (starting it), or answer an item", cmdChecklist},
		{"postmortem", "ID [questions | answer Q TEXT]", "print a postmortem (--format markdown|json), list its questions, or answer one", cmdPostmortem},
		{"session", "ID [--agent NAME] [--format text|json]", "print a session's record (--agent when two agents use the ID)", cmdSession},
		{"declare", "AGENT SUMMARY...", "open an incident by hand, without Slack", cmdDeclare},
		{"ack", "ID", "acknowledge an incident without Slack", cmdAck},
		{"resolve", "ID [--note TEXT]", "resolve an incident without Slack", cmdResolve},
		{"agents", "", "each agent: halt state, kill-authority holders now, open incidents", cmdAgents},
		{"test-alert", "AGENT", "send a clearly labelled test alert through the whole intake path", cmdTestAlert},
		{"doctor", "", "check database, Slack token, PagerDuty keys, secret variables, halt endpoints", cmdDoctor},
		{"version", "", "print version, commit and build date (--version too)", cmdVersion},
		{"help", "[COMMAND]", "show this help, or a command's flags", nil},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: reins COMMAND [--config PATH] [ARGS]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %-40s %s\n", c.name, c.args, c.help)
	}
	fmt.Fprintf(w, "\n--config PATH defaults to $REINS_CONFIG, else reins.yaml in the working directory.\n"+
		"--verbose prints JSON logs besides the result. `reins COMMAND --help` lists a command's flags.\n"+
		"Settings come from the environment: see README.md.\n")
}

// run executes the command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && name == "help" {
			// `reins help kill` is `reins kill --help`.
			return run(ctx, []string{args[1], "--help"}, stdout, stderr, getenv)
		}
		usage(stdout)
		return 0
	case "--version", "-version":
		name, args = "version", []string{"version"}
	}
	for _, c := range commands() {
		if c.name != name || c.run == nil {
			continue
		}
		e := &env{stdout: stdout, stderr: stderr, getenv: getenv}
		err := c.run(ctx, e, args[1:])
		var ue usageError
		var ee exitError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			commandUsage(stdout, c, e.fs)
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "reins %s: %s\nUsage: reins %s %s\n", c.name, ue.msg, c.name, c.args)
			return 2
		case errors.As(err, &ee):
			return ee.code
		default:
			fmt.Fprintf(stderr, "reins %s: %v\n", c.name, err)
			return 1
		}
	}
	if near := didYouMean(name); near != "" {
		fmt.Fprintf(stderr, "reins: unknown command %q: did you mean %s?\nRun `reins help` for the list of commands.\n", name, near)
		return 2
	}
	fmt.Fprintf(stderr, "reins: unknown command %q\n\n", name)
	usage(stderr)
	return 2
}

// didYouMean names the command closest to a mistyped one ("incidnets" is
// incidents), or "" when none is close: at most two edits, a swap of two
// neighbouring letters counting as one.
func didYouMean(typed string) string {
	best, bestD := "", 3
	for _, c := range commands() {
		limit := 2
		if len(c.name) <= 4 {
			limit = 1 // "ack" and "kill" are too short for two edits to mean them
		}
		if d := editDistance(strings.ToLower(typed), c.name); d <= limit && d < bestD {
			best, bestD = c.name, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of neighbours each cost one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// commandUsage prints one command's synopsis and every flag it takes.
func commandUsage(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: reins %s %s\n\n%s\n", c.name, c.args, c.help)
	if more := commandDetails[c.name]; more != "" {
		fmt.Fprintf(w, "\n%s", more)
	}
	if fs != nil {
		fmt.Fprintf(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

// parseFlags parses flags that may come before, between or after positional
// arguments (`reins kill support-bot --reason x`), returning the positionals.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// newFlags returns a FlagSet with the --config flag every command takes.
func (e *env) newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&e.config, "config", "", "config file (default $REINS_CONFIG or reins.yaml)")
	fs.BoolVar(&e.verbose, "verbose", false, "print JSON logs (at REINS_LOG_LEVEL) besides the result")
	e.fs = fs
	return fs
}

// loadConfig reads the environment and applies --config.
func (e *env) loadConfig() Config {
	cfg := ConfigFromEnv(e.getenv)
	if e.config != "" {
		cfg.ConfigPath, cfg.ConfigExplicit = e.config, true
	}
	return cfg
}

// cliLogger is the logger of the one-shot commands: silent unless
// --verbose, since each command prints its result, failures included, as
// plain sentences; JSON log lines around them only bury the line that says
// what to do next (a failed kill printed four).
func (e *env) cliLogger(cfg Config) *slog.Logger {
	if e.verbose {
		return e.logger(cfg)
	}
	return slog.New(slog.DiscardHandler)
}

// logger returns the JSON logger at the configured level.
func (e *env) logger(cfg Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel)))
	return slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: lvl}))
}

// openMain builds a Main for commands that use the store without serving.
// A read-only command never creates or migrates a database.
func (e *env) openMain(ctx context.Context, readOnly bool) (*Main, error) {
	cfg := e.loadConfig()
	m := &Main{Config: cfg, Getenv: e.getenv, Log: e.cliLogger(cfg), Clock: NewMain(cfg, nil).Clock, readOnly: readOnly, cli: true,
		forAgent: e.forAgent}
	if err := m.Open(ctx, false); err != nil {
		_ = m.Close()
		return nil, err
	}
	return m, nil
}

func cmdVersion(ctx context.Context, e *env, args []string) error {
	fs := e.newFlags("version")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	v, c, d := buildFacts()
	fmt.Fprintf(e.stdout, "reins %s (commit %s, built %s)\n", v, c, d)
	return nil
}

// buildFacts returns version, commit and build date: the ldflags values when
// set, else the module version and VCS stamps Go records in the binary.
func buildFacts() (v, c, d string) {
	v, c, d = version, commit, date
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && c == "":
				c = s.Value
			case s.Key == "vcs.time" && d == "":
				d = s.Value
			case s.Key == "vcs.modified" && s.Value == "true" && c != "" && !strings.HasSuffix(c, "-dirty"):
				c += "-dirty"
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	if d == "" {
		d = "unknown"
	}
	return v, c, d
}
