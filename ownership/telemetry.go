package ownership

import (
	"maps"
	"slices"

	"gopkg.in/yaml.v3"
)

// maxTokenEnv bounds token_env: the token in use and the next one, so a
// rotation never has a moment when the agent's exporter is refused.
const maxTokenEnv = 2

// TelemetryAuth is an agent's or a team's `telemetry:` credentials: the
// environment variables holding the bearer tokens its agents' OTLP
// exporters send. A token admits spans only for the agents it covers.
type TelemetryAuth struct {
	TokenEnv []string // at most two: current and next
	Line     int
}

// telemetryAuth reads the token_env of an agent's or a team's telemetry:
// block (a name or a list of at most two). Other keys of a telemetry block
// belong to the top-level one and are not allowed here.
func (p *parser) telemetryAuth(n *yaml.Node, path string) TelemetryAuth {
	var t TelemetryAuth
	if n == nil {
		return t
	}
	t.Line = n.Line
	f, _ := p.mapping(n, path, []string{"token_env"})
	v := resolve(f.val("token_env"))
	if v == nil {
		return t
	}
	key := path + ".token_env"
	p.pos.set(key, v.Line)
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
	}
	if len(items) == 0 {
		p.errorf(v, "%s: name at least one environment variable holding the agent's OTLP token", key)
	}
	if len(items) > maxTokenEnv {
		p.errorf(v, "%s: list at most %d variables (the token in use and the next one, for rotation)", key, maxTokenEnv)
	}
	for _, item := range items {
		if name := p.envVar(item, key); name != "" && !slices.Contains(t.TokenEnv, name) {
			t.TokenEnv = append(t.TokenEnv, name)
		}
	}
	return t
}

// TelemetryCredential is one variable named by a token_env and the agents
// whose spans a token from it admits.
type TelemetryCredential struct {
	Env    string
	Agents []string // sorted
}

// TelemetryCredentials lists the token variables of the agents and teams,
// each with the agents it covers: an agent's own token_env covers it, a
// team's covers each agent of the team. Sorted by variable.
func (r *Registry) TelemetryCredentials() []TelemetryCredential {
	if r == nil {
		return nil
	}
	covers := map[string][]string{}
	for _, name := range r.Names() {
		a := r.Agents[name]
		envs := slices.Clone(a.Telemetry.TokenEnv)
		if t := r.Teams[a.Team]; t != nil {
			envs = append(envs, t.Telemetry.TokenEnv...)
		}
		for _, env := range envs {
			if !slices.Contains(covers[env], a.Name) {
				covers[env] = append(covers[env], a.Name)
			}
		}
	}
	var out []TelemetryCredential
	for _, env := range slices.Sorted(maps.Keys(covers)) {
		agents := covers[env]
		slices.Sort(agents)
		out = append(out, TelemetryCredential{Env: env, Agents: agents})
	}
	return out
}
