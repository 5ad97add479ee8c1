package ownership_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reins-oss/reins/ownership"
)

// FuzzParse feeds arbitrary bytes to the loader: it must never panic, every
// problem must name the file and a line inside it, and a config without
// errors must come with a registry whose agents all resolve by name.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range append(seeds, example) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("agents:\n  a: &a\n    team: t\n  b:\n    <<: [*a, *a]\n"))
	f.Add([]byte("teams: {t: {}}\nagents: {a: {team: t, kill_authority: {users: [U1A]}, halt: {adapter: flag}, drill: \"CRON_TZ=UTC 0 3 * * 1\"}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// YAML breaks lines at \n, \r, NEL, LS and PS: count them all.
		lines := 1 + strings.Count(string(data), "\n") + strings.Count(string(data), "\r") +
			strings.Count(string(data), "\u0085") + strings.Count(string(data), "\u2028") + strings.Count(string(data), "\u2029")
		reg, probs := ownership.Parse("f.yaml", data, ownership.Options{Adapters: adapters, Getenv: func(string) string { return "" }})
		for _, p := range probs {
			if p.File != "f.yaml" || p.Line < 0 || p.Line > lines+1 || p.Message == "" {
				t.Fatalf("bad problem %+v (input has %d lines)", p, lines)
			}
		}
		if probs.Err() != nil {
			if reg != nil {
				t.Fatal("got a registry with errors")
			}
			return
		}
		if reg == nil {
			t.Fatalf("no errors but no registry: %s", probs)
		}
		for _, name := range reg.Names() {
			a := reg.Agent(name)
			if a == nil || a.Name != name {
				t.Fatalf("Agent(%q) = %v", name, a)
			}
			for _, alias := range a.Aliases {
				if got := reg.Agent(alias); got != a {
					t.Fatalf("alias %q resolves to %v, want %s", alias, got, name)
				}
			}
			if len(a.KillAuthority.Users)+len(a.KillAuthority.Usergroups) == 0 && a.KillAuthority.OnCall == "" {
				t.Fatalf("agent %s passed with no kill authority", name)
			}
			reg.Suggest(name, 3)
			_ = a.Public()
		}
	})
}
