package guard

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/ownership"
)

// Queue is what of an agent waits to be acted on: its breaches not acted on
// yet, by session, in crossing order.
type Queue struct {
	Agent    string    `json:"agent"`
	Sessions []string  `json:"sessions"`          // waiting, in the order they crossed
	Oldest   time.Time `json:"oldest,omitzero"`   // when the first waiting one crossed
	Next     time.Time `json:"next_try,omitzero"` // when the budget lets the next one go
	Limit    int       `json:"max_auto_halts_per_minute"`
	Overflow string    `json:"overflow"`
}

// Queue returns agent's waiting breaches (docs/config.md, escalation).
func (g *Guard) Queue(ctx context.Context, agent string) (Queue, error) {
	a := g.cfg.Registry.Current().Agent(agent)
	if a == nil {
		return Queue{}, fmt.Errorf("unknown agent %q", agent)
	}
	q := Queue{Agent: a.Name, Limit: maxAutoHalts(a), Overflow: overflow(a)}
	list, err := g.cfg.Store.WaitingBreaches(ctx, a.Name, 10_000)
	if err != nil {
		return q, err
	}
	seen := map[string]bool{}
	for _, b := range list {
		if b.Action == ownership.OnBreachAlert || seen[b.Session] {
			continue
		}
		seen[b.Session] = true
		q.Sessions = append(q.Sessions, b.Session)
		if q.Oldest.IsZero() {
			q.Oldest = b.At
		}
		if !b.Due.IsZero() && (q.Next.IsZero() || b.Due.Before(q.Next)) {
			q.Next = b.Due
		}
	}
	return q, nil
}

// Text renders the queue in a line or two for a person; "" when empty.
func (q Queue) Text(now time.Time) string {
	if len(q.Sessions) == 0 {
		return ""
	}
	shown := q.Sessions
	if len(shown) > 10 {
		shown = shown[:10]
	}
	more := ""
	if n := len(q.Sessions) - len(shown); n > 0 {
		more = fmt.Sprintf(" and %d more", n)
	}
	s := fmt.Sprintf("Waiting to be halted: %d sessions of %s (%s%s), in the order they crossed",
		len(q.Sessions), q.Agent, strings.Join(shown, ", "), more)
	if !q.Next.IsZero() && q.Next.After(now) {
		s += fmt.Sprintf("; max_auto_halts_per_minute (%d) is spent, the next goes in %s", q.Limit,
			q.Next.Sub(now).Round(time.Second))
	}
	return s + ". Overflow policy: " + q.Overflow + ".\n"
}

// StatusText is an agent's SLAs and its waiting breaches, as /agent status
// and `reins agents` show them.
func (g *Guard) StatusText(ctx context.Context, agent string) (string, error) {
	list, err := g.Status(ctx, agent)
	if err != nil {
		return "", err
	}
	q, err := g.Queue(ctx, agent)
	if err != nil {
		return "", err
	}
	return Text(agent, list) + q.Text(g.cfg.Now()), nil
}

// LeaveCommand is a person's word to leave a breaching session running:
// its waiting breaches end with outcome "left", recorded with who said so.
type LeaveCommand struct {
	Agent   string
	Session string
	Actor   incidents.Actor
}

// Authorizer says whether actor holds kill authority over agent
// (incidents.Service CheckAuthority).
type Authorizer func(ctx context.Context, actor incidents.Actor, agent string) (bool, string, error)

// Leave ends the waiting breaches of a session on the word of a person with
// kill authority; it says how many there were. The caller records it on the
// timeline (incidents.Service RecordLeave).
func (g *Guard) Leave(ctx context.Context, cmd LeaveCommand, allowed Authorizer) (int, error) {
	a := g.cfg.Registry.Current().Agent(cmd.Agent)
	if a == nil {
		return 0, incidents.Errorf(incidents.ENOTFOUND, "Unknown agent %s: see `/agent list`.", cmd.Agent)
	}
	if why := sessions.ValidID(cmd.Session); why != "" {
		return 0, incidents.Errorf(incidents.EINVALID, "That is not a session ID: %s.", why)
	}
	ok, why, err := allowed(ctx, cmd.Actor, a.Name)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, incidents.Errorf(incidents.EFORBIDDEN, "You may not leave sessions of %s running: %s.", a.Name,
			strings.TrimSuffix(why, "."))
	}
	n, err := g.cfg.Store.LeaveSession(ctx, a.Name, cmd.Session, cmd.Actor.String())
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, incidents.Errorf(incidents.ENOTFOUND, "Session %s of %s has no breach waiting to be acted on.",
			cmd.Session, a.Name)
	}
	return n, nil
}
