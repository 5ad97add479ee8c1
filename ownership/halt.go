package ownership

import (
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// adapterSettings lists, per halt adapter, the settings it must have and the
// ones it may have. A setting of another adapter is an error: it usually
// means the adapter line was changed and the rest was not.
var adapterSettings = map[string]struct{ required, optional []string }{
	"flag":         {},
	"webhook":      {required: []string{"url", "secret_env"}},
	"launchdarkly": {required: []string{"project", "flag", "environment", "token_env"}, optional: []string{"url"}},
	"unleash":      {required: []string{"url", "project", "feature", "environment", "token_env"}},
	"kubernetes":   {required: []string{"namespace", "deployment", "url", "token_env"}, optional: []string{"ca_file"}},
}

var haltKeys = []string{
	"adapter", "confirm", "url", "secret_env", "token_env", "project", "flag",
	"environment", "feature", "namespace", "deployment", "ca_file",
}

// settingHelp says what each adapter setting holds, for "needs X" messages.
var settingHelp = map[string]string{
	"url":         "the endpoint reins calls",
	"secret_env":  "the environment variable holding the HMAC signing secret",
	"token_env":   "the environment variable holding the API token",
	"project":     "the project key",
	"flag":        "the flag key",
	"environment": "the environment key",
	"feature":     "the feature toggle name",
	"namespace":   "the Kubernetes namespace",
	"deployment":  "the Deployment name",
}

func adapterNames() []string { return sortedKeys(adapterSettings) }

func (p *parser) halt(agentKey *yaml.Node, agent fields, agentPath string) HaltSpec {
	path := agentPath + ".halt"
	h := HaltSpec{Confirm: true, Line: agentKey.Line}
	hf, present := agent.byKey["halt"]
	if !present || isNull(hf.val) {
		p.errorf(agentKey, "%s: halt is missing: choose an adapter (%s); `adapter: flag` is reins' own kill flag", agentPath, strings.Join(adapterNames(), ", "))
		return h
	}
	h.Line = hf.key.Line
	f, ok := p.mapping(hf.val, path, haltKeys)
	if !ok {
		return h
	}
	h.Adapter = p.str(f.val("adapter"), path+".adapter")
	h.Confirm = p.boolean(f.val("confirm"), path+".confirm", true)
	spec, known := adapterSettings[h.Adapter]
	switch {
	case h.Adapter == "":
		p.errorf(hf.key, "%s: adapter is missing: choose one of %s", path, strings.Join(adapterNames(), ", "))
		return h
	case !known:
		p.errorf(f.val("adapter"), "%s.adapter: unknown adapter %s: choose one of %s", path, quote(h.Adapter), strings.Join(adapterNames(), ", "))
		return h
	}
	takes := append(append([]string{"adapter", "confirm"}, spec.required...), spec.optional...)
	takesText := "it takes no settings"
	if len(takes) > 2 {
		takesText = "it takes " + strings.Join(takes[2:], ", ")
	}
	for _, k := range f.keys {
		if !slices.Contains(takes, k) {
			p.errorf(f.byKey[k].key, "%s.%s: not a setting of the %s adapter (%s)", path, k, h.Adapter, takesText)
		}
	}
	var missing []string
	for _, k := range spec.required {
		if !f.has(k) {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	for _, k := range missing {
		p.errorf(hf.key, "%s: the %s adapter needs %s (%s)", path, h.Adapter, k, settingHelp[k])
	}
	p.haltValues(&h, f, path, takes)
	return h
}

// haltValues reads and checks the settings the adapter takes.
func (p *parser) haltValues(h *HaltSpec, f fields, path string, takes []string) {
	text := func(key string) string {
		if !slices.Contains(takes, key) {
			return ""
		}
		return p.str(f.val(key), path+"."+key)
	}
	env := func(key string) string {
		if !slices.Contains(takes, key) || f.val(key) == nil {
			return ""
		}
		return p.envVar(f.val(key), path+"."+key)
	}
	h.URL = text("url")
	p.checkURL(f.val("url"), path+".url", h.URL)
	h.SecretEnv = env("secret_env")
	h.TokenEnv = env("token_env")
	h.Project = text("project")
	h.Flag = text("flag")
	h.Environment = text("environment")
	h.Feature = text("feature")
	h.Namespace = text("namespace")
	h.Deployment = text("deployment")
	h.CAFile = text("ca_file")
	for _, kv := range [][2]string{{"namespace", h.Namespace}, {"deployment", h.Deployment}} {
		if kv[1] != "" && !k8sName.MatchString(kv[1]) {
			p.errorf(f.val(kv[0]), "%s.%s: %s is not a Kubernetes object name (lowercase letters, digits, '-' and '.')", path, kv[0], quote(kv[1]))
		}
	}
}
