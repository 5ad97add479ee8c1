package bot

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

// Authorizer decides kill authority without writing anything
// (ownership.Authorizer). The handler asks it on the request path so that a
// refusal is answered at once and never waits for a halt worker.
type Authorizer interface {
	Authorize(ctx context.Context, agent *ownership.Agent, person string) ownership.Decision
}

const (
	// refusalBurst groups refusals of one user, action and agent into one
	// audit row while they come less than this apart.
	refusalBurst = time.Minute
	// refusalLimit is how many refusals a user gets a full answer (and an
	// authority look-up) for within refusalWindow; beyond it the answer is
	// short and nothing is looked up.
	refusalLimit  = 5
	refusalWindow = time.Minute
	// authorizeWait bounds the authority check on the request path: Slack
	// wants its ack within 3 s. A slower check finishes in the background.
	authorizeWait = 1500 * time.Millisecond
)

// refusalLimiter counts each user's recent refusals, per replica.
type refusalLimiter struct {
	mu    sync.Mutex
	times map[string][]time.Time
}

func newRefusalLimiter() *refusalLimiter { return &refusalLimiter{times: map[string][]time.Time{}} }

// recent returns how many refusals user had within refusalWindow of now.
func (l *refusalLimiter) recent(user string, now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.trim(user, now))
}

// add records a refusal of user at now.
func (l *refusalLimiter) add(user string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.times[user] = append(l.trim(user, now), now)
	if len(l.times) > 10000 { // bound memory: forget users with nothing recent
		for u := range l.times {
			if len(l.trim(u, now)) == 0 {
				delete(l.times, u)
			}
		}
	}
}

func (l *refusalLimiter) trim(user string, now time.Time) []time.Time {
	ts := l.times[user]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= refusalWindow {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.times, user)
		return nil
	}
	l.times[user] = ts
	return ts
}

// refuseNow decides a halt or resume on the request path. It returns the
// refusal to answer with, or "" when the work goes on in the background:
// allowed (the service checks again as it halts), an unknown agent (the
// background answer suggests names), or a check too slow to wait for.
func (h *Handler) refuseNow(ctx context.Context, cmd incidents.HaltCommand) string {
	text, _ := h.refuse(ctx, cmd, nil)
	return text
}

// refuse is refuseNow for a request whose single-use mark use is not taken
// yet: a refusal is counted and audited only once the mark is taken, and
// replay is true (nothing to answer) when another copy of the request took
// it. A mark that cannot be taken is answered with storeDownText.
func (h *Handler) refuse(ctx context.Context, cmd incidents.HaltCommand, use *useOnce) (text string, replay bool) {
	if h.auth == nil {
		return "", false
	}
	agent := h.svc.Registry().Agent(cmd.Agent)
	if agent == nil {
		return "", false
	}
	cmd.Agent = agent.Name
	user, now := cmd.Actor.ID, h.now()
	// taken takes the mark before the first write (the refusal counted
	// and audited); ok false is what to answer instead.
	taken := func() (text string, replay, ok bool) {
		first, err := use.claim(ctx, ackMarkWait)
		switch {
		case err != nil:
			return storeDownText, false, false
		case !first:
			return "", true, false
		}
		return "", false, true
	}
	if n := h.refusals.recent(user, now); n >= refusalLimit {
		if text, replay, ok := taken(); !ok {
			return text, replay
		}
		h.refusals.add(user, now)
		count := h.auditRefusal(ctx, cmd, "refused repeatedly: not looked up again")
		return fmt.Sprintf(":no_entry: You have been refused %d times in a row for *%s*; wait a minute before trying again. Ask someone with kill authority (`/agent who %s`), or use `reins kill` on the host.",
			max(count, n+1), Escape(cmd.Agent), Escape(cmd.Agent)), false
	}
	if ownership.ListedByID(agent, user) {
		return "", false // allowed, as Authorize would say without a look-up
	}
	dec, ok := h.authorize(ctx, agent, user)
	if !ok || dec.Allowed {
		return "", false
	}
	if text, replay, ok := taken(); !ok {
		return text, replay
	}
	h.refusals.add(user, now)
	h.auditRefusal(ctx, cmd, dec.Reason)
	h.log.Info("halt refused", "agent", cmd.Agent, "action", cmd.Action, "user", user)
	return refusal(dec, cmd), false
}

// authorize asks the Authorizer, giving up after authorizeWait (ok false).
func (h *Handler) authorize(ctx context.Context, agent *ownership.Agent, user string) (ownership.Decision, bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), authorizeWait)
	defer cancel()
	done := make(chan ownership.Decision, 1)
	go func() { done <- h.auth.Authorize(ctx, agent, user) }()
	select {
	case d := <-done:
		return d, true
	case <-ctx.Done():
		h.log.Warn("kill authority check slow: finishing it in the background", "agent", agent.Name, "user", user)
		return ownership.Decision{}, false
	}
}

// auditRefusal records the refusal: one audit row per burst of one user's
// refusals for one action on one agent, carrying their count.
func (h *Handler) auditRefusal(ctx context.Context, cmd incidents.HaltCommand, reason string) int {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	action := cmd.Action
	if action == incidents.ActionHalt {
		action = "kill"
	}
	e := &incidents.AuditEntry{At: h.now(), Actor: cmd.Actor, Action: action + "_refused", Agent: cmd.Agent, Detail: reason}
	n, err := h.state.CountRefusal(ctx, cmd.Actor.ID+"|"+e.Action+"|"+cmd.Agent, e, refusalBurst)
	if err != nil {
		h.log.Error("audit refused halt", "agent", cmd.Agent, "user", cmd.Actor.ID, "err", err)
	}
	return n
}

// refusedAck is a refusal as the immediate, ephemeral answer.
func refusedAck(text string) ackMessage {
	return ackMessage{ResponseType: slack.ResponseTypeEphemeral, Text: text, Blocks: textBlocks(text)}
}
