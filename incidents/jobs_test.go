package incidents_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/ownership"
)

// reminders returns the payloads of the queued reminders.
func reminders(t *testing.T, env *incidentstest.Env) []incidents.ReminderPayload {
	t.Helper()
	var out []incidents.ReminderPayload
	for _, it := range env.Store.OutboxItems() {
		if it.Kind != incidents.KindReminder {
			continue
		}
		var p incidents.ReminderPayload
		if err := json.Unmarshal(it.Payload, &p); err != nil {
			t.Fatalf("reminder payload %s: %v", it.Payload, err)
		}
		out = append(out, p)
	}
	return out
}

func nudge(t *testing.T, env *incidentstest.Env) int {
	t.Helper()
	n, err := env.Service.NudgeStalledChecklists(ctx, env.Clock.Now())
	if err != nil {
		t.Fatalf("NudgeStalledChecklists: %v", err)
	}
	return n
}

// stalledChecklist opens the example incident and starts its checklist
// with a 30-minute nudge interval and at most 2 nudges.
func stalledChecklist(t *testing.T) *incidentstest.Env {
	t.Helper()
	env := incidentstest.NewEnv(func(d *incidents.Deps, c *incidents.Config) {
		c.NudgeInterval, c.NudgeMax = 30*time.Minute, 2
	})
	openIncident(t, env)
	startChecklist(t, env, 1)
	drain(t, env, outbox.LaneChat)
	return env
}

func TestNudgeAtIntervalUpToMax(t *testing.T) {
	env := stalledChecklist(t)
	steps := []struct {
		advance time.Duration
		want    int
	}{
		{29 * time.Minute, 0}, // not stalled yet
		{time.Minute, 1},      // 30 min since the start
		{0, 0},                // the same instant again
		{29 * time.Minute, 0}, // 29 min since the nudge
		{time.Minute, 1},      // second nudge
		{30 * time.Minute, 0}, // NudgeMax reached
	}
	for i, st := range steps {
		env.Clock.Advance(st.advance)
		if got := nudge(t, env); got != st.want {
			t.Errorf("step %d (+%s): nudged %d, want %d", i, st.advance, got, st.want)
		}
	}
	rs := reminders(t, env)
	if len(rs) != 2 || rs[0].Thread != "checklist" || !strings.Contains(rs[0].Text, "item 1: Did support-bot write to Salesforce") ||
		!strings.Contains(rs[0].Text, "Owner: crm-oncall") {
		t.Fatalf("reminders: got %+v", rs)
	}
	drain(t, env, outbox.LaneChat)
	posts := env.Chat.CallsTo("Post")
	last := posts[len(posts)-1]
	if last.ThreadTS != findIncident(t, env, 1).ChecklistTS || !strings.Contains(last.Message.Text, "waiting") {
		t.Errorf("reminder delivered as %+v, want a post in the checklist thread", last)
	}

	// An answer starts a new stall with a fresh count.
	answer(t, env, 1, "blast:salesforce", incidents.ChoiceNoImpact, "")
	env.Clock.Advance(30 * time.Minute)
	if got := nudge(t, env); got != 1 {
		t.Errorf("after an answer: nudged %d, want 1", got)
	}
	if rs := reminders(t, env); !strings.Contains(rs[len(rs)-1].Text, "item 2") {
		t.Errorf("reminder after an answer: got %q, want item 2", rs[len(rs)-1].Text)
	}
}

func TestNudgeRespectsSnoozeAndStop(t *testing.T) {
	env := stalledChecklist(t)
	if err := env.Service.SnoozeReminders(ctx, bob, 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(59 * time.Minute)
	if got := nudge(t, env); got != 0 {
		t.Errorf("while snoozed: nudged %d, want 0", got)
	}
	env.Clock.Advance(time.Minute)
	if got := nudge(t, env); got != 1 {
		t.Errorf("after the snooze: nudged %d, want 1", got)
	}
	if err := env.Service.StopReminders(ctx, bob, 1); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(2 * time.Hour)
	if got := nudge(t, env); got != 0 {
		t.Errorf("after stop: nudged %d, want 0", got)
	}
}

func TestNudgeSkipsResolvedAndFinished(t *testing.T) {
	env := stalledChecklist(t)
	resolve(t, env, 1, "")
	env.Clock.Advance(time.Hour)
	if got := nudge(t, env); got != 0 {
		t.Errorf("resolved incident: nudged %d, want 0", got)
	}
}

func TestNudgeTwoReplicasSendOne(t *testing.T) {
	env := stalledChecklist(t)
	other := incidents.New(incidents.Deps{Store: env.Store, Registry: env.Registry, Authority: env.Auth, Chat: env.Chat,
		Pager: env.Pager, Halter: env.Halter, Clock: env.Clock}, env.Config)
	env.Clock.Advance(time.Hour)
	now := env.Clock.Now()
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, svc := range []*incidents.Service{env.Service, other} {
		wg.Go(func() {
			n, err := svc.NudgeStalledChecklists(ctx, now)
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
			counts[i] = n
		})
	}
	wg.Wait()
	if counts[0]+counts[1] != 1 || len(reminders(t, env)) != 1 {
		t.Errorf("replicas nudged %v with %d reminders queued, want one in all", counts, len(reminders(t, env)))
	}
	if c := findChecklist(t, env, 1); c.NudgeCount != 1 {
		t.Errorf("NudgeCount: got %d, want 1", c.NudgeCount)
	}
}

func TestRemindPostmortems(t *testing.T) {
	env := incidentstest.NewEnv(func(d *incidents.Deps, c *incidents.Config) { c.PostmortemDue, c.NudgeMax = 48*time.Hour, 2 })
	openIncident(t, env)
	resolve(t, env, 1, "")
	answerPostmortem(t, env, 1, "summary", "looped")
	remind := func() int {
		t.Helper()
		n, err := env.Service.RemindPostmortems(ctx, env.Clock.Now())
		if err != nil {
			t.Fatalf("RemindPostmortems: %v", err)
		}
		return n
	}
	steps := []struct {
		advance time.Duration
		want    int
	}{{47 * time.Hour, 0}, {time.Hour, 1}, {0, 0}, {47 * time.Hour, 0}, {time.Hour, 1}, {48 * time.Hour, 0}}
	for i, st := range steps {
		env.Clock.Advance(st.advance)
		if got := remind(); got != st.want {
			t.Errorf("step %d: reminded %d, want %d", i, got, st.want)
		}
	}
	rs := reminders(t, env)
	if len(rs) != 2 || rs[0].Thread != "postmortem" || !strings.Contains(rs[0].Text, "1 of 6") {
		t.Errorf("reminders: got %+v", rs)
	}
}

func TestRemindPostmortemsSkipsFinishedAndStopped(t *testing.T) {
	env := incidentstest.NewEnv()
	openIncident(t, env)
	ingest(t, env, incidentstest.Alert(func(a *incidents.Alert) { a.Agent = "billing-agent" }))
	resolve(t, env, 1, "")
	resolve(t, env, 2, "")
	for _, q := range incidents.PostmortemQuestions() {
		answerPostmortem(t, env, 1, q.Key, "done")
	}
	if err := env.Service.StopReminders(ctx, bob, 2); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(100 * time.Hour)
	if n, err := env.Service.RemindPostmortems(ctx, env.Clock.Now()); err != nil || n != 0 {
		t.Errorf("got %d reminders (%v), want none", n, err)
	}
}

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
			res, err := env.Service.RunDrill(ctx, "support-bot-v2", env.Clock.Now())
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
			if got := audit(t, env); len(got) != 1 || !strings.HasPrefix(got[0], "drill") {
				t.Errorf("audit: got %v, want one drill entry", got)
			}
			drain(t, env, outbox.LaneChat)
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
	first, err := env.Service.RunDrill(ctx, "support-bot", env.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(40 * time.Second)
	second, err := env.Service.RunDrill(ctx, "support-bot", env.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := env.Halter.Drills(); len(got) != 1 || second.ID != first.ID {
		t.Errorf("drills: got %v, second result %d, want one drill returned twice (%d)", got, second.ID, first.ID)
	}
	env.Clock.Advance(time.Hour)
	if _, err := env.Service.RunDrill(ctx, "support-bot", env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got := env.Halter.Drills(); len(got) != 2 {
		t.Errorf("drills an hour later: got %v, want 2", got)
	}
	if _, err := env.Service.RunDrill(ctx, "nobody", env.Clock.Now()); incidents.ErrorCode(err) != incidents.ENOTFOUND {
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
		if _, err := env.Service.RunDrill(ctx, a, env.Clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	openIncident(t, env)
	env.Clock.Advance(8 * 24 * time.Hour)
	before := len(env.Chat.Calls())
	for range 2 { // a second run the same day posts nothing more
		if err := env.Service.AuditOwnership(ctx, env.Clock.Now()); err != nil {
			t.Fatalf("AuditOwnership: %v", err)
		}
	}
	drain(t, env, outbox.LaneChat)
	posts := callsSince(env, before, "Post")
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
	if got := audit(t, env); !strings.HasPrefix(got[0], "ownership_audit") || countPrefix(got, "ownership_audit") != 1 {
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
	drain(t, env, outbox.LaneChat)
	if posts := env.Chat.CallsTo("Post"); len(posts) != 0 {
		t.Errorf("posted %+v without a governance channel", posts)
	}
	if got := audit(t, env); len(got) != 1 {
		t.Errorf("audit log: got %v, want the audit recorded", got)
	}
}
