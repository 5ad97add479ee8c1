package ownership

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults for settings a config may leave out.
const (
	DefaultChannelPrefix = "inc"
	DefaultGroupWindow   = 4 * time.Hour
	// DefaultMaxNewIncidentsPerMinute caps the incidents one alert source
	// opens in a minute; beyond it alerts join one overflow incident.
	DefaultMaxNewIncidentsPerMinute = 20
	maxNewIncidentsPerMinuteLimit   = 10000
)

// DefaultAgentLabels and DefaultSessionLabels are where an alert names its
// agent and sessions when alerts: does not say.
var (
	DefaultAgentLabels   = []string{"agent"}
	DefaultSessionLabels = []string{"session_id", "session_ids"}
)

// Load reads and validates the config at path. The Registry is nil when any
// problem is an error; warnings come with a usable Registry. A file that
// cannot be read is one problem at line 0.
func Load(path string, opts Options) (*Registry, Problems) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Problems{{File: path, Message: fmt.Sprintf("cannot read the config: %v", err)}}
	}
	return Parse(path, data, opts)
}

// Parse validates config bytes; file names them in problems. Every problem is
// reported, in file order, not just the first.
func Parse(file string, data []byte, opts Options) (*Registry, Problems) {
	p := &parser{file: file, opts: opts, pos: positions{}}
	r := Empty()
	r.File = file
	if root := p.document(data); root != nil {
		p.registry(root, r)
	}
	p.probs.sortByLine()
	if len(p.probs.Errors()) > 0 {
		return nil, p.probs
	}
	rememberPositions(r, p.pos)
	return r, p.probs
}

// Empty is the registry in force without a config: no agents, all defaults.
func Empty() *Registry {
	return &Registry{
		Slack: SlackSettings{ChannelPrefix: DefaultChannelPrefix},
		Alerts: AlertSettings{
			AgentLabels:   append([]string(nil), DefaultAgentLabels...),
			SessionLabels: append([]string(nil), DefaultSessionLabels...),
			GroupWindow:   DefaultGroupWindow,

			MaxNewIncidentsPerMinute: DefaultMaxNewIncidentsPerMinute,
		},
		Teams:     map[string]*Team{},
		Agents:    map[string]*Agent{},
		Pricing:   map[string]Price{},
		Telemetry: defaultTelemetry(),
		LoadedAt:  time.Now(),
	}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// document parses the YAML and returns its root node, or nil when there is
// nothing to walk (empty file or a syntax error, already reported).
func (p *parser) document(data []byte) (root *yaml.Node) {
	defer func() {
		// yaml.v3 has panicked on hostile input before; a config must never
		// take the process down.
		if v := recover(); v != nil {
			p.probs = append(p.probs, Problem{File: p.file, Message: fmt.Sprintf("not readable as YAML: %v", v)})
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.warnf(nil, "the config is empty: reins will run with no agents")
			return nil
		}
		p.syntaxError(err)
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		p.errorf(&next, "a second YAML document (---) is not allowed: put everything in one")
	} else if !errors.Is(err, io.EOF) {
		p.syntaxError(err)
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0]
	}
	return &doc
}

// parserProblems are yaml.v3's parser (not scanner) messages. For these it
// reports the 0-based line of the construct being parsed, one less than the
// line an editor shows.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

func (p *parser) syntaxError(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = err.Error()[len(m[0]):]
	}
	if parserProblems[msg] {
		line++
		msg += " (in the block that starts on this line: check the indentation and brackets below)"
	}
	p.probs = append(p.probs, Problem{File: p.file, Line: line, Message: "YAML syntax: " + msg})
}

var topKeys = []string{"slack", "alerts", "teams", "agents", "pricing", "telemetry"}

func (p *parser) registry(root *yaml.Node, r *Registry) {
	top, ok := p.mapping(root, "config", topKeys)
	if !ok {
		return
	}
	p.slack(top.val("slack"), &r.Slack)
	p.alerts(top.val("alerts"), &r.Alerts)
	p.telemetry(top.val("telemetry"), &r.Telemetry)
	p.teams(top.val("teams"), r)
	p.agents(top.val("agents"), r)
	r.Pricing = p.pricing(top.val("pricing"))
	p.checkCostSLAs(r.Pricing)
	if len(r.Agents) == 0 && isNull(top.val("agents")) {
		p.warnf(root, "no agents are defined: alerts will open unowned incidents and nothing can be halted")
	}
}

func (p *parser) slack(n *yaml.Node, s *SlackSettings) {
	f, _ := p.mapping(n, "slack", []string{"channel_prefix", "governance_channel"})
	if v := f.val("channel_prefix"); v != nil {
		prefix := p.str(v, "slack.channel_prefix")
		if !channelName.MatchString(prefix) || len(prefix) > 20 {
			p.errorf(v, "slack.channel_prefix: %s is not usable in a channel name (lowercase letters, digits, - and _, at most 20)", quote(prefix))
		} else {
			s.ChannelPrefix = prefix
		}
	}
	if v := f.val("governance_channel"); v != nil {
		ch := strings.TrimPrefix(p.str(v, "slack.governance_channel"), "#")
		if !channelName.MatchString(ch) {
			p.errorf(v, "slack.governance_channel: %s is not a Slack channel name (lowercase letters, digits, - and _)", quote(ch))
		}
		s.GovernanceChannel = ch
		p.pos.set("slack.governance_channel", v.Line)
	}
}

func (p *parser) alerts(n *yaml.Node, a *AlertSettings) {
	f, _ := p.mapping(n, "alerts", []string{"agent_labels", "session_labels", "group_window",
		"max_new_incidents_per_minute"})
	for _, l := range []struct {
		key string
		dst *[]string
	}{{"agent_labels", &a.AgentLabels}, {"session_labels", &a.SessionLabels}} {
		v := f.val(l.key)
		if v == nil {
			continue
		}
		labels := p.strList(v, "alerts."+l.key)
		if len(labels) == 0 {
			p.errorf(v, "alerts.%s: list at least one label", l.key)
			continue
		}
		*l.dst = labels
	}
	if v := f.val("group_window"); v != nil {
		a.GroupWindow = p.duration(v, "alerts.group_window", DefaultGroupWindow)
	}
	if v := f.val("max_new_incidents_per_minute"); v != nil {
		if n := p.number(v, "alerts.max_new_incidents_per_minute"); n != nil {
			if *n != float64(int(*n)) || *n < 1 || *n > maxNewIncidentsPerMinuteLimit {
				p.errorf(v, "alerts.max_new_incidents_per_minute: %v is not a whole number from 1 to %d", *n, maxNewIncidentsPerMinuteLimit)
			} else {
				a.MaxNewIncidentsPerMinute = int(*n)
			}
		}
	}
}

func (p *parser) teams(n *yaml.Node, r *Registry) {
	f, _ := p.mapping(n, "teams", nil)
	for _, name := range f.keys {
		fl := f.byKey[name]
		path := "teams." + name
		if !entityName.MatchString(name) {
			p.errorf(fl.key, "%s: a team name is letters, digits, '.', '-' and '_' (at most 63)", path)
		}
		t := &Team{Name: name, Line: fl.key.Line}
		tf, _ := p.mapping(fl.val, path, []string{"slack_channel", "slack_usergroup", "pagerduty", "telemetry"})
		if v := tf.val("slack_channel"); v != nil {
			t.SlackChannel = strings.TrimPrefix(p.str(v, path+".slack_channel"), "#")
			if !channelName.MatchString(t.SlackChannel) {
				p.errorf(v, "%s.slack_channel: %s is not a Slack channel name (lowercase letters, digits, - and _)", path, quote(t.SlackChannel))
			}
			p.pos.set(path+".slack_channel", v.Line)
		}
		if v := tf.val("slack_usergroup"); v != nil {
			t.SlackUsergroup = p.str(v, path+".slack_usergroup")
			if classify(t.SlackUsergroup) != slackGroup {
				p.errorf(v, "%s.slack_usergroup: %s is not a Slack user-group ID (S…)", path, quote(t.SlackUsergroup))
			}
			p.pos.set(path+".slack_usergroup", v.Line)
		}
		t.PagerDuty = p.pagerDuty(tf.val("pagerduty"), path+".pagerduty")
		t.Telemetry = p.telemetryAuth(tf.val("telemetry"), path+".telemetry")
		r.Teams[name] = t
	}
}

// pagerDuty reads a pagerduty: block of a team or an agent.
func (p *parser) pagerDuty(n *yaml.Node, path string) PagerDutySettings {
	var s PagerDutySettings
	f, _ := p.mapping(n, path, []string{"routing_key_env", "escalation_policy"})
	if v := f.val("routing_key_env"); v != nil {
		s.RoutingKeyEnv = p.envVar(v, path+".routing_key_env")
	}
	if v := f.val("escalation_policy"); v != nil {
		s.EscalationPolicy = p.str(v, path+".escalation_policy")
		if !pagerDutyID.MatchString(s.EscalationPolicy) {
			p.errorf(v, "%s.escalation_policy: %s is not a PagerDuty escalation policy ID (like PABC123)", path, quote(s.EscalationPolicy))
		}
		p.pos.set(path+".escalation_policy", v.Line)
	}
	return s
}

func (p *parser) agents(n *yaml.Node, r *Registry) {
	f, _ := p.mapping(n, "agents", nil)
	for _, name := range f.keys {
		fl := f.byKey[name]
		r.Agents[name] = p.agent(name, fl.key, fl.val, r)
	}
	p.checkNames(f, r)
}

// checkNames rejects agent names and aliases that would make a name ambiguous:
// look-ups are case-insensitive, so "Support-Bot" clashes with "support-bot".
func (p *parser) checkNames(f fields, r *Registry) {
	type owner struct {
		agent string
		alias bool
	}
	seen := map[string]owner{}
	for _, name := range f.keys {
		low := strings.ToLower(name)
		if o, dup := seen[low]; dup {
			p.errorf(f.byKey[name].key, "agents.%s: clashes with agent %s (agent names are case-insensitive)", name, o.agent)
			continue
		}
		seen[low] = owner{agent: name}
	}
	for _, name := range f.keys {
		a := r.Agents[name]
		for i, alias := range a.Aliases {
			line := p.pos[fmt.Sprintf("agents.%s.aliases[%d]", name, i)]
			low := strings.ToLower(alias)
			o, dup := seen[low]
			switch {
			case !dup:
				seen[low] = owner{agent: name, alias: true}
				continue
			case o.agent == name && !o.alias:
				p.errorf(&yaml.Node{Line: line}, "agents.%s.aliases: %s is the agent's own name", name, quote(alias))
			case o.agent == name:
				p.errorf(&yaml.Node{Line: line}, "agents.%s.aliases: %s is listed twice", name, quote(alias))
			case o.alias:
				p.errorf(&yaml.Node{Line: line}, "agents.%s.aliases: %s is already an alias of agent %s", name, quote(alias), o.agent)
			default:
				p.errorf(&yaml.Node{Line: line}, "agents.%s.aliases: %s is already the name of agent %s", name, quote(alias), o.agent)
			}
		}
	}
}
