package halt

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

// AdapterUnleash is the Unleash adapter's name in halt.adapter.
const AdapterUnleash = "unleash"

// unleashAdapter is the Unleash adapter's registry entry: its halt: settings
// (docs/config.md, halt) and its constructor.
var unleashAdapter = registration{
	spec: ownership.AdapterSpec{Name: AdapterUnleash, Settings: []ownership.SettingSpec{
		{Key: "url", Kind: ownership.SettingURL, Required: true, Help: "the endpoint reins calls"},
		{Key: "project", Required: true, Help: "the project key"},
		{Key: "feature", Required: true, Help: "the feature toggle name"},
		{Key: "environment", Required: true, Help: "the environment key"},
		{Key: "token_env", Kind: ownership.SettingEnv, Required: true, Help: "the environment variable holding the API token"},
	}},
	new: func(cfg Config) Adapter { return NewUnleash(cfg) },
}

// Unleash is the `unleash` adapter: the agent runs only while its feature
// toggle is enabled in one environment; halting disables it there through
// the admin API. A toggle is all or nothing, so it halts whole agents only.
type Unleash struct {
	getenv func(string) string
	client *http.Client
}

var _ Adapter = (*Unleash)(nil)

// NewUnleash returns the Unleash adapter.
func NewUnleash(cfg Config) *Unleash {
	cfg = cfg.withDefaults()
	return &Unleash{getenv: cfg.Getenv, client: cfg.HTTPClient}
}

// SessionScoped is false: a toggle cannot target one session.
func (a *Unleash) SessionScoped() bool { return false }

// Do disables (halt) or enables (resume) the toggle in the environment;
// Unleash answers a repeat with success.
func (a *Unleash) Do(ctx context.Context, r incidents.HaltRequest) error {
	if err := checkRequest(a, r); err != nil {
		return err
	}
	verb := "off"
	if r.Action == incidents.ActionResume {
		verb = "on"
	}
	spec := r.Agent.Halt
	req, err := a.request(r.Agent, http.MethodPost, "/environments/"+url.PathEscape(spec.Setting("environment"))+"/"+verb)
	if err != nil {
		return err
	}
	_, err = call(ctx, a.client, req, "Unleash "+verb+" for "+r.Agent.Name)
	return err
}

// Verify reads the toggle back: halted means disabled in the environment.
func (a *Unleash) Verify(ctx context.Context, r incidents.HaltRequest) (bool, error) {
	if err := checkRequest(a, r); err != nil {
		return false, err
	}
	enabled, err := a.enabled(ctx, r.Agent)
	if err != nil {
		return false, err
	}
	return enabled == (r.Action == incidents.ActionResume), nil
}

// Drill reads the toggle: it proves the token, project, feature and
// environment, and changes nothing.
func (a *Unleash) Drill(ctx context.Context, agent *ownership.Agent) error {
	_, err := a.enabled(ctx, agent)
	return err
}

func (a *Unleash) enabled(ctx context.Context, agent *ownership.Agent) (bool, error) {
	req, err := a.request(agent, http.MethodGet, "")
	if err != nil {
		return false, err
	}
	body, err := call(ctx, a.client, req, "Unleash read of "+agent.Name+"'s toggle")
	if err != nil {
		return false, err
	}
	var feature struct {
		Environments []struct {
			Name    string `json:"name"`
			Enabled *bool  `json:"enabled"`
		} `json:"environments"`
	}
	if err := json.Unmarshal(body, &feature); err != nil {
		return false, unavailable(err, "Unleash answered with something other than a feature: %s", excerpt(body))
	}
	env := agent.Halt.Setting("environment")
	for _, e := range feature.Environments {
		if e.Name == env && e.Enabled != nil {
			return *e.Enabled, nil
		}
	}
	return false, unavailable(nil, "Unleash feature %s of %s has no environment %q: check halt.environment",
		agent.Halt.Setting("feature"), agent.Name, env)
}

// request builds an admin API request on the agent's feature; suffix is
// appended to the feature's path.
func (a *Unleash) request(agent *ownership.Agent, method, suffix string) (*http.Request, error) {
	spec := agent.Halt
	for _, s := range []struct{ v, name string }{{spec.Setting("url"), "url"}, {spec.Setting("project"), "project"},
		{spec.Setting("feature"), "feature"}, {spec.Setting("environment"), "environment"}} {
		if s.v == "" {
			return nil, missingSetting(AdapterUnleash, agent.Name, s.name)
		}
	}
	token := ""
	if spec.Setting("token_env") != "" {
		token = a.getenv(spec.Setting("token_env"))
	}
	if token == "" {
		return nil, missingEnv(AdapterUnleash, agent.Name, "token_env", spec.Setting("token_env"))
	}
	u := joinURL(spec.Setting("url"), "/api/admin/projects/"+url.PathEscape(spec.Setting("project"))+
		"/features/"+url.PathEscape(spec.Setting("feature"))+suffix)
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return nil, incidents.Errorf(incidents.EINVALID, "The halt.url of %s is not a valid URL: %v", agent.Name, err)
	}
	req.Header.Set("Authorization", token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "reins")
	return req, nil
}
