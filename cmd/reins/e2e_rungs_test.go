package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reins-oss/reins/bot"
	"github.com/reins-oss/reins/integrations/api"
	"github.com/reins-oss/reins/integrations/halt/halttest"
	"github.com/reins-oss/reins/migrations/dbtest"
)

// rungRequests returns the restrict and throttle requests the endpoint received.
func rungRequests(e *testEnv) []halttest.WebhookMessage {
	var out []halttest.WebhookMessage
	for _, m := range e.Halt.Messages() {
		if m.Action == "restrict" || m.Action == "throttle" {
			out = append(out, m)
		}
	}
	return out
}

// channelSays waits until a message in channel contains every want.
func (e *testEnv) channelSays(channel string, want ...string) {
	e.t.Helper()
	e.eventually("channel message with "+strings.Join(want, ", "), func() bool {
		for _, m := range e.Slack.Messages(channel) {
			s := m.Text + string(m.Blocks)
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(s, w)
			}
			if ok {
				return true
			}
		}
		return false
	})
}

// Issue 27, rungs for people: /agent restrict and /agent throttle need kill
// authority and a confirmation click, reach the webhook with their
// parameters, are verified through status, announced with how to lift them,
// and show in /agent status, the API and the flag route.
func TestSlashRestrictAndThrottle(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			e := startTestMain(t, testOptions{Postgres: db == "postgres"})
			if status, body := e.slash(mallory, "C0SUPPORTAI", "restrict support-bot allow kb.read"); status != 200 ||
				!strings.Contains(string(body), alice) {
				t.Fatalf("mallory's restrict was not refused naming who may: %d %s", status, body)
			}
			before := len(e.Slack.Responses())
			e.slash(alice, "C0SUPPORTAI", "restrict support-bot session s-1 allow salesforce.read,zendesk.* refunds outside policy")
			conf := e.responseAfter(before, "confirmation")
			token := buttonValue(conf.Blocks, bot.ActionConfirmHalt)
			if token == "" || !strings.Contains(string(conf.Blocks), "salesforce.read, zendesk.*") {
				t.Fatalf("no confirmation naming the allow-list: %s %s", conf.Text, conf.Blocks)
			}
			e.interact(click(e, alice, "C0SUPPORTAI", bot.ActionConfirmHalt, token))
			e.eventually("restrict at the endpoint", func() bool { return len(rungRequests(e)) == 1 })
			got := rungRequests(e)[0]
			if got.Action != "restrict" || !slices.Equal(got.Sessions, []string{"s-1"}) ||
				!slices.Equal(got.Allow, []string{"salesforce.read", "zendesk.*"}) || got.Actor.ID != alice {
				t.Errorf("endpoint got %+v", got)
			}
			if r, ok := e.Halt.Rung("support-bot", "s-1"); !ok || r.Mode != "restricted" {
				t.Errorf("endpoint state %+v %v", r, ok)
			}
			e.eventually("incident channel", func() bool { return len(incidentChannels(e.Slack)) == 1 })
			ch := incidentChannels(e.Slack)[0].ID
			e.channelSays(ch, "restricted to salesforce.read, zendesk.*", "/agent resume support-bot session s-1")

			before = len(e.Slack.Responses())
			e.slash(bob, "C0SUPPORTAI", "throttle support-bot 6/min burning tokens")
			token = buttonValue(e.responseAfter(before, "confirmation").Blocks, bot.ActionConfirmHalt)
			e.interact(click(e, bob, "C0SUPPORTAI", bot.ActionConfirmHalt, token))
			e.eventually("throttle at the endpoint", func() bool { return len(rungRequests(e)) == 2 })
			if got := rungRequests(e)[1]; got.Action != "throttle" || got.Rate != 6 || len(got.Sessions) != 0 {
				t.Errorf("endpoint got %+v", got)
			}
			e.channelSays(ch, "throttled to 6 model calls a minute", "/agent resume support-bot")
			e.Main.Bot.Wait()

			before = len(e.Slack.Responses())
			e.slash(alice, "C0SUPPORTAI", "status support-bot")
			st := e.responseAfter(before, "status")
			for _, want := range []string{"throttled to 6/min (all sessions)", "session s-1 restricted to salesforce.read, zendesk.*"} {
				if !strings.Contains(st.Text+string(st.Blocks), want) {
					t.Errorf("/agent status lacks %q: %s", want, st.Blocks)
				}
			}
			_, body := e.do(http.MethodGet, "/api/v1/agents/support-bot/halted?session=s-1", nil, nil)
			if !strings.Contains(string(body), `"mode":"restricted","allow":["salesforce.read","zendesk.*"]`) ||
				!strings.Contains(string(body), `"halted":false`) {
				t.Errorf("flag route: %s", body)
			}
			_, body = e.do(http.MethodGet, "/api/v1/agents/support-bot/halted?session=s-2", nil, nil)
			if !strings.Contains(string(body), `"mode":"throttled"`) || !strings.Contains(string(body), `"rate":6`) {
				t.Errorf("flag route, agent throttled: %s", body)
			}
			_, body = e.api(http.MethodGet, "/agents/support-bot", nil)
			var doc api.AgentDoc
			if err := json.Unmarshal(body, &doc); err != nil || doc.Containment.Mode != "throttled" || doc.Containment.Rate != 6 ||
				doc.Sessions["s-1"].Mode != "restricted" {
				t.Errorf("API agent: %s", body)
			}
		})
	}
}

// An endpoint that cannot restrict answers 501: reins says so, records the
// rung as failed (never done) and does not send a halt instead.
func TestRestrictUnsupportedByEndpoint(t *testing.T) {
	e := startTestMain(t, testOptions{})
	e.Halt.RefuseRungs(true)
	status, body := e.api(http.MethodPost, "/agents/support-bot/restrict",
		map[string]any{"allow": []string{"kb.read"}, "reason": "scope", "actor": "ops"})
	if status != http.StatusBadGateway || !strings.Contains(string(body), "cannot restrict") {
		t.Fatalf("restrict on an endpoint without rungs: %d %s", status, body)
	}
	if n := len(haltRequests(e)); n != 0 {
		t.Errorf("reins sent %d halts instead of the restriction", n)
	}
	_, body = e.api(http.MethodPost, "/agents/flag-bot/throttle", map[string]any{"rate": 0, "reason": "x", "actor": "ops"})
	if !strings.Contains(string(body), "rate of at least 1") {
		t.Errorf("throttle without a rate: %s", body)
	}
}

// reins restrict and reins throttle work without Slack, audited as the OS user.
func TestCLIRestrictThrottle(t *testing.T) {
	hook := halttest.NewWebhook(t, haltSecret)
	tmpl, _ := os.ReadFile("testdata/reins.yaml.tmpl")
	cfg := filepath.Join(t.TempDir(), "reins.yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(string(tmpl), "{{HALT_URL}}", hook.URL())), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"REINS_DATABASE_URL": dbtest.SQLiteURL(t), "SUPPORT_BOT_HALT_SECRET": haltSecret}
	code, out, errOut := cli(t, env, "restrict", "support-bot", "--session", "s-1", "--allow", "kb.read,crm.*", "--reason", "scope", "--config", cfg)
	if code != 0 || !strings.Contains(out, "restrict of support-bot (sessions s-1 to kb.read, crm.*) done") {
		t.Fatalf("restrict: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = cli(t, env, "throttle", "support-bot", "--rate", "6/min", "--reason", "tokens", "--config", cfg)
	if code != 0 || !strings.Contains(out, "to 6/min) done") {
		t.Fatalf("throttle: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut = cli(t, env, "throttle", "support-bot", "--rate", "fast", "--reason", "x", "--config", cfg); code != 2 ||
		!strings.Contains(errOut, "--rate") {
		t.Errorf("throttle --rate fast: exit %d %s", code, errOut)
	}
	code, out, _ = cli(t, env, "agents", "--config", cfg)
	if code != 0 || !strings.Contains(out, "throttled to 6/min (all sessions); session s-1 restricted to kb.read, crm.*") {
		t.Errorf("agents: exit %d\n%s", code, out)
	}
	msgs := hook.Messages()
	if len(msgs) < 2 || msgs[0].Action != "restrict" || msgs[0].Actor.Kind != "cli" {
		t.Errorf("endpoint got %+v", msgs)
	}
}

// A rung's parameters are checked before anything is sent: a glob
// path.Match cannot read, a glob holding a comma (the flag's OFREP metadata
// joins the list with commas, so "a,b" would read there as a and b, wider
// than asked), a rate past 100000 a minute, and a parameter the action would
// ignore (a silently weaker or stronger action than asked) are each 422, and
// the endpoint hears nothing.
func TestRungParametersRefused(t *testing.T) {
	e := startTestMain(t, testOptions{})
	for _, tt := range []struct {
		name, action string
		body         map[string]any
		says         string
	}{
		{"BadGlob", "restrict", map[string]any{"allow": []string{"kb.read", "crm.["}}, "is not a tool glob"},
		{"GlobWithComma", "restrict", map[string]any{"allow": []string{"kb.read,crm.write"}}, "is not a tool glob"},
		{"GlobWithNewline", "restrict", map[string]any{"allow": []string{"kb.read\ncrm.write"}}, "is not a tool glob"},
		{"RateTooHigh", "throttle", map[string]any{"rate": 100001}, "at most 100000"},
		{"RateHuge", "throttle", map[string]any{"rate": 100000000000}, "at most 100000"},
		{"AllowOnThrottle", "throttle", map[string]any{"rate": 6, "allow": []string{"kb.read"}}, "allow is for restrict only"},
		{"RateOnRestrict", "restrict", map[string]any{"rate": 6, "allow": []string{"kb.read"}}, "rate is for throttle only"},
		{"AllowOnHalt", "halt", map[string]any{"allow": []string{"kb.read"}}, "allow is for restrict only"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.body["reason"], tt.body["actor"] = "scope", "ops"
			status, body := e.api(http.MethodPost, "/agents/support-bot/"+tt.action, tt.body)
			if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), tt.says) {
				t.Errorf("%s %v: %d %s, want 422 saying %q", tt.action, tt.body, status, body, tt.says)
			}
		})
	}
	if n := len(e.Halt.Messages()); n != 0 {
		t.Errorf("the endpoint received %d requests for refused rungs", n)
	}
	// The largest rate and a glob with brackets are fine.
	if status, body := e.api(http.MethodPost, "/agents/support-bot/throttle",
		map[string]any{"rate": 100000, "reason": "x", "actor": "ops"}); status != http.StatusOK {
		t.Errorf("throttle 100000/min: %d %s", status, body)
	}
	if status, body := e.api(http.MethodPost, "/agents/support-bot/restrict",
		map[string]any{"allow": []string{"crm.[rw]ead"}, "reason": "x", "actor": "ops"}); status != http.StatusOK {
		t.Errorf("restrict to crm.[rw]ead: %d %s", status, body)
	}
}
