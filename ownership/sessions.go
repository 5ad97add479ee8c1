package ownership

import (
	"path"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// sessions reads an agent's sessions: section (docs/config.md, sessions), applying defaults
// when it is absent.
func (p *parser) sessions(n *yaml.Node, at string) SessionSettings {
	s := SessionSettings{Source: SourceOTLP, Retention: DefaultRetention, MaxSteps: DefaultMaxSteps,
		ContentLimit: DefaultContentLimit}
	f, _ := p.mapping(n, at, []string{"link", "source", "langfuse", "retention", "capture_content",
		"content_limit", "max_steps"})
	if v := f.val("link"); v != nil {
		s.Link = p.str(v, at+".link")
		switch {
		case s.Link == "":
		case !HasSessionPlaceholder(s.Link):
			p.errorf(v, "%s.link: must contain {session} where the session ID goes", at)
		default:
			p.checkURL(v, at+".link", s.Link)
		}
	}
	if v := f.val("source"); v != nil {
		switch src := p.str(v, at+".source"); src {
		case "", SourceOTLP:
		case SourceLangfuse:
			s.Source = src
		default:
			p.errorf(v, "%s.source: %s is not a session source (otlp or langfuse)", at, quote(src))
		}
	}
	s.Langfuse = p.langfuse(f.val("langfuse"), at+".langfuse")
	if s.Source == SourceLangfuse && s.Langfuse.Host == "" {
		p.errorf(f.val("source"), "%s: source is langfuse but langfuse.host is missing: add langfuse: {host: …, public_key_env: …, secret_key_env: …}", at)
	}
	if v := f.val("retention"); v != nil {
		s.Retention = p.duration(v, at+".retention", DefaultRetention)
	}
	s.CaptureContent = p.boolean(f.val("capture_content"), at+".capture_content", false)
	if v := f.val("content_limit"); v != nil {
		s.ContentLimit = p.count(v, at+".content_limit", 1, maxContentLimitConfig, DefaultContentLimit)
	}
	if v := f.val("max_steps"); v != nil {
		s.MaxSteps = p.count(v, at+".max_steps", minMaxSteps, 10_000_000, DefaultMaxSteps)
	}
	return s
}

func (p *parser) langfuse(n *yaml.Node, at string) LangfuseSettings {
	var l LangfuseSettings
	f, ok := p.mapping(n, at, []string{"host", "public_key_env", "secret_key_env"})
	if !ok || isNull(n) {
		return l
	}
	l.Host = strings.TrimRight(p.str(f.val("host"), at+".host"), "/")
	if l.Host == "" {
		p.errorf(n, "%s: host is missing (e.g. https://cloud.langfuse.com)", at)
	} else {
		p.checkURL(f.val("host"), at+".host", l.Host)
	}
	for _, k := range []struct {
		key string
		dst *string
	}{{"public_key_env", &l.PublicKeyEnv}, {"secret_key_env", &l.SecretKeyEnv}} {
		v := f.val(k.key)
		if v == nil {
			p.errorf(n, "%s: %s is missing: name the environment variable holding the key", at, k.key)
			continue
		}
		*k.dst = p.envVar(v, at+"."+k.key)
	}
	return l
}

// count reads a whole number within [lo, hi]; def when wrong.
func (p *parser) count(n *yaml.Node, at string, lo, hi, def int) int {
	f := p.number(n, at)
	if f == nil {
		return def
	}
	if *f != float64(int(*f)) || int(*f) < lo || int(*f) > hi {
		p.errorf(n, "%s: expected a whole number from %d to %d", at, lo, hi)
		return def
	}
	return int(*f)
}

// toolGlobs reads blast_radius[].tools: tool names or globs (salesforce.*).
func (p *parser) toolGlobs(n *yaml.Node, at string) []string {
	globs := p.strList(n, at)
	for i, g := range globs {
		if _, err := path.Match(g, ""); err != nil {
			p.errorf(p.itemNode(at, i), "%s: %s is not a usable glob (%v)", at, quote(g), err)
		}
	}
	return globs
}

// rungGlobs reads the allow-list a restrict rung leaves (restrict_to,
// probation.allow): tool globs holding no comma nor space, because the kill
// flag's OFREP metadata joins them with commas, where "a,b" would read as
// the two tools a and b, a wider list than configured.
func (p *parser) rungGlobs(n *yaml.Node, at string) []string {
	globs := p.toolGlobs(n, at)
	p.checkRungGlobs(at, globs)
	return globs
}

func (p *parser) checkRungGlobs(at string, globs []string) {
	for i, g := range globs {
		// As the restrict rung itself checks them (incidents.checkRung): a
		// glob it would refuse at the breach must not pass here.
		if strings.ContainsFunc(g, func(r rune) bool { return r == ',' || unicode.IsSpace(r) || unicode.IsControl(r) }) {
			p.errorf(p.itemNode(at, i), "%s: %s holds a comma or a space: list one tool or glob per item", at, quote(g))
		}
	}
}

// pricing reads the top-level pricing: table of USD per 1M tokens per model.
func (p *parser) pricing(n *yaml.Node) map[string]Price {
	out := map[string]Price{}
	f, _ := p.mapping(n, "pricing", nil)
	for _, model := range f.keys {
		fl := f.byKey[model]
		at := "pricing." + model
		pf, ok := p.mapping(fl.val, at, []string{"input", "output"})
		if !ok {
			continue
		}
		var pr Price
		for _, k := range []struct {
			key string
			dst *float64
		}{{"input", &pr.Input}, {"output", &pr.Output}} {
			v := pf.val(k.key)
			if v == nil {
				p.errorf(fl.key, "%s: %s is missing (USD per 1M %s tokens)", at, k.key, k.key)
				continue
			}
			if x := p.number(v, at+"."+k.key); x != nil {
				if *x < 0 {
					p.errorf(v, "%s.%s: a price cannot be negative", at, k.key)
					continue
				}
				*k.dst = *x
			}
		}
		out[strings.ToLower(model)] = pr
	}
	return out
}

// MatchTool says whether tool matches glob; case does not matter, and a glob
// without wildcards must equal the name.
func MatchTool(glob, tool string) bool {
	ok, err := path.Match(strings.ToLower(glob), strings.ToLower(tool))
	return err == nil && ok
}

// SystemOf returns the blast-radius system whose tools: match tool, or "".
func (a *Agent) SystemOf(tool string) string {
	if tool == "" {
		return ""
	}
	for _, b := range a.BlastRadius {
		for _, g := range b.Tools {
			if MatchTool(g, tool) {
				return b.System
			}
		}
	}
	return ""
}

// DeclaresTools says whether any blast-radius entry lists tools, i.e.
// whether "outside the declared blast radius" means anything for a.
func (a *Agent) DeclaresTools() bool {
	for _, b := range a.BlastRadius {
		if len(b.Tools) > 0 {
			return true
		}
	}
	return false
}

// ToolInScope reports whether tool is allowed by the agent's tool_scope SLA;
// declared is false when the agent has none.
func (a *Agent) ToolInScope(tool string) (in, declared bool) {
	for _, s := range a.SLAs {
		if s.Metric != "tool_scope" {
			continue
		}
		declared = true
		for _, g := range s.Allow {
			if MatchTool(g, tool) {
				return true, true
			}
		}
	}
	return false, declared
}

// PriceOf looks model up in the pricing table: the exact name first, then
// the longest priced name it starts with followed by '-' or ':' (providers
// answer gpt-4.1-2025-04-14 for a request for gpt-4.1).
func (r *Registry) PriceOf(model string) (Price, bool) {
	if model == "" || len(r.Pricing) == 0 {
		return Price{}, false
	}
	m := strings.ToLower(model)
	if pr, ok := r.Pricing[m]; ok {
		return pr, true
	}
	best, found := "", false
	for name := range r.Pricing {
		if len(name) > len(best) && strings.HasPrefix(m, name) && len(m) > len(name) &&
			(m[len(name)] == '-' || m[len(name)] == ':' || m[len(name)] == '@') {
			best, found = name, true
		}
	}
	if !found {
		return Price{}, false
	}
	return r.Pricing[best], true
}
