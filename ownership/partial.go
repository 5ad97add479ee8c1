package ownership

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadFor reads the config at path for a command that uses one agent: the
// break-glass `reins kill` and `reins resume`, which must not be stopped by
// a typo in another agent's entry.
//
// A valid file is Load's registry. An invalid one still gives a registry
// when the named agent's entry (name or alias) and its team's are valid: the
// other agents and teams are left out, and any other top-level section with
// an error is left at its defaults. problems are then every problem of the
// whole file, and elsewhere names the parts with errors ("agent billing-bot",
// "alerts"). reg is nil when the agent's own entry or team has errors
// (problems are those) or the file does not name it (problems are the
// file's).
//
// The other entries are blanked line by line, so a problem in what is kept
// keeps its line number.
func LoadFor(path, agent string, opts Options) (reg *Registry, problems Problems, elsewhere []string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Problems{{File: path, Message: fmt.Sprintf("cannot read the config: %v", err)}}, nil
	}
	full, problems := Parse(path, data, opts)
	if full != nil {
		return full, problems, nil
	}
	lines := strings.Split(string(data), "\n")
	sections := topSections(lines)
	agents, teams := sections["agents"], sections["teams"]
	if agents == nil {
		return nil, problems, nil
	}
	target, team := agents.find(lines, agent)
	if target == nil {
		return nil, problems, nil
	}
	kept := slices.Clone(lines)
	blank := func(from, to int) {
		for i := from; i < to; i++ {
			kept[i] = ""
		}
	}
	for _, e := range agents.entries {
		if e != target {
			blank(e.from, e.to)
		}
	}
	if teams != nil {
		for _, e := range teams.entries {
			if e.name != team {
				blank(e.from, e.to)
			}
		}
	}
	var probs Problems
	for range len(sections) + 1 {
		reg, probs = Parse(path, []byte(strings.Join(kept, "\n")), opts)
		if reg != nil {
			break
		}
		dropped := false
		for _, p := range probs.Errors() {
			if s := sectionAt(sections, p.Line); s != nil && s != agents && s != teams {
				blank(s.from, s.to)
				dropped = true
			}
		}
		if !dropped {
			break
		}
	}
	if reg == nil {
		return nil, probs.Errors(), nil
	}
	for _, p := range problems.Errors() {
		part := "the file"
		if s := sectionAt(sections, p.Line); s != nil {
			part = s.name
			if e := s.entryAt(p.Line); e != nil && (s == agents || s == teams) {
				part = strings.TrimSuffix(s.name, "s") + " " + e.name
			}
		}
		if !slices.Contains(elsewhere, part) {
			elsewhere = append(elsewhere, part)
		}
	}
	return reg, problems, elsewhere
}

// section is a top-level key of the file and its lines [from, to), 0-based;
// entries are the keys of a mapping under it (agents, teams).
type section struct {
	name     string
	from, to int
	entries  []*entry
}

type entry struct {
	name     string
	from, to int
}

var (
	topKey   = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_-]*)\s*:`)
	entryKey = regexp.MustCompile(`^(\s+)("[^"]*"|'[^']*'|[^\s#'"][^:#]*?)\s*:(\s|$)`)
)

func topSections(lines []string) map[string]*section {
	out := map[string]*section{}
	var cur *section
	for i, l := range lines {
		if m := topKey.FindStringSubmatch(l); m != nil {
			if cur != nil {
				cur.to = i
			}
			cur = &section{name: m[1], from: i, to: len(lines)}
			out[cur.name] = cur
		}
	}
	for _, s := range out {
		s.entries = entriesOf(lines, s)
	}
	return out
}

// entriesOf splits a section into the entries of its block mapping: keys at
// the indentation of the first indented line.
func entriesOf(lines []string, s *section) []*entry {
	var out []*entry
	indent := -1
	for i := s.from + 1; i < s.to; i++ {
		t := strings.TrimSpace(lines[i])
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		m := entryKey.FindStringSubmatch(lines[i])
		n := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
		if indent < 0 {
			indent = n
		}
		if m == nil || n != indent {
			continue
		}
		if len(out) > 0 {
			out[len(out)-1].to = i
		}
		out = append(out, &entry{name: strings.Trim(m[2], `"'`), from: i, to: s.to})
	}
	return out
}

// find returns the entry of agent (name or alias, any case) and its team.
func (s *section) find(lines []string, agent string) (*entry, string) {
	for _, e := range s.entries {
		chunk := slices.Clone(lines[e.from:e.to])
		cut := len(chunk[0]) - len(strings.TrimLeft(chunk[0], " "))
		for i, l := range chunk {
			if len(l) >= cut && strings.TrimSpace(l[:cut]) == "" {
				chunk[i] = l[cut:]
			}
		}
		var body map[string]struct {
			Team    string   `yaml:"team"`
			Aliases []string `yaml:"aliases"`
		}
		_ = yaml.Unmarshal([]byte(strings.Join(chunk, "\n")), &body) // a broken entry is matched by name only
		v := body[e.name]
		if strings.EqualFold(e.name, agent) || slices.ContainsFunc(v.Aliases, func(a string) bool { return strings.EqualFold(a, agent) }) {
			return e, v.Team
		}
	}
	return nil, ""
}

func sectionAt(sections map[string]*section, line int) *section {
	for _, s := range sections {
		if line-1 >= s.from && line-1 < s.to {
			return s
		}
	}
	return nil
}

func (s *section) entryAt(line int) *entry {
	for _, e := range s.entries {
		if line-1 >= e.from && line-1 < e.to {
			return e
		}
	}
	return nil
}
