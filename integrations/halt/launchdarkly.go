package halt

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

// LaunchDarklyURL is the API base used when halt.url is empty.
const LaunchDarklyURL = "https://app.launchdarkly.com"

// AdapterLaunchDarkly is the LaunchDarkly adapter's name in halt.adapter.
const AdapterLaunchDarkly = "launchdarkly"

// launchDarklyAdapter is the LaunchDarkly adapter's registry entry: its
// halt: settings (docs/config.md, halt) and its constructor.
var launchDarklyAdapter = registration{
	spec: ownership.AdapterSpec{Name: AdapterLaunchDarkly, Settings: []ownership.SettingSpec{
		{Key: "project", Required: true, Help: "the project key"},
		{Key: "flag", Required: true, Help: "the flag key"},
		{Key: "environment", Required: true, Help: "the environment key"},
		{Key: "token_env", Kind: ownership.SettingEnv, Required: true, Help: "the environment variable holding the API token"},
		{Key: "url", Kind: ownership.SettingURL, Help: "the API base, " + LaunchDarklyURL + " when left out"},
	}},
	new: func(cfg Config) Adapter { return NewLaunchDarkly(cfg) },
}

// LaunchDarkly is the `launchdarkly` adapter: the agent runs only while its
// flag is on in one environment; halting turns the flag off there with a
// semantic patch. A flag is all or nothing, so it halts whole agents only.
type LaunchDarkly struct {
	getenv func(string) string
	client *http.Client
}

var _ Adapter = (*LaunchDarkly)(nil)

// NewLaunchDarkly returns the LaunchDarkly adapter.
func NewLaunchDarkly(cfg Config) *LaunchDarkly {
	cfg = cfg.withDefaults()
	return &LaunchDarkly{getenv: cfg.Getenv, client: cfg.HTTPClient}
}

// SessionScoped is false: a flag cannot target one session.
func (a *LaunchDarkly) SessionScoped() bool { return false }

type ldPatch struct {
	EnvironmentKey string          `json:"environmentKey"`
	Comment        string          `json:"comment"`
	Instructions   []ldInstruction `json:"instructions"`
}

type ldInstruction struct {
	Kind string `json:"kind"`
}

// Do turns the flag off (halt) or on (resume); LaunchDarkly treats a repeat
// as a no-op.
func (a *LaunchDarkly) Do(ctx context.Context, r incidents.HaltRequest) error {
	if err := checkRequest(a, r); err != nil {
		return err
	}
	kind := "turnFlagOff"
	if r.Action == incidents.ActionResume {
		kind = "turnFlagOn"
	}
	patch := ldPatch{
		EnvironmentKey: r.Agent.Halt.Setting("environment"),
		Comment:        haltComment(r),
		Instructions:   []ldInstruction{{Kind: kind}},
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	req, err := a.request(r.Agent, http.MethodPatch, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; domain-model=launchdarkly.semanticpatch")
	_, err = call(ctx, a.client, req, "LaunchDarkly "+kind+" for "+r.Agent.Name)
	return err
}

// Verify reads the flag back: halted means off in the environment.
func (a *LaunchDarkly) Verify(ctx context.Context, r incidents.HaltRequest) (bool, error) {
	if err := checkRequest(a, r); err != nil {
		return false, err
	}
	on, err := a.flagOn(ctx, r.Agent)
	if err != nil {
		return false, err
	}
	return on == (r.Action == incidents.ActionResume), nil
}

// Drill reads the flag: it proves the token, the project, the flag and the
// environment exist, and changes nothing.
func (a *LaunchDarkly) Drill(ctx context.Context, agent *ownership.Agent) error {
	_, err := a.flagOn(ctx, agent)
	return err
}

func (a *LaunchDarkly) flagOn(ctx context.Context, agent *ownership.Agent) (bool, error) {
	req, err := a.request(agent, http.MethodGet, nil)
	if err != nil {
		return false, err
	}
	env := agent.Halt.Setting("environment")
	req.URL.RawQuery = url.Values{"env": {env}}.Encode()
	body, err := call(ctx, a.client, req, "LaunchDarkly read of "+agent.Name+"'s flag")
	if err != nil {
		return false, err
	}
	var flag struct {
		Environments map[string]struct {
			On *bool `json:"on"`
		} `json:"environments"`
	}
	if err := json.Unmarshal(body, &flag); err != nil {
		return false, unavailable(err, "LaunchDarkly answered with something other than a flag: %s", excerpt(body))
	}
	e, ok := flag.Environments[env]
	if !ok || e.On == nil {
		return false, unavailable(nil, "LaunchDarkly flag %s of %s has no environment %q: check halt.environment",
			agent.Halt.Setting("flag"), agent.Name, env)
	}
	return *e.On, nil
}

// request builds a request on the agent's flag, with its token.
func (a *LaunchDarkly) request(agent *ownership.Agent, method string, body []byte) (*http.Request, error) {
	spec := agent.Halt
	for _, s := range []struct{ v, name string }{{spec.Setting("project"), "project"}, {spec.Setting("flag"), "flag"},
		{spec.Setting("environment"), "environment"}} {
		if s.v == "" {
			return nil, missingSetting(AdapterLaunchDarkly, agent.Name, s.name)
		}
	}
	token := ""
	if spec.Setting("token_env") != "" {
		token = a.getenv(spec.Setting("token_env"))
	}
	if token == "" {
		return nil, missingEnv(AdapterLaunchDarkly, agent.Name, "token_env", spec.Setting("token_env"))
	}
	base := spec.Setting("url")
	if base == "" {
		base = LaunchDarklyURL
	}
	u := joinURL(base, "/api/v2/flags/"+url.PathEscape(spec.Setting("project"))+"/"+url.PathEscape(spec.Setting("flag")))
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return nil, incidents.Errorf(incidents.EINVALID, "The halt.url of %s is not a valid URL: %v", agent.Name, err)
	}
	// LaunchDarkly access tokens go bare in Authorization, without "Bearer".
	req.Header.Set("Authorization", token)
	req.Header.Set("User-Agent", "reins")
	return req, nil
}

// haltComment is what the flag's audit log shows.
func haltComment(r incidents.HaltRequest) string {
	c := "reins " + r.Action + " of " + r.Agent.Name + " by " + r.Actor.String()
	if r.IncidentID != 0 {
		c += " (incident " + strconv.FormatInt(r.IncidentID, 10) + ")"
	}
	if r.Reason != "" {
		c += ": " + r.Reason
	}
	return c
}
