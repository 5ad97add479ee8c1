package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/integrations/halt/halttest"
)

const ladderSLA = `      - metric: tool_scope
        allow: [salesforce.read, zendesk.*]
        restrict_to: [salesforce.read, zendesk.read]
        ladder: [restrict, halt_session]
        ladder_window: 10m
`

// messagesOf returns what the agent's webhook received for session, by action.
func messagesOf(hook *halttest.Webhook, action, session string) []halttest.WebhookMessage {
	var out []halttest.WebhookMessage
	for _, m := range hook.Messages() {
		if m.Action == action && slices.Contains(m.Sessions, session) {
			out = append(out, m)
		}
	}
	return out
}

// Issue 27, acceptance 1: a tool-scope breach with ladder [restrict,
// halt_session]. The first breach restricts the session (the webhook gets
// restrict with the allow-list, and reins reads it back through status);
// a second within the window halts it; both are on the timeline and in the
// postmortem's Containment section, the summary and /agent status.
func TestLadderRestrictThenHaltSession(t *testing.T) {
	for _, store := range []struct {
		name string
		pg   bool
	}{{"SQLite", false}, {"PostgreSQL", true}} {
		t.Run(store.name, func(t *testing.T) {
			e := guardEnv(t, store.pg, ladderSLA)
			run := newAgentRun(t, e, "s-lad")
			run.tool("zendesk.search", `{"q":"refund"}`)
			run.tool("salesforce.write", `{"refund":500}`) // out of scope: first breach
			e.eventually("restrict at the webhook", func() bool { return len(messagesOf(e.Halt, "restrict", "s-lad")) == 1 })
			r := messagesOf(e.Halt, "restrict", "s-lad")[0]
			if !slices.Equal(r.Allow, []string{"salesforce.read", "zendesk.read"}) || r.Actor.Kind != "policy" ||
				r.Actor.ID != "support-bot/tool_scope" {
				t.Errorf("restrict request = %+v", r)
			}
			e.eventually("restriction verified", func() bool {
				hs, _ := e.Main.Service.Halts(context.Background(), "support-bot", 0)
				return len(hs) == 1 && hs[0].Status == "verified" && hs[0].Action == "restrict"
			})
			if len(messagesOf(e.Halt, "status", "s-lad")) == 0 {
				t.Error("the restriction was not read back through status")
			}
			if n := len(messagesOf(e.Halt, "halt", "s-lad")); n != 0 {
				t.Fatalf("%d halts after the first breach, want the restriction alone", n)
			}

			run.tool("salesforce.delete", `{"id":7}`) // second breach within the window
			e.eventually("halt of the session", func() bool { return len(messagesOf(e.Halt, "halt", "s-lad")) == 1 })
			e.eventually("halt verified", func() bool {
				hs, _ := e.Main.Service.Halts(context.Background(), "support-bot", 0)
				return len(hs) == 2 && hs[0].Status == "verified" && hs[0].Action == "halt"
			})
			if halted, sessions := e.Halt.State("support-bot"); halted || !slices.Equal(sessions, []string{"s-lad"}) {
				t.Errorf("endpoint state: agent halted %v, sessions %v; want only s-lad halted", halted, sessions)
			}

			events, err := e.Main.Service.Timeline(context.Background(), 1)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, ev := range events {
				kinds = append(kinds, string(ev.Kind))
			}
			for _, want := range []string{"restricted", "halt_verified"} {
				if !slices.Contains(kinds, want) {
					t.Errorf("timeline lacks %s: %v", want, kinds)
				}
			}
			status, body := e.api(http.MethodGet, "/incidents/1/postmortem?format=markdown", nil)
			md := string(body)
			if status != 200 || !strings.Contains(md, "## Containment") ||
				!strings.Contains(md, "restrict to salesforce.read, zendesk.read") || !strings.Contains(md, "| halt |") {
				t.Errorf("postmortem containment:\n%s", md)
			}
			e.eventually("incident channel", func() bool { return len(incidentChannels(e.Slack)) == 1 })
			ch := incidentChannels(e.Slack)[0].ID
			e.channelSays(ch, "session s-lad of support-bot restricted to salesforce.read, zendesk.read automatically",
				"/agent resume support-bot session s-lad")
			e.channelSays(ch, "Restrict (to salesforce.read, zendesk.read)") // the summary's containment lines
			before := len(e.Slack.Responses())
			e.slash(alice, "C0SUPPORTAI", "status support-bot")
			st := e.responseAfter(before, "status")
			if !strings.Contains(st.Text+string(st.Blocks), "session s-lad halted") {
				t.Errorf("/agent status: %s", st.Blocks)
			}
		})
	}
}

// Past the window the ladder starts again at its first rung.
func TestLadderWindowRestarts(t *testing.T) {
	e := guardEnv(t, false, strings.Replace(ladderSLA, "ladder_window: 10m", "ladder_window: 1ms", 1))
	run := newAgentRun(t, e, "s-win")
	run.tool("salesforce.write", `{}`)
	e.eventually("restrict", func() bool { return len(messagesOf(e.Halt, "restrict", "s-win")) == 1 })
	e.eventually("restriction verified", func() bool {
		hs, _ := e.Main.Service.Halts(context.Background(), "support-bot", 0)
		return len(hs) == 1 && hs[0].Status == "verified"
	})
	time.Sleep(5 * time.Millisecond)
	run.tool("salesforce.delete", `{}`)
	// The first rung again: the session is restricted already, so nothing
	// more is sent (already contained), and above all no halt.
	e.eventually("second breach acted on", func() bool {
		return strings.Contains(e.breaches("support-bot"), "outcome \"already_halted\"")
	})
	if n := len(messagesOf(e.Halt, "halt", "s-win")); n != 0 {
		t.Errorf("a repeat past the window halted the session (%d halts); breaches:\n%s", n, e.breaches("support-bot"))
	}
}

// Issue 27, adapters: an endpoint that answers it cannot restrict (501)
// gets the SLA's fallback, never a silent stronger action: the session is
// halted, the rest of the agent runs, and the channel says why.
func TestSLARungFallsBackWhenTheEndpointCannot(t *testing.T) {
	for _, store := range []struct {
		name string
		pg   bool
	}{{"SQLite", false}, {"PostgreSQL", true}} {
		t.Run(store.name, func(t *testing.T) {
			e := guardEnv(t, store.pg, `      - metric: tool_scope
        allow: [salesforce.read, zendesk.*]
        on_breach: restrict
        fallback: halt_session
`)
			e.Halt.RefuseRungs(true)
			newAgentRun(t, e, "s-fb").tool("salesforce.write", `{}`)
			e.eventually("the fallback halt of the session", func() bool { return len(messagesOf(e.Halt, "halt", "s-fb")) == 1 })
			if halted, sessions := e.Halt.State("support-bot"); halted || !slices.Equal(sessions, []string{"s-fb"}) {
				t.Errorf("endpoint state: agent halted %v, sessions %v; want only s-fb halted", halted, sessions)
			}
			why := "answered that it cannot restrict, so by the SLA's fallback reins does halt_session instead"
			if h := messagesOf(e.Halt, "halt", "s-fb")[0]; !strings.Contains(h.Reason, why) {
				t.Errorf("the fallback halt does not say why: %q", h.Reason)
			}
			e.eventually("incident channel", func() bool { return len(incidentChannels(e.Slack)) == 1 })
			e.channelSays(incidentChannels(e.Slack)[0].ID, why)
		})
	}
}

// Issue 27, rungs for SLAs: on_breach throttle with its rate slows the
// breaching session (the endpoint gets throttle with the rate, reins reads
// it back), says how to lift it, and leaves the agent's other sessions be.
func TestSLAThrottlesTheBreachingSession(t *testing.T) {
	e := guardEnv(t, false, `      - metric: tokens_per_session
        max: 200000
        on_breach: throttle
        rate: 6
`)
	run := newAgentRun(t, e, "s-thr")
	for range 37 { // 37 × 5,500 tokens: over 200,000 at the last
		run.chat(5_500)
	}
	e.eventually("throttle at the webhook", func() bool { return len(messagesOf(e.Halt, "throttle", "s-thr")) == 1 })
	if m := messagesOf(e.Halt, "throttle", "s-thr")[0]; m.Rate != 6 || !slices.Equal(m.Sessions, []string{"s-thr"}) || m.Actor.Kind != "policy" {
		t.Errorf("throttle request = %+v, want rate 6 for s-thr by policy", m)
	}
	e.eventually("throttle verified", func() bool {
		hs, _ := e.Main.Service.Halts(context.Background(), "support-bot", 0)
		return len(hs) == 1 && hs[0].Status == "verified" && hs[0].Action == "throttle" && hs[0].Rate == 6
	})
	if r, ok := e.Halt.Rung("support-bot", "s-thr"); !ok || r.Mode != "throttled" || r.Rate != 6 {
		t.Errorf("endpoint state %+v %v, want s-thr throttled to 6", r, ok)
	}
	if halted, sessions := e.Halt.State("support-bot"); halted || len(sessions) != 0 {
		t.Errorf("a throttle halted something: agent %v, sessions %v", halted, sessions)
	}
	e.eventually("incident channel", func() bool { return len(incidentChannels(e.Slack)) == 1 })
	e.channelSays(incidentChannels(e.Slack)[0].ID, "throttled", "/agent resume support-bot session s-thr")
}
