package intake

import (
	"context"
	"fmt"
	"strings"

	"github.com/reins-oss/reins/incidents"
)

// ingestTests opens one incident per test alert (`reins test-alert`), of
// its own: a test never joins, changes or pages for a real incident. The
// test goes the whole way a real incident goes (channel, page to the
// agent's kill authority), marked as a test there. A repeat of the same
// test alert (same fingerprint) finds its test incident again.
func (s *Service) ingestTests(ctx context.Context, tests []incidents.Alert) (incidents.IngestResult, error) {
	var res incidents.IngestResult
	reg := s.core.Registry()
	for i := range tests {
		a := tests[i]
		if a.Status == incidents.AlertResolved {
			continue // a test incident is resolved by hand, as the CLI says
		}
		ag := incidents.FindAgent(reg, a.Agent)
		if ag == nil {
			_, err := s.core.LookupAgent(a.Agent)
			return res, incidents.Errorf(incidents.EINVALID, "test alert: %s", incidents.ErrorMessage(err))
		}
		now := s.core.Now()
		normaliseAlert(&a, now)
		inc := newIncident(ag.Name, ag, &a, now)
		inc.GroupKey = incidents.TestGroupPrefix + a.Fingerprint
		inc.Title = incidents.Clip(incidents.TestTitlePrefix+strings.TrimPrefix(a.Title, incidents.TestTitlePrefix), incidents.MaxTitle)
		var created bool
		err := s.core.RetryTx(ctx, func(q incidents.Queries) error {
			var err error
			c := *inc
			if created, err = q.OpenIncident(ctx, &c); err != nil {
				return fmt.Errorf("open test incident for %s: %w", ag.Name, err)
			}
			if created {
				text := fmt.Sprintf("TEST incident opened for %s by a test alert (`reins test-alert`), not a real problem: %s. "+
					"No real incident was touched. Resolve it when the channel and the page have been checked.", ag.Name, a.Summary)
				if err := s.core.StartIncident(ctx, q, &c, ag, incidents.System, text); err != nil {
					return err
				}
			}
			al := a
			al.IncidentID = c.ID
			prev, err := q.RecordAlerts(ctx, []*incidents.Alert{&al})
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
			s.core.IncidentOpened(inc.ID, inc.Agent, true, "source", inc.Source, "severity", inc.Severity, "test", true)
			s.core.Kick()
		}
	}
	return res, nil
}
