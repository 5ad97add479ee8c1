package bot

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/ownership"
)

// authorizeFunc is an Authorizer made of a function.
type authorizeFunc func(agent *ownership.Agent, person string) ownership.Decision

func (f authorizeFunc) Authorize(_ context.Context, agent *ownership.Agent, person string) ownership.Decision {
	return f(agent, person)
}

// A refused kill is answered in the ack even while every halt worker is busy
// with a slow halt: refusals never queue behind real halts.
func TestRefusalNotQueuedBehindHalts(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	started := make(chan struct{}, 8)
	svc := &fakeService{
		Reg: incidentstest.Registry(),
		CheckAuthorityFn: func(a incidents.Actor, agent, _ string) (ownership.Decision, *ownership.Agent, error) {
			return ownership.Decision{Allowed: true}, incidentstest.Registry().Agent(agent), nil
		},
		HaltFn: func(cmd incidents.HaltCommand) (*incidents.Halt, error) {
			started <- struct{}{}
			<-release
			return &incidents.Halt{Status: incidents.HaltVerified}, nil
		},
	}
	hs := newHarness(t, svc)
	hs.h = NewHandler(Config{SigningSecret: testSecret, Service: svc, State: hs.state, Log: testLogger(t),
		Authorizer: authorizeFunc(func(agent *ownership.Agent, person string) ownership.Decision {
			if person == "U04DAN" {
				return ownership.Decision{Allowed: true, Agent: agent.Name, Person: person}
			}
			return ownership.Decision{Agent: agent.Name, Person: person, Reason: "not listed in kill_authority", Holders: []string{"U04DAN"}}
		})})
	send := func(user, text string) string {
		form := url.Values{"command": {"/agent"}, "text": {text}, "user_id": {user}, "channel_id": {"C0GENERAL"},
			"response_url": {hs.slack.ResponseURL()}, "trigger_id": {user + text}}
		rec := hs.serve(hs.h.Commands(), form.Encode(), nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d", text, rec.Code)
		}
		return rec.Body.String()
	}
	for i := range haltWorkers + 1 {
		send("U04DAN", "kill orphan-agent slow halt "+string(rune('a'+i)))
	}
	for range haltWorkers {
		<-started // every halt worker is now busy
	}
	ack := send("U02MALLORY", "kill orphan-agent")
	if !strings.Contains(ack, "You may not halt") || !strings.Contains(ack, "U04DAN") || !strings.Contains(ack, "ephemeral") {
		t.Fatalf("refusal ack = %s, want the refusal naming U04DAN, at once", ack)
	}
	once.Do(func() { close(release) })
	hs.h.Wait()
	if n := svc.count("Halt"); n != haltWorkers+1 {
		t.Fatalf("Halt called %d times, want %d (the refused kill must not reach it)", n, haltWorkers+1)
	}
}

// Each replica prunes expired Slack state, at most once a minute.
func TestHandlerPrunesExpiredState(t *testing.T) {
	svc := &fakeService{WhoFn: func(string) (*incidents.AgentInfo, error) { return &incidents.AgentInfo{Agent: quickBot}, nil }}
	hs := newHarness(t, svc)
	var mu sync.Mutex
	now := time.Now()
	hs.h.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx := context.Background()
	if _, err := hs.state.FirstRequest(ctx, "slack:v0:old", now.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	hs.command("U01ALICE", "C0GENERAL", "who quick-bot")
	hs.command("U01ALICE", "C0GENERAL", "who quick-bot")
	if n := hs.state.Calls("PruneSlackState"); n != 1 {
		t.Fatalf("pruned %d times in the first minute, want 1", n)
	}
	if first, _ := hs.state.FirstRequest(ctx, "slack:v0:old", now.Add(time.Hour)); !first {
		t.Fatal("an expired request key was not pruned")
	}
	mu.Lock()
	now = now.Add(pruneEvery + time.Second)
	mu.Unlock()
	hs.command("U01ALICE", "C0GENERAL", "who quick-bot")
	if n := hs.state.Calls("PruneSlackState"); n != 2 {
		t.Fatalf("pruned %d times after a minute, want 2", n)
	}
}

// When the store cannot say whether a request is a replay, nothing runs:
// the caller is told why and what to do instead. An allowed command was
// acknowledged before its mark was taken, so it is told on its
// response_url; a refusal is told in the ack, and not audited.
func TestReplayCheckFailsClosed(t *testing.T) {
	for _, tc := range []struct{ user, text string }{
		{"U01ALICE", "resume support-bot"},
		{"U01ALICE", "status"},
		{"U02MALLORY", "kill support-bot looping"},
	} {
		t.Run(tc.text, func(t *testing.T) {
			svc := &fakeService{}
			hs := newHarness(t, svc)
			hs.state.Hook = func(method string) error {
				if method == "FirstRequest" {
					return incidents.Errorf(incidents.EUNAVAILABLE, "database down")
				}
				return nil
			}
			rec, posts := hs.command(tc.user, "C0GENERAL", tc.text)
			answer := rec.Body.String()
			if len(posts) > 0 {
				answer += lastText(t, posts)
			}
			wantContains(t, answer, "cannot reach its database", "reins kill")
			if n := len(svc.calls); n != 0 {
				t.Fatalf("service called %v with the replay check down", svc.calls)
			}
			if n := hs.state.Calls("CountRefusal"); n != 0 {
				t.Fatalf("refusal audited %d times with the replay check down", n)
			}
		})
	}
}
