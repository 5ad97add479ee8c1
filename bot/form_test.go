package bot

import (
	"net/url"
	"testing"

	"github.com/slack-go/slack"
)

// slashFromBody must read every body as url.ParseQuery would: the same
// fields, the same first value, and an error for the same malformed bodies.
func TestSlashFromBodyMatchesParseQuery(t *testing.T) {
	bodies := []string{
		url.Values{"command": {"/agent"}, "text": {"kill support-bot — “now” 100%"}, "user_id": {"U01ALICE"},
			"user_name": {"alice"}, "channel_id": {"C1"}, "channel_name": {"ops"}, "team_id": {"T1"},
			"team_domain": {"acme"}, "response_url": {"https://hooks.slack.com/commands/1/2/3"},
			"trigger_id": {"1.2.3"}, "api_app_id": {"A1"}, "is_enterprise_install": {"false"}}.Encode(),
		"text=a+b&text=second&user_id=U1",
		"text=&&user_id=U1&",
		"te%78t=escaped+key&user_id=U%31",
		"text=50%",
		"other=50%zz&text=ok",
		"text=a;b",
		"a;b=1&text=x",
		"text",
		"",
	}
	for _, body := range bodies {
		got, err := slashFromBody([]byte(body))
		f, werr := url.ParseQuery(body)
		if (err != nil) != (werr != nil) {
			t.Errorf("%q: error %v, url.ParseQuery's %v", body, err, werr)
			continue
		}
		if werr != nil {
			continue
		}
		want := slack.SlashCommand{
			TeamID: f.Get("team_id"), TeamDomain: f.Get("team_domain"),
			ChannelID: f.Get("channel_id"), ChannelName: f.Get("channel_name"),
			UserID: f.Get("user_id"), UserName: f.Get("user_name"),
			Command: f.Get("command"), Text: f.Get("text"),
			ResponseURL: f.Get("response_url"), TriggerID: f.Get("trigger_id"),
			APIAppID: f.Get("api_app_id"),
		}
		if got != want {
			t.Errorf("%q:\n got %+v\nwant %+v", body, got, want)
		}
	}
}
