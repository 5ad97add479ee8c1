package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/bot"
	"github.com/reins-oss/reins/bot/slackfake"
	"github.com/reins-oss/reins/integrations/halt/halttest"
)

// threadItems returns the checklist item messages in the incident channel's
// threads, in the order they were posted.
func threadItems(s *slackfake.Server, channel string) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range s.Messages(channel) {
		if m.ThreadTS != "" && m.ThreadTS != m.TS && strings.Contains(string(m.Blocks), bot.ActionChecklistNoImpact) {
			out = append(out, m)
		}
	}
	return out
}

// questionMessages returns the postmortem question messages.
func questionMessages(s *slackfake.Server, channel string) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range s.Messages(channel) {
		if strings.Contains(string(m.Blocks), bot.ActionPostmortemAnswer) {
			out = append(out, m)
		}
	}
	return out
}

// submit is a view_submission payload with one text value.
func submit(user, callbackID, metadata string, values map[string]map[string]any) map[string]any {
	return map[string]any{
		"type": "view_submission", "trigger_id": "trig-submit",
		"user": map[string]any{"id": user, "name": strings.ToLower(user)},
		"view": map[string]any{"id": "V1", "type": "modal", "callback_id": callbackID,
			"private_metadata": metadata, "state": map[string]any{"values": values}},
	}
}

func text(v string) map[string]any { return map[string]any{"type": "plain_text_input", "value": v} }

var positionRe = regexp.MustCompile(`(\d+) of (\d+)`)

// The aftermath end to end: an alert opens an incident, the blast-radius
// checklist is walked by clicking, reins is restarted after the third answer
// and resumes at the fourth, and the resolve leads to a postmortem holding
// every answer, the sessions with links, the halts and a UTC timeline.
func TestChecklistResumesAfterRestartAndFeedsPostmortem(t *testing.T) {
	e := startTestMain(t, testOptions{})
	e.webhook("alertmanager", fixture(t, "alertmanager/firing.json"))
	// The summary is posted once reins has recorded the channel as the incident's.
	e.eventually("incident channel with its summary", func() bool {
		chs := incidentChannels(e.Slack)
		return len(chs) == 1 && len(e.Slack.Messages(chs[0].ID)) > 0
	})
	ch := incidentChannels(e.Slack)[0].ID
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range e.Slack.Responses() {
				t.Logf("response_url: %s", r.Text)
			}
		}
	})

	answer := func(n int, action string) {
		t.Helper()
		e.eventually("item to answer", func() bool { return len(threadItems(e.Slack, ch)) >= n })
		item := threadItems(e.Slack, ch)[n-1]
		if m := positionRe.FindStringSubmatch(string(item.Blocks)); m == nil || m[1] != itoa(n) || m[2] != "14" {
			t.Fatalf("item %d is shown as %v:\n%s", n, m, item.Blocks)
		}
		value := buttonValue(item.Blocks, action)
		if action == bot.ActionChecklistImpactFound {
			e.interact(click(e, alice, ch, action, value))
			e.eventually("impact modal", func() bool { return len(e.Slack.Calls("views.open")) > 0 })
			e.interact(submit(alice, bot.CallbackImpactModal, value, map[string]map[string]any{
				bot.BlockImpactWhat:  {bot.InputImpactWhat: text("Refund notes added to Salesforce cases")},
				bot.BlockImpactCount: {bot.InputImpactCount: text("37 records")},
			}))
		} else {
			e.interact(click(e, alice, ch, action, value))
		}
		e.eventually(fmt.Sprintf("item %d after answering %d (have %d)", n+1, n, len(threadItems(e.Slack, ch))), func() bool { return len(threadItems(e.Slack, ch)) >= n+1 || n == 14 })
	}

	e.slash(alice, ch, "checklist")
	answer(1, bot.ActionChecklistImpactFound)
	answer(2, bot.ActionChecklistNoImpact)
	answer(3, bot.ActionChecklistUnknown)
	e.Main.Bot.Wait()

	e.restart()
	e.slash(alice, ch, "checklist")
	e.Main.Bot.Wait()
	if n := len(threadItems(e.Slack, ch)); n != 4 {
		t.Fatalf("after restart %d items are posted, want 4 (resume at the fourth, no repeats)", n)
	}
	for n := 4; n <= 14; n++ {
		answer(n, bot.ActionChecklistNotApplicable)
	}

	if status, body := e.api(http.MethodPost, "/agents/support-bot/halt",
		map[string]any{"sessions": []string{"s-8812"}, "reason": "looping on refunds", "actor": "alice"}); status != http.StatusOK {
		t.Fatalf("halt: %d %s", status, body)
	}

	e.slash(alice, ch, "resolve prompt rolled back")
	answers := map[string]string{
		"summary":      "support-bot looped on refunds after a prompt change",
		"root_cause":   "A prompt change removed the refund cap",
		"went_well":    "Halt took under a second",
		"went_poorly":  "Nobody knew who owned the agent",
		"action_items": "alice: restore the refund cap (due 2026-12-05)",
		"sla_changes":  "Lower tokens_per_session to 150000",
	}
	for i := 1; i <= len(answers); i++ {
		e.eventually("postmortem question", func() bool { return len(questionMessages(e.Slack, ch)) >= i })
		q := questionMessages(e.Slack, ch)[i-1]
		value := buttonValue(q.Blocks, bot.ActionPostmortemAnswer)
		key := value[strings.Index(value, "|")+1:]
		e.interact(click(e, alice, ch, bot.ActionPostmortemAnswer, value))
		e.interact(submit(alice, bot.CallbackPostmortemModal, value, map[string]map[string]any{
			bot.BlockPostmortem: {bot.InputPostmortem: text(answers[key])},
		}))
		e.Main.Bot.Wait()
	}

	e.eventually("postmortem file in the channel", func() bool { return len(e.Slack.Files()) > 0 })
	status, md := e.do(http.MethodGet, "/api/v1/incidents/1/postmortem", http.Header{"Authorization": {"Bearer " + apiToken}}, nil)
	if status != http.StatusOK {
		t.Fatalf("postmortem: %d %s", status, md)
	}
	delete(answers, "action_items") // rendered as a table row, checked below
	for _, want := range append(mapValues(answers), "| alice | restore the refund cap | 2026-12-05 |",
		"Refund notes added to Salesforce cases", "37 records",
		"https://langfuse.example.com/project/p1/sessions/s-8812", "UTC", "webhook", "verified",
	) {
		if !strings.Contains(string(md), want) && !strings.Contains(unescapeMD(string(md)), want) {
			t.Errorf("postmortem lacks %q", want)
		}
	}
	for _, want := range []string{"page", "halt"} {
		if !regexp.MustCompile(`(?i)time to ` + want).Match(md) {
			t.Errorf("postmortem lacks the time to %s", want)
		}
	}
	if t.Failed() {
		t.Logf("postmortem:\n%s", md)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// unescapeMD undoes Markdown backslash escapes so answers can be found.
func unescapeMD(s string) string {
	return regexp.MustCompile(`\\(.)`).ReplaceAllString(s, "$1")
}

// A kill-switch drill through the real webhook adapter: with the agent's
// endpoint down it is recorded as failed and announced to the owners; with
// the endpoint up it is recorded as passed.
func TestDrillReportsFailureToOwners(t *testing.T) {
	e := startTestMain(t, testOptions{})
	e.Halt.SetFault(halttest.FaultError)
	now := time.Now().UTC()
	res, err := e.Main.Drills.RunDrill(t.Context(), "support-bot", now)
	if err != nil || res.OK {
		t.Fatalf("drill against a failing endpoint: %+v %v", res, err)
	}
	e.eventually("failure announced in the team channel, naming the owners", func() bool {
		for _, m := range e.Slack.Messages("C0SUPPORTAI") {
			if s := m.Text + string(m.Blocks); strings.Contains(strings.ToLower(s), "drill") && strings.Contains(s, alice) {
				return true
			}
		}
		return false
	})
	e.Halt.SetFault(halttest.FaultNone)
	res, err = e.Main.Drills.RunDrill(t.Context(), "support-bot", now.Add(time.Hour))
	if err != nil || !res.OK {
		t.Fatalf("drill against a healthy endpoint: %+v %v", res, err)
	}
	for _, m := range haltRequests(e) {
		t.Errorf("a drill halted the agent: %+v", m)
	}
}
