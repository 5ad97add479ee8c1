package ownership

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
)

var (
	slackUserID  = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	slackGroupID = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
	emailAddress = regexp.MustCompile(`^[^@\s<>(),;:"\[\]]+@[^@\s<>(),;:"\[\]]+\.[^@\s<>(),;:"\[\].]+$`)
	channelName  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,79}$`)
	// PagerDuty object IDs: P followed by letters and digits in practice;
	// newer ones may start with another capital, so only the shape is checked.
	pagerDutyID = regexp.MustCompile(`^[A-Z0-9]{2,20}$`)
	envName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	entityName  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
)

// personKind is what a string naming a person turned out to be.
type personKind int

const (
	notPerson personKind = iota
	slackUser
	slackGroup
	emailUser
	slackChannel // only meaningful in raci.informed
)

func classify(s string) personKind {
	switch {
	case slackUserID.MatchString(s):
		return slackUser
	case slackGroupID.MatchString(s):
		return slackGroup
	case emailAddress.MatchString(s):
		return emailUser
	case channelName.MatchString(strings.TrimPrefix(s, "#")):
		return slackChannel
	}
	return notPerson
}

// quote quotes a value for a message, cut short so a pasted blob does not
// flood the output.
func quote(s string) string {
	const max = 60
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

// envVar reads the name of an environment variable holding a secret and
// checks it is set. The value is never echoed: a secret pasted here by
// mistake must not end up in logs or CI output.
func (p *parser) envVar(n *yaml.Node, path string) string {
	name := p.str(n, path)
	if name == "" {
		return ""
	}
	if !envName.MatchString(name) {
		p.errorf(n, "%s: must name an environment variable (like PD_SUPPORT_AI_KEY); secrets never go in reins.yaml itself", path)
		return ""
	}
	if p.opts.getenv()(name) == "" {
		if p.opts.StrictEnv {
			p.errorf(n, "%s: environment variable %s is not set: %s", path, name, unsetEffect(path))
		} else {
			p.warnf(n, "%s: environment variable %s is not set: %s", path, name, unsetEffect(path))
		}
	}
	return name
}

// unsetEffect says what will not work while the variable named at path is
// unset, so a warning tells the reader whether it matters to them yet.
func unsetEffect(path string) string {
	switch {
	case strings.HasSuffix(path, ".routing_key_env"):
		return "pages for " + strings.TrimSuffix(path, ".pagerduty.routing_key_env") +
			" go to PAGERDUTY_ROUTING_KEY instead, or to nobody when that is unset too"
	case strings.HasSuffix(path, ".telemetry.token_env"):
		return "OTLP requests carrying the token meant to be in it are refused (401) until it is set"
	case strings.Contains(path, ".halt."):
		return "halting " + strings.TrimPrefix(path[:strings.Index(path, ".halt.")], "agents.") +
			" through its adapter will fail until it is set"
	}
	return "what it configures will not work until it is set"
}

// httpURL reports whether s is an absolute http(s) URL. Placeholders such as
// {session} are allowed anywhere.
func httpURL(s string) bool {
	u, err := url.Parse(strings.ReplaceAll(s, SessionPlaceholder, "s"))
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// checkURL reports a value that is not an absolute http(s) URL.
func (p *parser) checkURL(n *yaml.Node, path, s string) {
	if s != "" && !httpURL(s) {
		p.errorf(n, "%s: %s is not an http(s) URL", path, quote(s))
	}
}

// drill checks a kill-switch drill schedule: the standard cron grammar (five
// fields or a descriptor such as @weekly), at most hourly, since each drill
// calls the agent's real control path.
func (p *parser) drill(n *yaml.Node, path, spec string) {
	sched, err := parseCron(spec)
	if err != nil {
		p.errorf(n, "%s: %s is not a cron schedule (%v); write five fields, e.g. \"0 3 * * 1\" for Mondays 03:00", path, quote(spec), err)
		return
	}
	first := sched.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if first.IsZero() {
		p.errorf(n, "%s: %s never fires (no such date)", path, quote(spec))
		return
	}
	if second := sched.Next(first); !second.IsZero() && second.Sub(first) < time.Hour {
		p.warnf(n, "%s: %s drills more often than hourly; each drill calls the agent's control path", path, quote(spec))
	}
}

// parseCron wraps cron.ParseStandard, which indexes out of range on a
// time-zone prefix with nothing after it.
func parseCron(spec string) (sched cron.Schedule, err error) {
	if (strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=")) && !strings.Contains(spec, " ") {
		return nil, fmt.Errorf("time zone without a schedule")
	}
	defer func() {
		if v := recover(); v != nil {
			sched, err = nil, fmt.Errorf("unparsable: %v", v)
		}
	}()
	return cron.ParseStandard(spec)
}
