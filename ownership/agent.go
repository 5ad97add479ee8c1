package ownership

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

var agentKeys = []string{
	"description", "team", "runbook", "raci", "kill_authority", "pagerduty",
	"halt", "sessions", "aliases", "blast_radius", "slas", "escalation", "drill", "resume", "telemetry",
}

// agent reads one entry of agents:. Teams are read first, so the team
// reference can be checked here.
func (p *parser) agent(name string, key, val *yaml.Node, r *Registry) *Agent {
	path := "agents." + name
	a := &Agent{Name: name, Line: key.Line}
	if !entityName.MatchString(name) {
		p.errorf(key, "%s: an agent name is letters, digits, '.', '-' and '_' (at most 63), as typed in /agent kill NAME", path)
	}
	f, ok := p.mapping(val, path, agentKeys)
	if !ok {
		return a
	}
	a.Description = p.str(f.val("description"), path+".description")
	a.Runbook = p.str(f.val("runbook"), path+".runbook")
	p.checkURL(f.val("runbook"), path+".runbook", a.Runbook)
	p.agentTeam(a, key, f, r)
	a.RACI = p.raci(f.val("raci"), path+".raci")
	a.KillAuthority = p.authority(key, f, path)
	a.PagerDuty = p.pagerDuty(f.val("pagerduty"), path+".pagerduty")
	a.Halt = p.halt(key, f, path)
	a.Sessions = p.sessions(f.val("sessions"), path+".sessions")
	a.Aliases = p.strList(f.val("aliases"), path+".aliases")
	for i, alias := range a.Aliases {
		if !entityName.MatchString(alias) {
			p.errorf(&yaml.Node{Line: p.pos[fmt.Sprintf("%s.aliases[%d]", path, i)]},
				"%s.aliases: %s is not a usable name (letters, digits, '.', '-' and '_')", path, quote(alias))
		}
	}
	a.BlastRadius = p.blastRadius(f.val("blast_radius"), path+".blast_radius")
	a.SLAs = p.slas(f.val("slas"), path+".slas", a)
	a.Escalation = p.escalation(f.val("escalation"), path+".escalation")
	a.Resume = p.resumeGate(f.val("resume"), path+".resume", a.SLAs)
	a.Telemetry = p.telemetryAuth(f.val("telemetry"), path+".telemetry")
	if v := f.val("drill"); v != nil {
		a.Drill = p.str(v, path+".drill")
		if a.Drill != "" {
			p.drill(v, path+".drill", a.Drill)
		}
	}
	return a
}

func (p *parser) agentTeam(a *Agent, key *yaml.Node, f fields, r *Registry) {
	path := "agents." + a.Name
	v := f.val("team")
	a.Team = p.str(v, path+".team")
	switch {
	case a.Team == "":
		p.errorf(key, "%s: team is missing: every agent needs an owner team from teams:", path)
	case r.Teams[a.Team] == nil:
		known := slices.Sorted(maps.Keys(r.Teams))
		hint := didYouMean(a.Team, known)
		switch {
		case len(known) == 0:
			hint = " (no teams are defined: add one under teams:)"
		case hint == "" && len(known) <= 10:
			hint = fmt.Sprintf(" (defined: %s)", strings.Join(known, ", "))
		}
		p.errorf(v, "%s.team: team %s is not defined under teams%s", path, quote(a.Team), hint)
	}
}

func (p *parser) raci(n *yaml.Node, path string) RACI {
	var r RACI
	f, _ := p.mapping(n, path, []string{"responsible", "accountable", "consulted", "informed"})
	for _, role := range []struct {
		key string
		dst *[]string
	}{{"responsible", &r.Responsible}, {"accountable", &r.Accountable}, {"consulted", &r.Consulted}, {"informed", &r.Informed}} {
		*role.dst = p.people(f.val(role.key), path+"."+role.key, role.key == "informed")
	}
	return r
}

// people reads a list of people: Slack user or user-group IDs or e-mail
// addresses, and, where channels are allowed, bare channel names.
func (p *parser) people(n *yaml.Node, path string, channels bool) []string {
	list := p.strList(n, path)
	for i, s := range list {
		k := classify(s)
		if k == slackChannel && channels {
			list[i] = strings.TrimPrefix(s, "#")
			continue
		}
		if k == notPerson || k == slackChannel {
			want := "a Slack user ID (U… or W…), user-group ID (S…) or e-mail address"
			if channels {
				want += ", or a channel name"
			}
			p.errorf(p.itemNode(path, i), "%s: %s is not %s", path, quote(s), want)
		}
	}
	return list
}

// itemNode stands in for the node of list item i, for its line.
func (p *parser) itemNode(path string, i int) *yaml.Node {
	return &yaml.Node{Line: p.pos[fmt.Sprintf("%s[%d]", path, i)]}
}

func (p *parser) authority(key *yaml.Node, agent fields, agentPath string) Authority {
	var a Authority
	path := agentPath + ".kill_authority"
	n := agent.val("kill_authority")
	f, ok := p.mapping(n, path, []string{"users", "usergroups", "on_call"})
	if !ok {
		return a
	}
	a.Users = p.strList(f.val("users"), path+".users")
	for i, u := range a.Users {
		switch classify(u) {
		case slackUser, emailUser:
		case slackGroup:
			p.errorf(p.itemNode(path+".users", i), "%s.users: %s is a user-group ID: list it under kill_authority.usergroups", path, quote(u))
		default:
			p.errorf(p.itemNode(path+".users", i), "%s.users: %s is not a Slack user ID (U… or W…) or e-mail address", path, quote(u))
		}
	}
	a.Usergroups = p.strList(f.val("usergroups"), path+".usergroups")
	for i, g := range a.Usergroups {
		if classify(g) != slackGroup {
			p.errorf(p.itemNode(path+".usergroups", i), "%s.usergroups: %s is not a Slack user-group ID (S…)", path, quote(g))
		}
	}
	if v := f.val("on_call"); v != nil {
		a.OnCall = p.str(v, path+".on_call")
		if a.OnCall != "" && !pagerDutyID.MatchString(a.OnCall) {
			p.errorf(v, "%s.on_call: %s is not a PagerDuty escalation policy ID (like PABC123)", path, quote(a.OnCall))
		}
		p.pos.set(path+".on_call", v.Line)
	}
	if len(a.Users) == 0 && len(a.Usergroups) == 0 && a.OnCall == "" {
		at := key
		if kf, ok := agent.byKey["kill_authority"]; ok {
			at = kf.key
		}
		p.errorf(at, "%s: no kill authority: list users, usergroups or on_call under kill_authority, or nobody can halt this agent", agentPath)
	}
	if kf, ok := agent.byKey["kill_authority"]; ok {
		p.pos.set(path, kf.key.Line)
	}
	return a
}

func (p *parser) blastRadius(n *yaml.Node, path string) []BlastItem {
	var items []BlastItem
	seen := map[string]int{}
	for i, item := range p.sequence(n, path) {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		f, ok := p.mapping(item, ipath, []string{"system", "access", "owner", "check", "link", "tools"})
		if !ok {
			continue
		}
		b := BlastItem{
			System: p.str(f.val("system"), ipath+".system"),
			Access: p.strList(f.val("access"), ipath+".access"),
			Owner:  p.str(f.val("owner"), ipath+".owner"),
			Check:  p.str(f.val("check"), ipath+".check"),
			Link:   p.str(f.val("link"), ipath+".link"),
			Tools:  p.toolGlobs(f.val("tools"), ipath+".tools"),
		}
		p.checkURL(f.val("link"), ipath+".link", b.Link)
		switch first, dup := seen[strings.ToLower(b.System)]; {
		case b.System == "":
			p.errorf(item, "%s: system is missing: name the external system (e.g. Salesforce)", ipath)
		case dup:
			p.errorf(f.val("system"), "%s.system: %s is listed twice (first at line %d)", ipath, quote(b.System), first)
		default:
			seen[strings.ToLower(b.System)] = lineOf(f.val("system"))
		}
		items = append(items, b)
	}
	return items
}
