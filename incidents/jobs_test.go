package incidents_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/ownership"
)

func TestRunDrill(t *testing.T) {
	tests := []struct {
		name       string
		drillErr   error
		wantOK     bool
		wantPosted []string // channels told
	}{
		{"OK", nil, true, []string{"agent-governance"}},
		{"ErrAdapterUnreachable", errors.New("dial tcp: connection refused"), false, []string{"support-ai", "agent-governance"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := incidentstest.NewEnv()
			env.Halter.DrillFunc = func(ctx context.Context, ag *ownership.Agent) error { return tt.drillErr }
			res, err := env.Drills.RunDrill(ctx, "support-bot-v2", env.Clock.Now())
			if err != nil {
				t.Fatalf("RunDrill: %v", err)
			}
			if res.OK != tt.wantOK || res.Agent != "support-bot" || res.Adapter != "webhook" || res.Actor != incidents.System {
				t.Errorf("result: got %+v", res)
			}
			last, err := env.Store.LastDrills(ctx)
			if err != nil || last["support-bot"] == nil || last["support-bot"].OK != tt.wantOK {
				t.Errorf("recorded: got %+v (%v)", last["support-bot"], err)
			}
			if got := incidentstest.Audit(t, env); len(got) != 1 || !strings.HasPrefix(got[0], "drill") {
				t.Errorf("audit: got %v, want one drill entry", got)
			}
			incidentstest.Drain(t, env, outbox.LaneChat)
			var channels []string
			for _, p := range env.Chat.CallsTo("Post") {
				channels = append(channels, p.Channel)
				if !tt.wantOK && !slices.Equal(p.Message.Mention, []string{"U01ALICE", "U02BOB", "S0ONCALL"}) {
					t.Errorf("failure notice mentions %v, want kill authority and responsible", p.Message.Mention)
				}
			}
			if !slices.Equal(channels, tt.wantPosted) {
				t.Errorf("posted to %v, want %v", channels, tt.wantPosted)
			}
		})
	}
}

func TestRunDrillTwiceDrillsOnce(t *testing.T) {
	env := incidentstest.NewEnv()
	first, err := env.Drills.RunDrill(ctx, "support-bot", env.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(40 * time.Second)
	second, err := env.Drills.RunDrill(ctx, "support-bot", env.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := env.Halter.Drills(); len(got) != 1 || second.ID != first.ID {
		t.Errorf("drills: got %v, second result %d, want one drill returned twice (%d)", got, second.ID, first.ID)
	}
	env.Clock.Advance(time.Hour)
	if _, err := env.Drills.RunDrill(ctx, "support-bot", env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got := env.Halter.Drills(); len(got) != 2 {
		t.Errorf("drills an hour later: got %v, want 2", got)
	}
	if _, err := env.Drills.RunDrill(ctx, "nobody", env.Clock.Now()); incidents.ErrorCode(err) != incidents.ENOTFOUND {
		t.Errorf("unknown agent: got %v, want ENOTFOUND", err)
	}
}

func TestAuditOwnership(t *testing.T) {
	env := incidentstest.NewEnv()
	reg := incidentstest.Registry()
	reg.Agents["support-bot"].Drill = "0 3 * * 1"
	reg.Agents["billing-agent"].Drill = "0 3 * * 1"
	env.Registry.Swap(reg)
	env.Auth.HoldersFunc = func(ctx context.Context, ag *ownership.Agent) ([]string, []string) {
		if ag.Name == "orphan-agent" {
			return nil, []string{"PagerDuty"}
		}
		return ag.KillAuthority.Users, nil
	}
	env.Halter.DrillFunc = func(ctx context.Context, ag *ownership.Agent) error {
		if ag.Name == "billing-agent" {
			return errors.New("403 forbidden")
		}
		return nil
	}
	for _, a := range []string{"support-bot", "billing-agent"} {
		if _, err := env.Drills.RunDrill(ctx, a, env.Clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	incidentstest.OpenIncident(t, env)
	env.Clock.Advance(8 * 24 * time.Hour)
	before := len(env.Chat.Calls())
	for range 2 { // a second run the same day posts nothing more
		if err := env.Service.AuditOwnership(ctx, env.Clock.Now()); err != nil {
			t.Fatalf("AuditOwnership: %v", err)
		}
	}
	incidentstest.Drain(t, env, outbox.LaneChat)
	posts := incidentstest.CallsSince(env, before, "Post")
	if len(posts) != 1 || posts[0].Channel != "agent-governance" {
		t.Fatalf("audit posts: got %+v, want one in agent-governance", posts)
	}
	text := posts[0].Message.Text
	for _, want := range []string{
		"billing-agent: last drill failed", "orphan-agent: no drill schedule", "orphan-agent: kill authority resolves to nobody",
		"orphan-agent: could not ask PagerDuty", "incident #1 (support-bot) has been open for 8 days",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("audit lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "support-bot: ") {
		t.Errorf("audit flags the healthy support-bot:\n%s", text)
	}
	if got := incidentstest.Audit(t, env); !strings.HasPrefix(got[0], "ownership_audit") || countPrefix(got, "ownership_audit") != 1 {
		t.Errorf("audit log: got %v, want one ownership_audit entry", got)
	}
}

func countPrefix(list []string, prefix string) int {
	n := 0
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func TestAuditOwnershipWithoutGovernanceChannel(t *testing.T) {
	env := incidentstest.NewEnv()
	reg := incidentstest.Registry()
	reg.Slack.GovernanceChannel = ""
	env.Registry.Swap(reg)
	if err := env.Service.AuditOwnership(ctx, env.Clock.Now()); err != nil {
		t.Fatalf("AuditOwnership: %v", err)
	}
	incidentstest.Drain(t, env, outbox.LaneChat)
	if posts := env.Chat.CallsTo("Post"); len(posts) != 0 {
		t.Errorf("posted %+v without a governance channel", posts)
	}
	if got := incidentstest.Audit(t, env); len(got) != 1 {
		t.Errorf("audit log: got %v, want the audit recorded", got)
	}
}
