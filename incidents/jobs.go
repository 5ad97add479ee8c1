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
	// drillFresh is how recent a drill must be for RunDrill to return it
	// instead of drilling again: two replicas firing the same cron minute.
	drillFresh = 50 * time.Second
	// drillStale is the age after which a passed drill no longer counts as
	// a tested kill switch.
	drillStale = 30 * 24 * time.Hour
	// incidentStale is the age after which an open incident is listed by
	// the ownership audit.
	incidentStale = 7 * 24 * time.Hour
	PageSize      = 200
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

// RunDrill proves an agent's kill switch works without halting it, records
// the result with an audit entry, and announces a failure to the agent's
// owners and the governance channel. A drill of the same agent recorded in
// the last 50 seconds is returned instead of drilling again.
func (s *Service) RunDrill(ctx context.Context, agent string, now time.Time) (*DrillResult, error) {
	ag, err := s.LookupAgent(agent)
	if err != nil {
		return nil, err
	}
	if recent, err := s.recentDrill(ctx, ag.Name, now); err != nil || recent != nil {
		return recent, err
	}
	// Claim this minute's drill, so a replica that gets here before the
	// first one recorded its result does not drill too.
	first, err := s.store.Remember(ctx, fmt.Sprintf("job/drill/%s/%d", ag.Name, now.Truncate(time.Minute).Unix()), now)
	if err != nil {
		return nil, fmt.Errorf("claim drill of %s: %w", ag.Name, err)
	}
	if !first {
		return s.sameMinuteDrill(ctx, ag.Name, now)
	}
	res := &DrillResult{Agent: ag.Name, Adapter: ag.Halt.Adapter, At: now, OK: true, Actor: System}
	if derr := s.drill(ctx, ag); derr != nil {
		res.OK, res.Error = false, Clip(derr.Error(), maxHaltError)
	}
	err = s.RetryTx(ctx, func(q Queries) error {
		r := *res
		if err := q.RecordDrill(ctx, &r); err != nil {
			return fmt.Errorf("record drill of %s: %w", ag.Name, err)
		}
		res.ID = r.ID
		detail := "drill passed (" + ag.Halt.Adapter + ")"
		if !res.OK {
			detail = "drill failed (" + ag.Halt.Adapter + "): " + res.Error
		}
		if err := q.AppendAudit(ctx, &AuditEntry{At: now, Actor: System, Action: "drill", Agent: ag.Name,
			Allowed: res.OK, Detail: detail}); err != nil {
			return fmt.Errorf("audit drill of %s: %w", ag.Name, err)
		}
		return s.enqueueDrillReport(ctx, q, ag, res)
	})
	if err != nil {
		return nil, err
	}
	result := "passed"
	if !res.OK {
		result = "failed"
	}
	s.metrics.drills.WithLabelValues(ag.Name, result).Inc()
	s.Kick()
	return res, nil
}

func (s *Service) recentDrill(ctx context.Context, agent string, now time.Time) (*DrillResult, error) {
	last, err := s.store.LastDrills(ctx)
	if err != nil {
		return nil, fmt.Errorf("load drills: %w", err)
	}
	if d := last[agent]; d != nil && now.Sub(d.At) < drillFresh && now.Sub(d.At) > -drillFresh {
		return d, nil
	}
	return nil, nil
}

// sameMinuteDrill returns the drill another run recorded this minute, or
// ECONFLICT while that run is still drilling.
func (s *Service) sameMinuteDrill(ctx context.Context, agent string, now time.Time) (*DrillResult, error) {
	last, err := s.store.LastDrills(ctx)
	if err != nil {
		return nil, fmt.Errorf("load drills: %w", err)
	}
	if d := last[agent]; d != nil && d.At.Truncate(time.Minute).Equal(now.Truncate(time.Minute)) {
		return d, nil
	}
	return nil, Errorf(ECONFLICT, "A drill of %s is already running.", agent)
}

func (s *Service) drill(ctx context.Context, ag *ownership.Agent) error {
	if s.halter == nil {
		return fmt.Errorf("no halt adapters are configured")
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.HaltTimeout)
	defer cancel()
	return s.halter.Drill(dctx, ag)
}

// enqueueDrillReport tells the governance channel how a drill went and, when
// it failed, the agent's team channel too, mentioning its kill authority
// and the RACI responsible.
func (s *Service) enqueueDrillReport(ctx context.Context, q outbox.Store, ag *ownership.Agent, res *DrillResult) error {
	if s.chat == nil {
		return nil
	}
	reg := s.Registry()
	gov := reg.Slack.GovernanceChannel
	key := func(where string) string { return fmt.Sprintf("drill/%s/%d/%s", ag.Name, res.ID, where) }
	fields := []Field{{Label: "Adapter", Value: ag.Halt.Adapter}, {Label: "At", Value: res.At.UTC().Format("2006-01-02 15:04 UTC")}}
	if res.OK {
		if gov == "" {
			return nil
		}
		m := Message{Channel: gov, Style: StyleSuccess, Title: "Kill-switch drill passed for " + ag.Name, Fields: fields}
		return s.Enqueue(ctx, q, 0, outbox.LaneChat, KindPost, key("governance"), m)
	}
	m := Message{Style: StyleDanger, Title: "Kill-switch drill FAILED for " + ag.Name + ": it may not halt when needed",
		Text:    "Error: " + res.Error + "\nFix the halt adapter settings in reins.yaml (or the agent's control endpoint), then run the drill again.",
		Fields:  fields,
		Mention: Mentionable(ag.KillAuthority.Users, ag.KillAuthority.Usergroups, ag.RACI.Responsible)}
	team := ""
	if t := reg.Teams[ag.Team]; t != nil {
		team = t.SlackChannel
	}
	for _, ch := range Dedupe([]string{team, gov}) {
		m.Channel = ch
		if err := s.Enqueue(ctx, q, 0, outbox.LaneChat, KindPost, key(ch), m); err != nil {
			return err
		}
	}
	return nil
}
