package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Acceptance 1 of issue 15: a support-bot session exported through the
// OpenTelemetry SDK, then an alert naming it. The incident's summary, page,
// `/agent session`, checklist and postmortem all show the same record.
func TestSessionRecordInIncident(t *testing.T) {
	for _, store := range []struct {
		name string
		pg   bool
	}{{"SQLite", false}, {"PostgreSQL", true}} {
		t.Run(store.name, func(t *testing.T) {
			e := startTestMain(t, testOptions{Postgres: store.pg, Env: map[string]string{"REINS_OTLP_TOKEN": otlpToken}})
			exportSession(t, e, "s-8812")
			status, body := e.webhook("generic", []byte(`{"agent":"support-bot","summary":"Token spend 12x baseline",
				"severity":"critical","status":"firing","sessions":["s-8812"],"dedup_key":"tok-spike"}`))
			if status >= 300 {
				t.Fatalf("alert: %d %s", status, body)
			}
			e.eventually("incident channel with its summary", func() bool {
				chs := incidentChannels(e.Slack)
				return len(chs) == 1 && len(e.Slack.Messages(chs[0].ID)) > 0
			})
			ch := incidentChannels(e.Slack)[0].ID
			summary := string(e.Slack.Messages(ch)[0].Blocks)
			for _, want := range []string{"9 steps · 5 tool calls · 1 error · 3,600 tokens (3,000 in / 600 out) · $0.0108",
				"outside the declared blast radius: zendesk.close_ticket (1 call)", "langfuse.example.com/project/p1/sessions/s-8812"} {
				if !strings.Contains(summary, want) {
					t.Errorf("summary lacks %q:\n%s", want, summary)
				}
			}

			e.eventually("page", func() bool { return len(e.PD.Events()) > 0 })
			if raw := string(e.PD.Events()[0].Raw); !strings.Contains(raw, `"session_totals"`) || !strings.Contains(raw, `"total_tokens":3600`) {
				t.Errorf("page custom details lack the session totals: %s", raw)
			}

			e.slash(alice, ch, "session s-8812")
			var timeline string
			e.eventually("timeline in the incident thread", func() bool {
				for _, m := range e.Slack.Messages(ch) {
					if m.ThreadTS != "" && strings.Contains(string(m.Blocks), "Session s-8812 of support-bot: timeline") {
						timeline = string(m.Blocks)
						return true
					}
				}
				return false
			})
			for _, want := range []string{"1. ", "9. ", "execute_tool salesforce.update_record", "ERROR SalesforceTimeout",
				"chat gpt-4.1-2025-04-14 · 1,000 in / 200 out tokens", "reins.test/sessions/s-8812"} {
				if !strings.Contains(timeline, want) {
					t.Errorf("timeline lacks %q:\n%s", want, timeline)
				}
			}

			e.slash(alice, ch, "checklist")
			e.eventually("first checklist item", func() bool { return len(threadItems(e.Slack, ch)) > 0 })
			item := string(threadItems(e.Slack, ch)[0].Blocks)
			if !strings.Contains(item, "Salesforce") || !strings.Contains(item, "3 calls recorded to Salesforce (salesforce.get_case, salesforce.update_record)") {
				t.Errorf("the Salesforce item does not show the three calls:\n%s", item)
			}

			status, body = e.api(http.MethodGet, "/incidents", nil)
			if status != http.StatusOK {
				t.Fatalf("incidents: %d %s", status, body)
			}
			code, out, errOut := cli(t, e.env, "postmortem", "1")
			for _, want := range []string{"## Session record", "### Session", "Calls to blast-radius systems, in order:",
				`salesforce.update\_record → Salesforce (error SalesforceTimeout)`, `sendgrid.send\_email → SendGrid`,
				"Tool calls outside the declared blast radius:"} {
				if code != 0 || !strings.Contains(out, want) {
					t.Errorf("postmortem (exit %d) lacks %q:\n%s%s", code, want, out, errOut)
				}
			}
		})
	}
}

// Steps that arrive after the alert naming their session refresh the
// incident's summary with the session's totals.
func TestSessionStepsAfterTheAlertRefreshTheSummary(t *testing.T) {
	e := startTestMain(t, testOptions{Env: map[string]string{"REINS_OTLP_TOKEN": otlpToken}})
	e.webhook("generic", []byte(`{"agent":"support-bot","summary":"Token spend 12x baseline",
		"severity":"critical","status":"firing","sessions":["s-late"]}`))
	e.eventually("incident channel with its summary", func() bool {
		chs := incidentChannels(e.Slack)
		return len(chs) == 1 && len(e.Slack.Messages(chs[0].ID)) > 0
	})
	ch := incidentChannels(e.Slack)[0].ID
	e.eventually("summary posted and remembered", func() bool {
		inc, err := e.Main.Service.FindIncident(context.Background(), 1)
		return err == nil && inc.SummaryTS != ""
	})
	exportSession(t, e, "s-late")
	e.eventuallyWithin(20*time.Second, "summary refreshed with the session's totals", func() bool {
		return strings.Contains(string(e.Slack.Messages(ch)[0].Blocks), "9 steps · 5 tool calls")
	})
}
