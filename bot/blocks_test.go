package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/reins-oss/reins/bot/slackfake"
	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/ownership"
)

var updateGolden = flag.Bool("update", false, "rewrite bot/testdata/golden/*.json from the renderers")

var (
	t0      = time.Date(2026, 11, 28, 2, 11, 0, 0, time.UTC)
	hostile = "<!channel> @here *bold* <http://evil|click> & <@U0BOSS> " + strings.Repeat("very long text ", 400)
)

func at(d time.Duration) *time.Time { t := t0.Add(d); return &t }

func testAgent() *ownership.Agent {
	return &ownership.Agent{
		Name: "support-bot", Description: "Customer-facing support agent (refunds, order status)",
		Team: "support-ai", Runbook: "https://wiki.example.com/agents/support-bot",
		RACI: ownership.RACI{Responsible: []string{"U01ALICE"}},
	}
}

func testIncident() *incidents.Incident {
	return &incidents.Incident{
		ID: 42, Agent: "support-bot", Title: "Token spend 12x baseline", Severity: incidents.SeverityCritical,
		Status: incidents.StatusOpen, Source: "alertmanager", Sessions: []string{"s-8812", "s-8813"},
		Links:     []incidents.Link{{Text: "dashboard_url", URL: "https://grafana.example.com/d/1?from=now-1h&to=now"}},
		CreatedAt: t0, StartedAt: t0, LastAlertAt: t0,
	}
}

func summaryOK() *incidents.SummaryView {
	inc := testIncident()
	inc.AckedAt, inc.AckedBy = at(3*time.Minute), "Alice Example"
	return &incidents.SummaryView{
		Incident: inc, Agent: testAgent(),
		Team:        &ownership.Team{Name: "support-ai", SlackChannel: "support-ai"},
		KillHolders: []string{"U01ALICE", "U02BOB", "bob@example.com"},
		Firing:      2, Resolved: 1,
		Latest: &incidents.Alert{Source: "alertmanager", Status: incidents.AlertFiring, Title: "TokenSpendHigh",
			Summary: "Token spend 12x baseline over 10m"},
		Sessions: []incidents.Link{{Text: "s-8812", URL: "https://langfuse.example.com/project/p1/sessions/s-8812"},
			{Text: "s-8813", URL: "https://langfuse.example.com/project/p1/sessions/s-8813"}},
		Halts: []*incidents.Halt{
			{Action: incidents.ActionHalt, Sessions: []string{"s-8812"}, Adapter: "webhook", Status: incidents.HaltFailed,
				Error: "adapter answered 503", Actor: incidents.Actor{Kind: incidents.ActorSlack, ID: "U02BOB"}, RequestedAt: t0.Add(5 * time.Minute)},
			{Action: incidents.ActionHalt, Adapter: "webhook", Status: incidents.HaltVerified,
				Actor: incidents.Actor{Kind: incidents.ActorSlack, ID: "U01ALICE"}, RequestedAt: t0.Add(2 * time.Minute),
				FinishedAt: at(2*time.Minute + 4200*time.Millisecond)},
		},
		Answered: 7, Total: 14,
	}
}

func summaryHostile() *incidents.SummaryView {
	v := summaryOK()
	v.Incident.Title = "<!here> " + strings.Repeat("spike ", 40)
	v.Incident.Links = append(v.Incident.Links, incidents.Link{Text: "click <!channel>", URL: "javascript:alert(1)"},
		incidents.Link{Text: "x|y>", URL: "https://evil.example/a|b>"})
	v.Latest = &incidents.Alert{Source: "generic", Status: incidents.AlertResolved, Title: "@everyone *bold*",
		Summary: hostile, EndsAt: at(30 * time.Minute)}
	v.Sessions = nil
	for i := range 60 {
		id := fmt.Sprintf("s-%04d", i)
		v.Sessions = append(v.Sessions, incidents.Link{Text: id, URL: "https://langfuse.example.com/s/" + id})
	}
	v.Halts[0].Error = "<!channel> " + hostile
	return v
}

func summaryUnowned() *incidents.SummaryView {
	inc := testIncident()
	inc.Agent, inc.Unowned, inc.Title = "mystery-bot", true, "Garbled output"
	return &incidents.SummaryView{Incident: inc, Firing: 1,
		Latest: &incidents.Alert{Status: incidents.AlertFiring, Title: "GarbledOutput"}}
}

func summaryResolved() *incidents.SummaryView {
	v := summaryOK()
	v.Incident.Status, v.Incident.ResolvedAt = incidents.StatusResolved, at(time.Hour)
	v.Firing, v.Resolved = 0, 3
	v.Latest.Status, v.Latest.EndsAt = incidents.AlertResolved, at(50*time.Minute)
	v.Halts, v.Total, v.Answered = nil, 0, 0
	return v
}

func checklistView(answered bool) *incidents.ChecklistItemView {
	it := &incidents.ChecklistItem{Key: "blast:salesforce", Position: 3,
		Question: "Did support-bot write to Salesforce during sessions s-8812, s-8813?",
		Check:    "Records modified by the support-bot integration user during the sessions",
		Owner:    "crm-oncall", Link: "https://example.my.salesforce.com/audit?session=s-8812"}
	if answered {
		it.Choice, it.Details = incidents.ChoiceImpactFound, "12 refunds issued twice <!here>\n3 customers emailed"
		it.AnsweredBy, it.AnsweredAt = &incidents.Actor{Kind: incidents.ActorSlack, ID: "U01ALICE"}, at(3*time.Minute)
	}
	return &incidents.ChecklistItemView{Incident: testIncident(), Item: it, Total: 14}
}

func postmortemView(answered bool) *incidents.PostmortemQuestionView {
	v := &incidents.PostmortemQuestionView{Incident: testIncident(), Key: "root_cause", Position: 2, Total: 6,
		Question: "What was the root cause?", Hint: "Prompt, tool, model, data or config change?"}
	if answered {
		v.Answer = &incidents.PostmortemAnswer{IncidentID: 42, Key: "root_cause", Text: "A retry loop in the refund tool.\n<!everyone> @channel",
			Actor: incidents.Actor{Kind: incidents.ActorSlack, ID: "U02BOB"}, At: t0.Add(2 * time.Hour)}
	}
	return v
}

type rendered struct {
	Text   string        `json:"text,omitempty"`
	Blocks []slack.Block `json:"blocks,omitempty"`
	View   *slack.ModalViewRequest
}

func render(blocks []slack.Block, text string) rendered { return rendered{Text: text, Blocks: blocks} }

func modalCase(v slack.ModalViewRequest) rendered { return rendered{View: &v} }

func renderCases() map[string]rendered {
	sessions120 := make([]string, 120)
	for i := range sessions120 {
		sessions120[i] = fmt.Sprintf("s-%d", i)
	}
	return map[string]rendered{
		"summary_ok":         render(RenderSummary(summaryOK())),
		"summary_hostile":    render(RenderSummary(summaryHostile())),
		"summary_unowned":    render(RenderSummary(summaryUnowned())),
		"summary_resolved":   render(RenderSummary(summaryResolved())),
		"message_info":       render(RenderMessage(incidents.Message{Style: incidents.StyleInfo, Title: "Channel created", Text: "Owners invited."})),
		"message_full":       render(RenderMessage(messageFull())),
		"message_hostile":    render(RenderMessage(incidents.Message{Style: incidents.StyleDanger, Title: hostile, Text: hostile})),
		"message_reminder":   render(RenderMessage(incidents.Message{Style: incidents.StyleWarning, Title: "Reminder", Text: "Item 4 of 14 is waiting for @crm-oncall.", Reminder: 42})),
		"checklist_open":     render(RenderChecklistItem(checklistView(false))),
		"checklist_answered": render(RenderChecklistItem(checklistView(true))),
		"postmortem_open":    render(RenderPostmortemQuestion(postmortemView(false))),
		"postmortem_edit":    render(RenderPostmortemQuestion(postmortemView(true))),
		"confirm_agent":      render(RenderConfirmHalt("support-bot", nil, "", 42, "tok-1")),
		"confirm_sessions":   render(RenderConfirmHalt("support-bot", []string{"s-8812", "s-8813"}, hostile, 0, "tok-2")),
		"reminder":           render(RenderReminder(42, "The blast-radius checklist for #42 has 7 unanswered items.")),
		"modal_impact":       modalCase(ImpactModal(42, "blast:salesforce", checklistView(false).Item.Question)),
		"modal_postmortem":   modalCase(PostmortemModal(42, "root_cause", "What was the root cause?", "A retry loop")),
		"modal_halt_select":  modalCase(HaltSessionModal(42, "support-bot", []string{"s-8812", "s-8813"})),
		"modal_halt_text":    modalCase(HaltSessionModal(42, "support-bot", sessions120)),
	}
}

func messageFull() incidents.Message {
	return incidents.Message{Style: incidents.StyleWarning, Title: "Halt failed", Text: "The webhook adapter answered 503.",
		Fields:  []incidents.Field{{Label: "Agent", Value: "support-bot"}, {Label: "Session", Value: "s-8812 & s-8813"}},
		Links:   []incidents.Link{{Text: "Trace", URL: "https://langfuse.example.com/s/1"}, {Text: "bad", URL: "ftp://x"}},
		Mention: []string{"U01ALICE", "S0ONCALL", "<!channel>"}}
}

func TestRenderGolden(t *testing.T) {
	for name, r := range renderCases() {
		t.Run(name, func(t *testing.T) {
			var v any = r
			if r.View != nil {
				v = r.View
			}
			var buf bytes.Buffer
			if err := json.Indent(&buf, marshal(t, v), "", "  "); err != nil {
				t.Fatal(err)
			}
			buf.WriteByte('\n')
			path := filepath.Join("testdata", "golden", name+".json")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./bot -run TestRenderGolden -update)", err)
			}
			if got := buf.String(); got != string(want) {
				t.Errorf("%s differs from the renderer output (-update rewrites it):\ngot:\n%s", path, got)
			}
		})
	}
}

// broadcastOrLink finds anything that could notify a channel or hide a link.
var broadcastOrLink = regexp.MustCompile(`(?i)<!(channel|here|everyone)>|[@!](channel|here|everyone)\b|<http://evil|<@U0BOSS>|javascript:`)

// TestRenderSafe posts every rendering to slackfake, which enforces Slack's
// Block Kit limits, and checks no untrusted text could notify anyone.
func TestRenderSafe(t *testing.T) {
	srv := slackfake.New()
	defer srv.Close()
	srv.AddChannel("C0INC", "inc")
	api := srv.Client()
	for name, r := range renderCases() {
		t.Run(name, func(t *testing.T) {
			raw := marshal(t, r)
			if m := broadcastOrLink.Find(raw); m != nil {
				t.Errorf("rendering holds %q", m)
			}
			if r.View != nil {
				if _, err := api.OpenViewContext(context.Background(), "trigger", *r.View); err != nil {
					t.Fatalf("views.open: %v", err)
				}
				return
			}
			if _, _, err := api.PostMessageContext(context.Background(), "C0INC",
				slack.MsgOptionBlocks(r.Blocks...), slack.MsgOptionText(r.Text, false)); err != nil {
				t.Fatalf("chat.postMessage: %v", err)
			}
		})
	}
}

func TestRenderSummaryButtons(t *testing.T) {
	for name, tc := range map[string]struct {
		view *incidents.SummaryView
		want []string
	}{
		"OwnedOpen": {summaryOK(), []string{ActionHaltAgent + "=42|support-bot", ActionHaltSession + "=42|support-bot", ActionStartChecklist + "=42"}},
		"Unowned":   {summaryUnowned(), []string{ActionStartChecklist + "=42"}},
		"Resolved":  {summaryResolved(), []string{ActionStartChecklist + "=42"}},
	} {
		t.Run(name, func(t *testing.T) {
			blocks, _ := RenderSummary(tc.view)
			if got := buttonsOf(blocks); strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("buttons = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRenderChecklistButtons(t *testing.T) {
	want := []string{ActionChecklistNoImpact + "=42|blast:salesforce", ActionChecklistImpactFound + "=42|blast:salesforce",
		ActionChecklistUnknown + "=42|blast:salesforce", ActionChecklistNotApplicable + "=42|blast:salesforce"}
	for name, answered := range map[string]bool{"Open": false, "Answered": true} {
		t.Run(name, func(t *testing.T) {
			blocks, _ := RenderChecklistItem(checklistView(answered))
			if got := buttonsOf(blocks); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("buttons = %v, want %v", got, want)
			}
			raw := marshal(t, blocks)
			if got := strings.Contains(string(raw), "Impact found* — <@U01ALICE> at 02:14 UTC"); got != answered {
				t.Errorf("answer line shown = %v, want %v:\n%s", got, answered, raw)
			}
		})
	}
}

func TestRenderSummaryCaps(t *testing.T) {
	blocks, text := RenderSummary(summaryHostile())
	raw := marshal(t, blocks)
	for _, want := range []string{"+40 more", "s-0019", "Alert recovered at 02:41 UTC", "7 of 14 answered", "<@U01ALICE>"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	if strings.Contains(string(raw), "s-0020") {
		t.Error("summary lists more than 20 sessions")
	}
	if len([]rune(text)) > 300 {
		t.Errorf("fallback text is %d runes", len([]rune(text)))
	}
}

// buttonsOf lists "action_id=value" of every button in blocks.
func buttonsOf(blocks []slack.Block) []string {
	var out []string
	for _, b := range blocks {
		switch b := b.(type) {
		case *slack.ActionBlock:
			for _, e := range b.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok {
					out = append(out, btn.ActionID+"="+btn.Value)
				}
			}
		case *slack.SectionBlock:
			if b.Accessory != nil && b.Accessory.ButtonElement != nil {
				out = append(out, b.Accessory.ButtonElement.ActionID+"="+b.Accessory.ButtonElement.Value)
			}
		}
	}
	return out
}

// marshal encodes v as Slack receives it, without HTML escaping, so tests see
// the real "<" and ">".
func marshal(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(buf.Bytes())
}
