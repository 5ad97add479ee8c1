package aftermath_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
)

var (
	responder = incidents.Actor{Kind: incidents.ActorSlack, ID: "U05CAROL"}
	bob       = incidents.Actor{Kind: incidents.ActorSlack, ID: "U02BOB"}
)

func startChecklist(t *testing.T, env *incidentstest.Env, id int64) *incidents.Checklist {
	t.Helper()
	c, err := env.Aftermath.StartChecklist(ctx, responder, id)
	if err != nil {
		t.Fatalf("StartChecklist(%d): %v", id, err)
	}
	return c
}

func answer(t *testing.T, env *incidentstest.Env, id int64, key, choice, details string) *incidents.Checklist {
	t.Helper()
	c, err := env.Aftermath.AnswerChecklist(ctx, responder, id, key, choice, details)
	if err != nil {
		t.Fatalf("AnswerChecklist(%s, %s): %v", key, choice, err)
	}
	return c
}

func findChecklist(t *testing.T, env *incidentstest.Env, id int64) *incidents.Checklist {
	t.Helper()
	c, err := env.Store.FindChecklist(ctx, id)
	if err != nil {
		t.Fatalf("FindChecklist(%d): %v", id, err)
	}
	return c
}

// itemPosts returns, per item key, how many times it was posted as a new
// message (not an update).
func itemPosts(env *incidentstest.Env) map[string]int {
	out := map[string]int{}
	for _, c := range env.Chat.CallsTo("PostChecklistItem") {
		if c.UpdateTS == "" {
			out[c.Checklist.Item.Key]++
		}
	}
	return out
}

func TestStartChecklistOwnedAgent(t *testing.T) {
	env := incidentstest.NewEnv()
	inc := incidentstest.OpenIncident(t, env)
	before := len(env.Chat.Calls())

	c := startChecklist(t, env, inc.ID)
	if got, want := len(c.Items), 2+12; got != want {
		t.Fatalf("items: got %d, want %d", got, want)
	}
	wantFirst := &incidents.ChecklistItem{Key: "blast:salesforce", Position: 1,
		Question: "Did support-bot write to Salesforce during sessions s-8812, s-8813?", Owner: "crm-oncall"}
	if got := c.Items[0]; got.Key != wantFirst.Key || got.Position != 1 || got.Question != wantFirst.Question || got.Owner != wantFirst.Owner {
		t.Errorf("first item: got %+v, want %+v", *got, *wantFirst)
	}
	if got, want := c.Items[1].Question, "Did support-bot send through SendGrid during sessions s-8812, s-8813?"; got != want {
		t.Errorf("second item: got %q, want %q", got, want)
	}
	if got := c.Items[2]; got.Key != "std:containment" || !strings.HasPrefix(got.Question, "Containment: every halt verified") {
		t.Errorf("third item: got %s %q, want the containment item", got.Key, got.Question)
	}
	if got := c.Items[13]; got.Key != "std:communications" || got.Position != 14 {
		t.Errorf("last item: got %s at %d, want std:communications at 14", got.Key, got.Position)
	}
	if kinds := incidentstest.EventKinds(t, env, inc.ID); kinds[len(kinds)-1] != incidents.EventChecklistStarted {
		t.Errorf("timeline: got %v, want it to end with checklist_started", kinds)
	}

	incidentstest.Drain(t, env, outbox.LaneChat)
	posts := incidentstest.CallsSince(env, before, "Post")
	if len(posts) != 1 || posts[0].Message.Title != "Blast-radius checklist for #1 — answer each item; 0 of 14" {
		t.Fatalf("parent: got %+v, want one post titled with 0 of 14", posts)
	}
	items := env.Chat.CallsTo("PostChecklistItem")
	if len(items) != 1 || items[0].Checklist.Item.Key != "blast:salesforce" || items[0].ThreadTS == "" || items[0].ThreadTS != incidentstest.FindIncident(t, env, 1).ChecklistTS {
		t.Fatalf("first item post: got %+v, want blast:salesforce in the parent's thread", items)
	}
	if got := findChecklist(t, env, inc.ID).Items[0].PostedTS; got == "" {
		t.Errorf("PostedTS of the first item not stored")
	}
}

// restart replaces the env's Service with a new one on the same store and
// fakes, as a process restart would.
func restart(env *incidentstest.Env) {
	env.Service = incidents.New(incidents.Deps{Store: env.Store, Registry: env.Registry, Authority: env.Auth, Chat: env.Chat,
		Pager: env.Pager, Halter: env.Halter, Clock: env.Clock}, env.Config)
}

func TestStartChecklistUnownedAgentHasStandardItemsOnly(t *testing.T) {
	env := incidentstest.NewEnv()
	incidentstest.Ingest(t, env, incidentstest.Alert(func(a *incidents.Alert) { a.Agent = "stranger-bot" }))
	c := startChecklist(t, env, 1)
	if got := len(c.Items); got != 12 {
		t.Fatalf("items: got %d, want 12", got)
	}
	for i, it := range c.Items {
		if !strings.HasPrefix(it.Key, "std:") || it.Position != i+1 {
			t.Errorf("item %d: got %s at %d, want a standard item at %d", i, it.Key, it.Position, i+1)
		}
	}
}

func TestChecklistResumesAfterRestart(t *testing.T) {
	env := incidentstest.NewEnv()
	inc := incidentstest.OpenIncident(t, env)
	c := startChecklist(t, env, inc.ID)
	incidentstest.Drain(t, env, outbox.LaneChat)
	for _, it := range c.Items[:3] {
		env.Clock.Advance(time.Minute)
		answer(t, env, inc.ID, it.Key, incidents.ChoiceNoImpact, "")
		incidentstest.Drain(t, env, outbox.LaneChat)
	}

	// A restart: a new Service on the same store.
	restart(env)
	before := len(env.Chat.Calls())
	env.Clock.Advance(time.Minute)
	again, err := env.Aftermath.StartChecklist(ctx, bob, inc.ID)
	if err != nil {
		t.Fatalf("StartChecklist after restart: %v", err)
	}
	if got := again.Answered(); got != 3 {
		t.Errorf("answered after restart: got %d, want 3", got)
	}
	if next := again.Next(); next == nil || next.Key != c.Items[3].Key {
		t.Fatalf("next after restart: got %+v, want %s", next, c.Items[3].Key)
	}
	incidentstest.Drain(t, env, outbox.LaneChat)

	calls := incidentstest.CallsSince(env, before, "PostChecklistItem")
	if len(calls) != 1 || calls[0].Checklist.Item.Key != c.Items[3].Key || calls[0].UpdateTS == "" {
		t.Fatalf("resume: got %+v, want the 4th item refreshed in place", calls)
	}
	for _, p := range incidentstest.CallsSince(env, before, "Post") {
		if p.UpdateTS == "" {
			t.Errorf("resume posted a new message %q, want the parent updated in place", p.Message.Title)
		}
	}
	if got := incidentstest.EventKinds(t, env, inc.ID); countKind(got, incidents.EventChecklistStarted) != 1 {
		t.Errorf("checklist_started events: got %v, want one", got)
	}
	all := itemPosts(env)
	for key, n := range all {
		if n > 1 {
			t.Errorf("item %s posted %d times, want once", key, n)
		}
	}
}

func countKind(kinds []incidents.EventKind, k incidents.EventKind) int {
	n := 0
	for _, x := range kinds {
		if x == k {
			n++
		}
	}
	return n
}

func TestResumeBeforeAnyPostPostsOnce(t *testing.T) {
	env := incidentstest.NewEnv()
	inc := incidentstest.OpenIncident(t, env)
	startChecklist(t, env, inc.ID)
	env.Clock.Advance(time.Second)
	startChecklist(t, env, inc.ID) // double click before delivery
	incidentstest.Drain(t, env, outbox.LaneChat)
	if got := itemPosts(env); got["blast:salesforce"] != 1 || len(got) != 1 {
		t.Errorf("item posts: got %v, want blast:salesforce once", got)
	}
	newParents := 0
	for _, p := range env.Chat.CallsTo("Post") {
		if strings.HasPrefix(p.Message.Title, "Blast-radius checklist") && p.UpdateTS == "" {
			newParents++
		}
	}
	if newParents != 1 {
		t.Errorf("parent posted %d times, want once", newParents)
	}
}

func TestAnswerChecklistUpdatesThread(t *testing.T) {
	env := incidentstest.NewEnv()
	inc := incidentstest.OpenIncident(t, env)
	startChecklist(t, env, inc.ID)
	incidentstest.Drain(t, env, outbox.LaneChat)
	before := len(env.Chat.Calls())

	env.Clock.Advance(time.Minute)
	c, err := env.Aftermath.AnswerChecklist(ctx, bob, inc.ID, "blast:salesforce", incidents.ChoiceImpactFound, "12 refunds issued")
	if err != nil {
		t.Fatalf("AnswerChecklist: %v", err)
	}
	it := c.Items[0]
	if it.Choice != incidents.ChoiceImpactFound || it.Details != "12 refunds issued" || it.AnsweredBy.ID != "U02BOB" ||
		!it.AnsweredAt.Equal(env.Clock.Now()) {
		t.Errorf("answer: got %+v", *it)
	}
	if !c.LastActivityAt.Equal(env.Clock.Now()) || c.NudgeCount != 0 {
		t.Errorf("reminder state: got LastActivityAt %v NudgeCount %d, want now and 0", c.LastActivityAt, c.NudgeCount)
	}
	incidentstest.Drain(t, env, outbox.LaneChat)

	// The thread changes in order; the summary refresh has a lane of its own.
	var got, summaries []string
	for _, call := range env.Chat.Calls()[before:] {
		switch call.Method {
		case "PostChecklistItem":
			mode := "post"
			if call.UpdateTS != "" {
				mode = "update"
			}
			got = append(got, mode+" "+call.Checklist.Item.Key)
		case "Post":
			got = append(got, "parent "+call.Message.Title)
		case "PostSummary":
			summaries = append(summaries, "summary "+itoa(call.Summary.Answered)+"/"+itoa(call.Summary.Total))
		}
	}
	want := []string{"update blast:salesforce", "post blast:sendgrid",
		"parent Blast-radius checklist for #1 — answer each item; 1 of 14"}
	if !slices.Equal(got, want) {
		t.Errorf("thread updates:\n got %q\nwant %q", got, want)
	}
	if !slices.Equal(summaries, []string{"summary 1/14"}) {
		t.Errorf("summary refreshes: got %q, want one showing 1/14", summaries)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestAnswerChecklistChangeIsOnTimeline(t *testing.T) {
	env := incidentstest.NewEnv()
	inc := incidentstest.OpenIncident(t, env)
	startChecklist(t, env, inc.ID)
	answer(t, env, inc.ID, "std:spend", incidents.ChoiceUnknown, "")
	env.Clock.Advance(time.Minute)
	c := answer(t, env, inc.ID, "std:spend", incidents.ChoiceImpactFound, "USD 1,900 over budget")
	if got := c.Answered(); got != 1 {
		t.Errorf("answered: got %d, want 1", got)
	}
	events, err := env.Service.Timeline(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	if last.Kind != incidents.EventChecklistAnswered || !strings.Contains(last.Text, "unknown -> impact_found") {
		t.Errorf("last event: got %s %q, want the change unknown -> impact_found", last.Kind, last.Text)
	}
	var data struct{ Previous, Choice string }
	if err := json.Unmarshal(last.Data, &data); err != nil || data.Previous != "unknown" || data.Choice != "impact_found" {
		t.Errorf("event data: got %s (%v)", last.Data, err)
	}
}

func TestAnswerChecklistErrors(t *testing.T) {
	env := incidentstest.NewEnv()
	inc := incidentstest.OpenIncident(t, env)
	incidentstest.Ingest(t, env, incidentstest.Alert(func(a *incidents.Alert) { a.Agent = "billing-agent" }))
	startChecklist(t, env, inc.ID)
	tests := []struct {
		name          string
		id            int64
		key, choice   string
		details       string
		wantCode      string
		wantInMessage string
	}{
		{"ErrUnknownChoice", inc.ID, "std:spend", "maybe", "", incidents.EINVALID, "no_impact"},
		{"ErrImpactWithoutDetails", inc.ID, "std:spend", incidents.ChoiceImpactFound, "  ", incidents.EINVALID, "what was found"},
		{"ErrUnknownItem", inc.ID, "std:nope", incidents.ChoiceNoImpact, "", incidents.EINVALID, "no item"},
		{"ErrNoChecklist", 2, "std:spend", incidents.ChoiceNoImpact, "", incidents.ENOTFOUND, "/agent checklist"},
		{"ErrNoIncident", 99, "std:spend", incidents.ChoiceNoImpact, "", incidents.ENOTFOUND, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := env.Aftermath.AnswerChecklist(ctx, responder, tt.id, tt.key, tt.choice, tt.details)
			if got := incidents.ErrorCode(err); got != tt.wantCode {
				t.Fatalf("code: got %q (%v), want %q", got, err, tt.wantCode)
			}
			if !strings.Contains(incidents.ErrorMessage(err), tt.wantInMessage) {
				t.Errorf("message: got %q, want it to mention %q", incidents.ErrorMessage(err), tt.wantInMessage)
			}
		})
	}
	if got := findChecklist(t, env, inc.ID).Answered(); got != 0 {
		t.Errorf("answered after errors: got %d, want 0", got)
	}
}

func TestConcurrentAnswersAreAllKept(t *testing.T) {
	env := incidentstest.NewEnv()
	inc := incidentstest.OpenIncident(t, env)
	c := startChecklist(t, env, inc.ID)
	errs := make(chan error, len(c.Items))
	for i, it := range c.Items {
		actor := incidents.Actor{Kind: incidents.ActorSlack, ID: "U" + itoa(i)}
		go func() {
			_, err := env.Aftermath.AnswerChecklist(ctx, actor, inc.ID, it.Key, incidents.ChoiceNoImpact, "")
			errs <- err
		}()
	}
	for range c.Items {
		if err := <-errs; err != nil {
			t.Errorf("AnswerChecklist: %v", err)
		}
	}
	if got := findChecklist(t, env, inc.ID); got.Answered() != len(c.Items) {
		t.Errorf("answered: got %d, want %d", got.Answered(), len(c.Items))
	}
}

func TestReminderControls(t *testing.T) {
	env := incidentstest.NewEnv()
	inc := incidentstest.OpenIncident(t, env)
	startChecklist(t, env, inc.ID)
	if err := env.Aftermath.SnoozeReminders(ctx, bob, inc.ID, time.Hour); err != nil {
		t.Fatalf("SnoozeReminders: %v", err)
	}
	c := findChecklist(t, env, inc.ID)
	if want := env.Clock.Now().Add(time.Hour); c.SnoozedUntil == nil || !c.SnoozedUntil.Equal(want) {
		t.Errorf("SnoozedUntil: got %v, want %v", c.SnoozedUntil, want)
	}
	if err := env.Aftermath.StopReminders(ctx, bob, inc.ID); err != nil {
		t.Fatalf("StopReminders: %v", err)
	}
	if c := findChecklist(t, env, inc.ID); !c.RemindersStopped {
		t.Errorf("RemindersStopped: got false, want true")
	}
	kinds := incidentstest.EventKinds(t, env, inc.ID)
	if got := kinds[len(kinds)-2:]; !slices.Equal(got, []incidents.EventKind{incidents.EventReminderSnoozed, incidents.EventRemindersStopped}) {
		t.Errorf("timeline tail: got %v", got)
	}
	if err := env.Aftermath.SnoozeReminders(ctx, bob, inc.ID, 0); incidents.ErrorCode(err) != incidents.EINVALID {
		t.Errorf("snooze 0: got %v, want EINVALID", err)
	}
}
