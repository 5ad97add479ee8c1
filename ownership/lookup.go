package ownership

import (
	"maps"
	"slices"
	"sort"
	"strings"
)

// Agent returns the agent named nameOrAlias, by canonical name or alias,
// ignoring case; nil when there is none.
func (r *Registry) Agent(nameOrAlias string) *Agent {
	if r == nil {
		return nil
	}
	if a, ok := r.Agents[nameOrAlias]; ok {
		return a
	}
	for _, a := range r.Agents {
		if strings.EqualFold(a.Name, nameOrAlias) {
			return a
		}
		for _, alias := range a.Aliases {
			if strings.EqualFold(alias, nameOrAlias) {
				return a
			}
		}
	}
	return nil
}

// Names returns the canonical agent names, sorted.
func (r *Registry) Names() []string {
	if r == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(r.Agents))
}

// TeamOf returns the agent's owner team, nil when it has none.
func (r *Registry) TeamOf(a *Agent) *Team {
	if r == nil || a == nil {
		return nil
	}
	return r.Teams[a.Team]
}

// PageRoute says where a page about the agent goes: the agent's own PagerDuty
// settings, else its team's, each setting on its own. Empty routingKeyEnv means
// the caller falls back to PAGERDUTY_ROUTING_KEY.
func (r *Registry) PageRoute(a *Agent) (routingKeyEnv, escalationPolicy string) {
	if a == nil {
		return "", ""
	}
	routingKeyEnv, escalationPolicy = a.PagerDuty.RoutingKeyEnv, a.PagerDuty.EscalationPolicy
	if t := r.TeamOf(a); t != nil {
		if routingKeyEnv == "" {
			routingKeyEnv = t.PagerDuty.RoutingKeyEnv
		}
		if escalationPolicy == "" {
			escalationPolicy = t.PagerDuty.EscalationPolicy
		}
	}
	return routingKeyEnv, escalationPolicy
}

// Suggest returns up to n canonical agent names close to name, best first
// (n <= 0: all of them), for answering a misspelt /agent command. A name is
// close when it or one of its aliases is a few edits away (typos, swapped
// letters), starts with name, or contains it; far-off names are left out, so
// the answer may be empty.
func (r *Registry) Suggest(name string, n int) []string {
	q := strings.ToLower(strings.TrimSpace(name))
	if r == nil || q == "" {
		return nil
	}
	q = truncateRunes(q, 80)
	type scored struct {
		name  string
		score int
	}
	var found []scored
	for _, a := range r.Agents {
		best := -1
		for _, c := range append([]string{a.Name}, a.Aliases...) {
			if s, ok := closeness(q, strings.ToLower(c)); ok && (best < 0 || s < best) {
				best = s
			}
		}
		if best >= 0 {
			found = append(found, scored{a.Name, best})
		}
	}
	sort.Slice(found, func(i, j int) bool {
		if found[i].score != found[j].score {
			return found[i].score < found[j].score
		}
		return found[i].name < found[j].name
	})
	if n > 0 && len(found) > n {
		found = found[:n]
	}
	out := make([]string, len(found))
	for i, f := range found {
		out[i] = f.name
	}
	return out
}

// closeness scores candidate c against query q, lower is closer: twice the
// edit distance when that is small for q's length, a prefix scores 1 (better
// than one typo), a substring 3 (between one and two typos).
func closeness(q, c string) (score int, ok bool) {
	c = truncateRunes(c, 80)
	d := distance(q, c)
	maxD := min(max((len([]rune(q))+2)/4, 1), 3)
	score, ok = 2*d, d <= maxD && d < len([]rune(c))
	if len([]rune(q)) >= 3 {
		switch {
		case strings.HasPrefix(c, q):
			score, ok = min(score, 1), true
		case strings.Contains(c, q):
			if !ok || score > 3 {
				score = 3
			}
			ok = true
		}
	}
	return score, ok
}

// distance is the optimal-string-alignment Damerau-Levenshtein distance:
// insertions, deletions, substitutions and swaps of adjacent letters.
func distance(a, b string) int {
	s, t := []rune(a), []rune(b)
	rows := make([][]int, len(s)+1)
	for i := range rows {
		rows[i] = make([]int, len(t)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(s); i++ {
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			d := min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				d = min(d, rows[i-2][j-2]+1)
			}
			rows[i][j] = d
		}
	}
	return rows[len(s)][len(t)]
}

func truncateRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}
