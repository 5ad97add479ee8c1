package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// A real Alertmanager alert that names its session only by session_url (no
// session_id label) pages with that link, and with its other *_url
// annotations; the channel summary shows them too.
func TestAlertURLAnnotationsReachThePage(t *testing.T) {
	e := startTestMain(t, testOptions{})
	body := `{"version":"4","status":"firing","receiver":"reins","groupKey":"{}:{agent=\"support-bot\"}",
	 "externalURL":"http://alertmanager.example.com:9093",
	 "alerts":[{"status":"firing",
	  "labels":{"alertname":"AgentLooping","agent":"support-bot","severity":"critical"},
	  "annotations":{"summary":"support-bot repeats one tool call",
	   "session_url":"https://langfuse.example.com/project/p1/sessions/s-4242",
	   "runbook_url":"https://wiki.example.com/agents/support-bot#looping",
	   "dashboard_url":"https://grafana.example.com/d/agents"},
	  "startsAt":"2026-11-28T02:01:07.512Z","endsAt":"0001-01-01T00:00:00Z",
	  "generatorURL":"http://prometheus.example.com:9090/graph?g0.expr=up","fingerprint":"aa11"}]}`
	if status, b := e.webhook("alertmanager", []byte(body)); status != http.StatusOK {
		t.Fatalf("webhook: %d %s", status, b)
	}
	e.eventually("the page", func() bool { n, _ := e.triggers(); return n == 1 })
	var links []string
	for _, l := range e.PD.Events()[0].Links {
		links = append(links, l.Href)
	}
	all := strings.Join(links, "\n")
	for _, want := range []string{"https://langfuse.example.com/project/p1/sessions/s-4242",
		"https://wiki.example.com/agents/support-bot#looping", "https://grafana.example.com/d/agents"} {
		if !strings.Contains(all, want) {
			t.Errorf("page links lack %s:\n%s", want, all)
		}
	}
	e.eventually("the summary", func() bool {
		chs := incidentChannels(e.Slack)
		return len(chs) == 1 && len(e.Slack.Messages(chs[0].ID)) > 0
	})
	summary := string(e.Slack.Messages(incidentChannels(e.Slack)[0].ID)[0].Blocks)
	if !strings.Contains(summary, "sessions/s-4242") {
		t.Errorf("the summary lacks the session_url:\n%s", summary)
	}
}

// support-bot's Salesforce blast-radius link is
// https://example.my.salesforce.com/audit?session={session}: for an incident
// that names no session it is left out, not rendered as "?session=".
func TestBlastRadiusLinkWithoutSessionIsLeftOut(t *testing.T) {
	e := startTestMain(t, testOptions{})
	if status, b := e.webhook("generic", []byte(`{"agent":"support-bot","summary":"Refund errors","severity":"critical"}`)); status != http.StatusOK {
		t.Fatalf("webhook: %d %s", status, b)
	}
	e.eventually("the channel", func() bool { return len(incidentChannels(e.Slack)) == 1 })
	ch := incidentChannels(e.Slack)[0].ID
	e.waitChannelRecorded(1, ch)
	e.slash(alice, ch, "checklist")
	e.Main.Bot.Wait()
	e.eventually("the first checklist item", func() bool { return len(threadItems(e.Slack, ch)) > 0 })
	for _, m := range e.Slack.Messages(ch) {
		if strings.Contains(string(m.Blocks)+m.Text, "session=") {
			t.Errorf("a message links a blast-radius check with no session:\n%s", m.Blocks)
		}
	}
	status, body := e.api(http.MethodGet, "/incidents/1/postmortem", nil)
	if status != http.StatusOK || strings.Contains(string(body), "session=") {
		t.Errorf("postmortem: %d, links a check with no session: %s", status, body)
	}
}

// The page's "Slack channel" link says why there is no channel instead of
// "retry in a few seconds": Slack not configured, or creating it given up.
func TestSlackChannelLinkSaysWhyThereIsNone(t *testing.T) {
	t.Run("SlackNotConfigured", func(t *testing.T) {
		e := startTestMain(t, testOptions{Env: map[string]string{"SLACK_BOT_TOKEN": ""}})
		if status, b := e.webhook("generic", []byte(`{"agent":"support-bot","summary":"Refund errors"}`)); status != http.StatusOK {
			t.Fatalf("webhook: %d %s", status, b)
		}
		e.eventually("the page", func() bool { n, _ := e.triggers(); return n == 1 })
		var texts []string
		for _, l := range e.PD.Events()[0].Links {
			texts = append(texts, l.Text)
		}
		if all := strings.Join(texts, "\n"); !strings.Contains(all, "Slack is not configured") {
			t.Errorf("page links do not say there is no channel:\n%s", all)
		}
		status, body := e.do(http.MethodGet, "/incidents/1/slack", nil, nil)
		if status != http.StatusNotFound || !strings.Contains(string(body), "Slack is not configured") ||
			strings.Contains(string(body), "retry") {
			t.Errorf("GET /incidents/1/slack: %d %s; want 404 saying Slack is not configured", status, body)
		}
	})
	t.Run("CreationGivenUp", func(t *testing.T) {
		e := startTestMain(t, testOptions{})
		e.Slack.Fail("conversations.create", "restricted_action", 100)
		if status, b := e.webhook("generic", []byte(`{"agent":"support-bot","summary":"Refund errors"}`)); status != http.StatusOK {
			t.Fatalf("webhook: %d %s", status, b)
		}
		var status int
		var body []byte
		e.eventuallyWithin(20*time.Second, "reins to give up on the channel", func() bool {
			status, body = e.do(http.MethodGet, "/incidents/1/slack", nil, nil)
			return status == http.StatusNotFound
		})
		if !strings.Contains(string(body), "gave up creating it") || !strings.Contains(string(body), "restricted_action") {
			t.Errorf("GET /incidents/1/slack: %d %s; want why creation was given up", status, body)
		}
	})
}
