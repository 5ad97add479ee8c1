package bot

import (
	"context"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/bot/slackfake"
	"github.com/reins-oss/reins/incidents"
)

// slack-go itself counts a `{}` reply as success; this pins why NewClient
// exists.
func TestSlackGoTakesEmptyReplyForSuccess(t *testing.T) {
	fake := slackfake.New()
	t.Cleanup(fake.Close)
	fake.AddChannel("C0INC42", "inc-42", slackfake.BotUserID)
	fake.AnswerEmpty("chat.postMessage", 1)
	if _, err := NewChat(fake.Client(), nil).Post(context.Background(), incidents.Message{Channel: "C0INC42", Text: "hi"}); err != nil {
		t.Skipf("slack-go now rejects {} by itself (%v): NewClient's check is belt and braces", err)
	}
}

// Every Web API call that posts or creates fails when Slack answers `{}`
// without "ok": true, so delivery retries instead of recording it done.
func TestEmptyReplyIsNotSuccess(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		method string
		call   func(c *Chat) error
	}{
		{"chat.postMessage", func(c *Chat) error {
			_, err := c.Post(ctx, incidents.Message{Channel: "C0INC42", Text: "hi"})
			return err
		}},
		{"chat.update", func(c *Chat) error {
			_, err := c.Post(ctx, incidents.Message{Channel: "C0INC42", Text: "hi", UpdateTS: "1.1"})
			return err
		}},
		{"conversations.create", func(c *Chat) error { _, _, err := c.CreateChannel(ctx, "inc-43-x", false); return err }},
		{"conversations.setTopic", func(c *Chat) error { return c.SetTopic(ctx, "C0INC42", "topic") }},
		{"conversations.invite", func(c *Chat) error { return c.Invite(ctx, "C0INC42", []string{"U01ALICE"}) }},
		{"bookmarks.add", func(c *Chat) error {
			return c.Bookmark(ctx, "C0INC42", incidents.Link{Text: "Runbook", URL: "https://wiki.example.com/rb"})
		}},
		{"chat.postEphemeral", func(c *Chat) error { return c.PostEphemeral(ctx, "C0INC42", "U01ALICE", nil, "hi") }},
		{"views.open", func(c *Chat) error {
			return c.OpenView(ctx, "trig", slack.ModalViewRequest{Type: slack.VTModal, CallbackID: "x"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			fake := slackfake.New()
			t.Cleanup(fake.Close)
			fake.AddUser("U01ALICE", "alice@example.com")
			fake.AddChannel("C0INC42", "inc-42", slackfake.BotUserID)
			fake.AnswerEmpty(tt.method, 1)
			err := tt.call(NewChat(NewClient("xoxb-test", fake.APIURL(), nil), nil))
			if err == nil || !strings.Contains(err.Error(), errNoOK) {
				t.Fatalf("%s answered {}: error %v, want %s", tt.method, err, errNoOK)
			}
			if n := len(fake.Calls(tt.method)); n != 1 {
				t.Fatalf("%s called %d times, want 1", tt.method, n)
			}
		})
	}
}

// Real answers still work through NewClient.
func TestNewClientPassesGoodReplies(t *testing.T) {
	fake := slackfake.New()
	t.Cleanup(fake.Close)
	fake.AddChannel("C0INC42", "inc-42", slackfake.BotUserID)
	c := NewChat(NewClient("xoxb-test", fake.APIURL(), nil), nil)
	if ts, err := c.Post(context.Background(), incidents.Message{Channel: "C0INC42", Text: "hi"}); err != nil || ts == "" {
		t.Fatalf("Post = %q, %v", ts, err)
	}
	fake.Fail("chat.postMessage", "channel_not_found", 1)
	if _, err := c.Post(context.Background(), incidents.Message{Channel: "C0INC42", Text: "hi"}); err == nil ||
		!strings.Contains(err.Error(), "channel_not_found") {
		t.Fatalf("a Slack error came back as %v", err)
	}
}
