package ownership_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/reins-oss/reins/ownership"
)

// fakeSlack answers from sets; failGroups makes UsergroupExists fail.
type fakeSlack struct {
	fakeDirectory
	users, groups, channels []string
	failGroups              bool
}

func (f *fakeSlack) UserExists(_ context.Context, id string) (bool, error) {
	return slices.Contains(f.users, id), nil
}

func (f *fakeSlack) UsergroupExists(_ context.Context, id string) (bool, error) {
	if f.failGroups {
		return false, errors.New("missing_scope: usergroups:read")
	}
	return slices.Contains(f.groups, id), nil
}

func (f *fakeSlack) ChannelExists(_ context.Context, name string) (bool, error) {
	return slices.Contains(f.channels, name), nil
}

type fakePager struct {
	fakeOnCall
	policies []string
}

func (f *fakePager) EscalationPolicyExists(_ context.Context, id string) (bool, error) {
	return slices.Contains(f.policies, id), nil
}

// exampleSlack knows everything examples/reins.yaml names except user
// U03CAROL and channel #finance-ops; S0PLATFORMAI has no members.
func exampleSlack() *fakeSlack {
	return &fakeSlack{
		fakeDirectory: fakeDirectory{
			userByEmail: func(email string) (string, error) {
				ids := map[string]string{"alice@example.com": "U01ALICE", "bob@example.com": "U02BOB",
					"erin@example.com": "U05ERIN", "dana@example.com": "U06DANA", "dave@example.com": "U04DAVE"}
				if id, ok := ids[email]; ok {
					return id, nil
				}
				return "", errors.New("users_not_found")
			},
			members: func(group string) ([]string, error) {
				if group == "S0ONCALL" {
					return []string{"U01ALICE"}, nil
				}
				return nil, nil
			},
		},
		users:    []string{"U01ALICE", "U02BOB", "U04DAVE", "U05ERIN", "U06DANA"},
		groups:   []string{"S0SUPPORTAI", "S0SECURITY", "S0ONCALL", "S0PLATFORMAI"},
		channels: []string{"agent-governance", "support-ai", "platform-ai", "billing-ai", "support-leads", "eng-announce"},
	}
}

// examplePager knows PABC123 and PBIL789, not PDEF456.
func examplePager() *fakePager {
	return &fakePager{
		fakeOnCall: fakeOnCall{emails: map[string][]string{"PABC123": {"dave@example.com"}, "PBIL789": {"dana@example.com"}}},
		policies:   []string{"PABC123", "PBIL789"},
	}
}

func TestCheckOnline(t *testing.T) {
	tests := []struct {
		name  string
		slack func() ownership.SlackChecker
		pd    func() ownership.PagerChecker
		want  []string // "line: [warning: ]message substring", in order
	}{
		{
			name:  "ErrMissingItems",
			slack: func() ownership.SlackChecker { return exampleSlack() },
			pd:    func() ownership.PagerChecker { return examplePager() },
			want: []string{
				"36: teams.platform-ai.pagerduty.escalation_policy: PagerDuty escalation policy PDEF456 does not exist",
				"96: agents.code-agent.kill_authority: kill authority for code-agent resolves to nobody today",
				"98: agents.code-agent.kill_authority.on_call: PagerDuty escalation policy PDEF456 does not exist",
				"132: agents.billing-agent.raci.responsible: Slack user U03CAROL does not exist",
				"134: agents.billing-agent.raci.informed: Slack channel #finance-ops does not exist",
				"136: agents.billing-agent.kill_authority.users: Slack user U03CAROL does not exist",
			},
		},
		{
			name:  "WarningsNothingConfigured",
			slack: func() ownership.SlackChecker { return nil },
			pd:    func() ownership.PagerChecker { return nil },
			want: []string{
				"0: warning: Slack is not configured",
				"0: warning: PagerDuty is not configured",
				"96: warning: agents.code-agent.kill_authority: could not confirm that anyone holds kill authority for code-agent today",
			},
		},
		{
			name: "ErrCheckFailed",
			slack: func() ownership.SlackChecker {
				s := exampleSlack()
				s.failGroups = true
				return s
			},
			pd: func() ownership.PagerChecker { return nil },
			want: []string{
				"0: warning: PagerDuty is not configured",
				"27: teams.support-ai.slack_usergroup: could not check Slack user group S0SUPPORTAI: missing_scope",
				"33: teams.platform-ai.slack_usergroup: could not check Slack user group S0PLATFORMAI",
				"53: agents.support-bot.raci.consulted: could not check Slack user group S0SECURITY",
				"57: agents.support-bot.kill_authority.usergroups: could not check Slack user group S0ONCALL",
				"92: agents.code-agent.raci.responsible: could not check Slack user group S0PLATFORMAI",
				"94: agents.code-agent.raci.consulted: could not check Slack user group S0SECURITY",
				"96: warning: agents.code-agent.kill_authority: could not confirm",
				"97: agents.code-agent.kill_authority.usergroups: could not check Slack user group S0PLATFORMAI",
				"132: agents.billing-agent.raci.responsible: Slack user U03CAROL does not exist",
				"134: agents.billing-agent.raci.informed: Slack channel #finance-ops does not exist",
				"136: agents.billing-agent.kill_authority.users: Slack user U03CAROL does not exist",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := loadExample(t)
			probs := ownership.CheckOnline(context.Background(), reg, tt.slack(), tt.pd())
			var got []string
			for _, p := range probs {
				msg := p.Message
				if p.Warning {
					msg = "warning: " + msg
				}
				got = append(got, fmt.Sprintf("%d: %s", p.Line, msg))
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %d:\ngot  %s\nwant %s…", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestCheckOnlineErrOnlyHolderMissing(t *testing.T) {
	reg, probs := ownership.Parse("t.yaml", []byte(agentYAML), ownership.Options{Adapters: adapters, Getenv: allSet})
	if err := probs.Err(); err != nil {
		t.Fatal(err)
	}
	got := ownership.CheckOnline(context.Background(), reg, exampleSlack(), examplePager())
	want := "t.yaml:7: agents.a.kill_authority: kill authority for a resolves to nobody today\n" +
		"t.yaml:8: agents.a.kill_authority.users: Slack user U01A does not exist"
	if len(got) != 2 || !strings.HasPrefix(got[0].String(), strings.Split(want, "\n")[0]) || got[1].String() != strings.Split(want, "\n")[1] {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
