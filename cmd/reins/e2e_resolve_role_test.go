package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/reins-oss/reins/incidents"
)

// `/agent resolve` needs a role on the agent. Someone with none is refused,
// told who can, and the incident (and its page) stays open; the RACI
// responsible resolves it.
func TestResolveNeedsARole(t *testing.T) {
	e := startTestMain(t, testOptions{})
	if status, body := e.webhook("alertmanager", fixture(t, "alertmanager/firing.json")); status != http.StatusOK {
		t.Fatalf("webhook: %d %s", status, body)
	}
	e.eventually("incident channel", func() bool { return len(incidentChannels(e.Slack)) == 1 })
	ch := incidentChannels(e.Slack)[0].ID
	e.waitChannelRecorded(1, ch)

	n := len(e.Slack.Responses())
	e.slash(mallory, ch, "resolve not my problem")
	r := e.responseAfter(n, "refusal")
	if r.ResponseType == "in_channel" || !strings.Contains(r.Text, "may not resolve") || !strings.Contains(r.Text, alice) {
		t.Fatalf("mallory's resolve answered %q (%s), want an ephemeral refusal naming %s", r.Text, r.ResponseType, alice)
	}
	e.Main.Bot.Wait()
	if inc, err := e.Main.Service.FindIncident(t.Context(), 1); err != nil || inc.Status != incidents.StatusOpen {
		t.Fatalf("after a refused resolve the incident is %+v (%v), want open", inc, err)
	}
	audit, err := e.Main.Store.FindAudit(t.Context(), "support-bot", 10)
	if err != nil || len(audit) == 0 || audit[0].Action != "resolve_refused" || audit[0].Actor.ID != mallory {
		t.Fatalf("refused resolve not audited: %+v %v", audit, err)
	}

	e.slash(alice, ch, "resolve rolled back")
	e.eventually("resolved by the responsible", func() bool {
		inc, err := e.Main.Service.FindIncident(t.Context(), 1)
		return err == nil && inc.Status == incidents.StatusResolved
	})
}

// Whoever declared an incident may resolve it without any other role; a
// holder of kill authority on another agent may not.
func TestResolveByDeclarer(t *testing.T) {
	e := startTestMain(t, testOptions{})
	e.slash(mallory, "C0SUPPORTAI", "declare flag-bot summaries look wrong")
	e.eventually("incident channel", func() bool { return len(incidentChannels(e.Slack)) == 1 })
	ch := incidentChannels(e.Slack)[0].ID
	e.waitChannelRecorded(1, ch)
	n := len(e.Slack.Responses())
	e.slash(carol, ch, "resolve")
	if r := e.responseAfter(n, "refusal"); !strings.Contains(r.Text, "may not resolve") || !strings.Contains(r.Text, mallory) {
		t.Fatalf("carol's resolve answered %q, want a refusal naming the declarer", r.Text)
	}
	e.slash(mallory, ch, "resolve false alarm")
	e.eventually("resolved by the declarer", func() bool {
		inc, err := e.Main.Service.FindIncident(t.Context(), 1)
		return err == nil && inc.Status == incidents.StatusResolved
	})
}

// waitChannelRecorded waits until reins has stored the incident's channel:
// Slack creates the channel before reins records its ID, and a command sent
// in between does not yet come from an incident channel.
func (e *testEnv) waitChannelRecorded(id int64, channelID string) {
	e.t.Helper()
	e.eventually("channel recorded on the incident", func() bool {
		inc, err := e.Main.Service.FindIncident(e.t.Context(), id)
		return err == nil && inc.SlackChannelID == channelID
	})
}
