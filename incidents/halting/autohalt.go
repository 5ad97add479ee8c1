package halting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/ownership"
)

// AutoHalt halts by policy through the same path as a person's halt
// (recorded, retried, verified, re-paged on failure) and says in the
// incident why and how to resume. What it decides (already halted, the rate
// limit) is read from the stored halts and kill flags, so a restart does not
// forget it.
//
// It never widens a session halt into a silent whole-agent halt: when the
// adapter cannot stop one session it does cmd.Fallback (halt_agent only if
// the SLA says so), else it only alerts, and says so. Beyond the agent's
// max_auto_halts_per_minute it does the fallback once (a whole-agent halt
// stops further ones) or pages people.
//
// The error is non-nil only for bad input, an unknown agent or a store
// failure; a failed halt is an outcome with Halt.Status HaltFailed.
func (s *Policy) AutoHalt(ctx context.Context, cmd incidents.AutoHaltCommand) (incidents.AutoHaltOutcome, error) {
	if !slices.Contains(ownership.Rungs, cmd.Action) {
		return incidents.AutoHaltOutcome{}, incidents.Errorf(incidents.EINVALID, "Unknown automatic action %q: use one of %s.", cmd.Action,
			strings.Join(ownership.Rungs, ", "))
	}
	if err := incidents.CheckRung(rungAction(cmd.Action), cmd.Allow, cmd.Rate); err != nil {
		return incidents.AutoHaltOutcome{}, err
	}
	ag, err := s.core.LookupAgent(cmd.Agent)
	if err != nil {
		return incidents.AutoHaltOutcome{}, err
	}
	if cmd.SLA == "" {
		return incidents.AutoHaltOutcome{}, incidents.Errorf(incidents.EINVALID, "An automatic halt of %s names no SLA.", ag.Name)
	}
	sessions := incidents.Dedupe(cmd.Sessions)
	if cmd.Action == ownership.OnBreachHaltSession && len(sessions) == 0 {
		return incidents.AutoHaltOutcome{}, incidents.Errorf(incidents.EINVALID, "An automatic session halt of %s names no session.", ag.Name)
	}
	// One automatic halt of an agent at a time in this process, so two
	// breaches at once do not both read "not yet halted" or both fit under
	// the rate limit.
	unlock := s.locks.lock(ag.Name)
	defer unlock()
	return s.autoHaltLocked(ctx, cmd, ag)
}

// autoHaltLocked is AutoHalt under the agent's lock, after the checks.
func (s *Policy) autoHaltLocked(ctx context.Context, cmd incidents.AutoHaltCommand, ag *ownership.Agent) (incidents.AutoHaltOutcome, error) {
	sessions := incidents.Dedupe(cmd.Sessions)
	actor := incidents.PolicyActor(ag.Name, cmd.SLA)
	reason := strings.TrimSuffix(strings.TrimSpace(cmd.Reason), ".")
	if !cmd.DryRun {
		// A breach during probation re-contains at once, whatever the rung.
		p, err := s.onProbation(ctx, ag, sessions)
		if err != nil {
			return incidents.AutoHaltOutcome{}, err
		}
		if p != nil {
			return s.recontain(ctx, cmd, ag, p, reason)
		}
	}

	action, why := cmd.Action, ""
	if !s.supports(ag, rungAction(action)) {
		// The adapter cannot do this rung: never a silent stronger or weaker
		// action; the SLA's fallback decides, and reins says so.
		if cmd.Fallback == ownership.OnBreachAlert || cmd.Fallback == "" {
			return s.autoNote(ctx, cmd, ag, actor, ownership.OnBreachAlert, sessions, fmt.Sprintf(
				"reins did not %s %s: its %s adapter cannot %s and the SLA's fallback is alert. %s. To halt it: /agent kill %s",
				action, policyTarget(ag.Name, sessions), ag.Halt.Adapter, action, reason, killHint(ag.Name, sessions)), false)
		}
		why = fmt.Sprintf("its %s adapter cannot %s, so by the SLA's fallback reins does %s instead", ag.Halt.Adapter, action, cmd.Fallback)
		action = cmd.Fallback
	}
	if action == ownership.OnBreachHaltSession && !s.canHaltSessions(ag) {
		if cmd.Fallback == ownership.OnBreachHaltAgent {
			action = ownership.OnBreachHaltAgent
			why = fmt.Sprintf("its %s adapter cannot stop one session, so by the SLA's fallback reins halts the whole agent", ag.Halt.Adapter)
		} else {
			return s.autoNote(ctx, cmd, ag, actor, ownership.OnBreachAlert, sessions, fmt.Sprintf(
				"reins did not halt %s: its %s adapter cannot stop one session and the SLA's fallback is alert. %s. To halt the whole agent: %s",
				policyTarget(ag.Name, sessions), ag.Halt.Adapter, reason, s.core.HowToEach("kill "+ag.Name, "kill "+ag.Name+" --reason TEXT")), false)
		}
	}
	if action == ownership.OnBreachHaltAgent {
		sessions = nil
	}
	if action == ownership.OnBreachRestrict || action == ownership.OnBreachThrottle {
		return s.autoRung(ctx, cmd, ag, actor, action, sessions, reason)
	}

	halts, err := s.core.Store().FindHalts(ctx, ag.Name, 0)
	if err != nil {
		return incidents.AutoHaltOutcome{}, fmt.Errorf("load halts of %s: %w", ag.Name, err)
	}
	agentHalted, haltedSessions, err := s.haltedNow(ctx, ag.Name, halts)
	if err != nil {
		return incidents.AutoHaltOutcome{}, err
	}
	if !agentHalted && len(sessions) > 0 {
		sessions = slices.DeleteFunc(sessions, func(id string) bool { return slices.Contains(haltedSessions, id) })
	}
	if agentHalted || (action == ownership.OnBreachHaltSession && len(sessions) == 0) {
		// Nothing to tell: the halt that stopped it was announced, and a
		// breach repeating on a halted session would only add noise.
		return incidents.AutoHaltOutcome{Action: incidents.AutoHaltAlreadyHalted, Note: fmt.Sprintf("%s is already halted: reins did not halt it again (%s).",
			policyTarget(ag.Name, incidents.Dedupe(cmd.Sessions)), reason)}, nil
	}

	if cmd.DryRun {
		return s.autoNote(ctx, cmd, ag, actor, incidents.AutoHaltDryRun, sessions, fmt.Sprintf(
			"Dry run: reins would have halted %s automatically: %s. Nothing was halted (dry_run: true for SLA %s).",
			policyTarget(ag.Name, sessions), reason, cmd.SLA), false)
	}

	if limit := maxAutoHalts(ag); !cmd.Overflow && recentPolicyHalts(halts, s.core.Now()) >= limit {
		if cmd.Queue {
			return incidents.AutoHaltOutcome{Action: incidents.AutoHaltQueued, RetryAt: budgetFrees(halts, s.core.Now(), limit)}, nil
		}
		if cmd.Fallback == ownership.OnBreachHaltAgent && action != ownership.OnBreachHaltAgent {
			action, sessions = ownership.OnBreachHaltAgent, nil
			why = fmt.Sprintf("%d automatic halts of %s in the last minute reached max_auto_halts_per_minute, so by the SLA's fallback reins halts the whole agent", limit, ag.Name)
		} else {
			return s.autoNote(ctx, cmd, ag, actor, incidents.AutoHaltRateLimited, sessions, fmt.Sprintf(
				"reins did not halt %s: %d automatic halts of %s in the last minute reached max_auto_halts_per_minute. %s. Paging the kill authority: halt it by hand if needed: %s",
				policyTarget(ag.Name, sessions), limit, ag.Name, reason, s.core.HowToEach("kill "+ag.Name, "kill "+ag.Name+" --reason TEXT")), true)
		}
	}

	text := reason
	if why != "" {
		text += " (" + why + ")"
	}
	h, err := s.runHalt(ctx, incidents.HaltCommand{Action: incidents.ActionHalt, Agent: ag.Name, Sessions: sessions, Reason: text,
		Actor: actor, IncidentID: cmd.IncidentID}, ag)
	if err != nil {
		return incidents.AutoHaltOutcome{}, err
	}
	out := incidents.AutoHaltOutcome{Action: action, Halt: h}
	if h.Status == incidents.HaltVerified {
		out.Note = s.autoHaltedText(ag.Name, sessions, text)
	} else {
		out.Note = fmt.Sprintf("automatic halt of %s FAILED: %s — NOT halted", haltTarget(ag.Name, sessions), h.Error)
	}
	return out, nil
}

// autoHaltedText is the announcement of a verified automatic halt.
func (s *Service) autoHaltedText(agent string, sessions []string, reason string) string {
	// Slack names sessions after a keyword (`/agent resume support-bot
	// session s-1`); the shell after the agent (`reins resume support-bot s-1`).
	slash, cli := "resume "+agent, "resume "+agent
	switch len(sessions) {
	case 0:
	case 1:
		slash += " session " + sessions[0]
		cli += " " + sessions[0]
	default:
		slash += " sessions " + strings.Join(sessions, ",")
		cli += " " + strings.Join(sessions, " ")
	}
	return fmt.Sprintf("reins halted %s automatically: %s. To resume: %s", policyTarget(agent, sessions), reason, s.core.HowToEach(slash, cli))
}

// policyTarget names what is halted: "session X of support-bot".
func policyTarget(agent string, sessions []string) string {
	switch len(sessions) {
	case 0:
		return agent
	case 1:
		return fmt.Sprintf("session %s of %s", sessions[0], agent)
	}
	return fmt.Sprintf("sessions %s of %s", strings.Join(sessions, ", "), agent)
}

func maxAutoHalts(ag *ownership.Agent) int {
	if ag.Escalation.MaxAutoHaltsPerMinute > 0 {
		return ag.Escalation.MaxAutoHaltsPerMinute
	}
	return ownership.DefaultMaxAutoHaltsPerMinute
}

// recentPolicyHalts counts the automatic halts (of any SLA) requested in the
// minute before now; in flight or finished, verified or failed, each was an
// attempt on the agent.
func recentPolicyHalts(halts []*incidents.Halt, now time.Time) int {
	n := 0
	for _, h := range halts {
		if h.Actor.Kind == incidents.ActorPolicy && h.Action == incidents.ActionHalt && now.Sub(h.RequestedAt) < time.Minute {
			n++
		}
	}
	return n
}

// budgetFrees is when the oldest of the automatic halts counted against the
// agent's limit leaves the minute, so one more may run.
func budgetFrees(halts []*incidents.Halt, now time.Time, limit int) time.Time {
	var times []time.Time
	for _, h := range halts {
		if h.Actor.Kind == incidents.ActorPolicy && h.Action == incidents.ActionHalt && now.Sub(h.RequestedAt) < time.Minute {
			times = append(times, h.RequestedAt)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	if len(times) < limit {
		return now
	}
	return times[len(times)-limit].Add(time.Minute)
}

// haltedNow replays the verified halts and adds reins' own kill flags, which
// the flag adapter sets: either says a target is halted.
func (s *Policy) haltedNow(ctx context.Context, agent string, halts []*incidents.Halt) (bool, []string, error) {
	agentHalted, sessions := incidents.HaltState(halts)
	flags, err := s.core.Store().KillFlags(ctx)
	if err != nil {
		return false, nil, fmt.Errorf("load kill flags: %w", err)
	}
	for _, f := range flags {
		switch {
		case f.Agent != agent || !f.Halted:
		case f.Session == "":
			agentHalted = true
		case !slices.Contains(sessions, f.Session):
			sessions = append(sessions, f.Session)
		}
	}
	return agentHalted, sessions, nil
}

// autoNote records an automatic halt that did not run as asked on the
// incident's timeline and in its channel (paging the kill authority when
// page is set). The incident is the one given, else the agent's open one,
// else a new one. Rate-limit notes are posted once a minute per SLA: the
// limit is reached in storms.
func (s *Policy) autoNote(ctx context.Context, cmd incidents.AutoHaltCommand, ag *ownership.Agent, actor incidents.Actor, outcome string,
	sessions []string, note string, page bool) (incidents.AutoHaltOutcome, error) {
	out := incidents.AutoHaltOutcome{Action: outcome, Note: note}
	created, incID := false, int64(0)
	err := s.core.RetryTx(ctx, func(q incidents.Queries) error {
		inc, opened, err := s.haltIncident(ctx, q, incidents.HaltCommand{Action: incidents.ActionHalt, IncidentID: cmd.IncidentID, Actor: actor}, ag)
		if err != nil {
			return err
		}
		created, incID = opened, inc.ID
		now := s.core.Now()
		key := fmt.Sprintf("inc-%d/auto_halt/%s/%s/%d", inc.ID, cmd.SLA, outcome, now.UnixNano())
		if outcome == incidents.AutoHaltRateLimited {
			key = fmt.Sprintf("inc-%d/auto_halt/%s/%s/%d", inc.ID, cmd.SLA, outcome, now.Unix()/60)
		}
		if s.core.Chat() != nil {
			style := incidents.StyleWarning
			if outcome == incidents.AutoHaltDryRun {
				style = incidents.StyleInfo
			}
			msg := incidents.Message{Style: style, Title: note, Fields: []incidents.Field{{Label: "By", Value: actor.String()}, {Label: "Adapter", Value: ag.Halt.Adapter}}}
			if outcome != incidents.AutoHaltDryRun {
				msg.Mention = incidents.Mentionable(ag.KillAuthority.Users, ag.KillAuthority.Usergroups)
			}
			queued, err := s.core.EnqueueOnce(ctx, q, inc.ID, incidents.KindPost, key, msg)
			if err != nil || !queued {
				return err // already said this minute
			}
		}
		if err := incidents.AppendEvent(ctx, q, inc.ID, now, incidents.EventAutoHalt, actor, note, map[string]any{
			"sla": cmd.SLA, "asked": cmd.Action, "outcome": outcome, "sessions": sessions, "reason": cmd.Reason,
			"fallback": cmd.Fallback, "dry_run": cmd.DryRun}); err != nil {
			return err
		}
		if page && s.core.Pager() != nil {
			// One page a minute per incident, however many SLAs hit the limit.
			return s.core.Enqueue(ctx, q, inc.ID, outbox.LaneUrgent, incidents.KindPage, fmt.Sprintf("inc-%d/page/auto-halt-limit/%d", inc.ID, now.Unix()/60), nil)
		}
		return nil
	})
	if err != nil {
		return incidents.AutoHaltOutcome{}, fmt.Errorf("record automatic %s of %s: %w", outcome, ag.Name, err)
	}
	if created {
		s.core.IncidentOpened(incID, ag.Name, true, "source", "policy", "by", actor.String())
	}
	s.core.Log().Info("automatic halt not run", "agent", ag.Name, "sla", cmd.SLA, "outcome", outcome, "incident", incID)
	s.core.Kick()
	return out, nil
}

// autoHaltLocks serialises the automatic halts of each agent.
type autoHaltLocks struct {
	mu     sync.Mutex
	agents map[string]*sync.Mutex
}

func (l *autoHaltLocks) lock(agent string) (unlock func()) {
	l.mu.Lock()
	if l.agents == nil {
		l.agents = map[string]*sync.Mutex{}
	}
	m := l.agents[agent]
	if m == nil {
		m = &sync.Mutex{}
		l.agents[agent] = m
	}
	l.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// rungAction is the halt action of an on_breach value.
func rungAction(onBreach string) string {
	switch onBreach {
	case ownership.OnBreachRestrict:
		return incidents.ActionRestrict
	case ownership.OnBreachThrottle:
		return incidents.ActionThrottle
	}
	return incidents.ActionHalt
}

// killHint is the command that halts target by hand.
func killHint(agent string, sessions []string) string {
	if len(sessions) == 0 {
		return agent
	}
	return agent + " session " + strings.Join(sessions, " ")
}

// autoRung restricts or throttles by policy: recorded, verified and
// announced with how to lift it like a halt. A target already contained as
// strongly (a halted session is not softened by a restriction) is left as it
// is; an endpoint that answers it cannot do the rung gets the SLA's fallback,
// said on the timeline.
func (s *Policy) autoRung(ctx context.Context, cmd incidents.AutoHaltCommand, ag *ownership.Agent, actor incidents.Actor, action string,
	sessions []string, reason string) (incidents.AutoHaltOutcome, error) {
	halts, err := s.core.Store().FindHalts(ctx, ag.Name, 0)
	if err != nil {
		return incidents.AutoHaltOutcome{}, fmt.Errorf("load halts of %s: %w", ag.Name, err)
	}
	want := incidents.Containment{Mode: incidents.ModeOf(rungAction(action)), Allow: cmd.Allow, Rate: cmd.Rate}
	agentMode, own := incidents.ContainState(halts)
	st := incidents.AgentStatus{Containment: agentMode, Sessions: own}
	targets := []string{""}
	if len(sessions) > 0 {
		targets = sessions
	}
	var todo []string
	for _, id := range targets {
		cur := st.ContainmentOf(id)
		if incidents.Rank(cur.Mode) > incidents.Rank(want.Mode) || cur.Equal(want) {
			continue // as contained or more: a rung never softens a containment
		}
		todo = append(todo, id)
	}
	if len(todo) == 0 {
		return incidents.AutoHaltOutcome{Action: incidents.AutoHaltAlreadyHalted, Note: fmt.Sprintf("%s is already contained: reins did not %s it again (%s).",
			policyTarget(ag.Name, sessions), action, reason)}, nil
	}
	if len(sessions) > 0 {
		sessions = todo
	}
	if cmd.DryRun {
		return s.autoNote(ctx, cmd, ag, actor, incidents.AutoHaltDryRun, sessions, fmt.Sprintf(
			"Dry run: reins would have %s %s automatically (%s): %s. Nothing was changed (dry_run: true for SLA %s).",
			incidents.ModeOf(rungAction(action)), policyTarget(ag.Name, sessions), want, reason, cmd.SLA), false)
	}
	h, cause, err := s.runHaltCause(ctx, incidents.HaltCommand{Action: rungAction(action), Agent: ag.Name, Sessions: sessions, Reason: reason,
		Allow: cmd.Allow, Rate: cmd.Rate, Actor: actor, IncidentID: cmd.IncidentID}, ag)
	if err != nil {
		return incidents.AutoHaltOutcome{}, err
	}
	if h.Status != incidents.HaltVerified && errors.Is(cause, incidents.ErrRungUnsupported) && cmd.Fallback != ownership.OnBreachAlert && cmd.Fallback != "" {
		// The endpoint answered that it cannot: do the fallback and say so.
		fb := cmd
		fb.Action, fb.Fallback = cmd.Fallback, ownership.OnBreachAlert
		fb.Reason = fmt.Sprintf("%s (the control endpoint of %s answered that it cannot %s, so by the SLA's fallback reins does %s instead)",
			reason, ag.Name, action, cmd.Fallback)
		return s.autoHaltLocked(ctx, fb, ag)
	}
	out := incidents.AutoHaltOutcome{Action: action, Halt: h}
	if h.Status == incidents.HaltVerified {
		out.Note = fmt.Sprintf("reins %s %s automatically (%s): %s. %s", incidents.ModeOf(rungAction(action)), policyTarget(ag.Name, sessions),
			want, reason, s.liftHint(ag.Name, sessions))
	} else {
		out.Note = fmt.Sprintf("automatic %s of %s FAILED: %s — NOT %s", action, haltTarget(ag.Name, sessions), h.Error, incidents.ModeOf(rungAction(action)))
	}
	return out, nil
}

// HowTo says how to run a command in the forms that work in this reins:
// `reins kill support-bot` at the shell, and, when Slack is configured,
// `/agent kill support-bot` too. args is the command after "/agent" or
// "reins", for commands whose words are the same in both (sessions are
// not: Slack names them after "session", so use HowToEach).
func (s *Service) HowTo(args string) string {
	return s.core.HowToEach(args, args)
}

// Policy is the halts no person asks for: an SLA breach's on_breach (AutoHalt,
// its queue and the waiting sessions' notice, a session left running), and
// the dead-man's. It halts through the same path as a person (it embeds the
// Service), without the authority check.
type Policy struct {
	*Service
	locks autoHaltLocks // one automatic halt per agent at a time
}

// NewPolicy returns the halts by policy, made through s.
func NewPolicy(s *Service) *Policy { return &Policy{Service: s} }
