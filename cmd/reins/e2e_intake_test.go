package main

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/reins-oss/reins/bot/slackfake"
)

func fixture(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../integrations/alerts/testdata/" + path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// incidentChannels returns the fake workspace's incident channels.
func incidentChannels(s *slackfake.Server) []slackfake.Channel {
	var out []slackfake.Channel
	for _, c := range s.Channels() {
		if strings.HasPrefix(c.Name, "inc-") {
			out = append(out, c)
		}
	}
	return out
}

// One real-format Alertmanager notification: one incident, one channel named
// as docs/architecture.md says, one summary naming the session with its trace link, one page on
// the team's routing key whose links open the session and the channel. The
// same group re-sent, grown and resolved changes none of that.
func TestAlertOpensIncidentChannelAndPage(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			e := startTestMain(t, testOptions{Postgres: db == "postgres"})

			status, body := e.webhook("alertmanager", fixture(t, "alertmanager/firing.json"))
			if status != http.StatusOK {
				t.Fatalf("webhook: %d %s", status, body)
			}
			e.eventually("channel, pinned summary and page", func() bool {
				chs := incidentChannels(e.Slack)
				return len(chs) == 1 && len(e.Slack.Messages(chs[0].ID)) > 0 && e.Slack.Messages(chs[0].ID)[0].Pinned &&
					e.PD.Triggers("reins-1") == 1
			})
			ch := incidentChannels(e.Slack)[0]
			if !regexp.MustCompile(`^inc-1-support-bot-[a-z0-9-]+$`).MatchString(ch.Name) || len(ch.Name) > 80 {
				t.Errorf("channel name %q does not follow inc-<n>-<agent>-<slug>", ch.Name)
			}
			summary := e.Slack.Messages(ch.ID)[0]
			for _, want := range []string{"s-8812", "https://langfuse.example.com/project/p1/sessions/s-8812", "AgentTokenSpike"} {
				if !strings.Contains(string(summary.Blocks)+summary.Text, want) {
					t.Errorf("summary lacks %q:\n%s", want, summary.Blocks)
				}
			}

			page := e.PD.Events()[0]
			if page.RoutingKey != "support-ai-routing-key" {
				t.Errorf("page went to routing key %q, want the team's", page.RoutingKey)
			}
			links := ""
			for _, l := range page.Links {
				links += l.Href + "\n"
			}
			if !strings.Contains(links, "sessions/s-8812") {
				t.Errorf("page links lack the session:\n%s", links)
			}
			if !strings.Contains(links, "http://reins.test/incidents/1/slack") {
				t.Errorf("page links lack the incident channel:\n%s", links)
			}
			// That link leads to the channel once it exists.
			res, err := noRedirect.Get(e.URL + "/incidents/1/slack")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if loc := res.Header.Get("Location"); res.StatusCode != http.StatusFound || !strings.HasSuffix(loc, "channel="+ch.ID) {
				t.Errorf("channel link: got %d to %q, want a redirect to %s", res.StatusCode, loc, ch.ID)
			}

			for _, f := range []string{"repeat.json", "grown.json", "resolved.json"} {
				if status, body := e.webhook("alertmanager", fixture(t, "alertmanager/"+f)); status != http.StatusOK {
					t.Fatalf("%s: %d %s", f, status, body)
				}
			}
			status, body = e.api(http.MethodGet, "/incidents", nil)
			var list struct{ Incidents []map[string]any }
			if err := json.Unmarshal(body, &list); err != nil || status != http.StatusOK {
				t.Fatalf("list incidents: %d %s", status, body)
			}
			if len(list.Incidents) != 1 {
				t.Fatalf("got %d incidents, want 1: %s", len(list.Incidents), body)
			}
			e.eventually("recovery noted in the channel", func() bool {
				for _, m := range e.Slack.Messages(ch.ID) {
					if strings.Contains(strings.ToLower(m.Text+string(m.Blocks)), "recover") {
						return true
					}
				}
				return false
			})
			if n := len(incidentChannels(e.Slack)); n != 1 {
				t.Errorf("got %d incident channels, want 1", n)
			}
			if n := e.PD.Triggers("reins-1"); n != 1 {
				t.Errorf("got %d pages, want 1", n)
			}
		})
	}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
