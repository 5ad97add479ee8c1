package web_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/web"
)

// nobodyHolds is the incident source with kill authority resolving to nobody.
type nobodyHolds struct{ web.IncidentSource }

func (n nobodyHolds) Status(ctx context.Context, agent string) ([]incidents.AgentStatus, error) {
	sts, err := n.IncidentSource.Status(ctx, agent)
	for i := range sts {
		sts[i].Holders = nil
	}
	return sts, err
}

// The agents page says plainly that no one may halt right now, not
// "nobody resolved".
func TestAgentsPageNobodyMayHalt(t *testing.T) {
	s := newSite(t, func(c *web.Config) { c.Incidents = nobodyHolds{c.Incidents} })
	res, err := s.signedIn().Get(s.srv.URL + "/agents")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if strings.Contains(string(b), "nobody resolved") || !strings.Contains(string(b), "no one right now") {
		t.Errorf("/agents with no holders:\n%s", b)
	}
}
