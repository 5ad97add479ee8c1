package bot

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/bot/slackfake"
	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

// click is a block_actions payload for one button.
// clicks numbers button presses: Slack gives each its own action_ts, so no
// two are the same signed request.
var clicks atomic.Int64

func click(user, channel, responseURL, actionID, value string) map[string]any {
	return map[string]any{
		"type": "block_actions", "trigger_id": "1337.42.abc", "response_url": responseURL,
		"user":      map[string]any{"id": user, "name": strings.ToLower(user)},
		"channel":   map[string]any{"id": channel},
		"container": map[string]any{"type": "message", "channel_id": channel, "message_ts": "1.2"},
		"message":   map[string]any{"text": "Did support-bot write to Salesforce during sessions s-8812?"},
		"actions": []map[string]any{{"action_id": actionID, "block_id": "b1", "value": value,
			"type": "button", "action_ts": fmt.Sprintf("1700000000.%d", clicks.Add(1))}},
	}
}

// submit is a view_submission payload; values maps block ID to action ID to value.
func submit(user, callbackID, metadata string, values map[string]map[string]any) map[string]any {
	return map[string]any{
		"type": "view_submission", "trigger_id": "1337.43.def",
		"user": map[string]any{"id": user, "name": strings.ToLower(user)},
		"view": map[string]any{"id": "V1", "type": "modal", "callback_id": callbackID,
			"private_metadata": metadata, "state": map[string]any{"values": values}},
	}
}

// buttonValue finds the value of the button with actionID in rendered blocks.
func buttonValue(t *testing.T, blocks json.RawMessage, actionID string) string {
	t.Helper()
	v := slackfake.ButtonValue(blocks, actionID)
	if v == "" {
		t.Fatalf("no %s button in %s", actionID, blocks)
	}
	return v
}

func haltCounter(halted *[]incidents.HaltCommand, mu *sync.Mutex) func(incidents.HaltCommand) (*incidents.Halt, error) {
	return func(cmd incidents.HaltCommand) (*incidents.Halt, error) {
		mu.Lock()
		*halted = append(*halted, cmd)
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // a real halt takes time: widen the double-click window
		return verified(cmd)
	}
}

// askToKill runs `/agent kill support-bot …` as Alice and returns the token of
// the confirmation she was shown.
func askToKill(t *testing.T, hs *harness) string {
	t.Helper()
	_, posts := hs.command("U01ALICE", "C0INC42", "kill support-bot session s-8812 looping on refunds")
	if len(posts) != 1 || posts[0].ResponseType != "ephemeral" {
		t.Fatalf("posts = %+v, want one ephemeral confirmation", posts)
	}
	wantContains(t, string(posts[0].Blocks), "Halt support-bot?", "looping on refunds", `"style":"danger"`, `"confirm"`)
	return buttonValue(t, posts[0].Blocks, ActionConfirmHalt)
}

func TestConfirmFlow(t *testing.T) {
	var mu sync.Mutex
	var halted []incidents.HaltCommand
	svc := &fakeService{CheckAuthorityFn: allow(supportBot), HaltFn: haltCounter(&halted, &mu)}
	hs := newHarness(t, svc)
	token := askToKill(t, hs)
	if n := svc.count("Halt"); n != 0 {
		t.Fatalf("Halt called %d times before the click, want 0", n)
	}

	url := hs.slack.ResponseURL()
	hs.interact(click("U01ALICE", "C0INC42", url, ActionConfirmHalt, token))
	if len(halted) != 1 {
		t.Fatalf("Halt called %d times, want 1", len(halted))
	}
	got := halted[0]
	if got.Agent != "support-bot" || got.Action != "halt" || len(got.Sessions) != 1 || got.Sessions[0] != "s-8812" ||
		got.Reason != "looping on refunds" || got.Actor.ID != "U01ALICE" {
		t.Fatalf("Halt(%+v), want support-bot session s-8812 by U01ALICE", got)
	}
	posts := hs.slack.Responses()
	last := posts[len(posts)-1]
	if !last.ReplaceOriginal || !strings.Contains(last.Text, "Halted *support-bot* (session s-8812), verified in 840 ms") {
		t.Fatalf("last post = %+v, want the confirmation replaced by the result", last)
	}

	t.Run("ErrClickedAgain", func(t *testing.T) {
		hs.interact(click("U01ALICE", "C0INC42", url, ActionConfirmHalt, token))
		if len(halted) != 1 {
			t.Fatalf("Halt called %d times after a second click, want 1", len(halted))
		}
		wantContains(t, lastText(t, hs.slack.Responses()), "already used")
	})
}

func TestConfirmDoubleClick(t *testing.T) {
	var mu sync.Mutex
	var halted []incidents.HaltCommand
	svc := &fakeService{CheckAuthorityFn: allow(supportBot), HaltFn: haltCounter(&halted, &mu)}
	hs := newHarness(t, svc)
	token := askToKill(t, hs)
	url := hs.slack.ResponseURL()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hs.serveInteraction(click("U01ALICE", "C0INC42", url, ActionConfirmHalt, token))
		}()
	}
	wg.Wait()
	hs.h.Wait()
	if len(halted) != 1 {
		t.Fatalf("8 concurrent clicks halted %d times, want 1", len(halted))
	}
}

func TestConfirmByOtherUser(t *testing.T) {
	var mu sync.Mutex
	var halted []incidents.HaltCommand
	svc := &fakeService{CheckAuthorityFn: allow(supportBot), HaltFn: haltCounter(&halted, &mu)}
	hs := newHarness(t, svc)
	token := askToKill(t, hs)
	hs.interact(click("U02MALLORY", "C0INC42", hs.slack.ResponseURL(), ActionConfirmHalt, token))
	if len(halted) != 0 {
		t.Fatalf("Mallory's click halted %d times, want 0", len(halted))
	}
	wantContains(t, lastText(t, hs.slack.Responses()), "Only <@U01ALICE>")
	hs.interact(click("U01ALICE", "C0INC42", hs.slack.ResponseURL(), ActionConfirmHalt, token))
	if len(halted) != 1 {
		t.Fatalf("Alice's click after Mallory's halted %d times, want 1", len(halted))
	}
}

func TestCancelHalt(t *testing.T) {
	svc := &fakeService{CheckAuthorityFn: allow(supportBot)}
	hs := newHarness(t, svc)
	token := askToKill(t, hs)
	url := hs.slack.ResponseURL()
	hs.interact(click("U01ALICE", "C0INC42", url, ActionCancelHalt, token))
	wantContains(t, lastText(t, hs.slack.Responses()), "Cancelled: *support-bot* was not halted")
	hs.interact(click("U01ALICE", "C0INC42", url, ActionConfirmHalt, token))
	if n := svc.count("Halt"); n != 0 {
		t.Fatalf("Halt after cancel called %d times, want 0", n)
	}
}

func TestConfirmationExpires(t *testing.T) {
	now := time.Now()
	svc := &fakeService{CheckAuthorityFn: allow(supportBot)}
	hs := newHarness(t, svc)
	var mu sync.Mutex
	hs.h.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	token := askToKill(t, hs)
	mu.Lock()
	now = now.Add(pendingTTL + time.Second)
	mu.Unlock()
	hs.interact(click("U01ALICE", "C0INC42", hs.slack.ResponseURL(), ActionConfirmHalt, token))
	if n := svc.count("Halt"); n != 0 {
		t.Fatalf("Halt after expiry called %d times, want 0", n)
	}
	wantContains(t, lastText(t, hs.slack.Responses()), "expired")
}

func TestHaltAgentButton(t *testing.T) {
	var gotCmd incidents.HaltCommand
	svc := &fakeService{CheckAuthorityFn: func(a incidents.Actor, agent, action string) (ownership.Decision, *ownership.Agent, error) {
		if agent != "support-bot" || a.ID != "U01ALICE" || action != "halt" {
			t.Errorf("CheckAuthority(%+v, %q, %q)", a, agent, action)
		}
		return ownership.Decision{Allowed: true}, supportBot, nil
	}, HaltFn: func(cmd incidents.HaltCommand) (*incidents.Halt, error) { gotCmd = cmd; return verified(cmd) }}
	hs := newHarness(t, svc)
	hs.interact(click("U01ALICE", "C0INC42", hs.slack.ResponseURL(), ActionHaltAgent, "42|support-bot"))
	eph := hs.slack.Ephemerals("C0INC42")
	if len(eph) != 1 || eph[0].User != "U01ALICE" {
		t.Fatalf("ephemerals = %+v, want one confirmation for Alice in the incident channel", eph)
	}
	token := buttonValue(t, eph[0].Blocks, ActionConfirmHalt)
	wantContains(t, string(eph[0].Blocks), "#42")
	hs.interact(click("U01ALICE", "C0INC42", hs.slack.ResponseURL(), ActionConfirmHalt, token))
	if gotCmd.IncidentID != 42 || gotCmd.Agent != "support-bot" {
		t.Fatalf("Halt(%+v), want support-bot for incident 42", gotCmd)
	}
}

func TestHaltSessionModal(t *testing.T) {
	inc := &incidents.Incident{ID: 42, Agent: "support-bot", SlackChannelID: "C0INC42", Sessions: []string{"s-8812", "s-8813"}}
	svc := &fakeService{
		FindIncidentFn:   func(int64) (*incidents.Incident, error) { return inc, nil },
		CheckAuthorityFn: allow(supportBot),
	}
	hs := newHarness(t, svc)
	hs.interact(click("U01ALICE", "C0INC42", hs.slack.ResponseURL(), ActionHaltSession, "42|support-bot"))
	views := hs.slack.Calls("views.open")
	if len(views) != 1 || views[0].Params.Get("trigger_id") != "1337.42.abc" || !strings.Contains(views[0].Params.Get("view"), "s-8813") {
		t.Fatalf("views.open calls = %+v, want the halt-session modal listing the sessions", views)
	}

	t.Run("ErrNoSession", func(t *testing.T) {
		rec := hs.interact(submit("U01ALICE", CallbackHaltSession, "42|support-bot", nil))
		var got slack.ViewSubmissionResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.ResponseAction != "errors" || got.Errors[BlockHaltSession] == "" {
			t.Fatalf("ack = %s (%v), want an error on the session input", rec.Body, err)
		}
	})
	t.Run("OK", func(t *testing.T) {
		rec := hs.interact(submit("U01ALICE", CallbackHaltSession, "42|support-bot", map[string]map[string]any{
			BlockHaltSession: {InputHaltSession: map[string]any{"type": "static_select", "selected_option": map[string]any{"value": "s-8813"}}},
			BlockHaltReason:  {InputHaltReason: map[string]any{"type": "plain_text_input", "value": "leaks emails"}},
		}))
		if rec.Body.Len() != 0 {
			t.Fatalf("ack body = %s, want empty (modal closes)", rec.Body)
		}
		eph := hs.slack.Ephemerals("C0INC42")
		if len(eph) != 1 {
			t.Fatalf("ephemerals = %+v, want the confirmation in the incident channel", eph)
		}
		wantContains(t, string(eph[0].Blocks), "session s-8813", "leaks emails")
	})
}

func TestChecklistButtons(t *testing.T) {
	type answer struct {
		id                   int64
		key, choice, details string
	}
	var got []answer
	svc := &fakeService{
		AnswerChecklistFn: func(_ incidents.Actor, id int64, key, choice, details string) (*incidents.Checklist, error) {
			got = append(got, answer{id, key, choice, details})
			return &incidents.Checklist{}, nil
		},
		StartChecklistFn: func(_ incidents.Actor, id int64) (*incidents.Checklist, error) {
			got = append(got, answer{id: id, key: "start"})
			return &incidents.Checklist{}, nil
		},
	}
	hs := newHarness(t, svc)
	url := hs.slack.ResponseURL()
	hs.interact(click("U01ALICE", "C0INC42", url, ActionStartChecklist, "42"))
	hs.interact(click("U01ALICE", "C0INC42", url, ActionChecklistNoImpact, "42|blast:salesforce"))
	hs.interact(click("U01ALICE", "C0INC42", url, ActionChecklistUnknown, "42|std:spend"))
	hs.interact(click("U01ALICE", "C0INC42", url, ActionChecklistNotApplicable, "42|std:credentials"))
	hs.interact(click("U01ALICE", "C0INC42", url, ActionChecklistImpactFound, "42|std:exposure"))
	if views := hs.slack.Calls("views.open"); len(views) != 1 || !strings.Contains(views[0].Params.Get("view"), CallbackImpactModal) {
		t.Fatalf("views.open = %+v, want the impact modal", views)
	}
	rec := hs.interact(submit("U01ALICE", CallbackImpactModal, "42|std:exposure", nil))
	if !strings.Contains(rec.Body.String(), BlockImpactWhat) {
		t.Fatalf("empty impact ack = %s, want an error on %s", rec.Body, BlockImpactWhat)
	}
	hs.interact(submit("U01ALICE", CallbackImpactModal, "42|std:exposure", map[string]map[string]any{
		BlockImpactWhat:  {InputImpactWhat: map[string]any{"type": "plain_text_input", "value": "emails sent to customers"}},
		BlockImpactCount: {InputImpactCount: map[string]any{"type": "plain_text_input", "value": "3 customers"}},
	}))
	want := []answer{{42, "start", "", ""}, {42, "blast:salesforce", "no_impact", ""}, {42, "std:spend", "unknown", ""},
		{42, "std:credentials", "not_applicable", ""}, {42, "std:exposure", "impact_found", "emails sent to customers; 3 customers"}}
	if len(got) != len(want) {
		t.Fatalf("answers = %+v\nwant %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("answer %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestChecklistAnswerFails(t *testing.T) {
	svc := &fakeService{AnswerChecklistFn: func(incidents.Actor, int64, string, string, string) (*incidents.Checklist, error) {
		return nil, incidents.Errorf(incidents.ECONFLICT, "Incident #42 is resolved; its checklist is closed.")
	}}
	hs := newHarness(t, svc)
	hs.interact(click("U01ALICE", "C0INC42", hs.slack.ResponseURL(), ActionChecklistNoImpact, "42|std:spend"))
	eph := hs.slack.Ephemerals("C0INC42")
	if len(eph) != 1 || !strings.Contains(eph[0].Text, "checklist is closed") {
		t.Fatalf("ephemerals = %+v, want the conflict explained to the clicker", eph)
	}
}

func TestPostmortemAndReminders(t *testing.T) {
	var answered, snoozed, stopped []string
	svc := &fakeService{
		AnswerPostmortemFn: func(_ incidents.Actor, id int64, key, text string) error {
			answered = append(answered, key+"="+text)
			return nil
		},
		SnoozeFn: func(id int64, d time.Duration) error { snoozed = append(snoozed, d.String()); return nil },
		StopFn:   func(id int64) error { stopped = append(stopped, "stop"); return nil },
		FindIncidentFn: func(int64) (*incidents.Incident, error) {
			return &incidents.Incident{ID: 42, SlackChannelID: "C0INC42"}, nil
		},
	}
	hs := newHarness(t, svc)
	url := hs.slack.ResponseURL()
	hs.interact(click("U01ALICE", "C0INC42", url, ActionPostmortemAnswer, "42|root_cause"))
	if views := hs.slack.Calls("views.open"); len(views) != 1 || !strings.Contains(views[0].Params.Get("view"), CallbackPostmortemModal) {
		t.Fatalf("views.open = %+v, want the postmortem modal", views)
	}
	hs.interact(submit("U01ALICE", CallbackPostmortemModal, "42|root_cause", map[string]map[string]any{
		BlockPostmortem: {InputPostmortem: map[string]any{"type": "plain_text_input", "value": "A prompt change removed the refund cap."}},
	}))
	hs.interact(click("U01ALICE", "C0INC42", url, ActionSnoozeReminders, "42"))
	hs.interact(click("U01ALICE", "C0INC42", url, ActionStopReminders, "42"))
	if len(answered) != 1 || answered[0] != "root_cause=A prompt change removed the refund cap." {
		t.Fatalf("postmortem answers = %v", answered)
	}
	if len(snoozed) != 1 || snoozed[0] != "1h0m0s" || len(stopped) != 1 {
		t.Fatalf("snoozed %v stopped %v, want one 1h snooze and one stop", snoozed, stopped)
	}
	eph := hs.slack.Ephemerals("C0INC42")
	if len(eph) != 2 || !strings.Contains(eph[0].Text, "snoozed for an hour") || !strings.Contains(eph[1].Text, "stopped") {
		t.Fatalf("ephemerals = %+v, want the snooze and stop acknowledged", eph)
	}
}

func TestViewsOpenFails(t *testing.T) {
	svc := &fakeService{}
	hs := newHarness(t, svc)
	hs.slack.Fail("views.open", "expired_trigger_id", 1)
	hs.interact(click("U01ALICE", "C0INC42", hs.slack.ResponseURL(), ActionChecklistImpactFound, "42|std:spend"))
	eph := hs.slack.Ephemerals("C0INC42")
	if len(eph) != 1 || !strings.Contains(eph[0].Text, "Click the button again") {
		t.Fatalf("ephemerals = %+v, want a hint to click again", eph)
	}
}

// serveInteraction posts without waiting for the background work.
func (hs *harness) serveInteraction(payload any) {
	raw, _ := json.Marshal(payload)
	rec := hs.serve(hs.h.Interactions(), url.Values{"payload": {string(raw)}}.Encode(), nil)
	if rec.Code != http.StatusOK {
		hs.t.Errorf("interaction status %d", rec.Code)
	}
}
