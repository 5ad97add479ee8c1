package halting

import (
	"context"
	"fmt"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/ownership"
)

// drillFresh is how recent a drill must be for RunDrill to return it
// instead of drilling again: two replicas firing the same cron minute.
const drillFresh = 50 * time.Second

// RunDrill proves an agent's kill switch works without halting it, records
// the result with an audit entry, and announces a failure to the agent's
// owners and the governance channel. A drill of the same agent recorded in
// the last 50 seconds is returned instead of drilling again.
func (s *Drills) RunDrill(ctx context.Context, agent string, now time.Time) (*incidents.DrillResult, error) {
	ag, err := s.core.LookupAgent(agent)
	if err != nil {
		return nil, err
	}
	if recent, err := s.recentDrill(ctx, ag.Name, now); err != nil || recent != nil {
		return recent, err
	}
	// Claim this minute's drill, so a replica that gets here before the
	// first one recorded its result does not drill too.
	first, err := s.core.Store().Remember(ctx, fmt.Sprintf("job/drill/%s/%d", ag.Name, now.Truncate(time.Minute).Unix()), now)
	if err != nil {
		return nil, fmt.Errorf("claim drill of %s: %w", ag.Name, err)
	}
	if !first {
		return s.sameMinuteDrill(ctx, ag.Name, now)
	}
	res := &incidents.DrillResult{Agent: ag.Name, Adapter: ag.Halt.Adapter, At: now, OK: true, Actor: incidents.System}
	if derr := s.drill(ctx, ag); derr != nil {
		res.OK, res.Error = false, incidents.Clip(derr.Error(), maxHaltError)
	}
	err = s.core.RetryTx(ctx, func(q incidents.Queries) error {
		r := *res
		if err := q.RecordDrill(ctx, &r); err != nil {
			return fmt.Errorf("record drill of %s: %w", ag.Name, err)
		}
		res.ID = r.ID
		detail := "drill passed (" + ag.Halt.Adapter + ")"
		if !res.OK {
			detail = "drill failed (" + ag.Halt.Adapter + "): " + res.Error
		}
		if err := q.AppendAudit(ctx, &incidents.AuditEntry{At: now, Actor: incidents.System, Action: "drill", Agent: ag.Name,
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
	s.core.Metrics().DrillRan(ag.Name, result)
	s.core.Kick()
	return res, nil
}

func (s *Drills) recentDrill(ctx context.Context, agent string, now time.Time) (*incidents.DrillResult, error) {
	last, err := s.core.Store().LastDrills(ctx)
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
func (s *Drills) sameMinuteDrill(ctx context.Context, agent string, now time.Time) (*incidents.DrillResult, error) {
	last, err := s.core.Store().LastDrills(ctx)
	if err != nil {
		return nil, fmt.Errorf("load drills: %w", err)
	}
	if d := last[agent]; d != nil && d.At.Truncate(time.Minute).Equal(now.Truncate(time.Minute)) {
		return d, nil
	}
	return nil, incidents.Errorf(incidents.ECONFLICT, "A drill of %s is already running.", agent)
}

func (s *Drills) drill(ctx context.Context, ag *ownership.Agent) error {
	if s.core.Halter() == nil {
		return fmt.Errorf("no halt adapters are configured")
	}
	dctx, cancel := context.WithTimeout(ctx, s.core.Config().HaltTimeout)
	defer cancel()
	return s.core.Halter().Drill(dctx, ag)
}

// enqueueDrillReport tells the governance channel how a drill went and, when
// it failed, the agent's team channel too, mentioning its kill authority
// and the RACI responsible.
func (s *Drills) enqueueDrillReport(ctx context.Context, q outbox.Store, ag *ownership.Agent, res *incidents.DrillResult) error {
	if s.core.Chat() == nil {
		return nil
	}
	reg := s.core.Registry()
	gov := reg.Slack.GovernanceChannel
	key := func(where string) string { return fmt.Sprintf("drill/%s/%d/%s", ag.Name, res.ID, where) }
	fields := []incidents.Field{{Label: "Adapter", Value: ag.Halt.Adapter}, {Label: "At", Value: res.At.UTC().Format("2006-01-02 15:04 UTC")}}
	if res.OK {
		if gov == "" {
			return nil
		}
		m := incidents.Message{Channel: gov, Style: incidents.StyleSuccess, Title: "Kill-switch drill passed for " + ag.Name, Fields: fields}
		return s.core.Enqueue(ctx, q, 0, outbox.LaneChat, incidents.KindPost, key("governance"), m)
	}
	m := incidents.Message{Style: incidents.StyleDanger, Title: "Kill-switch drill FAILED for " + ag.Name + ": it may not halt when needed",
		Text:    "Error: " + res.Error + "\nFix the halt adapter settings in reins.yaml (or the agent's control endpoint), then run the drill again.",
		Fields:  fields,
		Mention: incidents.Mentionable(ag.KillAuthority.Users, ag.KillAuthority.Usergroups, ag.RACI.Responsible)}
	team := ""
	if t := reg.Teams[ag.Team]; t != nil {
		team = t.SlackChannel
	}
	for _, ch := range incidents.Dedupe([]string{team, gov}) {
		m.Channel = ch
		if err := s.core.Enqueue(ctx, q, 0, outbox.LaneChat, incidents.KindPost, key(ch), m); err != nil {
			return err
		}
	}
	return nil
}

// Drills is the scheduled drills of the agents' kill switches: each calls
// the adapter's Drill and reports a failure to the agent's owners.
type Drills struct {
	core *incidents.Core
}

// NewDrills returns the drills of the incidents core serves.
func NewDrills(core *incidents.Core) *Drills { return &Drills{core: core} }
