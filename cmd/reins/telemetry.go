package main

import (
	"fmt"
	"strings"

	"github.com/reins-oss/reins/incidents/words"
	"github.com/reins-oss/reins/integrations/otlp"
	"github.com/reins-oss/reins/ownership"
)

// telemetryCreds are the per-agent OTLP tokens of one registry, read from
// the environment once per registry (a reload reads them again).
type telemetryCreds struct {
	reg   *ownership.Registry
	creds []otlp.Credential
}

// otlpCredentials returns the per-agent telemetry tokens in force: each
// token_env variable that is set, with the agents it covers.
func (m *Main) otlpCredentials() []otlp.Credential {
	reg := m.Registry.Current()
	if c := m.telemetry.Load(); c != nil && c.reg == reg {
		return c.creds
	}
	c := &telemetryCreds{reg: reg, creds: credentialsOf(reg, m.getenv)}
	m.telemetry.Store(c)
	return c.creds
}

func credentialsOf(reg *ownership.Registry, getenv func(string) string) []otlp.Credential {
	var out []otlp.Credential
	for _, tc := range reg.TelemetryCredentials() {
		tok := getenv(tc.Env)
		if tok == "" {
			continue
		}
		p := otlp.Principal{Agents: map[string]bool{}, Source: tc.Env}
		for _, a := range tc.Agents {
			p.Agents[a] = true
		}
		out = append(out, otlp.Credential{Token: tok, Principal: p})
	}
	return out
}

// telemetryMode says which OTLP credentials are in force, for `reins
// doctor` and /readyz?verbose=1, naming variables, never tokens. ok is
// false when every span would be refused.
func telemetryMode(cfg Config, reg *ownership.Registry, getenv func(string) string) (detail string, ok bool) {
	covered := map[string]bool{}
	var unset []string
	for _, tc := range reg.TelemetryCredentials() {
		if getenv(tc.Env) == "" {
			unset = append(unset, tc.Env)
			continue
		}
		for _, a := range tc.Agents {
			covered[a] = true
		}
	}
	var parts []string
	if len(covered) > 0 {
		parts = append(parts, fmt.Sprintf("per-agent tokens for %d of %d agents", len(covered), len(reg.Agents)))
	}
	if cfg.OTLPToken != "" {
		parts = append(parts, "all-agents token REINS_OTLP_TOKEN set: its holder can make reins halt any agent")
	}
	if len(unset) > 0 {
		parts = append(parts, "token variables not set: "+strings.Join(unset, ", "))
	}
	if len(covered) == 0 && cfg.OTLPToken == "" {
		withSLAs := 0
		for _, a := range reg.Agents {
			if len(a.SLAs) > 0 {
				withSLAs++
			}
		}
		effect := "no session steps are recorded"
		if withSLAs > 0 {
			effect = fmt.Sprintf("the SLAs of %s stay at \"no data\"", words.Count(withSLAs, "agent"))
		}
		return "no token: REINS_OTLP_TOKEN is not set: every span sent to /v1/traces is refused (401), and no agent has a token of its own, so " +
			effect + "; give agents telemetry.token_env in reins.yaml (or set REINS_OTLP_TOKEN for a trusted gateway) and the same bearer token to their OTLP exporters" +
			suffix(unset), false
	}
	return strings.Join(parts, "; "), true
}

func suffix(unset []string) string {
	if len(unset) == 0 {
		return ""
	}
	return " (not set: " + strings.Join(unset, ", ") + ")"
}
