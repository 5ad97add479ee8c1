package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sqlstore"
	"github.com/reins-oss/reins/incidents/words"
	"github.com/reins-oss/reins/integrations/alerts"
	"github.com/reins-oss/reins/ownership"
)

// Commands that run an incident without Slack, and the operator's checks.

func cmdDeclare(ctx context.Context, e *env, args []string) error {
	fs := e.newFlags("declare")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usageError{"name the agent and say what is wrong: reins declare support-bot refunds to wrong accounts"}
	}
	m, err := e.openMain(ctx, false)
	if err != nil {
		return err
	}
	defer m.Close()
	inc, created, err := m.Intake.Declare(ctx, osActor(), pos[0], strings.Join(pos[1:], " "))
	if err != nil {
		return fmt.Errorf("%s", incidents.ErrorMessage(err))
	}
	if !created {
		fmt.Fprintf(e.stdout, "%s already has open incident #%d (%s): nothing new declared; `reins incident %d` shows it.\n",
			inc.Agent, inc.ID, inc.Title, inc.ID)
		return nil
	}
	fmt.Fprintf(e.stdout, "Declared incident #%d for %s: %s. %s; `reins ack %d` when you take it.\n", inc.ID, inc.Agent, inc.Title,
		upperFirst(m.serveSends(inc.Agent, "opens its Slack channel", "pages the kill authority")), inc.ID)
	return nil
}

func cmdAck(ctx context.Context, e *env, args []string) error {
	fs := e.newFlags("ack")
	id, m, err := e.openIncidentCommand(ctx, fs, args, false, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	actor := osActor()
	inc, err := m.Service.Acknowledge(ctx, actor, id)
	if err != nil {
		return fmt.Errorf("%s", incidents.ErrorMessage(err))
	}
	page := ""
	if inc.PagerDutyKey != "" {
		page = "acknowledges the page in PagerDuty"
	}
	fmt.Fprintf(e.stdout, "Incident #%d acknowledged by %s; %s. `reins resolve %d --note TEXT` when it is over.\n",
		id, actor.Name, m.serveSends(inc.Agent, "posts it in the incident's Slack channel", page), id)
	return nil
}

func cmdResolve(ctx context.Context, e *env, args []string) error {
	fs := e.newFlags("resolve")
	note := fs.String("note", "", "what ended it (recorded on the timeline)")
	id, m, err := e.openIncidentCommand(ctx, fs, args, false, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	actor := osActor()
	inc, err := m.Aftermath.Resolve(ctx, actor, id, *note)
	if err != nil {
		return fmt.Errorf("%s", incidents.ErrorMessage(err))
	}
	page := ""
	if inc.PagerDutyKey != "" {
		page = "resolves the page in PagerDuty"
	}
	fmt.Fprintf(e.stdout, "Incident #%d resolved by %s; %s. `reins postmortem %d` drafts the postmortem.\n",
		id, actor.Name, m.serveSends(inc.Agent, "posts it in the incident's Slack channel", page), id)
	return nil
}

func cmdAgents(ctx context.Context, e *env, args []string) error {
	fs := e.newFlags("agents")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	m, err := e.openMain(ctx, true)
	if err != nil {
		return err
	}
	defer m.Close()
	sts, err := m.Service.Status(ctx, "")
	if err != nil {
		return fmt.Errorf("%s", incidents.ErrorMessage(err))
	}
	if len(sts) == 0 {
		fmt.Fprintf(e.stdout, "No agents in %s: add them there (see examples/reins.yaml).\n", m.Config.ConfigPath)
		return nil
	}
	// The table fits 100 columns: long lists (halted sessions, holders,
	// sources that could not be asked) are counted in the table and spelt
	// out below it, wrapped.
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tHALT STATE\tADAPTER\tMAY HALT NOW\tOPEN")
	var notes []string
	for _, st := range sts {
		name := clipCell(st.Agent.Name, 24)
		state := "running"
		switch {
		case st.Halted:
			state = "HALTED"
		case st.Contained():
			state = "contained"
			if !st.ContainmentOf("").IsRunning() {
				state = st.ContainmentOf("").Mode
			} else if len(st.Sessions) > 0 {
				state = words.Count(len(st.Sessions), "session") + " contained"
			}
			notes = append(notes, st.Agent.Name+": "+st.StateLine())
		}
		holders := "nobody right now"
		if len(st.Holders) > 0 {
			holders = strings.Join(st.Holders, ", ")
			if len(holders) > 30 {
				holders = clipCell(st.Holders[0], 18) + " +" + strconv.Itoa(len(st.Holders)-1) + " more"
				notes = append(notes, st.Agent.Name+": may halt now: "+strings.Join(st.Holders, ", "))
			}
		}
		if len(st.Unavailable) > 0 {
			holders += " (partial)"
			notes = append(notes, st.Agent.Name+": could not ask "+strings.Join(st.Unavailable, "; ")+
				", so more people may hold kill authority")
		}
		var open []string
		for _, inc := range st.OpenIncidents {
			open = append(open, fmt.Sprintf("#%d", inc.ID))
		}
		openCell := orDash(strings.Join(open, " "))
		if len(openCell) > 12 {
			openCell = words.Count(len(open), "incident")
			notes = append(notes, st.Agent.Name+": open incidents "+strings.Join(open, " "))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, state, clipCell(st.Agent.Halt.Adapter, 10), holders, openCell)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(notes) > 0 {
		fmt.Fprintln(e.stdout)
		for _, n := range notes {
			fmt.Fprint(e.stdout, wrapText(n, 100, "  "))
		}
	}
	for _, st := range sts {
		if len(st.Agent.SLAs) == 0 {
			continue
		}
		text, err := m.Guard.StatusText(ctx, st.Agent.Name)
		if err != nil {
			return fmt.Errorf("SLA status of %s: %w", st.Agent.Name, err)
		}
		fmt.Fprintln(e.stdout)
		for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
			fmt.Fprint(e.stdout, wrapText(line, 100, "    "))
		}
	}
	return nil
}

// clipCell shortens a table cell to n runes, marking the cut.
func clipCell(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// wrapText breaks s into lines of at most width runes at spaces, the later
// lines indented; a word longer than a line is left whole on its own.
func wrapText(s string, width int, indent string) string {
	var b strings.Builder
	line := ""
	for _, w := range strings.Fields(s) {
		switch {
		case line == "":
			line = w
		case len([]rune(line))+1+len([]rune(w)) <= width:
			line += " " + w
		default:
			b.WriteString(line + "\n")
			line = indent + w
		}
	}
	b.WriteString(line + "\n")
	return b.String()
}

// cmdTestAlert posts a labelled test alert to the running server's generic
// webhook, so the whole path is exercised: token, parsing, agent lookup,
// intake, incident, channel and page.
func cmdTestAlert(ctx context.Context, e *env, args []string) error {
	fs := e.newFlags("test-alert")
	base := fs.String("url", "", "base URL of the running reins (default $REINS_PUBLIC_URL)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"name exactly one agent"}
	}
	cfg := e.loadConfig()
	if cfg.WebhookToken == "" {
		return fmt.Errorf("REINS_WEBHOOK_TOKEN is not set: set it to the server's value, the test alert goes through the webhook like a real one")
	}
	target := strings.TrimSuffix(*base, "/")
	if target == "" {
		target = strings.TrimSuffix(cfg.PublicURL, "/")
	}
	actor := osActor()
	summary := fmt.Sprintf("test alert from `reins test-alert` by %s", actor.Name)
	// "test": the server opens an incident of its own for it, titled as a
	// test, and never adds it to the agent's real incident.
	body, _ := json.Marshal(map[string]any{
		"agent": pos[0], "summary": summary, "severity": incidents.SeverityWarning, "status": incidents.AlertFiring,
		"source": "reins-test-alert", "dedup_key": fmt.Sprintf("reins-test-alert-%d", time.Now().UnixNano()),
		"details": map[string]any{"test": true, "sent_by": actor.Name}, "test": true,
	})
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"/webhooks/generic", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request to %s: %w", target, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+cfg.WebhookToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach reins at %s (%v): start `reins serve`, or pass --url", target, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		var eb struct{ Error string }
		_ = json.Unmarshal(b, &eb)
		return fmt.Errorf("reins at %s refused the test alert (HTTP %d): %s", target, res.StatusCode, firstNonEmpty(eb.Error, string(b)))
	}
	var ir alerts.IngestResponse
	if err := json.Unmarshal(b, &ir); err != nil || len(ir.Incidents) == 0 {
		return fmt.Errorf("reins at %s took the test alert but named no incident: %s", target, b)
	}
	id := ir.Incidents[0]
	fmt.Fprintf(e.stdout, "Test alert for %s accepted by %s: test incident #%d, opened for this test alone (titled %q; "+
		"no real incident touched). Check its channel and page, then resolve it:\n  reins resolve %d --note \"test alert checked\"\n",
		pos[0], target, id, strings.TrimSpace(incidents.TestTitlePrefix), id)
	return nil
}

// upperFirst capitalises the first letter of a sentence that starts with a
// word, leaving one that starts with `code` as it is.
func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}

// cmdDoctor prints one line per part reins depends on, and exits 1 when any
// is degraded. It creates nothing: an absent database is a line, not a file.
func cmdDoctor(ctx context.Context, e *env, args []string) error {
	fs := e.newFlags("doctor")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	cfg := e.loadConfig()
	if err := cfg.Validate(); err != nil {
		return err
	}
	m := &Main{Config: cfg, Getenv: e.getenv, Log: e.cliLogger(cfg), Clock: incidents.SystemClock{}, readOnly: true, cli: true}
	// An invalid file is a degraded line, not the end of the check: the
	// other parts are worth knowing about all the more.
	reg, err := m.loadRegistry(false)
	var problems ownership.Problems
	var ce *configError
	switch {
	case errors.As(err, &ce):
		problems, reg = ce.problems, nil
	case err != nil:
		return err
	}
	local := []healthCheck{doctorConfigCheck(cfg.ConfigPath, reg, problems)}
	if reg == nil {
		reg = ownership.Empty()
	}
	local = append(local, telemetryChecks(cfg, reg, e.getenv)...)
	local = append(local, webCheck(cfg))
	ping := func(ctx context.Context) error {
		db, _, err := m.openDB(ctx)
		if err != nil {
			return err
		}
		defer db.Close()
		return db.PingContext(ctx)
	}
	checks := append(health(ctx, cfg, e.getenv, reg, ping, local), doctorDeliveryChecks(ctx, m)...)
	if db, d, err := m.openDB(ctx); err == nil {
		checks = append(checks, refusalChecks(ctx, sqlstore.New(db, d).FindRefusals, reg, time.Now())...)
		db.Close()
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, c := range checks {
		status := "ok"
		if !c.OK {
			status = "DEGRADED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", status, c.Part, c.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if bad := degraded(checks); len(bad) > 0 {
		fmt.Fprintf(e.stdout, "%d of %s degraded.\n", len(bad), words.Count(len(checks), "part"))
		return exitError{1}
	}
	fmt.Fprintf(e.stdout, "All %s ok.\n", words.Count(len(checks), "part"))
	return nil
}

// onlineGaps says what `reins validate --online` could not check.
func onlineGaps(cfg Config, reg *ownership.Registry) []string {
	var gaps []string
	if cfg.SlackBotToken == "" {
		gaps = append(gaps, "SLACK_BOT_TOKEN is not set: people, user groups and channels were not checked in Slack")
	}
	if cfg.PagerDutyAPIToken == "" {
		gaps = append(gaps, "PAGERDUTY_API_TOKEN is not set: escalation policies and on-call were not checked in PagerDuty")
	}
	if reg == nil || len(reg.Agents) == 0 {
		gaps = append(gaps, "the file names no agents: there was nothing to check online")
	}
	return gaps
}

// serveSends says what `reins serve` delivers of what a command just queued;
// slack and page name the deliveries ("" for none). Slack posts are queued
// only when this command has SLACK_BOT_TOKEN, so without it nothing goes to
// Slack. Pages are always queued and sent with the server's routing keys:
// with none here (a plain shell, or PagerDuty not set up at all) the line
// says the page waits for a server that has one, never that it went out.
func (m *Main) serveSends(agent, slack, page string) string {
	var will, parts []string
	if slack != "" && m.Config.SlackEnabled() {
		will = append(will, slack)
	}
	if page != "" && m.pagerKeyFor(agent) {
		will = append(will, page)
	}
	if len(will) > 0 {
		parts = append(parts, "`reins serve` "+strings.Join(will, " and "))
	}
	if slack != "" && !m.Config.SlackEnabled() {
		parts = append(parts, "nothing goes to Slack (SLACK_BOT_TOKEN is not set)")
	}
	if page != "" && !m.pagerKeyFor(agent) {
		parts = append(parts, "the PagerDuty step waits for `reins serve` with a routing key for "+agent+
			" (none is set here, so if PagerDuty is not set up nobody is paged)")
	}
	return strings.Join(parts, "; ")
}

// pagerKeyFor says whether a page about agent has a routing key here: the
// agent's or its team's variable, else PAGERDUTY_ROUTING_KEY.
func (m *Main) pagerKeyFor(agent string) bool {
	if m.Config.PagerDutyRoutingKey != "" {
		return true
	}
	reg := m.Registry.Current()
	if reg == nil {
		return false
	}
	a := reg.Agent(agent)
	if a == nil {
		return false
	}
	env, _ := reg.PageRoute(a)
	return env != "" && m.Getenv(env) != ""
}
