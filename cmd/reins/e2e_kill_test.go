package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/reins-oss/reins/bot"
	"github.com/reins-oss/reins/bot/slackfake"
	"github.com/reins-oss/reins/integrations/halt/halttest"
)

// clicks numbers button presses: Slack gives each its own action_ts, so two
// clicks are never the same signed request (a replay is dropped).
var clicks atomic.Int64

// click is a block_actions payload of one button press.
func click(e *testEnv, user, channel, actionID, value string) map[string]any {
	return map[string]any{
		"type": "block_actions", "trigger_id": "trig-" + user, "response_url": e.Slack.ResponseURL(),
		"user":      map[string]any{"id": user, "name": strings.ToLower(user)},
		"channel":   map[string]any{"id": channel},
		"container": map[string]any{"type": "message", "channel_id": channel, "message_ts": "1.1"},
		"actions": []map[string]any{{"action_id": actionID, "block_id": "b1", "value": value,
			"type": "button", "action_ts": fmt.Sprintf("1.%d", clicks.Add(1))}},
	}
}

// buttonValue finds the value of the button with actionID in rendered blocks.
func buttonValue(blocks json.RawMessage, actionID string) string {
	return slackfake.ButtonValue(blocks, actionID)
}

// haltRequests returns the halt (not status or drill) requests the endpoint received.
func haltRequests(e *testEnv) []halttest.WebhookMessage {
	var out []halttest.WebhookMessage
	for _, m := range e.Halt.Messages() {
		if m.Action == "halt" {
			out = append(out, m)
		}
	}
	return out
}

// responsesAfter waits for a response_url answer beyond the first n and returns it.
func (e *testEnv) responseAfter(n int, what string) slackfake.Response {
	e.t.Helper()
	e.eventually(what, func() bool { return len(e.Slack.Responses()) > n })
	return e.Slack.Responses()[n]
}

// Someone without kill authority is refused, told who holds it, and nothing
// reaches the halt endpoint.
func TestKillRefusedWithoutAuthority(t *testing.T) {
	e := startTestMain(t, testOptions{})
	status, body := e.slash(mallory, "C0SUPPORTAI", "kill support-bot looping")
	if status != http.StatusOK {
		t.Fatalf("ack: %d %s", status, body)
	}
	// The refusal is the ack itself: it never waits for a halt worker.
	var r struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if err := json.Unmarshal(body, &r); err != nil || !strings.Contains(r.Text, alice) {
		t.Errorf("ack does not refuse naming who holds authority (%s): %s", alice, body)
	}
	if r.ResponseType != "ephemeral" {
		t.Errorf("refusal response_type %q; it is for the caller only", r.ResponseType)
	}
	if n := len(e.Halt.Messages()); n != 0 {
		t.Fatalf("halt endpoint received %d requests from a refused caller", n)
	}
	audit, err := e.Main.Store.FindAudit(t.Context(), "support-bot", 10)
	if err != nil || len(audit) == 0 || audit[0].Allowed || audit[0].Actor.ID != mallory {
		t.Fatalf("refusal not audited: %+v %v", audit, err)
	}
}

// Each way of holding authority gets a confirmation; the click halts the
// session through the signed webhook, and the channel shows the verified halt.
func TestKillByEveryKindOfAuthority(t *testing.T) {
	e := startTestMain(t, testOptions{})
	if status, body := e.webhook("alertmanager", fixture(t, "alertmanager/firing.json")); status != http.StatusOK {
		t.Fatalf("webhook: %d %s", status, body)
	}
	e.eventually("incident channel", func() bool { return len(incidentChannels(e.Slack)) == 1 })
	ch := incidentChannels(e.Slack)[0]

	for i, who := range []struct{ name, user string }{
		{"listed", alice}, {"by e-mail", bob}, {"user group", carol}, {"on call", dave},
	} {
		t.Run(who.name, func(t *testing.T) {
			e.Main.Bot.Wait() // the previous confirmation's result has been answered
			before := len(e.Slack.Responses())
			e.slash(who.user, ch.ID, "kill support-bot session s-8812 looping on refunds")
			conf := e.responseAfter(before, "confirmation")
			token := buttonValue(conf.Blocks, bot.ActionConfirmHalt)
			if token == "" {
				t.Fatalf("no confirmation for %s: %s %s", who.user, conf.Text, conf.Blocks)
			}
			for _, want := range []string{"support-bot", "s-8812", "looping on refunds"} {
				if !strings.Contains(string(conf.Blocks), want) {
					t.Errorf("confirmation does not name %q", want)
				}
			}
			e.interact(click(e, who.user, ch.ID, bot.ActionConfirmHalt, token))
			e.eventually("halt request at the endpoint", func() bool { return len(haltRequests(e)) > i })
			got := haltRequests(e)[i]
			if got.Action != "halt" || got.Agent != "support-bot" || !slices.Equal(got.Sessions, []string{"s-8812"}) ||
				got.Reason != "looping on refunds" || got.Actor.ID != who.user || got.Incident != 1 {
				t.Errorf("halt endpoint got %+v", got)
			}
			if n := e.Halt.BadSignatures(); n != 0 {
				t.Errorf("%d requests failed signature checks", n)
			}
		})
	}
	e.eventually("verified halt with time to halt in the channel", func() bool {
		for _, m := range e.Slack.Messages(ch.ID) {
			s := strings.ToLower(m.Text + string(m.Blocks))
			if strings.Contains(s, "verified in") {
				return true
			}
		}
		return false
	})
}

// A double click on the confirmation halts once.
func TestConfirmDoubleClickHaltsOnce(t *testing.T) {
	e := startTestMain(t, testOptions{})
	e.slash(alice, "C0SUPPORTAI", "kill support-bot runaway spend")
	token := buttonValue(e.responseAfter(0, "confirmation").Blocks, bot.ActionConfirmHalt)
	if token == "" {
		t.Fatal("no confirmation")
	}
	e.interact(click(e, alice, "C0SUPPORTAI", bot.ActionConfirmHalt, token))
	e.interact(click(e, alice, "C0SUPPORTAI", bot.ActionConfirmHalt, token))
	e.eventually("one halt", func() bool { return len(haltRequests(e)) >= 1 })
	e.Main.Bot.Wait()
	halts, err := e.Main.Service.Halts(t.Context(), "support-bot", 0)
	if err != nil || len(halts) != 1 {
		t.Fatalf("got %d halts (%v), want 1", len(halts), err)
	}
}

// Forged, stale and unsigned Slack requests are refused and change nothing.
func TestSlackRequestsMustBeSigned(t *testing.T) {
	e := startTestMain(t, testOptions{})
	body := []byte("command=%2Fagent&text=kill+support-bot+x&user_id=" + alice + "&channel_id=C1&response_url=" + e.Slack.ResponseURL())
	forged := bot.Sign("wrong-secret", timeNow(), body)
	stale := bot.Sign(signingSecret, timeNow().Add(-6*60e9), body)
	for name, h := range map[string]http.Header{"unsigned": {}, "forged": forged, "stale": stale} {
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, path := range []string{"/slack/commands", "/slack/interactions", "/slack/events"} {
			if status, _ := e.do(http.MethodPost, path, h, body); status != http.StatusUnauthorized {
				t.Errorf("%s %s: got %d, want 401", name, path, status)
			}
		}
	}
	e.Main.Bot.Wait()
	if n := len(e.Slack.Responses()); n != 0 {
		t.Errorf("reins answered %d times to unsigned requests", n)
	}
	if n := len(e.Halt.Messages()); n != 0 {
		t.Errorf("halt endpoint got %d requests", n)
	}
}
