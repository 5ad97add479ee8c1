package aftermath_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/aftermath"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
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
	n, err := env.Reminders.NudgeStalledChecklists(ctx, env.Clock.Now())
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
	incidentstest.OpenIncident(t, env)
	startChecklist(t, env, 1)
	incidentstest.Drain(t, env, outbox.LaneChat)
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
	incidentstest.Drain(t, env, outbox.LaneChat)
	posts := env.Chat.CallsTo("Post")
	last := posts[len(posts)-1]
	if last.ThreadTS != incidentstest.FindIncident(t, env, 1).ChecklistTS || !strings.Contains(last.Message.Text, "waiting") {
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
	if err := env.Aftermath.SnoozeReminders(ctx, bob, 1, time.Hour); err != nil {
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
	if err := env.Aftermath.StopReminders(ctx, bob, 1); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(2 * time.Hour)
	if got := nudge(t, env); got != 0 {
		t.Errorf("after stop: nudged %d, want 0", got)
	}
}

func TestNudgeSkipsResolvedAndFinished(t *testing.T) {
	env := stalledChecklist(t)
	incidentstest.Resolve(t, env, 1, "")
	env.Clock.Advance(time.Hour)
	if got := nudge(t, env); got != 0 {
		t.Errorf("resolved incident: nudged %d, want 0", got)
	}
}

func TestNudgeTwoReplicasSendOne(t *testing.T) {
	env := stalledChecklist(t)
	other := aftermath.NewReminders(incidents.New(incidents.Deps{Store: env.Store, Registry: env.Registry, Authority: env.Auth, Chat: env.Chat,
		Pager: env.Pager, Halter: env.Halter, Clock: env.Clock}, env.Config).Core)
	env.Clock.Advance(time.Hour)
	now := env.Clock.Now()
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, svc := range []*aftermath.Reminders{env.Reminders, other} {
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
	incidentstest.OpenIncident(t, env)
	incidentstest.Resolve(t, env, 1, "")
	answerPostmortem(t, env, 1, "summary", "looped")
	remind := func() int {
		t.Helper()
		n, err := env.Reminders.RemindPostmortems(ctx, env.Clock.Now())
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
	incidentstest.OpenIncident(t, env)
	incidentstest.Ingest(t, env, incidentstest.Alert(func(a *incidents.Alert) { a.Agent = "billing-agent" }))
	incidentstest.Resolve(t, env, 1, "")
	incidentstest.Resolve(t, env, 2, "")
	for _, q := range incidents.PostmortemQuestions() {
		answerPostmortem(t, env, 1, q.Key, "done")
	}
	if err := env.Aftermath.StopReminders(ctx, bob, 2); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(100 * time.Hour)
	if n, err := env.Reminders.RemindPostmortems(ctx, env.Clock.Now()); err != nil || n != 0 {
		t.Errorf("got %d reminders (%v), want none", n, err)
	}
}
