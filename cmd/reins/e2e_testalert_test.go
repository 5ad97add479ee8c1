package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// `reins test-alert` while the agent has a real open incident: the test
// opens an incident of its own, marked as a test in its title, channel and
// page; the real incident's timeline, alerts and page are untouched; a real
// alert and a real halt afterwards still join the real incident; and the one command the
// CLI prints resolves the test incident alone.
func TestTestAlertNeverTouchesARealIncident(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			e := startTestMain(t, testOptions{Postgres: db == "postgres"})
			if status, body := e.webhook("alertmanager", fixture(t, "alertmanager/firing.json")); status != http.StatusOK {
				t.Fatalf("webhook: %d %s", status, body)
			}
			e.eventually("the real incident's channel and page", func() bool {
				return len(incidentChannels(e.Slack)) == 1 && e.PD.Triggers("reins-1") == 1
			})
			ctx := t.Context()
			before, _ := e.Main.Service.Timeline(ctx, 1)

			env := map[string]string{"REINS_DATABASE_URL": e.DBURL, "REINS_CONFIG": e.env["REINS_CONFIG"], "REINS_WEBHOOK_TOKEN": webhookToken}
			code, out, errOut := cli(t, env, "test-alert", "support-bot", "--url", e.URL)
			if code != 0 || !strings.Contains(out, "test incident #2") || !strings.Contains(out, "no real incident touched") {
				t.Fatalf("test-alert: exit %d\n%s%s", code, out, errOut)
			}
			inc, err := e.Main.Service.FindIncident(ctx, 2)
			if err != nil || inc.Agent != "support-bot" || !strings.HasPrefix(inc.Title, "TEST (not a real incident): ") {
				t.Fatalf("incident 2 = %+v, %v; want support-bot's, titled as a test", inc, err)
			}
			e.eventually("the test incident's channel and page", func() bool {
				return len(incidentChannels(e.Slack)) == 2 && e.PD.Triggers("reins-2") == 1
			})
			for _, ch := range incidentChannels(e.Slack) {
				if strings.HasPrefix(ch.Name, "inc-2-") && !strings.Contains(ch.Name, "-test-not-a-real-incident") {
					t.Errorf("the test incident's channel %q does not say it is a test", ch.Name)
				}
			}
			for _, ev := range e.PD.Events() {
				if ev.DedupKey == "reins-2" && ev.Action == "trigger" && !strings.Contains(ev.Payload.Summary, "TEST (not a real incident)") {
					t.Errorf("the test page's summary %q does not say it is a test", ev.Payload.Summary)
				}
			}

			after, _ := e.Main.Service.Timeline(ctx, 1)
			for _, ev := range after[len(before):] {
				if strings.Contains(strings.ToLower(ev.Text), "test") {
					t.Errorf("the real incident's timeline got %q", ev.Text)
				}
			}
			alerts, _ := e.Main.Store.FindAlerts(ctx, 1)
			for _, a := range alerts {
				if a.Source == "generic" {
					t.Errorf("the test alert was recorded in the real incident: %+v", a)
				}
			}
			if status, body := e.webhook("alertmanager", fixture(t, "alertmanager/grown.json")); status != http.StatusOK ||
				!regexp.MustCompile(`"incidents":\s*\[\s*1\s*\]`).Match(body) {
				t.Errorf("a real alert after the test: %d %s, want it in incident 1", status, body)
			}

			kenv := map[string]string{"REINS_DATABASE_URL": e.DBURL, "REINS_CONFIG": e.env["REINS_CONFIG"], "SUPPORT_BOT_HALT_SECRET": haltSecret}
			if code, out, errOut := cli(t, kenv, "kill", "support-bot", "--reason", "real trouble"); code != 0 || !strings.Contains(out, "Incident #1") {
				t.Errorf("a real halt after the test: exit %d, want it in incident 1\n%s%s", code, out, errOut)
			}

			m := regexp.MustCompile(`(?m)^\s+(reins resolve 2 --note "[^"]+")$`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("test-alert printed no resolve command for incident 2:\n%s", out)
			}
			args := []string{"resolve", "2", "--note", strings.Trim(strings.SplitN(m[1], "--note ", 2)[1], `"`)}
			if code, out, errOut := cli(t, env, args...); code != 0 {
				t.Fatalf("%s: exit %d\n%s%s", m[1], code, out, errOut)
			}
			if inc, _ := e.Main.Service.FindIncident(ctx, 2); inc.Status != "resolved" {
				t.Errorf("the test incident is %s after the printed command", inc.Status)
			}
			if inc, _ := e.Main.Service.FindIncident(ctx, 1); inc.Status != "open" {
				t.Errorf("the real incident is %s after resolving the test", inc.Status)
			}
		})
	}
}
