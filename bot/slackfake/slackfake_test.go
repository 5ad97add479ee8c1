package slackfake_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/bot/slackfake"
)

func newFake(t *testing.T) (*slackfake.Server, *slack.Client) {
	t.Helper()
	srv := slackfake.New()
	t.Cleanup(srv.Close)
	return srv, srv.Client()
}

func wantSlackError(t *testing.T, err error, want string) {
	t.Helper()
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != want {
		t.Fatalf("err = %v, want Slack error %q", err, want)
	}
}

func TestConversationsCreate(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		srv, api := newFake(t)
		ch, err := api.CreateConversationContext(ctx, slack.CreateConversationParams{ChannelName: "inc-1-bot"})
		if err != nil {
			t.Fatal(err)
		}
		got := srv.Channels()
		if len(got) != 1 || got[0].ID != ch.ID || got[0].Name != "inc-1-bot" {
			t.Fatalf("channels = %+v, want one inc-1-bot with ID %s", got, ch.ID)
		}
		if m := srv.Members(ch.ID); len(m) != 1 || m[0] != slackfake.BotUserID {
			t.Fatalf("members = %v, want the bot", m)
		}
	})
	for name, tc := range map[string]struct{ channel, want string }{
		"ErrNameTaken":    {"taken", "name_taken"},
		"ErrSpecials":     {"Has Space", "invalid_name_specials"},
		"ErrMaxLength":    {strings.Repeat("a", 81), "invalid_name_maxlength"},
		"ErrNameRequired": {"", "invalid_name_required"},
	} {
		t.Run(name, func(t *testing.T) {
			srv, api := newFake(t)
			srv.AddChannel("C0TAKEN", "taken")
			_, err := api.CreateConversationContext(ctx, slack.CreateConversationParams{ChannelName: tc.channel})
			wantSlackError(t, err, tc.want)
		})
	}
}

func TestRateLimitAndFail(t *testing.T) {
	ctx := context.Background()
	srv, api := newFake(t)
	srv.RateLimit("auth.test", 1, 7)
	srv.Fail("auth.test", "invalid_auth", 1)

	_, err := api.AuthTestContext(ctx)
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
		t.Fatalf("first call err = %v, want RateLimitedError after 7s", err)
	}
	_, err = api.AuthTestContext(ctx)
	wantSlackError(t, err, "invalid_auth")
	resp, err := api.AuthTestContext(ctx)
	if err != nil || resp.UserID != slackfake.BotUserID {
		t.Fatalf("third call = %+v, %v; want the bot user", resp, err)
	}
	calls := srv.Calls("auth.test")
	got := []string{calls[0].Error, calls[1].Error, calls[2].Error}
	if want := []string{"ratelimited", "invalid_auth", ""}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("recorded errors = %q, want %q", got, want)
	}
}

func TestInvite(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		users []string
		want  string
	}{
		"OK":                  {[]string{"U1", "U2"}, ""},
		"ErrAlreadyInChannel": {[]string{"U2", "U3"}, "already_in_channel"},
		"ErrCantInviteSelf":   {[]string{slackfake.BotUserID}, "cant_invite_self"},
		"ErrUserNotFound":     {[]string{"U404"}, "user_not_found"},
	} {
		t.Run(name, func(t *testing.T) {
			srv, api := newFake(t)
			for _, id := range []string{"U1", "U2", "U3"} {
				srv.AddUser(id, strings.ToLower(id)+"@example.com")
			}
			srv.AddChannel("C0INC", "inc", "U3")
			_, err := api.InviteUsersToConversationContext(ctx, "C0INC", tc.users...)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := srv.Members("inc"); len(got) != 4 {
					t.Fatalf("members = %v, want bot, U3, U1, U2", got)
				}
				return
			}
			wantSlackError(t, err, tc.want)
			if got := srv.Members("C0INC"); len(got) != 2 {
				t.Fatalf("members = %v, want unchanged", got)
			}
		})
	}
}

func TestMessages(t *testing.T) {
	ctx := context.Background()
	srv, api := newFake(t)
	srv.AddChannel("C0INC", "inc")
	blocks := slack.MsgOptionBlocks(slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "hello", false, false), nil, nil))
	_, ts, err := api.PostMessageContext(ctx, "#inc", blocks, slack.MsgOptionText("hello", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C0INC", slack.MsgOptionText("reply", false), slack.MsgOptionTS(ts)); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C0INC", ts, slack.MsgOptionText("edited", false)); err != nil {
		t.Fatal(err)
	}
	if err := api.AddPinContext(ctx, "C0INC", slack.ItemRef{Timestamp: ts}); err != nil {
		t.Fatal(err)
	}
	err = api.AddPinContext(ctx, "C0INC", slack.ItemRef{Timestamp: ts})
	wantSlackError(t, err, "already_pinned")

	got := srv.Messages("C0INC")
	if len(got) != 2 {
		t.Fatalf("messages = %+v, want 2", got)
	}
	if got[0].Text != "edited" || got[0].Updates != 1 || !got[0].Pinned || got[0].Blocks != nil {
		t.Errorf("first = %+v, want edited, updated once, pinned, blocks removed", got[0])
	}
	if got[1].ThreadTS != ts {
		t.Errorf("reply thread_ts = %q, want %q", got[1].ThreadTS, ts)
	}

	srv.ArchiveChannel("C0INC")
	_, _, err = api.PostMessageContext(ctx, "C0INC", slack.MsgOptionText("late", false))
	wantSlackError(t, err, "is_archived")
	_, _, err = api.PostMessageContext(ctx, "C0NONE", slack.MsgOptionText("x", false))
	wantSlackError(t, err, "channel_not_found")
}

func TestInvalidBlocks(t *testing.T) {
	ctx := context.Background()
	srv, api := newFake(t)
	srv.AddChannel("C0INC", "inc")
	long := slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, strings.Repeat("x", 151), false, false))
	_, _, err := api.PostMessageContext(ctx, "C0INC", slack.MsgOptionBlocks(long))
	wantSlackError(t, err, "invalid_blocks")

	many := make([]slack.Block, 51)
	for i := range many {
		many[i] = slack.NewDividerBlock()
	}
	_, _, err = api.PostMessageContext(ctx, "C0INC", slack.MsgOptionBlocks(many...))
	wantSlackError(t, err, "invalid_blocks")
}

func TestEphemeral(t *testing.T) {
	ctx := context.Background()
	srv, api := newFake(t)
	srv.AddUser("U1", "u1@example.com")
	srv.AddChannel("C0INC", "inc", "U1")
	if _, err := api.PostEphemeralContext(ctx, "C0INC", "U1", slack.MsgOptionText("only you", false)); err != nil {
		t.Fatal(err)
	}
	_, err := api.PostEphemeralContext(ctx, "C0INC", "U9", slack.MsgOptionText("x", false))
	wantSlackError(t, err, "user_not_in_channel")
	got := srv.Ephemerals("inc")
	if len(got) != 1 || got[0].User != "U1" || got[0].Text != "only you" {
		t.Fatalf("ephemerals = %+v", got)
	}
	if len(srv.Messages("inc")) != 0 {
		t.Fatal("an ephemeral message showed up as a channel message")
	}
}

func TestUsersAndGroups(t *testing.T) {
	ctx := context.Background()
	srv, api := newFake(t)
	srv.AddUser("U1", "alice@example.com")
	srv.AddUsergroup("S1", "U1", "U2")

	u, err := api.GetUserByEmailContext(ctx, "Alice@example.com")
	if err != nil || u.ID != "U1" {
		t.Fatalf("lookup = %+v, %v; want U1", u, err)
	}
	_, err = api.GetUserByEmailContext(ctx, "nobody@example.com")
	wantSlackError(t, err, "users_not_found")
	u, err = api.GetUserInfoContext(ctx, "U1")
	if err != nil || u.Profile.Email != "alice@example.com" {
		t.Fatalf("info = %+v, %v", u, err)
	}
	_, err = api.GetUserInfoContext(ctx, "U404")
	wantSlackError(t, err, "user_not_found")
	members, err := api.GetUserGroupMembersContext(ctx, "S1")
	if err != nil || strings.Join(members, ",") != "U1,U2" {
		t.Fatalf("members = %v, %v", members, err)
	}
	_, err = api.GetUserGroupMembersContext(ctx, "S404")
	wantSlackError(t, err, "no_such_subteam")
	groups, err := api.GetUserGroupsContext(ctx, slack.GetUserGroupsOptionIncludeUsers(true))
	if err != nil || len(groups) != 1 || groups[0].ID != "S1" || len(groups[0].Users) != 2 {
		t.Fatalf("groups = %+v, %v", groups, err)
	}
}

func TestConversationsListPages(t *testing.T) {
	ctx := context.Background()
	srv, api := newFake(t)
	for i := range 5 {
		srv.AddChannel("C0"+string(rune('A'+i)), "chan-"+string(rune('a'+i)))
	}
	var names []string
	cursor := ""
	for {
		page, next, err := api.GetConversationsContext(ctx, &slack.GetConversationsParameters{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			names = append(names, c.Name)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if got := strings.Join(names, ","); got != "chan-a,chan-b,chan-c,chan-d,chan-e" {
		t.Fatalf("names = %s", got)
	}
	info, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: "C0C"})
	if err != nil || info.Name != "chan-c" {
		t.Fatalf("info = %+v, %v", info, err)
	}
}

func TestUploadFile(t *testing.T) {
	ctx := context.Background()
	srv, api := newFake(t)
	srv.AddChannel("C0INC", "inc")
	content := "# Postmortem\n"
	_, err := api.UploadFileContext(ctx, slack.UploadFileParameters{
		Channel: "C0INC", ThreadTimestamp: "1.2", Filename: "pm.md", Title: "Postmortem",
		Content: content, FileSize: len(content),
	})
	if err != nil {
		t.Fatal(err)
	}
	files := srv.Files()
	want := slackfake.File{ID: files[0].ID, Name: "pm.md", Title: "Postmortem", Content: content,
		Channel: "C0INC", ThreadTS: "1.2", Shared: true}
	if len(files) != 1 || files[0] != want {
		t.Fatalf("files = %+v, want %+v", files, want)
	}
}

func TestBookmarksTopicViews(t *testing.T) {
	ctx := context.Background()
	srv, api := newFake(t)
	srv.AddChannel("C0INC", "inc")
	if _, err := api.AddBookmarkContext(ctx, "C0INC", slack.AddBookmarkParameters{Title: "Runbook", Type: "link", Link: "https://x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.SetTopicOfConversationContext(ctx, "C0INC", "support-bot token spike"); err != nil {
		t.Fatal(err)
	}
	ch := srv.Channels()[0]
	if len(ch.Bookmarks) != 1 || ch.Bookmarks[0].Link != "https://x" || ch.Topic != "support-bot token spike" {
		t.Fatalf("channel = %+v", ch)
	}

	view := slack.ModalViewRequest{Type: slack.VTModal, Title: slack.NewTextBlockObject(slack.PlainTextType, "Impact", false, false),
		CallbackID: "cb", Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewDividerBlock()}}}
	resp, err := api.OpenViewContext(ctx, "trigger-1", view)
	if err != nil || resp.ID == "" || resp.CallbackID != "cb" {
		t.Fatalf("views.open = %+v, %v", resp, err)
	}
	if got := srv.Calls("views.open")[0].Params.Get("trigger_id"); got != "trigger-1" {
		t.Errorf("trigger_id = %q", got)
	}
	if _, err := api.UpdateViewContext(ctx, view, "", "", resp.ID); err != nil {
		t.Fatal(err)
	}
	view.Title.Text = strings.Repeat("t", 25)
	_, err = api.OpenViewContext(ctx, "trigger-2", view)
	wantSlackError(t, err, "invalid_arguments")
}

func TestSocketModeOpen(t *testing.T) {
	ctx := context.Background()
	srv := slackfake.New()
	t.Cleanup(srv.Close)
	api := srv.Client(slack.OptionAppLevelToken("xapp-fake"))
	srv.SetSocketURL("wss://socket.invalid/link")
	_, url, err := api.StartSocketModeContext(ctx)
	if err != nil || url != "wss://socket.invalid/link" {
		t.Fatalf("open = %q, %v", url, err)
	}
	srv.Fail("apps.connections.open", "invalid_auth", 1)
	_, _, err = api.StartSocketModeContext(ctx)
	wantSlackError(t, err, "invalid_auth")
}

func TestResponseURL(t *testing.T) {
	srv, _ := newFake(t)
	u := srv.ResponseURL()
	msg := &slack.WebhookMessage{Text: "done", ResponseType: "ephemeral", ReplaceOriginal: true}
	if err := slack.PostWebhookContext(context.Background(), u, msg); err != nil {
		t.Fatal(err)
	}
	got := srv.Responses()
	if len(got) != 1 || got[0].Text != "done" || got[0].ResponseType != "ephemeral" || !got[0].ReplaceOriginal {
		t.Fatalf("responses = %+v", got)
	}
	if !strings.HasSuffix(u, got[0].Path) {
		t.Errorf("path = %q, want the end of %q", got[0].Path, u)
	}
}

func TestUnknownMethod(t *testing.T) {
	srv, _ := newFake(t)
	resp, err := http.Post(srv.APIURL()+"nope.nothing", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status = %d, want 404", resp.StatusCode)
	}
}

func TestConcurrentPosts(t *testing.T) {
	ctx := context.Background()
	srv, api := newFake(t)
	srv.AddChannel("C0INC", "inc")
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, _, err := api.PostMessageContext(ctx, "C0INC", slack.MsgOptionText("x", false)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, m := range srv.Messages("C0INC") {
		seen[m.TS] = true
	}
	if len(seen) != 20 {
		t.Fatalf("distinct ts = %d, want 20", len(seen))
	}
}

// An outage fails every method in turn with the failures given, does what
// none of them asked, and ends by itself or on Recover.
func TestOutage(t *testing.T) {
	ctx := context.Background()
	srv, api := newFake(t)
	end := srv.Outage(300*time.Millisecond, slackfake.Failure{Status: http.StatusInternalServerError},
		slackfake.Failure{Status: http.StatusTooManyRequests, RetryAfter: 2})
	if d := time.Until(end); d <= 0 || d > 300*time.Millisecond {
		t.Fatalf("Outage ends in %v, want within 300 ms", d)
	}
	_, err := api.CreateConversationContext(ctx, slack.CreateConversationParams{ChannelName: "inc-1-bot"})
	var sc slack.StatusCodeError
	if !errors.As(err, &sc) || sc.Code != http.StatusInternalServerError {
		t.Fatalf("first call err = %v, want HTTP 500", err)
	}
	_, _, err = api.PostMessageContext(ctx, "C0X", slack.MsgOptionText("hi", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
		t.Fatalf("second call err = %v, want 429 with Retry-After: 2", err)
	}
	if _, err := api.AuthTestContext(ctx); !errors.As(err, &sc) {
		t.Fatalf("third call err = %v, want HTTP 500 again", err)
	}
	if len(srv.Channels()) != 0 {
		t.Fatalf("a failed create made a channel: %+v", srv.Channels())
	}
	time.Sleep(time.Until(end))
	if _, err := api.CreateConversationContext(ctx, slack.CreateConversationParams{ChannelName: "inc-1-bot"}); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
	got := []string{}
	for _, c := range srv.Calls("") {
		got = append(got, c.Method+":"+c.Error)
	}
	want := "conversations.create:http_500,chat.postMessage:ratelimited,auth.test:http_500,conversations.create:"
	if strings.Join(got, ",") != want {
		t.Errorf("calls = %v, want %s", got, want)
	}

	srv.Outage(0) // until Recover; 500 by default
	if _, err := api.AuthTestContext(ctx); !errors.As(err, &sc) || sc.Code != http.StatusInternalServerError {
		t.Fatalf("open-ended outage: err = %v, want HTTP 500", err)
	}
	srv.Recover()
	if _, err := api.AuthTestContext(ctx); err != nil {
		t.Fatalf("after Recover: %v", err)
	}
}
