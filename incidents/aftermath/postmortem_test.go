package aftermath_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/aftermath"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/incidents/outbox"
	"github.com/reins-oss/reins/ownership"
)

var lead = incidents.Actor{Kind: incidents.ActorSlack, ID: "U01ALICE", Name: "alice"}

// fullIncident runs the example incident end to end on a fixed clock: the
// alert (started two minutes before it arrived), the page 30 s later, the
// acknowledgement, a halt that takes 2 s to verify, the whole checklist,
// the resolve and every postmortem answer.
func fullIncident(t *testing.T) *incidentstest.Env {
	t.Helper()
	env := incidentstest.NewEnv()
	reg := incidentstest.Registry()
	max := 200000.0
	reg.Agents["support-bot"].SLAs = []ownership.SLA{{Metric: "tokens_per_session", Max: &max},
		{Metric: "tool_scope", Allow: []string{"salesforce.read", "zendesk.*"}}}
	reg.Agents["support-bot"].BlastRadius[0].Check = "Records modified by the integration user"
	reg.Agents["support-bot"].BlastRadius[0].Link = "https://example.my.salesforce.com/audit?session={session}"
	env.Registry.Swap(reg)
	env.Halter.DoFunc = func(ctx context.Context, r incidents.HaltRequest) error {
		env.Clock.Advance(2 * time.Second)
		return nil
	}

	incidentstest.Ingest(t, env, incidentstest.Alert(func(a *incidents.Alert) {
		a.Sessions = []string{"s-8812", "s-8813"}
		a.StartsAt = incidentstest.Epoch.Add(-2 * time.Minute)
		a.Details = json.RawMessage(`{"tokens_per_session":240000}`)
	}))
	incidentstest.Drain(t, env, outbox.LaneChat)
	env.Clock.Advance(30 * time.Second)
	incidentstest.Drain(t, env, outbox.LaneUrgent)
	if err := env.Service.PagerAcknowledged(ctx, "reins-1", "bob@example.com", env.Clock.Now().Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(3 * time.Minute)
	h, err := env.Halting.Halt(ctx, incidents.HaltCommand{Action: incidents.ActionHalt, Agent: "support-bot",
		Reason: "looping on refunds", Actor: lead, IncidentID: 1})
	if err != nil || h.Status != incidents.HaltVerified {
		t.Fatalf("Halt: %+v, %v", h, err)
	}
	c := startChecklist(t, env, 1)
	for i, it := range c.Items {
		env.Clock.Advance(time.Minute)
		choice, details := incidents.ChoiceNoImpact, ""
		if i == 0 {
			choice, details = incidents.ChoiceImpactFound, "12 refunds issued\nto 3 customers"
		}
		answer(t, env, 1, it.Key, choice, details)
	}
	env.Clock.Advance(10 * time.Minute)
	incidentstest.Resolve(t, env, 1, "prompt rolled back")
	answers := map[string]string{
		"summary":      "support-bot looped on refund tool calls for 20 minutes.",
		"root_cause":   "A prompt change removed the refund cap.",
		"went_well":    "The halt took 2 seconds.",
		"went_poorly":  "The page went to the wrong rotation.",
		"action_items": "- alice: restore the refund cap (due 2026-03-09)\nbob: add a token budget guard\nwrite a drill runbook",
		"sla_changes":  "Lower tokens_per_session to 150000.",
	}
	for _, q := range incidents.PostmortemQuestions() {
		env.Clock.Advance(time.Minute)
		answerPostmortem(t, env, 1, q.Key, answers[q.Key])
	}
	incidentstest.Drain(t, env, outbox.LaneChat)
	incidentstest.Drain(t, env, outbox.LaneUrgent)
	return env
}

func TestPostmortemAssemblesStoredData(t *testing.T) {
	env := fullIncident(t)
	pm, err := env.Aftermath.Postmortem(ctx, 1)
	if err != nil {
		t.Fatalf("Postmortem: %v", err)
	}
	e := incidentstest.Epoch
	if !pm.Times.Detected.Equal(e.Add(-2*time.Minute)) || !pm.Times.Opened.Equal(e) {
		t.Errorf("detected/opened: got %v / %v", pm.Times.Detected, pm.Times.Opened)
	}
	durations := []struct {
		name string
		got  *incidents.Span
		want time.Duration
	}{
		{"detect", pm.Durations.Detect, 2 * time.Minute},
		{"page", pm.Durations.Page, 30 * time.Second},
		{"halt", pm.Durations.Halt, 2*time.Minute + 3*time.Minute + 30*time.Second + 2*time.Second}, // from the first alert
	}
	for _, d := range durations {
		if d.got == nil || time.Duration(*d.got) != d.want {
			t.Errorf("time to %s: got %v, want %v", d.name, d.got, d.want)
		}
	}
	if pm.Durations.Resolve == nil || pm.Times.Acknowledged == nil {
		t.Errorf("resolve/ack: got %v / %v, want both set", pm.Durations.Resolve, pm.Times.Acknowledged)
	}
	wantSessions := []incidents.Link{{Text: "s-8812", URL: "https://langfuse.example.com/sessions/s-8812"},
		{Text: "s-8813", URL: "https://langfuse.example.com/sessions/s-8813"}}
	if !slices.Equal(pm.Sessions, wantSessions) {
		t.Errorf("sessions: got %v, want %v", pm.Sessions, wantSessions)
	}
	if len(pm.Halts) != 1 || pm.Halts[0].Adapter != "webhook" || pm.Halts[0].Result != incidents.HaltVerified ||
		pm.Halts[0].VerifiedAfter == nil || time.Duration(*pm.Halts[0].VerifiedAfter) != 2*time.Second || pm.Halts[0].Actor != "alice" {
		t.Errorf("halts: got %+v", pm.Halts)
	}
	if len(pm.BlastRadius) != 14 || pm.BlastRadius[0].Details != "12 refunds issued\nto 3 customers" {
		t.Errorf("blast radius: got %d items, first %+v", len(pm.BlastRadius), pm.BlastRadius[0])
	}
	if len(pm.Answers) != 6 || pm.Answer("root_cause") != "A prompt change removed the refund cap." {
		t.Errorf("answers: got %+v", pm.Answers)
	}
	wantItems := []incidents.ActionItem{{Owner: "alice", Text: "restore the refund cap", Due: "2026-03-09"},
		{Owner: "bob", Text: "add a token budget guard"}, {Text: "write a drill runbook"}}
	if !slices.Equal(pm.ActionItems, wantItems) {
		t.Errorf("action items: got %+v, want %+v", pm.ActionItems, wantItems)
	}
	if len(pm.SLAs) != 2 || pm.SLAs[0].Observed != "240000" || pm.SLAs[0].Limit != "max 200000" {
		t.Errorf("SLAs: got %+v", pm.SLAs)
	}
	if pm.Links.SlackChannel != "https://slack.com/app_redirect?channel=C001" || pm.Links.PagerDutyKey != "reins-1" ||
		pm.Links.Runbook != "https://wiki.example.com/agents/support-bot" {
		t.Errorf("links: got %+v", pm.Links)
	}
	var kinds []incidents.EventKind
	for _, e := range pm.Timeline {
		if e.At.Location() != time.UTC {
			t.Errorf("timeline entry %s not in UTC: %v", e.Kind, e.At)
		}
		kinds = append(kinds, e.Kind)
	}
	for _, k := range []incidents.EventKind{incidents.EventIncidentOpened, incidents.EventAlertFired, incidents.EventPaged,
		incidents.EventAcknowledged, incidents.EventHaltRequested, incidents.EventHaltVerified, incidents.EventChecklistAnswered,
		incidents.EventResolved, incidents.EventPostmortemAnswer, incidents.EventPostmortemPosted} {
		if !slices.Contains(kinds, k) {
			t.Errorf("timeline lacks %s: %v", k, kinds)
		}
	}
}

func TestPostmortemJSON(t *testing.T) {
	env := fullIncident(t)
	pm, err := env.Aftermath.Postmortem(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(pm)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var got struct {
		Durations map[string]float64 `json:"durations"`
		Links     map[string]any     `json:"links"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if got.Durations["time_to_page"] != 30 || got.Durations["time_to_detect"] != 120 {
		t.Errorf("durations: got %v, want seconds", got.Durations)
	}
	if got.Links["pagerduty_dedup_key"] != "reins-1" {
		t.Errorf("links: got %v", got.Links)
	}
	var back incidents.Postmortem
	if err := json.Unmarshal(b, &back); err != nil || time.Duration(*back.Durations.Page) != 30*time.Second {
		t.Errorf("round trip: %v, %v", back.Durations.Page, err)
	}
}

func TestPostmortemOfRemovedAgent(t *testing.T) {
	env := fullIncident(t)
	reg := incidentstest.Registry()
	delete(reg.Agents, "support-bot")
	env.Registry.Swap(reg)
	pm, err := env.Aftermath.Postmortem(ctx, 1)
	if err != nil {
		t.Fatalf("Postmortem: %v", err)
	}
	if pm.Agent != "support-bot" || len(pm.Answers) != 6 || len(pm.Halts) != 1 || len(pm.Sessions) != 2 || pm.Sessions[0].URL != "" {
		t.Errorf("got agent %s, %d answers, %d halts, sessions %v", pm.Agent, len(pm.Answers), len(pm.Halts), pm.Sessions)
	}
	if md := aftermath.RenderMarkdown(pm); !strings.Contains(md, "## Root cause") || !strings.Contains(md, "- s-8812") {
		t.Errorf("Markdown of a removed agent lacks sections:\n%s", md)
	}
}

func TestPostmortemNotFound(t *testing.T) {
	env := incidentstest.NewEnv()
	if _, err := env.Aftermath.Postmortem(ctx, 3); incidents.ErrorCode(err) != incidents.ENOTFOUND {
		t.Errorf("got %v, want ENOTFOUND", err)
	}
}

// The SLA section covers every kind: a loop and a score SLA show their
// bounds, and a breach alert from reins (label sla, detail value) is the
// observed value of the SLA it names, even with two SLAs on one metric.
func TestPostmortemSLAKinds(t *testing.T) {
	env := incidentstest.NewEnv()
	reg := incidentstest.Registry()
	lo, short, long := 0.4, 50000.0, 200000.0
	reg.Agents["support-bot"].SLAs = []ownership.SLA{
		{Name: "loop", Metric: ownership.SLALoop, Count: 5},
		{Name: "score:eval.confidence", Metric: ownership.SLAScore, Attribute: "eval.confidence", Min: &lo},
		{Name: "tokens-burst", Metric: ownership.SLATokensPerSession, Max: &short, Window: 5 * time.Minute},
		{Name: "tokens_per_session", Metric: ownership.SLATokensPerSession, Max: &long},
	}
	env.Registry.Swap(reg)
	incidentstest.Ingest(t, env, incidentstest.Alert(func(a *incidents.Alert) {
		a.Source, a.Fingerprint = "reins", "sla-tokens-burst"
		a.Labels = map[string]string{"agent": "support-bot", "sla": "tokens-burst", "session": "s-8812"}
		a.Details = json.RawMessage(`{"value":61000,"threshold":50000}`)
	}), incidentstest.Alert(func(a *incidents.Alert) {
		a.Source, a.Fingerprint = "reins", "sla-loop"
		a.Labels = map[string]string{"agent": "support-bot", "sla": "loop", "session": "s-8812"}
		a.Details = json.RawMessage(`{"value":5,"threshold":5}`)
	}))
	pm, err := env.Aftermath.Postmortem(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []incidents.SLACheck{
		{Name: "loop", Metric: "loop", Limit: "count 5", Observed: "5"},
		{Name: "score:eval.confidence", Metric: "score", Limit: "min 0.4; attribute eval.confidence"},
		{Name: "tokens-burst", Metric: "tokens_per_session", Limit: "max 50000; within 5m0s", Observed: "61000"},
		{Name: "tokens_per_session", Metric: "tokens_per_session", Limit: "max 200000"},
	}
	if !slices.Equal(pm.SLAs, want) {
		t.Errorf("SLAs:\ngot  %+v\nwant %+v", pm.SLAs, want)
	}
}
