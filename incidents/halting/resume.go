package halting

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/ownership"
)

// The resume gate (docs/containment.md): lifting a containment may need
// approvals from distinct people with kill authority, and may first put the
// target on probation (restricted or throttled for a while) instead of
// running. A breach during probation re-contains at once (AutoHalt); a
// probation that ends quietly returns the target to running (EndProbations).

// gateResume lifts the containment of cmd's target through ag's gate: the
// approval is recorded (audited, on the timeline, in the channel) and, when
// there are enough, the resume (or the probation) runs. Too few approvals is
// ECONFLICT saying who approved when and how many more are needed.
func (s *Service) gateResume(ctx context.Context, cmd incidents.HaltCommand, ag *ownership.Agent) (*incidents.Halt, error) {
	sessions := incidents.Dedupe(cmd.Sessions)
	halts, err := s.core.Store().FindHalts(ctx, ag.Name, 0)
	if err != nil {
		return nil, fmt.Errorf("load halts of %s: %w", ag.Name, err)
	}
	last := containingHalt(halts, sessions)
	if last == nil {
		return s.runHalt(ctx, cmd, ag) // nothing contained: an idempotent resume
	}
	gate := ag.Resume
	needed := gate.Needed(last.Actor.Kind == incidents.ActorPolicy)
	probation := gate.Probation.For > 0 && last.ProbationUntil == nil
	if needed <= 1 && !probation {
		return s.runHalt(ctx, cmd, ag)
	}
	target := strings.Join(slices.Sorted(slices.Values(sessions)), ",")
	approvals, err := s.approve(ctx, cmd, ag, last, target, needed)
	if err != nil {
		return nil, err
	}
	if len(approvals) < needed {
		return nil, incidents.Errorf(incidents.ECONFLICT, "%s", pendingText(ag, sessions, approvals, needed, last))
	}
	var h *incidents.Halt
	if probation {
		until := s.core.Now().Add(gate.Probation.For)
		p := incidents.HaltCommand{Action: rungAction(gate.Probation.As), Agent: ag.Name, Sessions: sessions, Actor: cmd.Actor,
			Allow: gate.Probation.Allow, Rate: gate.Probation.Rate, ProbationUntil: &until, IncidentID: cmd.IncidentID,
			Reason: fmt.Sprintf("resume approved by %s: on probation (%s) until %s UTC; running after that if no SLA breaches",
				approverList(approvals), gate.Probation.As, until.UTC().Format("15:04:05"))}
		h, err = s.runHalt(ctx, p, ag)
	} else {
		cmd.Reason = strings.TrimSpace(cmd.Reason + " (resume approved by " + approverList(approvals) + ")")
		h, err = s.runHalt(ctx, cmd, ag)
	}
	if err != nil || h.Status != incidents.HaltVerified {
		return h, err // the approvals stay: the next try needs no new ones
	}
	if err := s.core.Store().UseResumeApprovals(ctx, last.ID, target, h.ID); err != nil {
		return h, fmt.Errorf("mark resume approvals used: %w", err)
	}
	return h, nil
}

// approve records cmd.Actor's approval of lifting last (once per person),
// with its audit entry, timeline event and channel message when it does not
// yet make enough, and returns every unused approval.
func (s *Service) approve(ctx context.Context, cmd incidents.HaltCommand, ag *ownership.Agent, last *incidents.Halt, target string, needed int) ([]incidents.ResumeApproval, error) {
	var approvals []incidents.ResumeApproval
	err := s.core.RetryTx(ctx, func(q incidents.Queries) error {
		now := s.core.Now()
		a := &incidents.ResumeApproval{Agent: ag.Name, Target: target, HaltID: last.ID, Actor: cmd.Actor, ApprovedAt: now}
		added, err := q.AddResumeApproval(ctx, a)
		if err != nil {
			return err
		}
		if approvals, err = q.ResumeApprovals(ctx, last.ID, target); err != nil {
			return err
		}
		if !added {
			return nil // the same person again: nothing new to say or count
		}
		detail := fmt.Sprintf("approved resuming %s (%d of %d approvals)", haltTarget(ag.Name, last.Sessions), len(approvals), needed)
		if err := q.AppendAudit(ctx, &incidents.AuditEntry{At: now, Actor: cmd.Actor, Action: "resume_approved", Agent: ag.Name,
			Allowed: true, Detail: detail}); err != nil {
			return fmt.Errorf("audit resume approval: %w", err)
		}
		if last.IncidentID == 0 || len(approvals) >= needed {
			return nil // the resume itself goes on the timeline
		}
		text := pendingText(ag, splitTarget(target), approvals, needed, last)
		if err := incidents.AppendEvent(ctx, q, last.IncidentID, now, incidents.EventResumeApproved, cmd.Actor, text,
			map[string]any{"halt_id": last.ID, "sessions": splitTarget(target), "approvals": len(approvals), "needed": needed}); err != nil {
			return err
		}
		if s.core.Chat() == nil {
			return nil
		}
		msg := incidents.Message{Style: incidents.StyleInfo, Title: "🔐 " + text, Mention: incidents.Mentionable(ag.KillAuthority.Users, ag.KillAuthority.Usergroups),
			Approve: &incidents.ApproveResume{IncidentID: last.IncidentID, Agent: ag.Name, Sessions: splitTarget(target)}}
		return s.core.Enqueue(ctx, q, last.IncidentID, outbox.LaneChat, incidents.KindPost,
			fmt.Sprintf("inc-%d/resume_approval/%d/%d", last.IncidentID, last.ID, a.ID), msg)
	})
	if err != nil {
		return nil, fmt.Errorf("record resume approval of %s: %w", ag.Name, err)
	}
	return distinctApprovers(approvals), nil
}

// distinctApprovers keeps one approval per person (the store already does;
// this keeps the count honest against any store).
func distinctApprovers(list []incidents.ResumeApproval) []incidents.ResumeApproval {
	seen := map[string]bool{}
	var out []incidents.ResumeApproval
	for _, a := range list {
		if k := a.Actor.Kind + ":" + a.Actor.ID; !seen[k] {
			seen[k] = true
			out = append(out, a)
		}
	}
	return out
}

// pendingText says what the gate still needs, and who approved when: the
// second person sees what the first approved.
func pendingText(ag *ownership.Agent, sessions []string, approvals []incidents.ResumeApproval, needed int, last *incidents.Halt) string {
	var who []string
	for _, a := range approvals {
		who = append(who, fmt.Sprintf("%s at %s UTC", incidents.ActorLabel(a.Actor), a.ApprovedAt.UTC().Format("15:04:05")))
	}
	by := "a person"
	if last.Actor.Kind == incidents.ActorPolicy {
		by = "policy (" + last.Actor.String() + ")"
	}
	cmd := "/agent resume " + ag.Name
	if len(sessions) > 0 {
		cmd += " session " + strings.Join(sessions, " ")
	}
	return fmt.Sprintf("Resuming %s (%s by %s) needs %d approvals from distinct people with kill authority; %d so far: %s. "+
		"Another holder approves with %s (or reins resume, or the API).",
		haltTarget(ag.Name, sessions), last.Action, by, needed, len(approvals), strings.Join(who, ", "), cmd)
}

func approverList(list []incidents.ResumeApproval) string {
	var names []string
	for _, a := range list {
		names = append(names, incidents.ActorLabel(a.Actor))
	}
	return strings.Join(names, ", ")
}

func splitTarget(target string) []string {
	if target == "" {
		return nil
	}
	return strings.Split(target, ",")
}

// containingHalt is the verified halt, restriction or throttle in force for
// the target (the agent as a whole without sessions, else the first named
// session, or the agent-wide one covering it), nil when it runs freely.
func containingHalt(newestFirst []*incidents.Halt, sessions []string) *incidents.Halt {
	var agent *incidents.Halt
	own := map[string]*incidents.Halt{}
	for _, h := range slices.Backward(newestFirst) {
		if h.Status != incidents.HaltVerified {
			continue
		}
		switch {
		case h.Action == incidents.ActionResume && len(h.Sessions) == 0:
			agent, own = nil, map[string]*incidents.Halt{}
		case len(h.Sessions) == 0:
			agent = h
		case h.Action == incidents.ActionResume:
			for _, id := range h.Sessions {
				delete(own, id)
			}
		default:
			for _, id := range h.Sessions {
				own[id] = h
			}
		}
	}
	if len(sessions) == 0 {
		return agent
	}
	for _, id := range sessions {
		if h := own[id]; h != nil {
			return h
		}
	}
	return agent
}

// onProbation returns the probation in force for a breach of sessions (or
// of the agent), nil when none.
func (s *Service) onProbation(ctx context.Context, ag *ownership.Agent, sessions []string) (*incidents.Halt, error) {
	if ag.Resume.Probation.For <= 0 {
		return nil, nil
	}
	halts, err := s.core.Store().FindHalts(ctx, ag.Name, 0)
	if err != nil {
		return nil, fmt.Errorf("load halts of %s: %w", ag.Name, err)
	}
	h := containingHalt(halts, sessions)
	if h == nil || h.ProbationUntil == nil || !s.core.Now().Before(*h.ProbationUntil) {
		return nil, nil
	}
	return h, nil
}

// recontain halts what was on probation when a breach comes during it: at
// once, whatever the SLA's rung, and says so.
func (s *Policy) recontain(ctx context.Context, cmd incidents.AutoHaltCommand, ag *ownership.Agent, p *incidents.Halt, reason string) (incidents.AutoHaltOutcome, error) {
	action := ownership.OnBreachHaltSession
	if len(p.Sessions) == 0 {
		action = ownership.OnBreachHaltAgent
	}
	text := fmt.Sprintf("breach during probation (until %s UTC): re-contained at once: %s", p.ProbationUntil.UTC().Format("15:04:05"), reason)
	h, err := s.runHalt(ctx, incidents.HaltCommand{Action: incidents.ActionHalt, Agent: ag.Name, Sessions: p.Sessions, Reason: text,
		Actor: incidents.PolicyActor(ag.Name, cmd.SLA), IncidentID: cmd.IncidentID}, ag)
	if err != nil {
		return incidents.AutoHaltOutcome{}, err
	}
	out := incidents.AutoHaltOutcome{Action: action, Halt: h, Note: s.autoHaltedText(ag.Name, p.Sessions, text)}
	if h.Status != incidents.HaltVerified {
		out.Note = fmt.Sprintf("re-containing %s after a breach during probation FAILED: %s — NOT halted", haltTarget(ag.Name, p.Sessions), h.Error)
	}
	return out, nil
}

// EndProbations returns to running every target whose probation ended at
// or before now without a breach (a breach would have halted it, so what is
// still on probation had none). It is a scheduled job: safe to run twice, a
// target resumed already is no longer on probation.
func (s *Service) EndProbations(ctx context.Context, now time.Time) error {
	reg := s.core.Registry()
	for _, name := range reg.Names() {
		ag := reg.Agents[name]
		if ag == nil || ag.Resume.Probation.For <= 0 {
			continue
		}
		halts, err := s.core.Store().FindHalts(ctx, ag.Name, 0)
		if err != nil {
			return fmt.Errorf("load halts of %s: %w", ag.Name, err)
		}
		for _, p := range probationsDue(halts, now) {
			_, err := s.runHalt(ctx, incidents.HaltCommand{Action: incidents.ActionResume, Agent: ag.Name, Sessions: p.Sessions,
				Actor:  incidents.PolicyActor(ag.Name, incidents.ProbationSLA),
				Reason: fmt.Sprintf("probation ended at %s UTC with no SLA breach: back to running", p.ProbationUntil.UTC().Format("15:04:05")),
			}, ag)
			if err != nil {
				return fmt.Errorf("end probation of %s: %w", haltTarget(ag.Name, p.Sessions), err)
			}
		}
	}
	return nil
}

// probationsDue are the probation halts still in force whose time is up.
func probationsDue(halts []*incidents.Halt, now time.Time) []*incidents.Halt {
	var due []*incidents.Halt
	seen := map[int64]bool{}
	check := func(h *incidents.Halt) {
		if h != nil && h.ProbationUntil != nil && !now.Before(*h.ProbationUntil) && !seen[h.ID] {
			seen[h.ID] = true
			due = append(due, h)
		}
	}
	check(containingHalt(halts, nil))
	for _, h := range halts {
		if len(h.Sessions) > 0 && h.ProbationUntil != nil {
			if cur := containingHalt(halts, h.Sessions[:1]); cur == h {
				check(h)
			}
		}
	}
	return due
}
