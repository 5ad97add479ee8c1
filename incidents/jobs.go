package incidents

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/incidents/words"
	"github.com/reins-oss/reins/ownership"
)

const (
	// drillStale is the age after which a passed drill no longer counts as
	// a tested kill switch.
	drillStale = 30 * 24 * time.Hour
	// incidentStale is the age after which an open incident is listed by
	// the ownership audit.
	incidentStale = 7 * 24 * time.Hour
	// PageSize is how many incidents a job reads at a time.
	PageSize = 200
)

// AuditOwnership posts the weekly ownership audit to the governance channel
// and records it in the audit log: agents without a tested kill switch,
// kill authority that resolves to nobody now, look-up sources that are
// down, and incidents open for more than a week. A second run on the same
// day does nothing.
func (s *Service) AuditOwnership(ctx context.Context, now time.Time) error {
	reg := s.Registry()
	drills, err := s.store.LastDrills(ctx)
	if err != nil {
		return fmt.Errorf("load drills: %w", err)
	}
	var findings []string
	for _, name := range slices.Sorted(maps.Keys(reg.Agents)) {
		findings = append(findings, s.agentFindings(ctx, reg.Agents[name], drills[name], now)...)
	}
	stale, err := s.staleIncidents(ctx, now)
	if err != nil {
		return err
	}
	findings = append(findings, stale...)
	summary := fmt.Sprintf("Ownership audit: %s, %s", words.Count(len(reg.Agents), "agent"), words.Count(len(findings), "finding"))
	gov := reg.Slack.GovernanceChannel
	if gov == "" {
		s.log.Info("ownership audit not posted: slack.governance_channel is not set", "findings", len(findings))
	}
	day := now.UTC().Format("2006-01-02")
	return s.RetryTx(ctx, func(q Queries) error {
		first, err := q.Remember(ctx, "job/audit_ownership/"+day, now)
		if err != nil || !first {
			return err
		}
		entry := &AuditEntry{At: now, Actor: System, Action: "ownership_audit", Allowed: true,
			Detail: Clip(summary+": "+strings.Join(findings, "; "), 2000)}
		if err := q.AppendAudit(ctx, entry); err != nil {
			return fmt.Errorf("record ownership audit: %w", err)
		}
		if gov == "" || s.chat == nil {
			return nil
		}
		m := Message{Channel: gov, Style: StyleInfo, Title: summary}
		if len(findings) == 0 {
			m.Style, m.Text = StyleSuccess, "Every agent has a tested kill switch and someone holding kill authority."
		} else {
			m.Style, m.Text = StyleWarning, "• "+strings.Join(findings, "\n• ")
		}
		return s.Enqueue(ctx, q, 0, outbox.LaneChat, KindPost, "audit/ownership/"+day, m)
	})
}

// agentFindings lists what the audit finds wrong with one agent.
func (s *Service) agentFindings(ctx context.Context, ag *ownership.Agent, last *DrillResult, now time.Time) []string {
	var out []string
	switch {
	case ag.Drill == "":
		out = append(out, ag.Name+": no drill schedule: no tested kill switch")
	case last == nil:
		out = append(out, ag.Name+": never drilled: no tested kill switch")
	case !last.OK:
		out = append(out, fmt.Sprintf("%s: last drill failed at %s (%s): no tested kill switch",
			ag.Name, last.At.UTC().Format("2006-01-02 15:04 UTC"), last.Error))
	case now.Sub(last.At) > drillStale:
		out = append(out, fmt.Sprintf("%s: last drill is %s old: no tested kill switch",
			ag.Name, words.Count(int(now.Sub(last.At)/(24*time.Hour)), "day")))
	}
	if s.auth != nil {
		holders, unavailable := s.auth.Holders(ctx, ag)
		if len(holders) == 0 {
			out = append(out, ag.Name+": kill authority resolves to nobody right now")
		}
		if len(unavailable) > 0 {
			out = append(out, ag.Name+": could not ask "+strings.Join(unavailable, ", ")+" who holds kill authority")
		}
	}
	return out
}

func (s *Service) staleIncidents(ctx context.Context, now time.Time) ([]string, error) {
	var out []string
	for offset := 0; ; offset += PageSize {
		page, err := s.store.FindIncidents(ctx, IncidentFilter{Status: StatusOpen, Limit: PageSize, Offset: offset})
		if err != nil {
			return nil, fmt.Errorf("find open incidents: %w", err)
		}
		for _, inc := range page {
			if age := now.Sub(inc.CreatedAt); age > incidentStale {
				out = append(out, fmt.Sprintf("incident #%d (%s) has been open for %s", inc.ID, inc.Agent, words.Count(int(age/(24*time.Hour)), "day")))
			}
		}
		if len(page) < PageSize {
			return out, nil
		}
	}
}
