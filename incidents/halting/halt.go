package halting

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/incidents/words"
	"github.com/reins-oss/reins/ownership"
)

// canHaltSessions is the one place that asks whether ag's adapter can stop
// single sessions; the others (feature flags, Deployments) stop the whole agent.
func (s *Service) canHaltSessions(ag *ownership.Agent) bool {
	return s.core.Halter() != nil && s.core.Halter().SessionScoped(ag)
}

const (
	haltBackoff  = 200 * time.Millisecond
	maxHaltError = 300
)

// verifyDelays are the pauses before each read-back of a halt: an adapter may
// take a moment to apply it, so reins asks a few times over about two seconds.
var verifyDelays = []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second}

// CheckAuthority decides whether actor may halt or resume the agent (name or
// alias). A refusal is audited, and noted on the agent's open incident, before
// it is returned with a nil error; an unknown agent is ENOTFOUND naming the
// closest agents.
func (s *Service) CheckAuthority(ctx context.Context, actor incidents.Actor, agent, action string) (ownership.Decision, *ownership.Agent, error) {
	ag, err := s.core.LookupAgent(agent)
	if err != nil {
		return ownership.Decision{}, nil, err
	}
	var d ownership.Decision
	if s.core.Authority() == nil {
		d = ownership.Decision{Agent: ag.Name, Person: actor.ID, Reason: "reins has no kill-authority checker configured"}
	} else {
		d = s.core.Authority().Authorize(ctx, ag, actor.ID)
	}
	if d.Allowed {
		return d, ag, nil
	}
	err = s.core.RetryTx(ctx, func(q incidents.Queries) error {
		now := s.core.Now()
		entry := &incidents.AuditEntry{At: now, Actor: actor, Action: auditAction(action) + "_refused", Agent: ag.Name, Detail: d.Reason}
		if err := q.AppendAudit(ctx, entry); err != nil {
			return fmt.Errorf("audit refusal: %w", err)
		}
		open, err := q.FindIncidents(ctx, incidents.IncidentFilter{Agent: ag.Name, Status: incidents.StatusOpen})
		inc := firstReal(open)
		if err != nil || inc == nil {
			return err
		}
		return incidents.AppendEvent(ctx, q, inc.ID, now, incidents.EventHaltRefused, actor,
			fmt.Sprintf("%s may not %s %s: %s", actor, action, ag.Name, d.Reason),
			map[string]any{"action": action, "reason": d.Reason, "holders": d.Holders})
	})
	if err != nil {
		return d, ag, fmt.Errorf("record refused %s of %s: %w", action, ag.Name, err)
	}
	return d, ag, nil
}

func auditAction(action string) string {
	if action == incidents.ActionHalt {
		return "kill"
	}
	return action
}

// Halt performs a halt or resume synchronously: authority checked (unless
// break-glass), the request recorded with its audit entry, the adapter called
// with a timeout and retries, the result read back, and the outcome put on
// the timeline and in the incident channel.
//
// A halt that failed is returned with Status HaltFailed and a nil error: the
// caller shows the failure. It is never reported as verified, and the kill
// authority is re-paged. The error is non-nil only when nothing was attempted
// (bad input, unknown agent, refused: EFORBIDDEN) or the store failed.
func (s *Service) Halt(ctx context.Context, cmd incidents.HaltCommand) (*incidents.Halt, error) {
	if !incidents.IsContainAction(cmd.Action) && cmd.Action != incidents.ActionResume {
		return nil, incidents.Errorf(incidents.EINVALID, "Unknown action %q: use halt, restrict, throttle or resume.", cmd.Action)
	}
	if err := incidents.CheckRung(cmd.Action, cmd.Allow, cmd.Rate); err != nil {
		return nil, err
	}
	if err := incidents.CheckRungParams(cmd.Action, cmd.Allow, cmd.Rate); err != nil {
		return nil, err
	}
	ag, err := s.core.LookupAgent(cmd.Agent)
	if err != nil {
		return nil, err
	}
	if !cmd.BreakGlass {
		d, _, err := s.CheckAuthority(ctx, cmd.Actor, ag.Name, cmd.Action)
		if err != nil {
			return nil, err
		}
		if !d.Allowed {
			return nil, refusal(ag, cmd.Action, d)
		}
	}
	if cmd.Action == incidents.ActionResume {
		return s.gateResume(ctx, cmd, ag)
	}
	cmd.ProbationUntil = nil // only the gate sets a probation
	return s.runHalt(ctx, cmd, ag)
}

// runHalt is a halt or resume after the authority check, shared by people
// (Halt) and policy (AutoHalt) so both are recorded, retried, verified and
// re-paged alike.
func (s *Service) runHalt(ctx context.Context, cmd incidents.HaltCommand, ag *ownership.Agent) (*incidents.Halt, error) {
	h, _, err := s.runHaltCause(ctx, cmd, ag)
	return h, err
}

// runHaltCause is runHalt that also returns why a failed halt failed, for
// the callers that act on it (a rung the far side cannot do).
func (s *Service) runHaltCause(ctx context.Context, cmd incidents.HaltCommand, ag *ownership.Agent) (*incidents.Halt, error, error) {
	sessions := incidents.Dedupe(cmd.Sessions)
	if len(sessions) > 0 && !s.canHaltSessions(ag) {
		return nil, nil, incidents.Errorf(incidents.EINVALID, "%s is halted through its %s adapter, which cannot stop single sessions. "+
			"Halt the whole agent instead: %s", ag.Name, ag.Halt.Adapter, s.core.HowToEach("kill "+ag.Name, "kill "+ag.Name+" --reason TEXT"))
	}
	if !s.supports(ag, cmd.Action) {
		return nil, nil, incidents.Errorf(incidents.EINVALID, "The %s adapter of %s cannot %s: reins does not send it a stronger or weaker action instead. "+
			"Halt it (/agent kill %s) or give it an adapter that can (docs/halt-webhook.md).", ag.Halt.Adapter, ag.Name, cmd.Action, ag.Name)
	}
	h, err := s.recordHaltRequest(ctx, cmd, ag, sessions)
	if err != nil {
		return nil, nil, err
	}
	s.core.Kick() // a halt on a quiet agent opened an incident: page now
	// From here the halt is under way: finish and record it even if the
	// caller goes away.
	wctx := context.WithoutCancel(ctx)
	req := incidents.HaltRequest{Agent: ag, Action: cmd.Action, Sessions: sessions, Allow: h.Allow, Rate: h.Rate,
		IncidentID: h.IncidentID, HaltID: h.ID, Reason: cmd.Reason, Actor: cmd.Actor}
	attempts, herr := s.callAdapter(wctx, req)
	if herr == nil {
		herr = s.verify(wctx, req)
	}
	finished := s.core.Now()
	h.Attempts, h.FinishedAt, h.Status = attempts, &finished, incidents.HaltVerified
	if herr != nil {
		h.Status, h.Error = incidents.HaltFailed, incidents.Clip(herr.Error(), maxHaltError)
	}
	if err := s.recordHaltResult(wctx, h, ag); err != nil {
		return h, herr, err
	}
	s.core.Metrics().HaltFinished(h)
	if h.Status == incidents.HaltVerified {
		s.core.Log().Info("halt done", "action", h.Action, "agent", h.Agent, "adapter", h.Adapter, "incident", h.IncidentID,
			"by", h.Actor.String(), "ms", h.TimeToHalt().Milliseconds())
	} else {
		s.core.Log().Error("halt failed", "action", h.Action, "agent", h.Agent, "adapter", h.Adapter, "incident", h.IncidentID,
			"by", h.Actor.String(), "err", h.Error)
	}
	if h.Status == incidents.HaltVerified && incidents.IsContainAction(h.Action) {
		s.core.Metrics().HaltVerified(h)
	}
	s.core.Kick()
	return h, herr, nil
}

func refusal(ag *ownership.Agent, action string, d ownership.Decision) error {
	msg := fmt.Sprintf("You may not %s %s: %s.", action, ag.Name, strings.TrimSuffix(d.Reason, "."))
	if len(d.Holders) > 0 {
		msg += " Kill authority is held by " + strings.Join(d.Holders, ", ") + "."
	} else {
		msg += " Nobody holds kill authority right now: check kill_authority in reins.yaml."
	}
	if len(d.Unavailable) > 0 {
		msg += " Could not ask " + strings.Join(d.Unavailable, ", ") + " (it may list you): try again shortly."
	}
	return incidents.Errorf(incidents.EFORBIDDEN, "%s", msg)
}

// recordHaltRequest stores the request, its timeline event and audit entry
// in one transaction, opening an incident for a halt when the agent has none.
func (s *Service) recordHaltRequest(ctx context.Context, cmd incidents.HaltCommand, ag *ownership.Agent, sessions []string) (*incidents.Halt, error) {
	var h *incidents.Halt
	created := false
	err := s.core.RetryTx(ctx, func(q incidents.Queries) error {
		inc, opened, err := s.haltIncident(ctx, q, cmd, ag)
		if err != nil {
			return err
		}
		created = opened
		now := s.core.Now()
		h = &incidents.Halt{Agent: ag.Name, Action: cmd.Action, Sessions: sessions, Reason: cmd.Reason, Actor: cmd.Actor,
			Adapter: ag.Halt.Adapter, Status: incidents.HaltRequested, RequestedAt: now}
		h.ProbationUntil = cmd.ProbationUntil
		switch cmd.Action {
		case incidents.ActionRestrict:
			h.Allow = incidents.Dedupe(cmd.Allow)
		case incidents.ActionThrottle:
			h.Rate = cmd.Rate
		}
		if inc != nil {
			h.IncidentID = inc.ID
		}
		if err := q.CreateHalt(ctx, h); err != nil {
			return fmt.Errorf("record %s of %s: %w", cmd.Action, ag.Name, err)
		}
		detail := fmt.Sprintf("halt %d: %s %s%s", h.ID, cmd.Action, haltTarget(ag.Name, sessions), incidents.RungParams(h))
		if cmd.BreakGlass {
			detail += " (break-glass)"
		}
		if cmd.Reason != "" {
			detail += ": " + cmd.Reason
		}
		audit := &incidents.AuditEntry{At: now, Actor: cmd.Actor, Action: auditAction(cmd.Action), Agent: ag.Name, Allowed: true, Detail: detail}
		if err := q.AppendAudit(ctx, audit); err != nil {
			return fmt.Errorf("audit %s of %s: %w", cmd.Action, ag.Name, err)
		}
		if inc == nil {
			return nil
		}
		return incidents.AppendEvent(ctx, q, inc.ID, now, incidents.EventHaltRequested, cmd.Actor,
			fmt.Sprintf("%s asked to %s %s%s", cmd.Actor, cmd.Action, haltTarget(ag.Name, sessions), incidents.RungParams(h)),
			map[string]any{"halt_id": h.ID, "action": cmd.Action, "sessions": sessions, "reason": cmd.Reason,
				"adapter": h.Adapter, "break_glass": cmd.BreakGlass, "allow": h.Allow, "rate": h.Rate})
	})
	if err != nil {
		return nil, err
	}
	if created {
		s.core.IncidentOpened(h.IncidentID, ag.Name, true, "source", "halt", "by", cmd.Actor.String())
	}
	return h, nil
}

// haltIncident picks the incident a halt belongs to: the one asked for, else
// the agent's newest open incident, else (for a halt) a new one. A resume
// with no open incident belongs to none.
func (s *Service) haltIncident(ctx context.Context, q incidents.Queries, cmd incidents.HaltCommand, ag *ownership.Agent) (*incidents.Incident, bool, error) {
	if cmd.IncidentID != 0 {
		inc, err := q.FindIncident(ctx, cmd.IncidentID)
		if err != nil {
			return nil, false, err
		}
		if inc.Agent != ag.Name {
			return nil, false, incidents.Errorf(incidents.EINVALID, "Incident #%d is about %s, not %s.", inc.ID, inc.Agent, ag.Name)
		}
		return inc, false, nil
	}
	open, err := q.FindIncidents(ctx, incidents.IncidentFilter{Agent: ag.Name, Status: incidents.StatusOpen})
	if err != nil {
		return nil, false, fmt.Errorf("find open incident of %s: %w", ag.Name, err)
	}
	if inc := firstReal(open); inc != nil {
		return inc, false, nil
	}
	if !incidents.IsContainAction(cmd.Action) {
		return nil, false, nil
	}
	title := "Halt requested for " + ag.Name
	if cmd.Action != incidents.ActionHalt {
		title = strings.ToUpper(cmd.Action[:1]) + cmd.Action[1:] + " requested for " + ag.Name
	}
	return s.core.OpenManual(ctx, q, ag, cmd.Actor, title, fmt.Sprintf("%s by %s", title, cmd.Actor))
}

func haltTarget(agent string, sessions []string) string {
	if len(sessions) == 0 {
		return agent
	}
	return fmt.Sprintf("%s session %s", agent, strings.Join(sessions, ", "))
}

// callAdapter calls the halter up to HaltAttempts times, each with its own
// timeout, pausing 200 ms·2^n between attempts. It returns the attempts made.
func (s *Service) callAdapter(ctx context.Context, req incidents.HaltRequest) (int, error) {
	if s.core.Halter() == nil {
		return 0, errors.New("no halt adapters are configured")
	}
	var err error
	for n := range s.core.Config().HaltAttempts {
		if n > 0 && !sleep(ctx, haltBackoff<<(n-1)) {
			return n, ctx.Err()
		}
		actx, cancel := context.WithTimeout(ctx, s.core.Config().HaltTimeout)
		err = s.core.Halter().Do(actx, req)
		cancel()
		if err == nil {
			return n + 1, nil
		}
		s.core.Log().Warn("halt adapter failed", "agent", req.Agent.Name, "adapter", req.Agent.Halt.Adapter, "attempt", n+1, "err", err)
		if permanentHaltError(err) {
			// A missing secret or a bad setting fails the same way every
			// time: say so now instead of retrying while the agent runs.
			if incidents.ErrorCode(err) == incidents.EINVALID {
				err = errors.New(incidents.ErrorMessage(err)) // the sentence that says what to set
			}
			return n + 1, fmt.Errorf("%s adapter failed: %w", req.Agent.Halt.Adapter, err)
		}
	}
	return s.core.Config().HaltAttempts, fmt.Errorf("%s adapter failed %s: %w", req.Agent.Halt.Adapter, words.Count(s.core.Config().HaltAttempts, "time"), err)
}

// permanentHaltError reports an adapter error that retrying cannot fix.
func permanentHaltError(err error) bool {
	var perm *outbox.PermanentError
	return errors.As(err, &perm) || incidents.ErrorCode(err) == incidents.EINVALID || errors.Is(err, incidents.ErrRungUnsupported)
}

// verify reads the state back until it matches, a few times over ~2 s.
func (s *Service) verify(ctx context.Context, req incidents.HaltRequest) error {
	var lastErr error
	for _, d := range verifyDelays {
		if !sleep(ctx, d) {
			return ctx.Err()
		}
		vctx, cancel := context.WithTimeout(ctx, s.core.Config().HaltTimeout)
		ok, err := s.core.Halter().Verify(vctx, req)
		cancel()
		if err == nil && ok {
			return nil
		}
		lastErr = err
	}
	if lastErr != nil {
		return fmt.Errorf("could not read back the %s state: %w", req.Action, lastErr)
	}
	if req.Action == incidents.ActionHalt {
		return fmt.Errorf("the adapter accepted the halt but %s still reports running", haltTarget(req.Agent.Name, req.Sessions))
	}
	if req.Action == incidents.ActionResume {
		return fmt.Errorf("the adapter accepted the resume but %s still reports contained", haltTarget(req.Agent.Name, req.Sessions))
	}
	return fmt.Errorf("the adapter accepted the %s but %s does not report %s", req.Action, haltTarget(req.Agent.Name, req.Sessions), incidents.ModeOf(req.Action))
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// recordHaltResult writes the outcome, its timeline event and its messages in
// one transaction; a failed halt also re-pages the kill authority.
func (s *Service) recordHaltResult(ctx context.Context, h *incidents.Halt, ag *ownership.Agent) error {
	return s.core.RetryTx(ctx, func(q incidents.Queries) error {
		if err := q.UpdateHalt(ctx, h); err != nil {
			return fmt.Errorf("record result of halt %d: %w", h.ID, err)
		}
		if h.IncidentID == 0 {
			return nil
		}
		kind, msg := s.haltOutcome(h, ag)
		repage := h.Status == incidents.HaltFailed && incidents.IsContainAction(h.Action) && s.core.Pager() != nil
		if repage {
			// Queued, not sent: the "Re-paged" event follows once PagerDuty
			// took it (and "Gave up" if it never does), so the timeline
			// never claims a page that was not delivered.
			msg.Title += " — re-paging the kill authority"
		}
		data := map[string]any{"halt_id": h.ID, "action": h.Action, "status": h.Status, "sessions": h.Sessions,
			"allow": h.Allow, "rate": h.Rate,
			"adapter": h.Adapter, "attempts": h.Attempts, "error": h.Error, "time_to_halt_ms": h.TimeToHalt().Milliseconds()}
		if err := incidents.AppendEvent(ctx, q, h.IncidentID, *h.FinishedAt, kind, h.Actor, msg.Title, data); err != nil {
			return err
		}
		key := func(what string) string { return fmt.Sprintf("inc-%d/%s/%d", h.IncidentID, what, h.ID) }
		if s.core.Chat() != nil {
			if err := s.core.Enqueue(ctx, q, h.IncidentID, outbox.LaneChat, incidents.KindPost, key("halt"), msg); err != nil {
				return err
			}
			if err := s.core.Enqueue(ctx, q, h.IncidentID, outbox.LaneRefresh, incidents.KindUpdateSummary, key("update_summary/halt"), nil); err != nil {
				return err
			}
		}
		if !repage {
			return nil
		}
		return s.core.Enqueue(ctx, q, h.IncidentID, outbox.LaneUrgent, incidents.KindRepage, key("repage"), incidents.RepagePayload{HaltID: h.ID, Error: h.Error})
	})
}

// haltOutcome is the timeline kind and channel message for a finished halt.
func (s *Service) haltOutcome(h *incidents.Halt, ag *ownership.Agent) (incidents.EventKind, incidents.Message) {
	target := haltTarget(h.Agent, h.Sessions)
	m := incidents.Message{Fields: []incidents.Field{{Label: "By", Value: incidents.ActorLabel(h.Actor)}, {Label: "Adapter", Value: h.Adapter}}}
	if h.Reason != "" {
		m.Fields = append(m.Fields, incidents.Field{Label: "Reason", Value: h.Reason})
	}
	switch {
	case (h.Action == incidents.ActionRestrict || h.Action == incidents.ActionThrottle) && h.Status == incidents.HaltVerified:
		return s.rungOutcome(h, m)
	case h.Action == incidents.ActionRestrict || h.Action == incidents.ActionThrottle:
		m.Style = incidents.StyleDanger
		m.Title = fmt.Sprintf("⚠️ %s of %s FAILED: %s — NOT %s", h.Action, target, h.Error, incidents.ModeOf(h.Action))
		m.Mention = incidents.Mentionable(ag.KillAuthority.Users, ag.KillAuthority.Usergroups)
		return incidents.EventHaltFailed, m
	case h.Action == incidents.ActionHalt && h.Status == incidents.HaltVerified && h.Actor.Kind == incidents.ActorPolicy:
		m.Style = incidents.StyleSuccess
		m.Title = "🛑 " + s.autoHaltedText(h.Agent, h.Sessions, h.Reason)
		m.Fields = append(m.Fields, incidents.Field{Label: "Verified", Value: fmt.Sprintf("in %d ms (request to state read back)", h.TimeToHalt().Milliseconds())})
		return incidents.EventHaltVerified, m
	case h.Action == incidents.ActionHalt && h.Status == incidents.HaltVerified:
		m.Style = incidents.StyleSuccess
		m.Title = fmt.Sprintf("🛑 %s halted by %s — verified in %d ms", target, incidents.ActorLabel(h.Actor), h.TimeToHalt().Milliseconds())
		return incidents.EventHaltVerified, m
	case h.Action == incidents.ActionHalt:
		m.Style = incidents.StyleDanger
		m.Title = fmt.Sprintf("⚠️ halt of %s FAILED: %s — NOT halted", target, h.Error)
		m.Mention = incidents.Mentionable(ag.KillAuthority.Users, ag.KillAuthority.Usergroups)
		return incidents.EventHaltFailed, m
	case h.Status == incidents.HaltVerified:
		m.Style = incidents.StyleInfo
		m.Title = fmt.Sprintf("▶️ %s resumed by %s — verified", target, incidents.ActorLabel(h.Actor))
		return incidents.EventResumed, m
	default:
		m.Style = incidents.StyleWarning
		m.Title = fmt.Sprintf("⚠️ resume of %s FAILED: %s — still halted", target, h.Error)
		return incidents.EventResumeFailed, m
	}
}

// supports asks the Halter whether ag's adapter can do action; halt and
// resume are every adapter's.
func (s *Service) supports(ag *ownership.Agent, action string) bool {
	if action == incidents.ActionHalt || action == incidents.ActionResume {
		return true
	}
	return s.core.Halter() != nil && s.core.Halter().Supports(ag, action)
}

// rungOutcome is the timeline kind and message of a verified restrict or
// throttle: what the target may still do, and how to lift it.
func (s *Service) rungOutcome(h *incidents.Halt, m incidents.Message) (incidents.EventKind, incidents.Message) {
	target := haltTarget(h.Agent, h.Sessions)
	if h.Actor.Kind == incidents.ActorPolicy {
		target = policyTarget(h.Agent, h.Sessions)
	}
	m.Style = incidents.StyleWarning
	kind, title := incidents.EventRestricted, fmt.Sprintf("🚧 %s restricted to %s", target, strings.Join(h.Allow, ", "))
	if h.Action == incidents.ActionThrottle {
		kind, title = incidents.EventThrottled, fmt.Sprintf("🐢 %s throttled to %d model calls a minute", target, h.Rate)
	}
	if h.Actor.Kind == incidents.ActorPolicy {
		title += " automatically"
	} else {
		title += " by " + incidents.ActorLabel(h.Actor)
	}
	m.Title = fmt.Sprintf("%s — verified in %d ms. %s", title, h.TimeToHalt().Milliseconds(), s.liftHint(h.Agent, h.Sessions))
	return kind, m
}

// firstReal is the first of incs that a test alert did not open: a real
// halt never lands in a test incident.
func firstReal(incs []*incidents.Incident) *incidents.Incident {
	for _, inc := range incs {
		if !inc.IsTest() {
			return inc
		}
	}
	return nil
}

// liftHint says how to lift a containment of target.
func (s *Service) liftHint(agent string, sessions []string) string {
	slash, cli := "resume "+agent, "resume "+agent
	if len(sessions) > 0 {
		slash += " session " + strings.Join(sessions, " ")
		cli += " " + strings.Join(sessions, " ")
	}
	return "To lift it: " + s.core.HowToEach(slash, cli)
}

// Service is the halts a person asks for, and what follows them: the kill
// authority check, the halt through the agent's adapter with its verification,
// the resume gate and probation, and the halts a stopped process left
// unfinished.
type Service struct {
	core *incidents.Core
}

// New returns the halts of the use cases core serves.
func New(core *incidents.Core) *Service { return &Service{core: core} }
