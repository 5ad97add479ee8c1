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
		"github.com/reins-oss/reins/incidents/outbox", "github.com/reins-oss/reins/incidents/guard", "github.com/reins-oss/reins/ownership"} {
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
