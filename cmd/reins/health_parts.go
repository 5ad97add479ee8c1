package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/reins-oss/reins/incidents/words"
	"github.com/reins-oss/reins/integrations/web"
	"github.com/reins-oss/reins/ownership"
)

// The lines of /readyz?verbose=1 and `reins doctor` that need no network:
// the config file, telemetry and the web view. Each part is one function
// returning its lines, so a new degraded part is one more call in
// localChecks (server) and doctorChecks (CLI).

// localChecks are the server's own lines: reg is the registry in force.
func (m *Main) localChecks(reg *ownership.Registry) []healthCheck {
	var out []healthCheck
	out = append(out, m.configCheck(reg))
	out = append(out, telemetryChecks(m.Config, reg, m.getenv)...)
	out = append(out, webCheck(m.Config))
	return out
}

// rejectedReload is the last reload the server refused, until one succeeds.
type rejectedReload struct {
	mu       sync.Mutex
	at       time.Time // zero: the last reload (if any) succeeded
	problems int
}

func (r *rejectedReload) set(at time.Time, problems int) {
	r.mu.Lock()
	r.at, r.problems = at, problems
	r.mu.Unlock()
}

func (r *rejectedReload) get() (time.Time, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.at, r.problems
}

// clock formats a time the way the health lines show it.
func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// configCheck says which file is in force and whether the file on disk was
// rejected since: the server keeps running the old one, which is a degraded
// state (the change someone made is not in force).
func (m *Main) configCheck(reg *ownership.Registry) healthCheck {
	if at, n := m.rejected.get(); !at.IsZero() {
		return healthCheck{"config", false, fmt.Sprintf(
			"%s on disk rejected at %s: %s (`reins validate` lists them); running the file loaded at %s (%s)",
			m.Config.ConfigPath, clock(at), words.Count(n, "problem"), clock(reg.LoadedAt), words.Count(len(reg.Agents), "agent"))}
	}
	if reg.File == "" {
		return healthCheck{"config", false, "no config file at " + m.Config.ConfigPath + ": running with no agents; start from examples/reins.yaml"}
	}
	return healthCheck{"config", true, fmt.Sprintf("%s: %s, loaded at %s", reg.File, words.Count(len(reg.Agents), "agent"), clock(reg.LoadedAt))}
}

// doctorConfigCheck is `reins doctor`'s view of the file on disk: reg is nil
// when it is invalid (problems says why).
func doctorConfigCheck(path string, reg *ownership.Registry, problems ownership.Problems) healthCheck {
	if reg == nil {
		first, modified := "", ""
		if errs := problems.Errors(); len(errs) > 0 {
			first = "; first: " + errs[0].String()
		}
		if fi, err := os.Stat(path); err == nil {
			modified = " (modified " + clock(fi.ModTime()) + ")"
		}
		return healthCheck{"config", false, fmt.Sprintf(
			"%s on disk is invalid%s: %s%s. A running reins rejects it on reload and keeps the file it loaded before "+
				"(/readyz?verbose=1 says since when); `reins validate` lists them",
			path, modified, words.Count(len(problems.Errors()), "problem"), first)}
	}
	if reg.File == "" {
		return healthCheck{"config", false, "no config file at " + path + ": running with no agents; start from examples/reins.yaml"}
	}
	return healthCheck{"config", true, fmt.Sprintf("%s: %s", reg.File, words.Count(len(reg.Agents), "agent"))}
}

// telemetryChecks: the OTLP intake (/v1/traces) that feeds sessions and
// the guard's SLAs, and which tokens it accepts (telemetryMode).
func telemetryChecks(cfg Config, reg *ownership.Registry, getenv func(string) string) []healthCheck {
	detail, ok := telemetryMode(cfg, reg, getenv)
	return []healthCheck{{"telemetry", ok, detail}}
}

// webCheck: the web view the links in Slack, pages and postmortems open.
func webCheck(cfg Config) healthCheck {
	switch cfg.webAuthMode() {
	case web.AuthSlack:
		return healthCheck{"web", true, "on: Sign in with Slack (callback " + strings.TrimRight(cfg.PublicURL, "/") + "/auth/callback)"}
	case web.AuthProxy:
		return healthCheck{"web", true, "on: signed in by the proxy's " + cfg.WebUserHeader + " header from " + cfg.WebTrustedProxies}
	}
	return healthCheck{"web", false, "off: its pages (the links in Slack, pages and postmortems) say so. Turn it on with " +
		"REINS_SLACK_CLIENT_ID and REINS_SLACK_CLIENT_SECRET (Sign in with Slack), or REINS_WEB_AUTH=proxy with " +
		"REINS_WEB_USER_HEADER and REINS_WEB_TRUSTED_PROXIES (docs/deploy.md)"}
}
