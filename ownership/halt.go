package ownership

import (
	"maps"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// SettingKind says how the loader checks a halt setting and whether the
// agent docs (GET /api/v1/agents) show it.
type SettingKind int

// Setting kinds. By convention a key of kind SettingEnv ends in _env and one
// of kind SettingFile in _file: HaltSpec.EnvVars and the agent docs go by the
// key, so they need no adapter table.
const (
	SettingText SettingKind = iota // plain text, shown
	SettingURL                     // an absolute http(s) URL, shown without credentials or query
	SettingEnv                     // names the environment variable holding a secret, never shown
	SettingFile                    // a local file path, never shown
)

// SettingSpec is one setting of a halt adapter.
type SettingSpec struct {
	Key      string
	Kind     SettingKind
	Required bool
	// Help says what the setting holds, for "needs X (help)" problems.
	Help string
	// Pattern, when set, is what a value must match; Describe names it in
	// the problem ("a Kubernetes object name (…)").
	Pattern  *regexp.Regexp
	Describe string
}

// AdapterSpec is what the loader knows of a halt adapter: its name and its
// settings, required ones first, in the order problems list them. The
// adapters declare theirs next to their code (integrations/halt) and
// cmd/reins hands the table to Load through Options.Adapters: ownership
// itself knows no adapter.
type AdapterSpec struct {
	Name     string
	Settings []SettingSpec
	// SessionScoped says the adapter can halt single sessions (integrations/halt
	// fills it in from the adapter itself); validate warns when an SLA asks to
	// halt one session through an adapter that cannot.
	SessionScoped bool
}

// adapterIndex is Options.Adapters by name, with the union of their keys
// (what a halt: mapping may hold at all).
type adapterIndex struct {
	byName map[string]AdapterSpec
	keys   []string
}

func newAdapterIndex(specs []AdapterSpec) adapterIndex {
	ix := adapterIndex{byName: map[string]AdapterSpec{}, keys: []string{"adapter", "confirm"}}
	for _, a := range specs {
		ix.byName[a.Name] = a
		for _, s := range a.Settings {
			if !slices.Contains(ix.keys, s.Key) {
				ix.keys = append(ix.keys, s.Key)
			}
		}
	}
	return ix
}

func (ix adapterIndex) names() []string { return slices.Sorted(maps.Keys(ix.byName)) }

func (p *parser) halt(agentKey *yaml.Node, agent fields, agentPath string) HaltSpec {
	path := agentPath + ".halt"
	ix := newAdapterIndex(p.opts.Adapters)
	h := HaltSpec{Confirm: true, Line: agentKey.Line}
	hf, present := agent.byKey["halt"]
	if !present || isNull(hf.val) {
		p.errorf(agentKey, "%s: halt is missing: choose an adapter (%s); `adapter: flag` is reins' own kill flag", agentPath, strings.Join(ix.names(), ", "))
		return h
	}
	h.Line = hf.key.Line
	f, ok := p.mapping(hf.val, path, ix.keys)
	if !ok {
		return h
	}
	h.Adapter = p.str(f.val("adapter"), path+".adapter")
	h.Confirm = p.boolean(f.val("confirm"), path+".confirm", true)
	spec, known := ix.byName[h.Adapter]
	switch {
	case h.Adapter == "":
		p.errorf(hf.key, "%s: adapter is missing: choose one of %s", path, strings.Join(ix.names(), ", "))
		return h
	case !known:
		p.errorf(f.val("adapter"), "%s.adapter: unknown adapter %s: choose one of %s", path, quote(h.Adapter), strings.Join(ix.names(), ", "))
		return h
	}
	takes := []string{"adapter", "confirm"}
	for _, st := range spec.Settings {
		takes = append(takes, st.Key)
	}
	takesText := "it takes no settings"
	if len(takes) > 2 {
		takesText = "it takes " + strings.Join(takes[2:], ", ")
	}
	for _, k := range f.keys {
		if !slices.Contains(takes, k) {
			p.errorf(f.byKey[k].key, "%s.%s: not a setting of the %s adapter (%s)", path, k, h.Adapter, takesText)
		}
	}
	var missing []SettingSpec
	for _, st := range spec.Settings {
		if st.Required && !f.has(st.Key) {
			missing = append(missing, st)
		}
	}
	slices.SortFunc(missing, func(a, b SettingSpec) int { return strings.Compare(a.Key, b.Key) })
	for _, st := range missing {
		p.errorf(hf.key, "%s: the %s adapter needs %s (%s)", path, h.Adapter, st.Key, st.Help)
	}
	p.haltValues(&h, f, path, spec)
	return h
}

// haltValues reads and checks the settings the adapter takes.
func (p *parser) haltValues(h *HaltSpec, f fields, path string, spec AdapterSpec) {
	for _, st := range spec.Settings {
		n := f.val(st.Key)
		if n == nil {
			continue
		}
		at := path + "." + st.Key
		var v string
		switch st.Kind {
		case SettingEnv:
			v = p.envVar(n, at)
		case SettingURL:
			v = p.str(n, at)
			p.checkURL(n, at, v)
		default:
			v = p.str(n, at)
		}
		if v != "" && st.Pattern != nil && !st.Pattern.MatchString(v) {
			p.errorf(n, "%s: %s is not %s", at, quote(v), st.Describe)
		}
		if h.Settings == nil {
			h.Settings, h.Lines = map[string]string{}, map[string]int{}
		}
		h.Settings[st.Key], h.Lines[st.Key] = v, lineOf(n)
	}
}
