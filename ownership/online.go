package ownership

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// CheckOnline asks Slack and PagerDuty whether everything the config names
// exists (users, user groups, channels, escalation policies) and whether each
// agent's kill authority resolves to at least one person today. Problems are
// reported at the line of the item. A nil checker means that source is not
// configured: one warning says what was not checked.
func CheckOnline(ctx context.Context, r *Registry, slack SlackChecker, pd PagerChecker) Problems {
	if r == nil {
		return nil
	}
	c := &onlineCheck{ctx: ctx, r: r, slack: slack, pd: pd, memo: map[string]existence{}}
	if slack == nil {
		c.probs = append(c.probs, Problem{File: r.File, Warning: true,
			Message: "Slack is not configured (SLACK_BOT_TOKEN): users, user groups and channels were not checked"})
	}
	if pd == nil {
		c.probs = append(c.probs, Problem{File: r.File, Warning: true,
			Message: "PagerDuty is not configured (PAGERDUTY_API_TOKEN): escalation policies and on-call were not checked"})
	}
	if gc := r.Slack.GovernanceChannel; gc != "" {
		c.check(kindChannel, gc, "slack.governance_channel", r.line("slack.governance_channel"))
	}
	for _, name := range slices.Sorted(maps.Keys(r.Teams)) {
		c.team(r.Teams[name])
	}
	for _, name := range r.Names() {
		c.agent(r.Agents[name])
	}
	c.probs.sortByLine()
	return c.probs
}

type itemKind int

const (
	kindUser itemKind = iota
	kindGroup
	kindEmail
	kindChannel
	kindPolicy
)

// label names the item kind in messages, with a # before channels.
func (k itemKind) label(v string) string {
	switch k {
	case kindUser:
		return "Slack user " + v
	case kindGroup:
		return "Slack user group " + v
	case kindEmail:
		return "Slack user with e-mail " + v
	case kindChannel:
		return "Slack channel #" + v
	}
	return "PagerDuty escalation policy " + v
}

type existence struct {
	exists bool
	err    error
}

type onlineCheck struct {
	ctx   context.Context
	r     *Registry
	slack SlackChecker
	pd    PagerChecker
	probs Problems
	memo  map[string]existence // one question per distinct item
}

func (c *onlineCheck) team(t *Team) {
	path := "teams." + t.Name
	if t.SlackChannel != "" {
		c.check(kindChannel, t.SlackChannel, path+".slack_channel", c.at(t.Line, path+".slack_channel"))
	}
	if t.SlackUsergroup != "" {
		c.check(kindGroup, t.SlackUsergroup, path+".slack_usergroup", c.at(t.Line, path+".slack_usergroup"))
	}
	if ep := t.PagerDuty.EscalationPolicy; ep != "" {
		c.check(kindPolicy, ep, path+".pagerduty.escalation_policy", c.at(t.Line, path+".pagerduty.escalation_policy"))
	}
}

func (c *onlineCheck) agent(a *Agent) {
	path := "agents." + a.Name
	for _, role := range []struct {
		key    string
		people []string
	}{{"responsible", a.RACI.Responsible}, {"accountable", a.RACI.Accountable}, {"consulted", a.RACI.Consulted}, {"informed", a.RACI.Informed}} {
		c.people(a, path+".raci."+role.key, role.people)
	}
	ka := path + ".kill_authority"
	c.people(a, ka+".users", a.KillAuthority.Users)
	c.people(a, ka+".usergroups", a.KillAuthority.Usergroups)
	if oc := a.KillAuthority.OnCall; oc != "" {
		c.check(kindPolicy, oc, ka+".on_call", c.at(a.Line, ka+".on_call"))
	}
	if ep := a.PagerDuty.EscalationPolicy; ep != "" {
		c.check(kindPolicy, ep, path+".pagerduty.escalation_policy", c.at(a.Line, path+".pagerduty.escalation_policy"))
	}
	c.holders(a, ka)
}

func (c *onlineCheck) people(a *Agent, path string, list []string) {
	for i, p := range list {
		line := c.at(a.Line, fmt.Sprintf("%s[%d]", path, i), path)
		switch classify(p) {
		case slackUser:
			c.check(kindUser, p, path, line)
		case slackGroup:
			c.check(kindGroup, p, path, line)
		case emailUser:
			c.check(kindEmail, p, path, line)
		case slackChannel:
			c.check(kindChannel, strings.TrimPrefix(p, "#"), path, line)
		}
	}
}

// holders checks that the agent's kill authority resolves to at least one
// Slack user today: an authority that resolves to nobody means an incident
// where the agent cannot be halted.
func (c *onlineCheck) holders(a *Agent, path string) {
	var dir Directory
	if c.slack != nil {
		dir = c.slack
	}
	var oncall OnCall
	if c.pd != nil {
		oncall = c.pd
	}
	holders, unavailable := NewAuthorizer(dir, oncall, 0, nil, nil).Holders(c.ctx, a)
	for _, h := range holders {
		if classify(h) == slackUser && c.exists(kindUser, h) {
			return
		}
	}
	p := Problem{File: c.r.File, Line: c.at(a.Line, path)}
	if len(unavailable) > 0 {
		p.Warning = true
		p.Message = fmt.Sprintf("%s: could not confirm that anyone holds kill authority for %s today (unavailable: %s)",
			path, a.Name, strings.Join(unavailable, "; "))
	} else {
		p.Message = fmt.Sprintf("%s: kill authority for %s resolves to nobody today: nobody could halt it", path, a.Name)
	}
	c.probs = append(c.probs, p)
}

// at returns the line of the first known path, else fallback.
func (c *onlineCheck) at(fallback int, paths ...string) int {
	if l := c.r.line(paths...); l > 0 {
		return l
	}
	return fallback
}

// check asks whether one item exists, once per distinct item, and reports
// at line when it does not or cannot be checked.
func (c *onlineCheck) check(kind itemKind, value, path string, line int) {
	if (kind == kindPolicy && c.pd == nil) || (kind != kindPolicy && c.slack == nil) {
		return
	}
	res := c.answer(kind, value)
	switch {
	case res.err != nil:
		c.probs = append(c.probs, Problem{File: c.r.File, Line: line,
			Message: fmt.Sprintf("%s: could not check %s: %v", path, kind.label(value), res.err)})
	case !res.exists:
		c.probs = append(c.probs, Problem{File: c.r.File, Line: line,
			Message: fmt.Sprintf("%s: %s does not exist", path, kind.label(value))})
	}
}

// exists reports whether an item is known to exist; without Slack a user ID
// is taken on trust.
func (c *onlineCheck) exists(kind itemKind, value string) bool {
	if c.slack == nil {
		return true
	}
	res := c.answer(kind, value)
	return res.err == nil && res.exists
}

func (c *onlineCheck) answer(kind itemKind, value string) existence {
	key := fmt.Sprintf("%d:%s", kind, value)
	res, done := c.memo[key]
	if !done {
		res = c.ask(kind, value)
		c.memo[key] = res
	}
	return res
}

func (c *onlineCheck) ask(kind itemKind, value string) existence {
	var ok bool
	var err error
	switch kind {
	case kindUser:
		ok, err = c.slack.UserExists(c.ctx, value)
	case kindGroup:
		ok, err = c.slack.UsergroupExists(c.ctx, value)
	case kindChannel:
		ok, err = c.slack.ChannelExists(c.ctx, value)
	case kindEmail:
		// Slack answers users_not_found as an error; an e-mail that does not
		// resolve is reported as missing either way, with the reason.
		var id string
		id, err = c.slack.UserByEmail(c.ctx, value)
		ok = err == nil && id != ""
		if err != nil {
			return existence{exists: false, err: fmt.Errorf("no user found: %w", err)}
		}
	case kindPolicy:
		ok, err = c.pd.EscalationPolicyExists(c.ctx, value)
	}
	return existence{exists: ok, err: err}
}
