package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/bot/slackfake"
	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/outbox"
)

func newChat(t *testing.T) (*Chat, *slackfake.Server) {
	t.Helper()
	srv := slackfake.New()
	t.Cleanup(srv.Close)
	return NewChat(srv.Client(), nil), srv
}

// errKind names how delivery will treat err.
func errKind(err error) string {
	var ra *outbox.RetryAfterError
	var pe *outbox.PermanentError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ra):
		return "retry-after " + ra.After.String()
	case errors.As(err, &pe):
		return "permanent"
	}
	return "retry"
}

func TestChatCreateChannel(t *testing.T) {
	long := strings.Repeat("a", 80)
	for name, tc := range map[string]struct {
		name     string
		existing []string
		prepare  func(*slackfake.Server)
		want     string
		wantErr  string
	}{
		"OK":             {name: "inc-42-support-bot-token-spike", want: "inc-42-support-bot-token-spike", wantErr: "ok"},
		"Sanitised":      {name: "INC 42 Support Bot: Token spike!", want: "inc-42-support-bot-token-spike", wantErr: "ok"},
		"NameTaken":      {name: "inc-42-bot", existing: []string{"inc-42-bot"}, want: "inc-42-bot-2", wantErr: "ok"},
		"NameTakenTwice": {name: "inc-42-bot", existing: []string{"inc-42-bot", "inc-42-bot-2"}, want: "inc-42-bot-3", wantErr: "ok"},
		"LongTaken":      {name: long, existing: []string{long}, want: strings.Repeat("a", 78) + "-2", wantErr: "ok"},
		"ErrRateLimited": {name: "inc-1", prepare: func(s *slackfake.Server) { s.RateLimit("conversations.create", 1, 30) }, wantErr: "retry-after 30s"},
		"ErrInvalidAuth": {name: "inc-1", prepare: func(s *slackfake.Server) { s.Fail("conversations.create", "invalid_auth", 1) }, wantErr: "permanent"},
		"ErrOutage":      {name: "inc-1", prepare: func(s *slackfake.Server) { s.Fail("conversations.create", "internal_error", 1) }, wantErr: "retry"},
		"ErrEmptyName":   {name: "!!!", wantErr: "permanent"},
	} {
		t.Run(name, func(t *testing.T) {
			chat, srv := newChat(t)
			for i, n := range tc.existing {
				srv.AddChannel(fmt.Sprintf("C0OLD%04d", i), n)
			}
			if tc.prepare != nil {
				tc.prepare(srv)
			}
			id, got, err := chat.CreateChannel(context.Background(), tc.name, false)
			if kind := errKind(err); kind != tc.wantErr {
				t.Fatalf("err = %v (%s), want %s", err, kind, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("name = %q, want %q", got, tc.want)
			}
			if err == nil && !slices.ContainsFunc(srv.Channels(), func(c slackfake.Channel) bool { return c.ID == id && c.Name == got }) {
				t.Errorf("channel %s %s not created", id, got)
			}
		})
	}
}

// A retry after a crash between Slack creating the channel and reins
// recording it adopts the channel reins made, instead of opening inc-…-2.
func TestChatCreateChannelAdoptsItsOwn(t *testing.T) {
	chat, srv := newChat(t)
	id1, name1, err := chat.CreateChannel(context.Background(), "inc-7-support-bot-spike", false)
	if err != nil {
		t.Fatal(err)
	}
	retry := NewChat(srv.Client(), nil) // a restarted reins: nothing cached
	id2, name2, err := retry.CreateChannel(context.Background(), "inc-7-support-bot-spike", false)
	if err != nil || id2 != id1 || name2 != name1 {
		t.Fatalf("retry got %s %s %v, want the same channel %s %s", id2, name2, err, id1, name1)
	}
	if n := len(srv.Channels()); n != 1 {
		t.Fatalf("got %d channels, want 1", n)
	}
}

func TestChatInvite(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		chat, srv := newChat(t)
		srv.AddUser("U1", "alice@example.com")
		srv.AddUser("U2", "bob@example.com")
		srv.AddUser("U3", "carol@example.com")
		srv.AddUsergroup("S1", "U1", "U3")
		srv.AddChannel("C0INC0001", "inc")
		people := []string{"U1", "bob@example.com", "S1", "nobody@example.com", "support-leads", "S404", slackfake.BotUserID}
		if err := chat.Invite(ctx, "C0INC0001", people); err != nil {
			t.Fatal(err)
		}
		if got, want := srv.Members("C0INC0001"), []string{slackfake.BotUserID, "U1", "U2", "U3"}; !sameSet(got, want) {
			t.Errorf("members = %v, want %v", got, want)
		}
	})
	t.Run("AlreadyInChannel", func(t *testing.T) {
		chat, srv := newChat(t)
		srv.AddUser("U1", "alice@example.com")
		srv.AddUser("U2", "bob@example.com")
		srv.AddChannel("C0INC0001", "inc", "U1")
		if err := chat.Invite(ctx, "C0INC0001", []string{"U1", "U2"}); err != nil {
			t.Fatal(err)
		}
		if got := srv.Members("C0INC0001"); !slices.Contains(got, "U2") {
			t.Errorf("members = %v, want U2 invited despite U1 already in", got)
		}
		if err := chat.Invite(ctx, "C0INC0001", []string{"U1"}); err != nil {
			t.Errorf("re-invite: %v, want already_in_channel ignored", err)
		}
	})
	t.Run("Batches", func(t *testing.T) {
		chat, srv := newChat(t)
		var people []string
		for i := range 250 {
			id := fmt.Sprintf("U%04d", i)
			srv.AddUser(id, id+"@example.com")
			people = append(people, id)
		}
		srv.AddChannel("C0INC0001", "inc")
		if err := chat.Invite(ctx, "C0INC0001", people); err != nil {
			t.Fatal(err)
		}
		var sizes []int
		for _, c := range srv.Calls("conversations.invite") {
			sizes = append(sizes, len(strings.Split(c.Params.Get("users"), ",")))
		}
		if !slices.Equal(sizes, []int{100, 100, 50}) {
			t.Errorf("batch sizes = %v, want [100 100 50]", sizes)
		}
		if got := len(srv.Members("C0INC0001")); got != 251 {
			t.Errorf("members = %d, want 251", got)
		}
	})
	for name, tc := range map[string]struct {
		prepare func(*slackfake.Server)
		want    string
	}{
		"ErrLookupRateLimited": {func(s *slackfake.Server) { s.RateLimit("users.lookupByEmail", 1, 5) }, "retry-after 5s"},
		"ErrChannelArchived":   {func(s *slackfake.Server) { s.ArchiveChannel("C0INC0001") }, "permanent"},
		"ErrGroupOutage":       {func(s *slackfake.Server) { s.Fail("usergroups.users.list", "fatal_error", 1) }, "retry"},
	} {
		t.Run(name, func(t *testing.T) {
			chat, srv := newChat(t)
			srv.AddUser("U2", "bob@example.com")
			srv.AddUsergroup("S1", "U2")
			srv.AddChannel("C0INC0001", "inc")
			tc.prepare(srv)
			err := chat.Invite(ctx, "C0INC0001", []string{"S1", "bob@example.com"})
			if got := errKind(err); got != tc.want {
				t.Errorf("err = %v (%s), want %s", err, got, tc.want)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestChatPostSummary(t *testing.T) {
	ctx := context.Background()
	chat, srv := newChat(t)
	srv.AddChannel("C0INC0001", "inc")
	v := summaryOK()
	ts, err := chat.PostSummary(ctx, "C0INC0001", "", v)
	if err != nil {
		t.Fatal(err)
	}
	v.Answered = 8
	ts2, err := chat.PostSummary(ctx, "C0INC0001", ts, v)
	if err != nil || ts2 != ts {
		t.Fatalf("update = %q, %v; want %q", ts2, err, ts)
	}
	msgs := srv.Messages("C0INC0001")
	if len(msgs) != 1 || !msgs[0].Pinned || msgs[0].Updates != 1 || !strings.Contains(string(msgs[0].Blocks), "8 of 14 answered") {
		t.Fatalf("messages = %+v, want one pinned summary updated to 8 of 14", msgs)
	}
	if n := len(srv.Calls("pins.add")); n != 1 {
		t.Errorf("pins.add calls = %d, want 1", n)
	}

	t.Run("PinFailureStillPosted", func(t *testing.T) {
		srv.Fail("pins.add", "internal_error", 1)
		ts, err := chat.PostSummary(ctx, "C0INC0001", "", v)
		if err != nil || ts == "" {
			t.Fatalf("post = %q, %v; want posted despite the pin failure", ts, err)
		}
	})
	t.Run("ErrUpdateRateLimited", func(t *testing.T) {
		srv.RateLimit("chat.update", 1, 3)
		_, err := chat.PostSummary(ctx, "C0INC0001", ts, v)
		if got := errKind(err); got != "retry-after 3s" {
			t.Errorf("err = %v (%s), want retry-after 3s", err, got)
		}
	})
}

func TestChatPost(t *testing.T) {
	ctx := context.Background()
	chat, srv := newChat(t)
	srv.AddChannel("C0GOV0001", "agent-governance")
	m := incidents.Message{Channel: "#agent-governance", Title: "Drill passed", Text: "support-bot halted in 2s"}
	ts, err := chat.Post(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	m.Channel, m.ThreadTS = "agent-governance", ts
	if _, err := chat.Post(ctx, m); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Calls("conversations.list")); n != 1 {
		t.Errorf("conversations.list calls = %d, want 1 (cached)", n)
	}
	msgs := srv.Messages("C0GOV0001")
	if len(msgs) != 2 || msgs[1].ThreadTS != ts || !strings.Contains(msgs[0].Text, "Drill passed") {
		t.Fatalf("messages = %+v", msgs)
	}
	m.ThreadTS, m.UpdateTS, m.Text = "", ts, "edited"
	if _, err := chat.Post(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got := srv.Messages("C0GOV0001")[0]; got.Updates != 1 || !strings.Contains(got.Text, "edited") {
		t.Errorf("updated = %+v", got)
	}

	for name, tc := range map[string]struct {
		channel string
		prepare func()
		want    string
	}{
		"ErrUnknownName":     {"#nowhere", func() {}, "permanent"},
		"ErrChannelNotFound": {"C0GONE001", func() {}, "permanent"},
		"ErrArchived":        {"C0GOV0001", func() { srv.ArchiveChannel("C0GOV0001") }, "permanent"},
		"ErrRateLimited":     {"C0GOV0001", func() { srv.RateLimit("chat.postMessage", 1, 2) }, "retry-after 2s"},
	} {
		t.Run(name, func(t *testing.T) {
			tc.prepare()
			_, err := chat.Post(ctx, incidents.Message{Channel: tc.channel, Text: "x"})
			if got := errKind(err); got != tc.want {
				t.Errorf("err = %v (%s), want %s", err, got, tc.want)
			}
		})
	}
}

func TestChatThreads(t *testing.T) {
	ctx := context.Background()
	chat, srv := newChat(t)
	srv.AddChannel("C0INC0001", "inc")
	parent, err := chat.Post(ctx, incidents.Message{Channel: "C0INC0001", Title: "Blast-radius checklist"})
	if err != nil {
		t.Fatal(err)
	}
	v := checklistView(false)
	ts, err := chat.PostChecklistItem(ctx, "C0INC0001", parent, "", v)
	if err != nil {
		t.Fatal(err)
	}
	v = checklistView(true)
	if _, err := chat.PostChecklistItem(ctx, "C0INC0001", parent, ts, v); err != nil {
		t.Fatal(err)
	}
	q, err := chat.PostPostmortemQuestion(ctx, "C0INC0001", parent, "", postmortemView(false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chat.PostPostmortemQuestion(ctx, "C0INC0001", parent, q, postmortemView(true)); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages("C0INC0001")
	if len(msgs) != 3 {
		t.Fatalf("messages = %d, want parent + 2 thread replies", len(msgs))
	}
	for _, m := range msgs[1:] {
		if m.ThreadTS != parent || m.Updates != 1 {
			t.Errorf("reply %s: thread %q, updates %d; want thread %q, 1 update", m.TS, m.ThreadTS, m.Updates, parent)
		}
	}
	if !strings.Contains(string(msgs[1].Blocks), "Change answer") || !strings.Contains(string(msgs[2].Blocks), "Edit answer") {
		t.Errorf("updates not applied: %s / %s", msgs[1].Blocks, msgs[2].Blocks)
	}
}

func TestChatUploadFile(t *testing.T) {
	ctx := context.Background()
	chat, srv := newChat(t)
	srv.AddChannel("C0INC0001", "inc")
	if err := chat.UploadFile(ctx, "C0INC0001", "1700000000.000001", "postmortem-42.md", "Postmortem #42", "# Incident 42\n"); err != nil {
		t.Fatal(err)
	}
	files := srv.Files()
	if len(files) != 1 || files[0].Content != "# Incident 42\n" || files[0].Channel != "C0INC0001" ||
		files[0].ThreadTS != "1700000000.000001" || files[0].Title != "Postmortem #42" || !files[0].Shared {
		t.Fatalf("files = %+v", files)
	}
	if err := chat.UploadFile(ctx, "C0INC0001", "", "empty.md", "Empty", ""); errKind(err) != "permanent" {
		t.Errorf("empty file err = %v, want permanent", err)
	}
	srv.RateLimit("files.getUploadURLExternal", 1, 9)
	if err := chat.UploadFile(ctx, "C0INC0001", "", "a.md", "A", "a"); errKind(err) != "retry-after 9s" {
		t.Errorf("rate limited err = %v, want retry-after 9s", err)
	}
}

func TestChatTopicAndBookmark(t *testing.T) {
	ctx := context.Background()
	chat, srv := newChat(t)
	srv.AddChannel("C0INC0001", "inc")
	if err := chat.SetTopic(ctx, "C0INC0001", "support-bot: <!channel> "+strings.Repeat("x", 300)); err != nil {
		t.Fatal(err)
	}
	if err := chat.Bookmark(ctx, "C0INC0001", incidents.Link{Text: "Runbook", URL: "https://wiki.example.com/rb"}); err != nil {
		t.Fatal(err)
	}
	err := chat.Bookmark(ctx, "C0INC0001", incidents.Link{Text: "x", URL: "javascript:alert(1)"})
	if errKind(err) != "permanent" {
		t.Errorf("unsafe bookmark err = %v, want permanent", err)
	}
	ch := srv.Channels()[0]
	if len([]rune(ch.Topic)) > MaxTopic || strings.Contains(ch.Topic, "!channel") {
		t.Errorf("topic = %q", ch.Topic)
	}
	if len(ch.Bookmarks) != 1 || ch.Bookmarks[0].Link != "https://wiki.example.com/rb" {
		t.Errorf("bookmarks = %+v", ch.Bookmarks)
	}
}

func TestChatEphemeralRespondView(t *testing.T) {
	ctx := context.Background()
	chat, srv := newChat(t)
	srv.AddUser("U1", "alice@example.com")
	srv.AddChannel("C0INC0001", "inc", "U1")
	blocks, text := RenderConfirmHalt("support-bot", nil, "looping", 42, "tok")
	if err := chat.PostEphemeral(ctx, "C0INC0001", "U1", blocks, text); err != nil {
		t.Fatal(err)
	}
	if got := srv.Ephemerals("C0INC0001"); len(got) != 1 || got[0].User != "U1" {
		t.Fatalf("ephemerals = %+v", got)
	}
	if err := chat.PostEphemeral(ctx, "C0INC0001", "U9", blocks, text); errKind(err) != "permanent" {
		t.Errorf("ephemeral to a non-member: %v, want permanent", err)
	}

	u := srv.ResponseURL()
	if err := chat.Respond(ctx, u, blocks, text, true, true); err != nil {
		t.Fatal(err)
	}
	got := srv.Responses()
	if len(got) != 1 || got[0].ResponseType != "ephemeral" || !got[0].ReplaceOriginal || !strings.Contains(string(got[0].Blocks), ActionConfirmHalt) {
		t.Fatalf("responses = %+v", got)
	}
	if err := chat.Respond(ctx, srv.URL()+"/nowhere", nil, "x", false, false); err == nil {
		t.Error("respond to a 404 URL: nil error")
	}

	if err := chat.OpenView(ctx, "trig", ImpactModal(42, "std:containment", "Anything still running?")); err != nil {
		t.Fatal(err)
	}
	srv.Fail("views.open", "expired_trigger_id", 1)
	if err := chat.OpenView(ctx, "trig", ImpactModal(42, "k", "q")); errKind(err) != "permanent" {
		t.Errorf("open view with an expired trigger: %v, want permanent", err)
	}
}

func TestClassify(t *testing.T) {
	_, srv := newChat(t)
	api := srv.Client()
	srv.RateLimit("auth.test", 1, 0)
	_, err := api.AuthTestContext(context.Background())
	got := classify("auth", err)
	var ra *outbox.RetryAfterError
	if !errors.As(got, &ra) || ra.After != 0*time.Second || !strings.Contains(got.Error(), "auth: ") {
		t.Errorf("classify(429 Retry-After 0) = %v, want RetryAfterError wrapping the op", got)
	}
	if classify("x", nil) != nil {
		t.Error("classify(nil) != nil")
	}
}

// Alert text reaches the topic ("agent · severity · title"): mentions and
// broadcasts in it are shown as typed, never notify anyone, and an entity is
// never cut in half.
func TestChatTopicEscapesMentions(t *testing.T) {
	ctx := context.Background()
	chat, srv := newChat(t)
	srv.AddChannel("C0INC0001", "inc")
	title := "support-bot · critical · <@U01ALICE> <!subteam^S0ONCALL> <!here> @everyone <https://evil.example|click> & more\nline two"
	if err := chat.SetTopic(ctx, "C0INC0001", title); err != nil {
		t.Fatal(err)
	}
	topic := srv.Channels()[0].Topic
	for _, bad := range []string{"<@", "<!", "<http", "@everyone", "\n"} {
		if strings.Contains(topic, bad) {
			t.Errorf("topic %q contains %q", topic, bad)
		}
	}
	wantContains(t, topic, "&lt;@U01ALICE&gt;", "&lt;!subteam^S0ONCALL&gt;", "&amp; more")
	if err := chat.SetTopic(ctx, "C0INC0001", strings.Repeat("x", MaxTopic-3)+"<@U01ALICE>"); err != nil {
		t.Fatal(err)
	}
	topic = srv.Channels()[0].Topic
	if n := len([]rune(topic)); n > MaxTopic || strings.HasSuffix(strings.TrimSuffix(topic, "…"), "&l") {
		t.Errorf("long topic %q (%d runes) over the limit or cut inside an entity", topic, n)
	}
}

// Slack failing as a whole (a 5xx, a 429, no connection) is an
// UnavailableError for delivery, carrying a 429's Retry-After; a 429 is
// still a RetryAfterError too.
func TestClassifyUnavailable(t *testing.T) {
	_, srv := newChat(t)
	api := srv.Client()
	srv.Outage(0, slackfake.Failure{Status: http.StatusServiceUnavailable}, slackfake.Failure{Status: http.StatusTooManyRequests, RetryAfter: 4})
	_, err := api.AuthTestContext(context.Background())
	var un *outbox.UnavailableError
	if got := classify("auth", err); !errors.As(got, &un) || un.After != 0 {
		t.Errorf("classify(503) = %v, want UnavailableError with no Retry-After", got)
	}
	_, err = api.AuthTestContext(context.Background())
	var ra *outbox.RetryAfterError
	if got := classify("auth", err); !errors.As(got, &un) || un.After != 4*time.Second || !errors.As(got, &ra) {
		t.Errorf("classify(429 Retry-After 4) = %v, want UnavailableError after 4s", got)
	}
	srv.Recover()
	srv.Close()
	_, err = api.AuthTestContext(context.Background())
	if got := classify("auth", err); !errors.As(got, &un) {
		t.Errorf("classify(connection refused) = %v, want UnavailableError", got)
	}
	if got := classify("x", slack.SlackErrorResponse{Err: "internal_error"}); !errors.As(got, &un) {
		t.Errorf("classify(internal_error) = %v, want UnavailableError", got)
	}
	if got := classify("x", slack.SlackErrorResponse{Err: "channel_not_found"}); errors.As(got, &un) {
		t.Errorf("classify(channel_not_found) = %v, an item's failure, not Slack's", got)
	}
}
