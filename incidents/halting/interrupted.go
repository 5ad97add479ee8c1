package halting

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/reins-oss/reins/incidents"
)

// interruptedMargin is added to the longest a halt can take before one still
// "requested" counts as interrupted: the result's own write may queue.
const interruptedMargin = 15 * time.Second

// haltMaxDuration is the longest runHalt can take from its record to its
// result: every adapter attempt with its backoff, then every read-back.
func (s *Service) haltMaxDuration() time.Duration {
	d := time.Duration(s.core.Config().HaltAttempts) * s.core.Config().HaltTimeout
	for n := 1; n < s.core.Config().HaltAttempts; n++ {
		d += haltBackoff << (n - 1)
	}
	for _, v := range verifyDelays {
		d += v + s.core.Config().HaltTimeout
	}
	return d
}

// FinishInterruptedHalts settles the halts a process left "requested" when it
// died between recording a halt and recording its result. Such a halt may
// well have taken effect: the adapter answered and the kill flag mirrored it,
// so a breach judged after the restart finds the session halted and does not
// halt it again, while the record would say "requested" for ever. Each one
// older than any halt can take is read back at its adapter: verified if the
// state it asked for holds, failed (re-paging, as any failed halt does) if
// not, or failed as superseded when a later verified record for the same
// target settled it since, so one halt is never counted twice. It returns
// how many it settled.
//
// It reads every halt: halts are rare (people and max_auto_halts_per_minute
// bound them), and the store needs no query of its own for this.
func (s *Service) FinishInterruptedHalts(ctx context.Context, now time.Time) (int, error) {
	all, err := s.core.Store().FindHalts(ctx, "", 0)
	if err != nil {
		return 0, fmt.Errorf("find halts: %w", err)
	}
	cutoff := now.Add(-s.haltMaxDuration() - interruptedMargin)
	settled := 0
	for _, h := range all {
		if h.Status != incidents.HaltRequested || !h.RequestedAt.Before(cutoff) {
			continue
		}
		if err := s.finishInterrupted(ctx, h, all); err != nil {
			return settled, fmt.Errorf("settle interrupted halt %d of %s: %w", h.ID, h.Agent, err)
		}
		settled++
	}
	return settled, nil
}

func (s *Service) finishInterrupted(ctx context.Context, h *incidents.Halt, all []*incidents.Halt) error {
	finished := s.core.Now()
	h.FinishedAt = &finished
	const interrupted = "interrupted: reins stopped before this halt finished"
	ag, err := s.core.LookupAgent(h.Agent)
	if err != nil {
		h.Status, h.Error = incidents.HaltFailed, interrupted+", and the agent is no longer in reins.yaml"
		return s.core.Store().UpdateHalt(ctx, h)
	}
	if later := supersededBy(h, all); later != nil {
		h.Status, h.Error = incidents.HaltFailed, incidents.Clip(fmt.Sprintf("%s; %s #%d, verified since, settled %s", interrupted,
			later.Action, later.ID, haltTarget(h.Agent, h.Sessions)), maxHaltError)
		return s.recordHaltResult(ctx, h, ag)
	}
	req := incidents.HaltRequest{Agent: ag, Action: h.Action, Sessions: h.Sessions, Allow: h.Allow, Rate: h.Rate,
		IncidentID: h.IncidentID, HaltID: h.ID, Reason: h.Reason, Actor: h.Actor}
	h.Status = incidents.HaltVerified
	if s.core.Halter() == nil {
		h.Status, h.Error = incidents.HaltFailed, interrupted+", and no halt adapters are configured to read it back"
	} else if verr := s.verify(ctx, req); verr != nil {
		h.Status, h.Error = incidents.HaltFailed, incidents.Clip(interrupted+"; read back: "+verr.Error(), maxHaltError)
	}
	s.core.Log().Warn("settled a halt a stopped reins left unfinished", "halt", h.ID, "agent", h.Agent,
		"action", h.Action, "status", h.Status)
	if err := s.recordHaltResult(ctx, h, ag); err != nil {
		return err
	}
	s.core.Metrics().HaltFinished(h)
	return nil
}

// supersededBy returns a verified record requested after h whose target
// covers h's: the whole agent, or every session h named.
func supersededBy(h *incidents.Halt, all []*incidents.Halt) *incidents.Halt {
	for _, o := range all {
		if o.Agent != h.Agent || o.Status != incidents.HaltVerified || o.ID == h.ID {
			continue
		}
		if o.RequestedAt.Before(h.RequestedAt) || (o.RequestedAt.Equal(h.RequestedAt) && o.ID < h.ID) {
			continue
		}
		if len(o.Sessions) == 0 {
			return o
		}
		if len(h.Sessions) > 0 && !slices.ContainsFunc(h.Sessions, func(id string) bool { return !slices.Contains(o.Sessions, id) }) {
			return o
		}
	}
	return nil
}
