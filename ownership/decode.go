package ownership

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// parser walks yaml.v3 nodes rather than decoding into structs, so every
// problem knows its line and one pass reports all of them.
type parser struct {
	file  string
	opts  Options
	probs Problems
	pos   positions

	pendingCost []pendingCost // cost_per_session SLAs, checked against pricing: at the end
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.probs = append(p.probs, Problem{File: p.file, Line: lineOf(n), Message: fmt.Sprintf(format, args...)})
}

func (p *parser) warnf(n *yaml.Node, format string, args ...any) {
	p.probs = append(p.probs, Problem{File: p.file, Line: lineOf(n), Message: fmt.Sprintf(format, args...), Warning: true})
}

func lineOf(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}

// resolve follows a YAML alias (*name) to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func describe(n *yaml.Node) string {
	n = resolve(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		return quote(n.Value)
	}
	return "an unreadable value"
}

// field is one key: value pair of a mapping.
type field struct{ key, val *yaml.Node }

// fields is a mapping's pairs by key, with the keys in file order.
type fields struct {
	byKey map[string]field
	keys  []string
}

// val returns the value of key, or nil when the key is absent.
func (f fields) val(key string) *yaml.Node {
	if fl, ok := f.byKey[key]; ok {
		return fl.val
	}
	return nil
}

// has reports whether key is present with a non-null value.
func (f fields) has(key string) bool { return !isNull(f.val(key)) }

// mapping reads a mapping node. Keys outside allowed (nil: any key) and keys
// given twice are reported; YAML merge keys (<<: *base) are honoured, with
// explicit keys winning. ok is false when n is not a mapping at all.
func (p *parser) mapping(n *yaml.Node, path string, allowed []string) (f fields, ok bool) {
	return p.mappingDepth(n, path, allowed, 0)
}

func (p *parser) mappingDepth(n *yaml.Node, path string, allowed []string, depth int) (fields, bool) {
	f := fields{byKey: map[string]field{}}
	n = resolve(n)
	if isNull(n) {
		return f, true
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: expected a mapping of settings, got %s", path, describe(n))
		return f, false
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			p.errorf(n.Content[i], "%s: a key must be plain text", path)
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if prev, dup := f.byKey[k.Value]; dup {
			p.errorf(k, "%s.%s: given twice (first at line %d)", path, k.Value, prev.key.Line)
			continue
		}
		if allowed != nil && !slices.Contains(allowed, k.Value) {
			hint := didYouMean(k.Value, allowed)
			if hint == "" {
				hint = fmt.Sprintf(" (known keys: %s)", strings.Join(allowed, ", "))
			}
			p.errorf(k, "%s: unknown key %s%s", path, quote(k.Value), hint)
			continue
		}
		f.byKey[k.Value] = field{key: k, val: v}
		f.keys = append(f.keys, k.Value)
	}
	for _, m := range merges {
		p.merge(&f, m, path, allowed, depth)
	}
	return f, true
}

// merge adds the pairs of a merged mapping (or list of mappings) that f does
// not set itself.
func (p *parser) merge(f *fields, m *yaml.Node, path string, allowed []string, depth int) {
	m = resolve(m)
	if depth > 4 {
		p.errorf(m, "%s: merge keys nested too deeply", path)
		return
	}
	sources := []*yaml.Node{m}
	if m != nil && m.Kind == yaml.SequenceNode {
		sources = m.Content
	}
	for _, s := range sources {
		mf, ok := p.mappingDepth(s, path, allowed, depth+1)
		if !ok {
			continue
		}
		for _, k := range mf.keys {
			if _, set := f.byKey[k]; !set {
				f.byKey[k] = mf.byKey[k]
				f.keys = append(f.keys, k)
			}
		}
	}
}

// str reads a text value. Numbers are taken as their text (a project key may
// be 2024); null means "not set".
func (p *parser) str(n *yaml.Node, path string) string {
	n = resolve(n)
	if isNull(n) {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, "%s: expected text, got %s", path, describe(n))
		return ""
	}
	return strings.TrimSpace(n.Value)
}

// strList reads a list of text values. Each item's line is remembered under
// path[i] for later checks (online validation reports at the item).
func (p *parser) strList(n *yaml.Node, path string) []string {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = fmt.Sprintf(" (write [%s])", truncateRunes(n.Value, 60))
		}
		p.errorf(n, "%s: expected a list, got %s%s", path, describe(n), hint)
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		item = resolve(item)
		itemPath := fmt.Sprintf("%s[%d]", path, i)
		if item == nil || item.Kind != yaml.ScalarNode || isNull(item) || strings.TrimSpace(item.Value) == "" {
			p.errorf(item, "%s: expected text, got %s", itemPath, describe(item))
			continue
		}
		p.pos.set(fmt.Sprintf("%s[%d]", path, len(out)), item.Line)
		out = append(out, strings.TrimSpace(item.Value))
	}
	return out
}

// boolean reads true or false; def is returned when the value is absent.
func (p *parser) boolean(n *yaml.Node, path string, def bool) bool {
	n = resolve(n)
	if isNull(n) {
		return def
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		if b, err := strconv.ParseBool(n.Value); err == nil {
			return b
		}
	}
	p.errorf(n, "%s: expected true or false, got %s", path, describe(n))
	return def
}

// number reads a finite number; nil when absent or wrong.
func (p *parser) number(n *yaml.Node, path string) *float64 {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	var f float64
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") && n.Decode(&f) == nil &&
		!math.IsNaN(f) && !math.IsInf(f, 0) {
		return &f
	}
	p.errorf(n, "%s: expected a number, got %s", path, describe(n))
	return nil
}

// duration reads a Go duration such as 4h or 90m; def when absent.
func (p *parser) duration(n *yaml.Node, path string, def time.Duration) time.Duration {
	s := p.str(n, path)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		p.errorf(n, "%s: %q is not a duration (write for example 4h, 90m or 1h30m)", path, s)
		return def
	}
	return d
}

// sequence reads a list of mappings (blast_radius, slas).
func (p *parser) sequence(n *yaml.Node, path string) []*yaml.Node {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s: expected a list, got %s", path, describe(n))
		return nil
	}
	return n.Content
}

// didYouMean suggests the closest known name for a misspelt one (a typo or a
// prefix), "" when none is close.
func didYouMean(got string, known []string) string {
	best, bestScore := "", -1
	got = truncateRunes(strings.ToLower(got), 80)
	for _, k := range known {
		if s, ok := closeness(got, strings.ToLower(k)); ok && (bestScore < 0 || s < bestScore) {
			best, bestScore = k, s
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
