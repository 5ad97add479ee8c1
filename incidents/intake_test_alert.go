package incidents

import (
	"context"
	"fmt"
	"strings"
)

// TestTitlePrefix starts the title of every incident a test alert opens, so
// the test shows as one wherever the title goes: the channel name, the page
// summary, the web view, the CLI.
const TestTitlePrefix = "TEST (not a real incident): "

// testGroupPrefix starts the group key of a test incident: it collects only
// its own test alert, never a real alert, halt or declaration of its agent
// (those go to the agent's incident of group key "").
const testGroupPrefix = "test:"

// ingestTests opens one incident per test alert (`reins test-alert`), of
// its own: a test never joins, changes or pages for a real incident. The
// test goes the whole way a real incident goes (channel, page to the
// agent's kill authority), marked as a test there. A repeat of the same
// test alert (same fingerprint) finds its test incident again.
func (s *Service) ingestTests(ctx context.Context, tests []Alert) (IngestResult, error) {
	var res IngestResult
	reg := s.RegistryOrEmpty()
	for i := range tests {
		a := tests[i]
		if a.Status == AlertResolved {
			continue // a test incident is resolved by hand, as the CLI says
		}
		ag := FindAgent(reg, a.Agent)
		if ag == nil {
			_, err := s.LookupAgent(a.Agent)
			return res, Errorf(EINVALID, "test alert: %s", ErrorMessage(err))
		}
		now := s.clock.Now()
		normaliseAlert(&a, now)
		inc := newIncident(ag.Name, ag, &a, now)
		inc.GroupKey = testGroupPrefix + a.Fingerprint
		inc.Title = Clip(TestTitlePrefix+strings.TrimPrefix(a.Title, TestTitlePrefix), maxTitle)
		var created bool
		err := s.RetryTx(ctx, func(q Queries) error {
			var err error
			c := *inc
			if created, err = q.OpenIncident(ctx, &c); err != nil {
				return fmt.Errorf("open test incident for %s: %w", ag.Name, err)
			}
			if created {
				text := fmt.Sprintf("TEST incident opened for %s by a test alert (`reins test-alert`), not a real problem: %s. "+
					"No real incident was touched. Resolve it when the channel and the page have been checked.", ag.Name, a.Summary)
				if err := s.startIncident(ctx, q, &c, ag, System, text); err != nil {
					return err
				}
			}
			al := a
			al.IncidentID = c.ID
			prev, err := q.RecordAlerts(ctx, []*Alert{&al})
			if err != nil {
				return fmt.Errorf("record test alert in incident %d: %w", c.ID, err)
			}
			if prev[0] == "" {
				res.New++
			} else {
				res.Repeated++
			}
			*inc = c
			return nil
		})
		if err != nil {
			return res, err
		}
		res.Incidents = append(res.Incidents, inc.ID)
		if created {
			res.Opened++
			s.IncidentOpened(inc.ID, inc.Agent, true, "source", inc.Source, "severity", inc.Severity, "test", true)
			s.Kick()
		}
	}
	return res, nil
}

// IsTest says whether inc was opened by a test alert.
func (inc *Incident) IsTest() bool { return strings.HasPrefix(inc.GroupKey, testGroupPrefix) }
