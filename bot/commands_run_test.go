package bot

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

var (
	supportBot = &ownership.Agent{Name: "support-bot", Description: "Customer-facing support agent", Team: "support-ai",
		Runbook: "https://wiki.example.com/agents/support-bot",
		RACI: ownership.RACI{Responsible: []string{"U01ALICE"}, Accountable: []string{"alice@example.com"},
			Consulted: []string{"S0SECURITY"}, Informed: []string{"support-leads"}},
		Halt:        ownership.HaltSpec{Adapter: "webhook", Confirm: true},
		BlastRadius: []ownership.BlastItem{{System: "Salesforce"}, {System: "SendGrid"}}}
	quickBot = &ownership.Agent{Name: "quick-bot", Halt: ownership.HaltSpec{Adapter: "flag", Confirm: false}}
)

func allow(agent *ownership.Agent) func(incidents.Actor, string, string) (ownership.Decision, *ownership.Agent, error) {
	return func(a incidents.Actor, _, _ string) (ownership.Decision, *ownership.Agent, error) {
		return ownership.Decision{Allowed: true, Agent: agent.Name, Person: a.ID, Reason: "listed in kill_authority.users"}, agent, nil
	}
}

func verified(cmd incidents.HaltCommand) (*incidents.Halt, error) {
	at := time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)
	done := at.Add(840 * time.Millisecond)
	return &incidents.Halt{ID: 7, Agent: cmd.Agent, Action: cmd.Action, Sessions: cmd.Sessions, Reason: cmd.Reason,
		Actor: cmd.Actor, Status: incidents.HaltVerified, RequestedAt: at, FinishedAt: &done}, nil
}

func TestHelpIsImmediate(t *testing.T) {
	for name, tc := range map[string]struct{ text, want string }{
		"Help":           {"help", "/agent declare AGENT summary"},
		"Empty":          {"", "/agent resolve"},
		"ErrUnknownVerb": {"explode bot", "Unknown command `explode`"},
		"ErrMissingArg":  {"kill", "Name the agent to kill."},
	} {
		t.Run(name, func(t *testing.T) {
			hs := newHarness(t, &fakeService{})
			rec, posts := hs.command("U01ALICE", "C0GENERAL", tc.text)
			var ack ackMessage
			if err := json.Unmarshal(rec.Body.Bytes(), &struct {
				ResponseType *string `json:"response_type"`
				Text         *string `json:"text"`
			}{&ack.ResponseType, &ack.Text}); err != nil {
				t.Fatalf("ack body %q: %v", rec.Body, err)
			}
			if ack.ResponseType != "ephemeral" || !strings.Contains(ack.Text, tc.want) {
				t.Fatalf("ack = %+v, want ephemeral containing %q", ack, tc.want)
			}
			if len(posts) != 0 || len(hs.svc.Calls()) != 0 {
				t.Fatalf("posts %v, calls %v; want none", posts, hs.svc.Calls())
			}
		})
	}
}

func TestKillRefused(t *testing.T) {
	var gotActor incidents.Actor
	var gotAction string
	svc := &fakeService{CheckAuthorityFn: func(a incidents.Actor, agent, action string) (ownership.Decision, *ownership.Agent, error) {
		gotActor, gotAction = a, action
		return ownership.Decision{Allowed: false, Agent: "support-bot", Person: a.ID,
			Reason:      "not listed in kill_authority",
			Holders:     []string{"U01ALICE", "bob@example.com"},
			Unavailable: []string{"PagerDuty on-call for PABC123"}}, supportBot, nil
	}}
	hs := newHarness(t, svc)
	_, posts := hs.command("U02MALLORY", "C0GENERAL", "kill support-bot looping")
	text := lastText(t, posts)
	wantContains(t, text, "may not halt *support-bot*", "not listed in kill_authority", "<@U01ALICE>", "bob@example.com",
		"PagerDuty on-call for PABC123", "audit log")
	if want := (incidents.Actor{Kind: "slack", ID: "U02MALLORY", Name: "u02mallory"}); gotActor != want || gotAction != "halt" {
		t.Fatalf("CheckAuthority(%+v, %q), want %+v, halt", gotActor, gotAction, want)
	}
	if posts[len(posts)-1].ResponseType != "ephemeral" {
		t.Fatalf("refusal response_type = %q, want ephemeral", posts[len(posts)-1].ResponseType)
	}
	if n := svc.count("Halt"); n != 0 {
		t.Fatalf("Halt called %d times, want 0", n)
	}
}

func TestKillRefusedNobodyHolds(t *testing.T) {
	svc := &fakeService{CheckAuthorityFn: func(a incidents.Actor, _, _ string) (ownership.Decision, *ownership.Agent, error) {
		return ownership.Decision{Allowed: false, Reason: "not listed"}, supportBot, nil
	}}
	hs := newHarness(t, svc)
	_, posts := hs.command("U02MALLORY", "C0GENERAL", "resume support-bot")
	wantContains(t, lastText(t, posts), "may not resume", "Nobody holds kill authority", "reins kill")
}

func TestUnknownAgentSuggests(t *testing.T) {
	notFound := incidents.Errorf(incidents.ENOTFOUND, "No agent named support-bto. Did you mean support-bot or sales-bot?")
	svc := &fakeService{
		CheckAuthorityFn: func(incidents.Actor, string, string) (ownership.Decision, *ownership.Agent, error) {
			return ownership.Decision{}, nil, notFound
		},
		WhoFn:    func(string) (*incidents.AgentInfo, error) { return nil, notFound },
		StatusFn: func(string) ([]incidents.AgentStatus, error) { return nil, notFound },
	}
	hs := newHarness(t, svc)
	for _, text := range []string{"kill support-bto", "who support-bto", "status support-bto", "resume support-bto"} {
		_, posts := hs.command("U01ALICE", "C0GENERAL", text)
		wantContains(t, lastText(t, posts), "support-bot or sales-bot")
	}
}

func TestKillWithoutConfirm(t *testing.T) {
	var got incidents.HaltCommand
	svc := &fakeService{CheckAuthorityFn: allow(quickBot), HaltFn: func(cmd incidents.HaltCommand) (*incidents.Halt, error) {
		got = cmd
		return verified(cmd)
	}}
	hs := newHarness(t, svc)
	_, posts := hs.command("U01ALICE", "C0GENERAL", "kill quick-bot session s-1 loops")
	wantContains(t, lastText(t, posts), "Halted *quick-bot* (session s-1), verified in 840 ms")
	want := incidents.HaltCommand{Action: "halt", Agent: "quick-bot", Sessions: []string{"s-1"}, Reason: "loops",
		Actor: incidents.Actor{Kind: "slack", ID: "U01ALICE", Name: "u01alice"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Halt(%+v)\nwant %+v", got, want)
	}
}

func TestResume(t *testing.T) {
	var got incidents.HaltCommand
	svc := &fakeService{CheckAuthorityFn: allow(supportBot), HaltFn: func(cmd incidents.HaltCommand) (*incidents.Halt, error) {
		got = cmd
		return verified(cmd)
	}}
	hs := newHarness(t, svc)
	_, posts := hs.command("U01ALICE", "C0GENERAL", "resume support-bot")
	wantContains(t, lastText(t, posts), "Resumed *support-bot* (all sessions), verified")
	if got.Action != incidents.ActionResume || got.Agent != "support-bot" {
		t.Fatalf("Halt(%+v), want a resume of support-bot without confirmation", got)
	}
}

func TestHaltResult(t *testing.T) {
	cmd := incidents.HaltCommand{Action: "halt", Agent: "support-bot", Sessions: []string{"s-1", "s-2"}}
	failed := &incidents.Halt{Status: incidents.HaltFailed, Error: "adapter answered 502 three times"}
	pending := &incidents.Halt{Status: incidents.HaltRequested}
	tests := map[string]struct {
		halt *incidents.Halt
		err  error
		want []string
	}{
		"ErrFailed":     {failed, nil, []string{"was NOT halted (sessions s-1, s-2): adapter answered 502 three times", "re-paged", "reins kill"}},
		"ErrFailedErr":  {failed, errors.New("adapter"), []string{"NOT halted", "502"}},
		"ErrUnverified": {pending, nil, []string{"NOT verified", "still running"}},
		"ErrInternal":   {nil, errors.New("pq: connection refused"), []string{"NOT halted", "Something went wrong on reins' side"}},
		"ErrForbidden":  {nil, incidents.Errorf(incidents.EFORBIDDEN, "You no longer hold kill authority for support-bot."), []string{"no longer hold"}},
		"ErrConflict":   {nil, incidents.Errorf(incidents.ECONFLICT, "support-bot is already halted."), []string{"NOT halted", "already halted"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := haltResult(cmd, tc.halt, tc.err)
			wantContains(t, got, tc.want...)
			if strings.Contains(got, "pq:") || strings.Contains(got, ":white_check_mark:") {
				t.Fatalf("haltResult = %q: leaks internals or claims success", got)
			}
		})
	}
}

func TestUserError(t *testing.T) {
	tests := map[string]struct {
		err  error
		want string
	}{
		"NotFound":    {incidents.Errorf(incidents.ENOTFOUND, "No agent named x."), "No agent named x."},
		"Invalid":     {incidents.Errorf(incidents.EINVALID, "Session <x> is not valid."), "Session &lt;x&gt; is not valid. See `/agent help`."},
		"Unavailable": {incidents.Errorf(incidents.EUNAVAILABLE, "PagerDuty is down."), "PagerDuty is down. Try again in a minute"},
		"Internal":    {errors.New("secret DSN postgres://u:p@h"), "Something went wrong on reins' side; the error is logged."},
		"UnknownCode": {&incidents.Error{Code: "weird", Message: "x"}, "Something went wrong on reins' side"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := userError(tc.err); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("userError = %q, want prefix %q", got, tc.want)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	requested := time.Date(2026, 11, 28, 2, 1, 0, 0, time.UTC)
	svc := &fakeService{StatusFn: func(agent string) ([]incidents.AgentStatus, error) {
		if agent != "" {
			t.Errorf("Status(%q), want all agents", agent)
		}
		return []incidents.AgentStatus{
			{Agent: supportBot, Halted: true, Holders: []string{"U01ALICE"}, Unavailable: []string{"PagerDuty"},
				LastHalt: &incidents.Halt{Action: "halt", Actor: incidents.Actor{Kind: "slack", ID: "U01ALICE"},
					Status: incidents.HaltVerified, RequestedAt: requested},
				OpenIncidents: []*incidents.Incident{{ID: 42, Title: "Token <spike>", SlackChannelID: "C0INC42"}}},
			{Agent: quickBot, HaltedSessions: []string{"s-9"}},
		}, nil
	}}
	hs := newHarness(t, svc)
	_, posts := hs.command("U01ALICE", "C0GENERAL", "status")
	var blocks []map[string]any
	if err := json.Unmarshal(posts[0].Blocks, &blocks); err != nil || len(blocks) != 2 {
		t.Fatalf("blocks = %s (%v), want one section per agent", posts[0].Blocks, err)
	}
	body := string(posts[0].Blocks)
	wantContains(t, body, "*support-bot*: halted (all sessions)", "incident #42 (Token \\u0026lt;spike\\u0026gt;) in \\u003c#C0INC42\\u003e",
		"\\u003c@U01ALICE\\u003e", "could not ask: PagerDuty", "2026-11-28 02:01 UTC", "*quick-bot*: running; session s-9 halted", "No open incident")
}

func TestStatusNoAgents(t *testing.T) {
	hs := newHarness(t, &fakeService{StatusFn: func(string) ([]incidents.AgentStatus, error) { return nil, nil }})
	_, posts := hs.command("U01ALICE", "C0GENERAL", "status")
	wantContains(t, lastText(t, posts), "No agents are configured")
}

func TestWho(t *testing.T) {
	svc := &fakeService{WhoFn: func(agent string) (*incidents.AgentInfo, error) {
		return &incidents.AgentInfo{Agent: supportBot,
			Team:    &ownership.Team{Name: "support-ai", SlackChannel: "support-ai", SlackUsergroup: "S0SUPPORTAI"},
			Holders: []string{"U01ALICE", "U03BOB"}}, nil
	}}
	hs := newHarness(t, svc)
	_, posts := hs.command("U02MALLORY", "C0GENERAL", "who support-bot")
	wantContains(t, lastText(t, posts), "*support-bot*: Customer-facing support agent", "*Team:* support-ai (#support-ai) <!subteam^S0SUPPORTAI>",
		"*Responsible:* <@U01ALICE>", "*Accountable:* alice@example.com", "*Consulted:* <!subteam^S0SECURITY>",
		"*Informed:* #support-leads", "*Kill authority now:* <@U01ALICE>, <@U03BOB>",
		"<https://wiki.example.com/agents/support-bot>", "Salesforce, SendGrid")
}

func TestDeclare(t *testing.T) {
	var gotTitle string
	svc := &fakeService{DeclareFn: func(a incidents.Actor, agent, title string) (*incidents.Incident, bool, error) {
		gotTitle = title
		return &incidents.Incident{ID: 43, Agent: agent, Title: title}, true, nil
	}}
	hs := newHarness(t, svc)
	_, posts := hs.command("U01ALICE", "C0GENERAL", "declare support-bot Refunds issued twice")
	if gotTitle != "Refunds issued twice" {
		t.Fatalf("Declare title = %q", gotTitle)
	}
	if posts[0].ResponseType != "in_channel" {
		t.Fatalf("declare answer response_type = %q, want in_channel", posts[0].ResponseType)
	}
	wantContains(t, lastText(t, posts), "<@U01ALICE> declared incident #43 (Refunds issued twice)", "channel is being created")
}

func TestIncidentCommands(t *testing.T) {
	inc := &incidents.Incident{ID: 42, Agent: "support-bot", SlackChannelID: "C0INC42"}
	byChannel := func(ch string) (*incidents.Incident, error) {
		if ch == "C0INC42" {
			return inc, nil
		}
		return nil, incidents.Errorf(incidents.ENOTFOUND, "not an incident channel")
	}
	var got []string
	svc := &fakeService{
		IncidentByChannelFn: byChannel,
		StartChecklistFn: func(_ incidents.Actor, id int64) (*incidents.Checklist, error) {
			got = append(got, "checklist")
			cl := &incidents.Checklist{IncidentID: id}
			for i := range 14 {
				cl.Items = append(cl.Items, &incidents.ChecklistItem{Position: i + 1})
			}
			cl.Items[0].Choice = incidents.ChoiceNoImpact
			return cl, nil
		},
		ResolveFn: func(_ incidents.Actor, id int64, note string) (*incidents.Incident, error) {
			got = append(got, "resolve:"+note)
			return inc, nil
		},
		PostPostmortemFn: func(id int64) error { got = append(got, "postmortem"); return nil },
	}
	hs := newHarness(t, svc)
	tests := []struct{ text, want string }{
		{"checklist", "1 of 14 answered"},
		{"resolve rolled back", "Incident #42 resolved"},
		{"postmortem", "postmortem will appear"},
	}
	for _, tc := range tests {
		_, posts := hs.command("U01ALICE", "C0INC42", tc.text)
		wantContains(t, lastText(t, posts), tc.want)
	}
	if want := []string{"checklist", "resolve:rolled back", "postmortem"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("service calls = %v, want %v", got, want)
	}
	_, posts := hs.command("U01ALICE", "C0GENERAL", "resolve")
	wantContains(t, lastText(t, posts), "works in an incident channel")
	if n := svc.count("Resolve"); n != 1 {
		t.Fatalf("Resolve called %d times, want 1 (not outside the incident channel)", n)
	}
}

func TestServiceErrorLoggedAndExplained(t *testing.T) {
	svc := &fakeService{StatusFn: func(string) ([]incidents.AgentStatus, error) {
		return nil, errors.New("query agents: pq: password authentication failed")
	}}
	hs := newHarness(t, svc)
	_, posts := hs.command("U01ALICE", "C0GENERAL", "status")
	text := lastText(t, posts)
	wantContains(t, text, "Something went wrong on reins' side")
	if strings.Contains(text, "pq") {
		t.Fatalf("reply %q leaks the internal error", text)
	}
}

var _ = http.StatusOK

// TestWithoutWebAPI: with no bot token, command answers still reach the
// caller through response_url, which needs no token.
func TestWithoutWebAPI(t *testing.T) {
	svc := &fakeService{WhoFn: func(string) (*incidents.AgentInfo, error) {
		return &incidents.AgentInfo{Agent: quickBot}, nil
	}, AnswerChecklistFn: func(incidents.Actor, int64, string, string, string) (*incidents.Checklist, error) {
		return nil, incidents.Errorf(incidents.ECONFLICT, "The checklist is closed.")
	}}
	hs := newHarness(t, svc)
	hs.h = NewHandler(Config{SigningSecret: testSecret, Service: svc, State: hs.state, Log: testLogger(t)})
	_, posts := hs.command("U01ALICE", "C0GENERAL", "who quick-bot")
	wantContains(t, lastText(t, posts), "*quick-bot*", "no confirmation click")
	hs.interact(click("U01ALICE", "C0INC42", hs.slack.ResponseURL(), ActionChecklistNoImpact, "42|std:spend"))
	wantContains(t, lastText(t, hs.slack.Responses()), "The checklist is closed.")
	if n := len(hs.slack.Calls("chat.postEphemeral")); n != 0 {
		t.Fatalf("chat.postEphemeral calls = %d, want 0 without a bot token", n)
	}
}
