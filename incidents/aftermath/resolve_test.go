package aftermath_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
)

func answerPostmortem(t *testing.T, env *incidentstest.Env, id int64, key, text string) {
	t.Helper()
	if err := env.Aftermath.AnswerPostmortem(ctx, bob, id, key, text); err != nil {
		t.Fatalf("AnswerPostmortem(%s): %v", key, err)
	}
}

func TestResolve(t *testing.T) {
	env := incidentstest.NewEnv()
	inc := incidentstest.OpenIncident(t, env)
	before, pagesBefore := len(env.Chat.Calls()), len(env.Pager.Pages())
	env.Clock.Advance(20 * time.Minute)

	got := incidentstest.Resolve(t, env, inc.ID, "rolled back prompt v42")
	if got.Status != incidents.StatusResolved || got.ResolvedAt == nil || !got.ResolvedAt.Equal(env.Clock.Now()) || got.ResolvedBy == "" {
		t.Errorf("resolved incident: got status %s at %v by %q", got.Status, got.ResolvedAt, got.ResolvedBy)
	}
	events, err := env.Service.Timeline(ctx, inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	if last.Kind != incidents.EventResolved || !strings.Contains(last.Text, "rolled back prompt v42") {
		t.Errorf("last event: got %s %q, want resolved with the note", last.Kind, last.Text)
	}
	if keys := incidentstest.OutboxKeys(env, incidents.KindPageResolve); !slices.Equal(keys, []string{"inc-1/page_resolve"}) {
		t.Errorf("page_resolve queued: got %v", keys)
	}

	incidentstest.Drain(t, env, outbox.LaneUrgent)
	incidentstest.Drain(t, env, outbox.LaneChat)
	pages := env.Pager.Pages()[pagesBefore:]
	if len(pages) != 1 || pages[0].Action != "resolve" || pages[0].DedupKey != "reins-1" {
		t.Errorf("PagerDuty: got %+v, want one resolve of reins-1", pages)
	}
	// Channel steps run in order; the summary refresh has a lane of its own.
	var methods []string
	var calls []incidentstest.ChatCall
	summaries := 0
	for _, c := range env.Chat.Calls()[before:] {
		if c.Method == "PostSummary" {
			summaries++
			continue
		}
		methods = append(methods, c.Method)
		calls = append(calls, c)
	}
	want := []string{"SetTopic", "Post", "Post", "PostPostmortemQuestion"}
	if !slices.Equal(methods, want) || summaries != 1 {
		t.Fatalf("Slack calls: got %v and %d summary refreshes, want %v and 1", methods, summaries, want)
	}
	if topic := calls[0].Text; !strings.HasPrefix(topic, "[RESOLVED] support-bot") {
		t.Errorf("topic: got %q, want [RESOLVED] …", topic)
	}
	if title := calls[2].Message.Title; title != "Postmortem for #1 — answer each question in this thread; 0 of 6" {
		t.Errorf("postmortem parent: got %q", title)
	}
	q := calls[3]
	if q.Question.Key != "summary" || q.ThreadTS == "" || q.ThreadTS != incidentstest.FindIncident(t, env, inc.ID).PostmortemTS {
		t.Errorf("first question: got %s in thread %q, want summary in the postmortem thread", q.Question.Key, q.ThreadTS)
	}

	_, err = env.Aftermath.Resolve(ctx, bob, inc.ID, "")
	if code := incidents.ErrorCode(err); code != incidents.ECONFLICT {
		t.Errorf("second resolve: got %v, want ECONFLICT", err)
	}
	if !strings.Contains(incidents.ErrorMessage(err), "already resolved") {
		t.Errorf("second resolve message: got %q", incidents.ErrorMessage(err))
	}
}

func TestResolveUnknownIncident(t *testing.T) {
	env := incidentstest.NewEnv()
	if _, err := env.Aftermath.Resolve(ctx, bob, 7, ""); incidents.ErrorCode(err) != incidents.ENOTFOUND {
		t.Errorf("got %v, want ENOTFOUND", err)
	}
}

func TestPostmortemThread(t *testing.T) {
	env := incidentstest.NewEnv()
	inc := incidentstest.OpenIncident(t, env)
	incidentstest.Resolve(t, env, inc.ID, "")
	incidentstest.Drain(t, env, outbox.LaneChat)
	incidentstest.Drain(t, env, outbox.LaneUrgent)
	before := len(env.Chat.Calls())

	answerPostmortem(t, env, inc.ID, "summary", "support-bot looped on refunds")
	incidentstest.Drain(t, env, outbox.LaneChat)
	var got []string
	for _, c := range env.Chat.Calls()[before:] {
		switch c.Method {
		case "PostPostmortemQuestion":
			mode := "post"
			if c.UpdateTS != "" {
				mode = "update"
			}
			got = append(got, mode+" "+c.Question.Key)
		case "Post":
			got = append(got, c.Message.Title)
		}
	}
	want := []string{"update summary", "post root_cause", "Postmortem for #1 — answer each question in this thread; 1 of 6"}
	if !slices.Equal(got, want) {
		t.Errorf("after the first answer:\n got %q\nwant %q", got, want)
	}
	if up := incidentstest.CallsSince(env, before, "PostPostmortemQuestion")[0]; up.Question.Answer == nil || up.Question.Answer.Text != "support-bot looped on refunds" {
		t.Errorf("updated question shows answer %+v", up.Question.Answer)
	}

	for _, k := range []string{"root_cause", "went_well", "went_poorly", "action_items"} {
		answerPostmortem(t, env, inc.ID, k, "answer to "+k)
	}
	if uploads := env.Chat.CallsTo("UploadFile"); len(uploads) != 0 {
		t.Fatalf("uploaded before every question was answered: %d", len(uploads))
	}
	answerPostmortem(t, env, inc.ID, "sla_changes", "no")
	answerPostmortem(t, env, inc.ID, "sla_changes", "no change") // an edit after finishing does not upload again
	incidentstest.Drain(t, env, outbox.LaneChat)

	uploads := env.Chat.CallsTo("UploadFile")
	if len(uploads) != 1 || uploads[0].Link.URL != "postmortem-inc-1.md" || !strings.Contains(uploads[0].Text, "answer to root\\_cause") {
		t.Fatalf("uploads: got %d (%+v), want postmortem-inc-1.md with the answers", len(uploads), uploads)
	}
	doc, err := env.Store.FindPostmortemDoc(ctx, inc.ID)
	if err != nil || !doc.Finished || !strings.Contains(doc.Markdown, "no change") {
		t.Errorf("doc: got %+v (%v), want finished with the edited Markdown", doc, err)
	}
	if kinds := incidentstest.EventKinds(t, env, inc.ID); kinds[len(kinds)-1] != incidents.EventPostmortemPosted {
		t.Errorf("timeline: got %v, want postmortem_posted last", kinds)
	}
	for key, n := range questionPosts(env) {
		if n != 1 {
			t.Errorf("question %s posted %d times, want once", key, n)
		}
	}
}

func questionPosts(env *incidentstest.Env) map[string]int {
	out := map[string]int{}
	for _, c := range env.Chat.CallsTo("PostPostmortemQuestion") {
		if c.UpdateTS == "" {
			out[c.Question.Key]++
		}
	}
	return out
}

func TestAnswerPostmortemErrors(t *testing.T) {
	env := incidentstest.NewEnv()
	inc := incidentstest.OpenIncident(t, env)
	tests := []struct {
		name, key, text string
		id              int64
		want            string
	}{
		{"ErrUnknownKey", "lessons", "x", inc.ID, incidents.EINVALID},
		{"ErrEmptyAnswer", "summary", "  ", inc.ID, incidents.EINVALID},
		{"ErrNoIncident", "summary", "x", 42, incidents.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := env.Aftermath.AnswerPostmortem(ctx, bob, tt.id, tt.key, tt.text)
			if got := incidents.ErrorCode(err); got != tt.want {
				t.Errorf("got %v, want %s", err, tt.want)
			}
		})
	}
}

func TestPostPostmortem(t *testing.T) {
	env := incidentstest.NewEnv()
	inc := incidentstest.OpenIncident(t, env)
	if err := env.Aftermath.PostPostmortem(ctx, bob, inc.ID); err != nil {
		t.Fatalf("PostPostmortem: %v", err)
	}
	doc, err := env.Store.FindPostmortemDoc(ctx, inc.ID)
	if err != nil || doc.Finished || !strings.HasPrefix(doc.Markdown, "# Postmortem: incident #1") {
		t.Fatalf("doc: got %+v (%v), want an unfinished rendered postmortem", doc, err)
	}
	incidentstest.Drain(t, env, outbox.LaneChat)
	uploads := env.Chat.CallsTo("UploadFile")
	if len(uploads) != 1 || uploads[0].Channel != "C001" || uploads[0].Text != doc.Markdown {
		t.Errorf("uploads: got %+v, want the saved Markdown in C001", uploads)
	}

	noSlack := incidentstest.NewEnv(func(d *incidents.Deps, c *incidents.Config) { d.Chat = nil })
	incidentstest.Ingest(t, noSlack, incidentstest.Alert())
	if err := noSlack.Aftermath.PostPostmortem(ctx, bob, 1); incidents.ErrorCode(err) != incidents.EUNAVAILABLE {
		t.Errorf("without Slack: got %v, want EUNAVAILABLE", err)
	}
}
