package ownership_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/integrations/halt"
	"github.com/reins-oss/reins/ownership"
)

// adapters are the halt adapters reins ships with, as cmd/reins hands them
// to the loader: the messages below are those a user of reins sees.
var adapters = halt.Specs()

const example = "../examples/reins.yaml"

// allSet pretends every variable the config names is set.
func allSet(string) string { return "set" }

func noneSet(string) string { return "" }

// TestLoadFixtures is acceptance item 1: each fixture is examples/reins.yaml
// with one fault, reported as exactly one error at its line.
func TestLoadFixtures(t *testing.T) {
	tests := []struct {
		file string
		line int
		want string
	}{
		{"unknown_key.yaml", 49, `agents.support-bot: unknown key "runbok" (did you mean "runbook"?)`},
		{"wrong_type.yaml", 68, "aliases: expected a list"},
		{"duplicate_agent.yaml", 127, "agents.support-bot: given twice (first at line 46)"},
		{"duplicate_team.yaml", 42, "teams.support-ai: given twice (first at line 25)"},
		{"unknown_team.yaml", 89, `team "platform" is not defined under teams (did you mean "platform-ai"?)`},
		{"webhook_missing_secret.yaml", 61, "the webhook adapter needs secret_env"},
		{"launchdarkly_missing_flag.yaml", 138, "the launchdarkly adapter needs flag"},
		{"unleash_missing_feature.yaml", 138, "the unleash adapter needs feature"},
		{"kubernetes_missing_url.yaml", 99, "the kubernetes adapter needs url"},
		{"unknown_adapter.yaml", 62, `unknown adapter "slack-kill"`},
		{"foreign_setting.yaml", 65, "halt.namespace: not a setting of the webhook adapter"},
		{"bad_bool.yaml", 65, "confirm: expected true or false"},
		{"secret_pasted.yaml", 64, "secret_env: must name an environment variable"},
		{"bad_drill.yaml", 83, `drill: "0 3 * *" is not a cron schedule`},
		{"session_link_no_placeholder.yaml", 67, "must contain {session}"},
		{"bad_person.yaml", 56, `"bob" is not a Slack user ID`},
		{"bad_informed.yaml", 54, `"Support Leads" is not a Slack user ID`},
		{"no_kill_authority.yaml", 96, "agents.code-agent: no kill authority"},
		{"alias_clash.yaml", 146, `"support-bot-v2" is already an alias of agent support-bot`},
		{"alias_is_name.yaml", 146, `"code-agent" is already the name of agent code-agent`},
		{"bad_group_window.yaml", 21, `"4 hours" is not a duration`},
		{"bad_max_new_incidents.yaml", 22, "alerts.max_new_incidents_per_minute: 0 is not a whole number from 1 to 10000"},
		{"syntax_error.yaml", 48, "YAML syntax: did not find expected ',' or ']'"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSuffix(tt.file, ".yaml"), func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			reg, probs := ownership.Load(path, ownership.Options{Adapters: adapters, Getenv: allSet})
			errs := probs.Errors()
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1:\n%s", len(errs), probs)
			}
			got := errs[0]
			if got.File != path || got.Line != tt.line || !strings.Contains(got.Message, tt.want) {
				t.Errorf("got %s\nwant %s:%d: …%s…", got, path, tt.line, tt.want)
			}
			if reg != nil {
				t.Error("got a registry despite an error, want nil")
			}
		})
	}
}

func TestLoadMultipleFaultsAllReported(t *testing.T) {
	want := []struct {
		line int
		msg  string
	}{
		{21, "not a duration"},
		{49, `unknown key "runbok"`},
		{68, "aliases: expected a list"},
		{83, "is not a cron schedule"},
		{89, `team "platform" is not defined`},
		{99, "the kubernetes adapter needs url"},
		{146, "already the name of agent code-agent"},
	}
	_, probs := ownership.Load("testdata/multiple_faults.yaml", ownership.Options{Adapters: adapters, Getenv: allSet})
	got := probs.Errors()
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s", len(got), len(want), probs)
	}
	for i, w := range want {
		if got[i].Line != w.line || !strings.Contains(got[i].Message, w.msg) {
			t.Errorf("error %d: got %s, want line %d with %q", i, got[i], w.line, w.msg)
		}
	}
}

func TestLoadExampleOK(t *testing.T) {
	reg, probs := ownership.Load(example, ownership.Options{Adapters: adapters, Getenv: noneSet})
	if err := probs.Err(); err != nil {
		t.Fatalf("example has errors:\n%v", err)
	}
	if got, want := strings.Join(reg.Names(), ","), "billing-agent,code-agent,support-bot"; got != want {
		t.Errorf("names: got %s, want %s", got, want)
	}
	bot := reg.Agent("support-bot")
	if got := len(bot.BlastRadius); got != 2 {
		t.Errorf("support-bot blast radius: got %d items, want 2", got)
	}
	if bot.Halt.Adapter != "webhook" || bot.Halt.Setting("secret_env") != "SUPPORT_BOT_HALT_SECRET" || !bot.Halt.Confirm || bot.Halt.Line != 61 {
		t.Errorf("support-bot halt: got %+v", bot.Halt)
	}
	if got := bot.SLAs[0]; got.Metric != "tokens_per_session" || got.Max == nil || *got.Max != 200000 {
		t.Errorf("support-bot first SLA: got %+v", got)
	}
	code := reg.Agent("code-agent")
	if h := code.Halt; h.Adapter != "kubernetes" || h.Setting("namespace") != "agents" || h.Setting("deployment") != "code-agent" || h.Setting("ca_file") == "" || !h.Confirm {
		t.Errorf("code-agent halt (confirm defaults to true): got %+v", h)
	}
	if got := reg.Agent("billing-agent").Halt; got.Adapter != "launchdarkly" || got.Setting("flag") != "billing-agent-enabled" {
		t.Errorf("billing-agent halt: got %+v", got)
	}
	if reg.Alerts.GroupWindow != 4*time.Hour || strings.Join(reg.Alerts.AgentLabels, ",") != "agent,service" {
		t.Errorf("alerts: got %+v", reg.Alerts)
	}
	if reg.Slack.GovernanceChannel != "agent-governance" || reg.File != example {
		t.Errorf("slack/file: got %+v %q", reg.Slack, reg.File)
	}
	if got := reg.Agent("billing-agent").Telemetry.TokenEnv; len(got) != 1 || got[0] != "BILLING_AGENT_OTLP_TOKEN" {
		t.Errorf("billing-agent telemetry.token_env: got %v", got)
	}
	// Eight variables are named and none is set: eight warnings, no errors.
	if got := len(probs.Warnings()); got != 8 {
		t.Errorf("got %d warnings, want 8:\n%s", got, probs)
	}
}

func TestLoadUnsetEnv(t *testing.T) {
	tests := []struct {
		name      string
		opts      ownership.Options
		wantErrs  int
		wantWarns int
	}{
		{"WarningWhenValidating", ownership.Options{Adapters: adapters, Getenv: noneSet}, 0, 8},
		{"ErrorWhenServing", ownership.Options{Adapters: adapters, Getenv: noneSet, StrictEnv: true}, 8, 0},
		{"OKWhenSet", ownership.Options{Adapters: adapters, Getenv: allSet, StrictEnv: true}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, probs := ownership.Load(example, tt.opts)
			if got := len(probs.Errors()); got != tt.wantErrs {
				t.Errorf("errors: got %d, want %d:\n%s", got, tt.wantErrs, probs)
			}
			if got := len(probs.Warnings()); got != tt.wantWarns {
				t.Errorf("warnings: got %d, want %d:\n%s", got, tt.wantWarns, probs)
			}
			for _, p := range probs {
				if p.Line == 64 && !strings.Contains(p.Message, "SUPPORT_BOT_HALT_SECRET is not set") {
					t.Errorf("line 64: got %s", p)
				}
			}
		})
	}
}

func TestLoadSecretNotEchoed(t *testing.T) {
	_, probs := ownership.Load("testdata/secret_pasted.yaml", ownership.Options{Adapters: adapters, Getenv: allSet})
	if strings.Contains(probs.String(), "topsecret") || strings.Contains(probs.String(), "whsec") {
		t.Errorf("a pasted secret was echoed:\n%s", probs)
	}
}

func TestLoadMissingFile(t *testing.T) {
	reg, probs := ownership.Load("testdata/does-not-exist.yaml", ownership.Options{Adapters: adapters})
	if reg != nil || len(probs) != 1 || probs[0].Line != 0 || probs.Err() == nil {
		t.Fatalf("got %v, %v; want nil and one error at line 0", reg, probs)
	}
	if got, want := probs[0].String(), "testdata/does-not-exist.yaml: cannot read the config"; !strings.HasPrefix(got, want) {
		t.Errorf("got %q, want prefix %q", got, want)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		wantErrs []string // "line: substring", in order
	}{
		{"EmptyIsNoAgents", "", nil},
		{"DuplicateKeyInAgent", agentYAML + "    team: core\n", []string{"13: agents.a.team: given twice (first at line 6)"}},
		{"AgentNamesCaseInsensitive", agentYAML + "  A: {team: core, kill_authority: {users: [U01A]}, halt: {adapter: flag}}\n", []string{"13: agents.A: clashes with agent a"}},
		{"AgentsNotAMapping", "agents: [a, b]\n", []string{"1: agents: expected a mapping"}},
		{"TopLevelUnknownKey", "agent: {}\n", []string{`1: config: unknown key "agent" (did you mean "agents"?)`}},
		{"UsergroupInUsers", strings.Replace(agentYAML, "[U01A]", "[S0GROUP]", 1), []string{"8: agents.a.kill_authority.users: \"S0GROUP\" is a user-group ID"}},
		{"HaltMissing", strings.Replace(agentYAML, "    halt: {adapter: flag}\n", "", 1), []string{"5: agents.a: halt is missing"}},
		{"FlagTakesNoSettings", strings.Replace(agentYAML, "{adapter: flag}", "{adapter: flag, url: https://x.example.com}", 1), []string{"9: agents.a.halt.url: not a setting of the flag adapter (it takes no settings)"}},
		{"TeamMissing", strings.Replace(agentYAML, "    team: core\n", "", 1), []string{"5: agents.a: team is missing"}},
		{"SecondDocument", agentYAML + "---\nagents: {}\n", []string{"13: a second YAML document"}},
		{"DrillNeverFires", agentYAML + "    drill: \"0 0 30 2 *\"\n", []string{"13: agents.a.drill: \"0 0 30 2 *\" never fires"}},
		{"DrillTimeZoneAlone", agentYAML + "    drill: TZ=UTC\n", []string{"13: agents.a.drill: \"TZ=UTC\" is not a cron schedule"}},
		{"SLAWithoutLimit", agentYAML + "    slas: [{metric: tokens_per_session}]\n", []string{"13: agents.a.slas[0]: SLA tokens_per_session needs max"}},
		{"BlastRadiusTwice", agentYAML + "    blast_radius: [{system: S3}, {system: s3}]\n", []string{"13: agents.a.blast_radius[1].system: \"s3\" is listed twice"}},
		{"BadEscalationPolicy", strings.Replace(agentYAML, "[U01A]", "[U01A]\n      on_call: my-policy", 1), []string{"9: agents.a.kill_authority.on_call: \"my-policy\" is not a PagerDuty escalation policy ID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantParseErrors(t, tt.yaml, tt.wantErrs)
		})
	}
}

// agentYAML is a minimal valid config; the agent's entry ends at line 12.
const agentYAML = `teams:
  core: {}
agents:
  # the smallest valid agent
  a:
    team: core
    kill_authority:
      users: [U01A]
    halt: {adapter: flag}
    sessions:
      link: https://traces.example.com/s/{session}
    aliases: [a-v2]
`

func TestParseDefaults(t *testing.T) {
	reg, probs := ownership.Parse("t.yaml", []byte(agentYAML), ownership.Options{Adapters: adapters, Getenv: allSet})
	if len(probs) != 0 {
		t.Fatalf("got problems:\n%s", probs)
	}
	empty := ownership.Empty()
	if reg.Slack.ChannelPrefix != "inc" || reg.Alerts.GroupWindow != 4*time.Hour ||
		strings.Join(reg.Alerts.AgentLabels, ",") != "agent" ||
		strings.Join(reg.Alerts.SessionLabels, ",") != "session_id,session_ids" {
		t.Errorf("defaults: got %+v %+v", reg.Slack, reg.Alerts)
	}
	if reg.Slack != empty.Slack || reg.Alerts.GroupWindow != empty.Alerts.GroupWindow {
		t.Errorf("Empty defaults differ: got %+v %+v", empty.Slack, empty.Alerts)
	}
	if a := reg.Agent("a"); !a.Halt.Confirm || a.Line != 5 || a.Halt.Line != 9 {
		t.Errorf("agent a: got confirm=%v line=%d halt line=%d, want true 5 9", a.Halt.Confirm, a.Line, a.Halt.Line)
	}
}

func TestParseMergeKeyHonoured(t *testing.T) {
	yaml := strings.Replace(agentYAML, "agents:\n", "agents:\n  b: &base\n    team: core\n    kill_authority: {on_call: PABC123}\n    halt: {adapter: flag}\n  c:\n    <<: *base\n    halt: {adapter: flag, confirm: false}\n", 1)
	reg, probs := ownership.Parse("t.yaml", []byte(yaml), ownership.Options{Adapters: adapters, Getenv: allSet})
	if err := probs.Err(); err != nil {
		t.Fatalf("got %v", err)
	}
	c := reg.Agent("c")
	if c.Team != "core" || c.KillAuthority.OnCall != "PABC123" || c.Halt.Confirm {
		t.Errorf("merged agent c: got team=%q on_call=%q confirm=%v", c.Team, c.KillAuthority.OnCall, c.Halt.Confirm)
	}
}

func TestProblemsString(t *testing.T) {
	ps := ownership.Problems{
		{File: "r.yaml", Message: "cannot read"},
		{File: "r.yaml", Line: 3, Message: "bad"},
		{File: "r.yaml", Line: 4, Message: "unset", Warning: true},
	}
	want := "r.yaml: cannot read\nr.yaml:3: bad\nr.yaml:4: warning: unset"
	if got := ps.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := len(ps.Errors()); got != 2 {
		t.Errorf("errors: got %d, want 2", got)
	}
	if ps.Warnings().Err() != nil {
		t.Error("warnings alone: got an error, want nil")
	}
}

// wantParseErrors parses yaml as t.yaml and wants exactly len(want) errors,
// each starting with its "line: message" prefix, in order.
func wantParseErrors(t *testing.T, yaml string, want []string) {
	t.Helper()
	_, probs := ownership.Parse("t.yaml", []byte(yaml), ownership.Options{Adapters: adapters, Getenv: allSet})
	var got []string
	for _, p := range probs.Errors() {
		got = append(got, strings.TrimPrefix(p.String(), "t.yaml:"))
	}
	if len(got) != len(want) {
		t.Fatalf("got errors %q, want %q", got, want)
	}
	for i := range got {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("got %q, want prefix %q", got[i], want[i])
		}
	}
}
