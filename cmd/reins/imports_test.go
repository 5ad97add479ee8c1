package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The domain packages import no SDK and never reach for the packages that
// implement their ports (docs/architecture.md: ownership ◀ incidents ◀ {bot, integrations} ◀ cmd).
func TestDomainImportsNoSDK(t *testing.T) {
	forbidden := []string{
		"github.com/slack-go/", "github.com/PagerDuty/", "github.com/lib/pq", "modernc.org/sqlite",
		"github.com/jmoiron/sqlx", "github.com/pressly/goose",
		"github.com/reins-oss/reins/bot", "github.com/reins-oss/reins/integrations",
		"github.com/reins-oss/reins/migrations", "github.com/reins-oss/reins/cmd",
		"github.com/reins-oss/reins/incidents/sqlstore",
	}
	for _, pkg := range []string{"github.com/reins-oss/reins/incidents", "github.com/reins-oss/reins/incidents/sessions",
		"github.com/reins-oss/reins/incidents/outbox", "github.com/reins-oss/reins/incidents/guard", "github.com/reins-oss/reins/ownership",
		"github.com/reins-oss/reins/incidents/jobs", "github.com/reins-oss/reins/incidents/groupcommit", "github.com/reins-oss/reins/incidents/words",
		"github.com/reins-oss/reins/incidents/intake", "github.com/reins-oss/reins/incidents/aftermath",
		"github.com/reins-oss/reins/incidents/halting"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
			if pkg == "github.com/reins-oss/reins/ownership" && dep == "github.com/reins-oss/reins/incidents" {
				t.Errorf("ownership depends on incidents: the arrow points the other way")
			}
			// The outbox knows lanes, leases and retries, not what an item
			// does: incidents registers its handlers, never the reverse.
			if pkg == "github.com/reins-oss/reins/incidents/outbox" &&
				(dep == "github.com/reins-oss/reins/incidents" || dep == "github.com/reins-oss/reins/ownership") {
				t.Errorf("incidents/outbox depends on %s: it must know no domain", dep)
			}
			if dep == "github.com/reins-oss/reins/incidents/guard" && pkg != "github.com/reins-oss/reins/incidents/guard" {
				t.Errorf("%s depends on the guard: the guard imports incidents, sessions and ownership, not the reverse", pkg)
			}
		}
	}
}

// The layering docs/architecture.md draws, checked for every package of the
// module, so a new package is covered the day it appears: each package's
// place is the first rule its path matches, and it may import (directly or
// not) only what its rule allows of this module.
func TestLayering(t *testing.T) {
	const mod = "github.com/reins-oss/reins/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "github.com/reins-oss/reins/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	type rule struct {
		pkg     string   // a path, or a prefix ending in "/"
		allowed []string // paths or prefixes ending in "/" it may depend on; "self/" is its own subpackages
	}
	domain := []string{"ownership", "incidents", "incidents/outbox", "incidents/groupcommit", "incidents/words", "incidents/sessions"}
	// The use cases, each its own package on the core.
	useCases := []string{"incidents/intake", "incidents/aftermath", "incidents/halting"}
	rules := []rule{
		// Leaves know no domain: the outbox, group commit, the words, migrations.
		{"incidents/outbox", nil}, {"incidents/groupcommit", nil}, {"incidents/words", nil}, {"migrations", nil},
		{"migrations/dbtest", []string{"migrations"}},
		{"ownership", nil},
		// The session record knows the registry, not incidents.
		{"incidents/sessions", []string{"ownership"}},
		// The core knows no use case built on it.
		{"incidents", []string{"ownership", "incidents/outbox", "incidents/groupcommit", "incidents/words", "incidents/sessions"}},
		// A use case knows the core, never another use case.
		{"incidents/intake", domain}, {"incidents/aftermath", domain}, {"incidents/halting", domain},
		{"incidents/guard", domain},
		{"incidents/jobs", domain},
		// The store implements the ports (the guard's too) over migrations.
		{"incidents/sqlstore", append([]string{"migrations", "incidents/guard"}, domain...)},
		{"incidents/incidentstest", append(append([]string{"incidents/guard"}, useCases...), domain...)},
		// Integrations know the domain and the one HTTP error writer, never each other, bot or the store;
		// of the use cases only the aftermath, for the postmortem's Markdown (the rest reach them through interfaces).
		{"integrations/api", append([]string{"incidents/aftermath"}, domain...)},
		{"integrations/", append([]string{"integrations/api", "incidents/aftermath", "self/"}, domain...)},
		{"bot/slackfake", nil},
		{"bot", domain},
		{"cmd/", []string{""}}, // wiring: everything
	}
	allows := func(r rule, pkg, dep string) bool {
		for _, a := range r.allowed {
			switch {
			case a == "self/":
				// integrations/<name>/... may use integrations/<name>/...
				parts := strings.SplitN(pkg, "/", 3)
				if len(parts) >= 2 && strings.HasPrefix(dep+"/", parts[0]+"/"+parts[1]+"/") {
					return true
				}
			case a == "" || dep == a || (strings.HasSuffix(a, "/") && strings.HasPrefix(dep, a)):
				return true
			}
		}
		return false
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		var r *rule
		for i := range rules {
			if rules[i].pkg == pkg || (strings.HasSuffix(rules[i].pkg, "/") && strings.HasPrefix(pkg, rules[i].pkg)) {
				r = &rules[i]
				break
			}
		}
		if r == nil {
			t.Errorf("package %s has no place in the layering: add its rule here and its row in docs/architecture.md", pkg)
			continue
		}
		seen++
		for _, dep := range fields[1:] {
			if !strings.HasPrefix(dep, mod) {
				continue
			}
			if dep := strings.TrimPrefix(dep, mod); !allows(*r, pkg, dep) {
				t.Errorf("%s depends on %s, which its layer may not", pkg, dep)
			}
		}
	}
	if seen < 20 {
		t.Fatalf("only %d packages listed: go list did not see the module", seen)
	}
}
