package main

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reins-oss/reins/bot"
)

// startReplicas runs two reins on one fresh PostgreSQL database, sharing the
// Slack, PagerDuty and halt-endpoint fakes, as two replicas behind a load
// balancer would.
func startReplicas(t *testing.T) (a, b *testEnv) {
	t.Helper()
	a = startTestMain(t, testOptions{Postgres: true})
	b = startTestMain(t, testOptions{Postgres: true, DBURL: a.DBURL, Slack: a.Slack, PD: a.PD, Halt: a.Halt})
	return a, b
}

// A kill asked on one replica and confirmed on the other halts exactly once;
// a second click, on either replica, is told the confirmation was used.
func TestKillConfirmedOnAnotherReplica(t *testing.T) {
	a, b := startReplicas(t)
	a.slash(alice, "C0SUPPORTAI", "kill support-bot runaway spend")
	token := buttonValue(a.responseAfter(0, "confirmation from replica A").Blocks, bot.ActionConfirmHalt)
	if token == "" {
		t.Fatal("replica A showed no confirmation")
	}
	before := len(a.Slack.Responses())
	b.interact(click(b, alice, "C0SUPPORTAI", bot.ActionConfirmHalt, token))
	b.eventually("halt at the endpoint via replica B", func() bool { return len(haltRequests(b)) == 1 })
	b.Main.Bot.Wait()
	for _, r := range a.Slack.Responses()[before:] {
		if strings.Contains(r.Text, "expired") {
			t.Fatalf("replica B did not know the confirmation: %q", r.Text)
		}
	}
	for name, e := range map[string]*testEnv{"A": a, "B": b} {
		n := len(e.Slack.Responses())
		e.interact(click(e, alice, "C0SUPPORTAI", bot.ActionConfirmHalt, token))
		r := e.responseAfter(n, "answer to a second click on replica "+name)
		if !strings.Contains(r.Text, "already used") {
			t.Errorf("second click on replica %s answered %q, want \"already used\"", name, r.Text)
		}
	}
	a.Main.Bot.Wait()
	b.Main.Bot.Wait()
	if n := len(haltRequests(a)); n != 1 {
		t.Fatalf("halt endpoint got %d halts, want exactly 1", n)
	}
	halts, err := a.Main.Service.Halts(t.Context(), "support-bot", 0)
	if err != nil || len(halts) != 1 {
		t.Fatalf("recorded %d halts (%v), want 1", len(halts), err)
	}
}

// A checklist answer clicked on one replica for a checklist the other
// started is recorded: the state is in the database, the IDs in the button.
func TestChecklistAnsweredOnAnotherReplica(t *testing.T) {
	a, b := startReplicas(t)
	if status, body := a.webhook("alertmanager", fixture(t, "alertmanager/firing.json")); status != http.StatusOK {
		t.Fatalf("webhook: %d %s", status, body)
	}
	// The summary is posted once reins has recorded the channel as the
	// incident's: a command typed before that is told it is no incident
	// channel.
	a.eventually("incident channel with its summary", func() bool {
		chs := incidentChannels(a.Slack)
		return len(chs) == 1 && len(a.Slack.Messages(chs[0].ID)) > 0
	})
	ch := incidentChannels(a.Slack)[0]
	// Slack has the channel a moment before reins has recorded it: a
	// command sent in between is not yet known as the incident's.
	a.eventually("the channel recorded on the incident", func() bool {
		inc, err := a.Main.Service.FindIncident(t.Context(), 1)
		return err == nil && inc.SlackChannelID == ch.ID
	})
	a.slash(alice, ch.ID, "checklist")
	var value string
	a.eventually("a checklist item with buttons", func() bool {
		for _, m := range a.Slack.Messages(ch.ID) {
			if v := buttonValue(m.Blocks, bot.ActionChecklistNoImpact); v != "" {
				value = v
				return true
			}
		}
		return false
	})
	b.interact(click(b, alice, ch.ID, bot.ActionChecklistNoImpact, value))
	b.eventually("the answer recorded through replica B", func() bool {
		cl, err := a.Main.Store.FindChecklist(t.Context(), 1)
		return err == nil && cl.Answered() == 1
	})
}

// signedSlash is a signed `/agent` command kept to be sent again.
func signedSlash(e *testEnv, user, channel, text string) (http.Header, []byte) {
	form := url.Values{
		"command": {"/agent"}, "text": {text}, "user_id": {user}, "user_name": {strings.ToLower(user)},
		"channel_id": {channel}, "team_id": {"T0TEST"}, "trigger_id": {"trig-replayed"},
		"response_url": {e.Slack.ResponseURL()},
	}
	body := []byte(form.Encode())
	h := bot.Sign(signingSecret, time.Now(), body)
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return h, body
}

// A signed `/agent resume` replayed seconds later, after a newer halt, does
// not run again: the agent stays halted.
func TestReplayedResumeDoesNotUndoALaterHalt(t *testing.T) {
	e := startTestMain(t, testOptions{})
	halts := func() int {
		e.Main.Bot.Wait()
		list, err := e.Main.Service.Halts(t.Context(), "flag-bot", 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	e.slash(alice, "C0SUPPORTAI", "kill flag-bot first")
	e.eventually("first halt", func() bool { return halts() == 1 })
	h, body := signedSlash(e, alice, "C0SUPPORTAI", "resume flag-bot")
	sent := time.Now()
	if status, _ := e.do(http.MethodPost, "/slack/commands", h, body); status != http.StatusOK {
		t.Fatalf("resume: %d", status)
	}
	e.eventually("resume", func() bool { return halts() == 2 })
	e.slash(alice, "C0SUPPORTAI", "kill flag-bot again")
	e.eventually("second halt", func() bool { return halts() == 3 })
	time.Sleep(3*time.Second - time.Since(sent))
	status, ack := e.do(http.MethodPost, "/slack/commands", h, body)
	if status != http.StatusOK {
		t.Fatalf("replay answered %d %s, want 200 with nothing done", status, ack)
	}
	if n := halts(); n != 3 {
		t.Fatalf("%d halts and resumes after the replay, want 3: the replayed resume ran", n)
	}
	list, _ := e.Main.Service.Halts(t.Context(), "flag-bot", 0)
	if last := list[0]; last.Action != "halt" {
		t.Fatalf("newest action is %s, want the later halt to stand", last.Action)
	}
}

// A replayed `/agent kill` of an agent that needs no confirmation halts once.
func TestReplayedKillHaltsOnce(t *testing.T) {
	e := startTestMain(t, testOptions{})
	h, body := signedSlash(e, alice, "C0SUPPORTAI", "kill flag-bot runaway")
	for range 3 {
		if status, _ := e.do(http.MethodPost, "/slack/commands", h, body); status != http.StatusOK {
			t.Fatalf("kill: %d", status)
		}
	}
	e.Main.Bot.Wait()
	list, err := e.Main.Service.Halts(t.Context(), "flag-bot", 0)
	if err != nil || len(list) != 1 {
		t.Fatalf("%d halts (%v) from one kill sent three times, want 1", len(list), err)
	}
}

// A signed `/agent kill` replayed to both replicas at once halts once and is
// answered once: each replica acknowledges its copies before their
// single-use mark is written, and only the copy whose mark commits first
// acts, whichever replica it reached.
func TestReplayedKillAcrossReplicasHaltsOnce(t *testing.T) {
	a, b := startReplicas(t)
	h, body := signedSlash(a, alice, "C0SUPPORTAI", "kill flag-bot runaway")
	var wg sync.WaitGroup
	for _, e := range []*testEnv{a, b, a, b, a, b} {
		wg.Go(func() {
			if status, ack := e.do(http.MethodPost, "/slack/commands", h, body); status != http.StatusOK {
				t.Errorf("kill: %d %s", status, ack)
			}
		})
	}
	wg.Wait()
	a.Main.Bot.Wait()
	b.Main.Bot.Wait()
	list, err := a.Main.Service.Halts(t.Context(), "flag-bot", 0)
	if err != nil || len(list) != 1 {
		t.Fatalf("%d halts (%v) from one kill sent six times to two replicas, want 1", len(list), err)
	}
	if n := len(a.Slack.Responses()); n != 1 {
		t.Fatalf("the kill was answered %d times, want once", n)
	}
}
