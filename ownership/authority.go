package ownership

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultAuthorityTTL is how long a directory or on-call answer is trusted
// when NewAuthorizer is given no TTL.
const DefaultAuthorityTTL = time.Minute

// lookupTimeout bounds each call to Slack or PagerDuty, so a hanging source
// delays a kill by seconds, not minutes; the cached answer is used instead.
const lookupTimeout = 3 * time.Second

// Authorizer decides who may halt or resume an agent, resolving
// kill_authority through Slack (e-mails, user groups) and PagerDuty (on call
// now). Every answer is cached for the TTL and kept after it: when a source
// fails, the last known answer is used, so an outage of PagerDuty or Slack does
// not take the kill switch with it. Safe for concurrent use.
type Authorizer struct {
	dir    Directory // nil: Slack not configured
	oncall OnCall    // nil: PagerDuty not configured
	ttl    time.Duration
	now    func() time.Time
	log    *slog.Logger

	mu    sync.Mutex
	cache map[string]cachedAnswer
}

type cachedAnswer struct {
	vals []string
	at   time.Time
}

// NewAuthorizer returns an Authorizer. dir and oncall may be nil when Slack or
// PagerDuty is not configured; ttl <= 0 means DefaultAuthorityTTL; now and log
// may be nil (time.Now, no logging).
func NewAuthorizer(dir Directory, oncall OnCall, ttl time.Duration, now func() time.Time, log *slog.Logger) *Authorizer {
	if ttl <= 0 {
		ttl = DefaultAuthorityTTL
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Authorizer{dir: dir, oncall: oncall, ttl: ttl, now: now, log: log, cache: map[string]cachedAnswer{}}
}

// source kinds, for the refusal message.
const (
	srcDirectory = "directory"
	srcUsergroup = "user-group"
	srcOnCall    = "on-call"
)

// unavailable is a source that failed with no cached answer.
type unavailable struct{ kind, what string }

// resolution is kill authority resolved to people, stopping early when the
// person asked about is found.
type resolution struct {
	holders []string
	missing []unavailable
	stale   bool
	reason  string // set when the person holds authority
}

func (r *resolution) hold(id string) {
	if !slices.Contains(r.holders, id) {
		r.holders = append(r.holders, id)
	}
}

func (r *resolution) unavailableNames() []string {
	var out []string
	for _, m := range r.missing {
		if !slices.Contains(out, m.what) {
			out = append(out, m.what)
		}
	}
	return out
}

// Authorize decides whether person (a Slack user ID) may halt or resume agent.
// A person listed by user ID is allowed without any look-up. Holders is filled
// on refusal only: that is when the caller must say who to ask instead.
func (a *Authorizer) Authorize(ctx context.Context, agent *Agent, person string) Decision {
	d := Decision{Person: person}
	if agent == nil {
		d.Reason = "unknown agent"
		return d
	}
	d.Agent = agent.Name
	res := a.resolve(ctx, agent, person)
	d.Stale, d.Unavailable = res.stale, res.unavailableNames()
	if res.reason != "" {
		d.Allowed, d.Reason = true, res.reason
		return d
	}
	d.Holders = res.holders
	d.Reason = refusal(agent.Name, res)
	return d
}

// ListedByID says whether person (a Slack user ID) is listed by user ID in
// agent's kill_authority.users, which Authorize allows before any look-up:
// a caller on a latency budget (a slash command's ack) can decide this case
// without bounding a call that cannot block.
func ListedByID(agent *Agent, person string) bool {
	if agent == nil || person == "" {
		return false
	}
	for _, u := range agent.KillAuthority.Users {
		if strings.EqualFold(u, person) && classify(u) != emailUser {
			return true
		}
	}
	return false
}

// Holders resolves the agent's kill authority to people now: Slack user IDs,
// or e-mail addresses that could not be resolved. unavailable names the sources
// that failed with no cached answer.
func (a *Authorizer) Holders(ctx context.Context, agent *Agent) (holders, unavailable []string) {
	if agent == nil {
		return nil, nil
	}
	res := a.resolve(ctx, agent, "")
	return res.holders, res.unavailableNames()
}

func refusal(agent string, res resolution) string {
	var b strings.Builder
	fmt.Fprintf(&b, "not listed in kill_authority for %s", agent)
	if len(res.missing) > 0 {
		var kinds []string
		for _, m := range res.missing {
			if !slices.Contains(kinds, m.kind) {
				kinds = append(kinds, m.kind)
			}
		}
		noun := "source is"
		if len(kinds) > 1 {
			noun = "sources are"
		}
		fmt.Fprintf(&b, "; the %s %s unavailable (%s), so kill authority could not be fully checked",
			joinAnd(kinds), noun, strings.Join(res.unavailableNames(), "; "))
	}
	switch {
	case len(res.holders) == 0 && len(res.missing) > 0:
		b.WriteString("; no holder is known now")
	case len(res.holders) == 0:
		b.WriteString("; nobody holds it now")
	case len(res.missing) > 0:
		fmt.Fprintf(&b, "; holders known now: %s", strings.Join(res.holders, ", "))
	default:
		fmt.Fprintf(&b, "; holders now: %s", strings.Join(res.holders, ", "))
	}
	return b.String()
}

func (a *Authorizer) resolve(ctx context.Context, agent *Agent, person string) resolution {
	var res resolution
	auth := agent.KillAuthority
	// Direct IDs first: they need no look-up, so a listed person is allowed
	// even with Slack and PagerDuty both down.
	for _, u := range auth.Users {
		if classify(u) != emailUser {
			res.hold(u)
			if person != "" && strings.EqualFold(u, person) {
				res.reason = "listed in kill_authority.users"
				return res
			}
		}
	}
	for _, u := range auth.Users {
		if classify(u) == emailUser && a.viaEmail(ctx, &res, u, person) {
			res.reason = "listed in kill_authority.users as " + u
			return res
		}
	}
	for _, g := range auth.Usergroups {
		if a.viaGroup(ctx, &res, g, person) {
			res.reason = "member of user group " + g
			return res
		}
	}
	if auth.OnCall != "" && a.viaOnCall(ctx, &res, auth.OnCall, person) {
		res.reason = "on call now for " + auth.OnCall
	}
	return res
}

// viaEmail resolves an e-mail to a user ID and reports whether it is person.
func (a *Authorizer) viaEmail(ctx context.Context, res *resolution, email, person string) bool {
	what := "Slack e-mail look-up for " + email
	if a.dir == nil {
		res.hold(email)
		res.missing = append(res.missing, unavailable{srcDirectory, what + " (Slack not configured)"})
		return false
	}
	ids, ok := a.lookup(ctx, res, "email:"+strings.ToLower(email), srcDirectory, what, func(ctx context.Context) ([]string, error) {
		id, err := a.dir.UserByEmail(ctx, email)
		if err != nil || id == "" {
			return nil, err
		}
		return []string{id}, nil
	})
	if !ok || len(ids) == 0 {
		res.hold(email)
		return false
	}
	return a.holdAll(res, ids, person)
}

func (a *Authorizer) viaGroup(ctx context.Context, res *resolution, group, person string) bool {
	what := "Slack user group " + group
	if a.dir == nil {
		res.missing = append(res.missing, unavailable{srcUsergroup, what + " (Slack not configured)"})
		return false
	}
	ids, _ := a.lookup(ctx, res, "group:"+group, srcUsergroup, what, func(ctx context.Context) ([]string, error) {
		return a.dir.UsergroupMembers(ctx, group)
	})
	return a.holdAll(res, ids, person)
}

func (a *Authorizer) viaOnCall(ctx context.Context, res *resolution, policy, person string) bool {
	what := "PagerDuty on-call for " + policy
	if a.oncall == nil {
		res.missing = append(res.missing, unavailable{srcOnCall, what + " (PagerDuty not configured)"})
		return false
	}
	emails, _ := a.lookup(ctx, res, "oncall:"+policy, srcOnCall, what, func(ctx context.Context) ([]string, error) {
		return a.oncall.OnCallEmails(ctx, policy)
	})
	for _, e := range emails {
		if a.viaEmail(ctx, res, e, person) {
			return true
		}
	}
	return false
}

func (a *Authorizer) holdAll(res *resolution, ids []string, person string) bool {
	for _, id := range ids {
		res.hold(id)
		if person != "" && strings.EqualFold(id, person) {
			return true
		}
	}
	return false
}

// lookup answers from the cache while it is fresh, else asks fetch. When
// fetch fails the last known answer is used (res.stale); with none, the source
// is recorded as unavailable and ok is false.
func (a *Authorizer) lookup(ctx context.Context, res *resolution, key, kind, what string, fetch func(context.Context) ([]string, error)) (vals []string, ok bool) {
	now := a.now()
	a.mu.Lock()
	c, have := a.cache[key]
	a.mu.Unlock()
	if have && now.Sub(c.at) < a.ttl {
		return c.vals, true
	}
	fctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	vals, err := fetch(fctx)
	cancel()
	if err == nil {
		a.mu.Lock()
		a.cache[key] = cachedAnswer{vals: vals, at: now}
		a.mu.Unlock()
		return vals, true
	}
	if have {
		a.log.Warn("kill authority look-up failed; using the last known answer",
			"source", what, "age", now.Sub(c.at).Round(time.Second), "err", err)
		res.stale = true
		return c.vals, true
	}
	a.log.Warn("kill authority look-up failed with no known answer", "source", what, "err", err)
	res.missing = append(res.missing, unavailable{kind, what})
	return nil, false
}

// joinAnd joins words as prose: "a", "a and b", "a, b and c".
func joinAnd(words []string) string {
	if len(words) <= 1 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
