package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/reins-oss/reins/integrations/halt/halttest"
)

const templateSLAs = `    slas:
      - metric: tokens_per_session
        max: 200000
`

// guardEnv starts reins with support-bot's SLAs replaced by slas (YAML items
// indented as under `slas:`).
func guardEnv(t *testing.T, pg bool, slas string) *testEnv {
	t.Helper()
	hook := halttest.NewWebhook(t, haltSecret)
	tmpl, err := os.ReadFile("testdata/reins.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.ReplaceAll(string(tmpl), "{{HALT_URL}}", hook.URL())
	if !strings.Contains(yaml, templateSLAs) {
		t.Fatal("testdata/reins.yaml.tmpl no longer holds the SLA block this test replaces")
	}
	yaml = strings.Replace(yaml, templateSLAs, "    slas:\n"+slas, 1)
	path := filepath.Join(t.TempDir(), "reins.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return startTestMain(t, testOptions{Postgres: pg, Config: path, Halt: hook,
		Env: map[string]string{"REINS_OTLP_TOKEN": otlpToken}})
}

// agentRun is an OTel SDK program exporting each span as it ends (one OTLP
// request per span), so a test knows when the crossing span reached reins.
type agentRun struct {
	t       *testing.T
	tp      *sdktrace.TracerProvider
	tr      trace.Tracer
	ctx     context.Context
	session string
}

func newAgentRun(t *testing.T, e *testEnv, session string) *agentRun {
	t.Helper()
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(e.URL+"/v1/traces"),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + otlpToken}))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "support-bot"))))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &agentRun{t: t, tp: tp, tr: tp.Tracer("agent"), ctx: context.Background(), session: session}
}

func (r *agentRun) chat(tokens int) {
	_, sp := r.tr.Start(r.ctx, "chat gpt-4.1", trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "chat"),
		attribute.String("gen_ai.conversation.id", r.session),
		attribute.String("gen_ai.request.model", "gpt-4.1"),
		attribute.Int("gen_ai.usage.input_tokens", tokens)))
	sp.End()
}

func (r *agentRun) tool(name, args string) {
	_, sp := r.tr.Start(r.ctx, "execute_tool "+name, trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "execute_tool"),
		attribute.String("gen_ai.conversation.id", r.session),
		attribute.String("gen_ai.tool.name", name),
		attribute.String("gen_ai.tool.call.arguments", args)))
	sp.End()
}

// haltsOf returns the halt requests the agent's webhook received for session.
func haltsOf(hook *halttest.Webhook, session string) []halttest.WebhookMessage {
	var out []halttest.WebhookMessage
	for _, m := range hook.Messages() {
		if m.Action == "halt" && len(m.Sessions) == 1 && m.Sessions[0] == session {
			out = append(out, m)
		}
	}
	return out
}

func (e *testEnv) breaches(agent string) string {
	e.t.Helper()
	var b strings.Builder
	list, err := e.Main.Store.FindBreaches(context.Background(), agent, time.Time{}, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, x := range list {
		fmt.Fprintf(&b, "%s %s %s step %d outcome %q\n", x.SLA, x.Session, x.Detail, x.StepN, x.Outcome)
	}
	return b.String()
}

// 6a: a session crossing tokens_per_session at step 37 is halted through
// the webhook within 500 ms of the crossing span's arrival.
func TestGuardHaltsTheSessionCrossingTokens(t *testing.T) {
	for _, store := range []struct {
		name string
		pg   bool
	}{{"SQLite", false}, {"PostgreSQL", true}} {
		t.Run(store.name, func(t *testing.T) {
			e := guardEnv(t, store.pg, `      - metric: tokens_per_session
        max: 200000
        on_breach: halt_session
`)
			breachesBefore := e.metric(`reins_sla_breaches_total{action="halt_session",agent="support-bot",sla="tokens_per_session"}`)
			tokensBefore := e.metric(`reins_agent_tokens_total{agent="support-bot"}`)
			run := newAgentRun(t, e, "s-tok")
			for i := 1; i <= 36; i++ {
				run.chat(5_500)
			}
			if n := len(haltsOf(e.Halt, "s-tok")); n != 0 {
				t.Fatalf("halted before the crossing: %d requests", n)
			}
			sent := time.Now()
			run.chat(5_500) // step 37: 203,500 tokens
			var took time.Duration
			for took = time.Since(sent); len(haltsOf(e.Halt, "s-tok")) == 0; took = time.Since(sent) {
				if took > 5*time.Second {
					t.Fatalf("no halt request 5 s after the crossing span; breaches:\n%s", e.breaches("support-bot"))
				}
				time.Sleep(time.Millisecond)
			}
			if took > 500*time.Millisecond {
				t.Errorf("span to halt request took %v, want at most 500 ms", took)
			}
			t.Logf("crossing span to signed halt request at the agent's webhook: %v", took)
			run.chat(5_500)
			run.chat(5_500)
			halt := haltsOf(e.Halt, "s-tok")[0]
			if halt.Actor.Kind != "policy" || halt.Actor.ID != "support-bot/tokens_per_session" ||
				!strings.Contains(halt.Reason, "203,500 > 200,000 at step 37") {
				t.Errorf("halt request = %+v, want actor policy:support-bot/tokens_per_session and the reason", halt)
			}
			e.eventually("page", func() bool { return len(e.PD.Events()) > 0 })
			if inc, err := e.Main.Service.FindIncident(context.Background(), 1); err != nil || inc.Status != "open" ||
				inc.Agent != "support-bot" || !strings.Contains(inc.Title, "tokens_per_session") {
				t.Errorf("incident 1 = %+v (%v), want support-bot's open incident about tokens_per_session", inc, err)
			}
			if raw := string(e.PD.Events()[0].Raw); !strings.Contains(raw, "tokens_per_session") || !strings.Contains(raw, "s-tok") {
				t.Errorf("page does not say the SLA and session: %s", raw)
			}
			e.eventually("incident channel", func() bool { return len(incidentChannels(e.Slack)) == 1 })
			ch := incidentChannels(e.Slack)[0].ID
			e.eventually("channel says the session was halted", func() bool {
				for _, m := range e.Slack.Messages(ch) {
					txt := m.Text + string(m.Blocks)
					if strings.Contains(txt, "reins halted session s-tok of support-bot automatically") {
						return true
					}
				}
				return false
			})
			time.Sleep(50 * time.Millisecond)
			if n := len(haltsOf(e.Halt, "s-tok")); n != 1 {
				t.Errorf("%d halt requests for the session, want 1", n)
			}
			if got := e.breaches("support-bot"); got != "tokens_per_session s-tok  step 37 outcome \"halt_session\"\n" {
				t.Errorf("breaches:\n%s", got)
			}
			if d := e.metric(`reins_sla_breaches_total{action="halt_session",agent="support-bot",sla="tokens_per_session"}`) - breachesBefore; d != 1 {
				t.Errorf("reins_sla_breaches_total grew by %v, want 1", d)
			}
			if d := e.metric(`reins_agent_tokens_total{agent="support-bot"}`) - tokensBefore; d != 39*5_500 {
				t.Errorf("reins_agent_tokens_total grew by %v, want %d", d, 39*5_500)
			}
			if e.metric(`reins_agent_cost_usd_total{agent="support-bot"}`) <= 0 {
				t.Error("reins_agent_cost_usd_total is not exported or did not grow")
			}
			view, err := e.Main.WebSessions.Session(context.Background(), "", "s-tok")
			if err != nil {
				t.Fatal(err)
			}
			var marked []int
			for i, st := range view.Steps {
				if st.Breach != "" {
					marked = append(marked, i+1)
				}
			}
			if len(marked) != 1 || marked[0] != 37 || view.Steps[36].Breach != "tokens_per_session" {
				t.Errorf("web view marks steps %v with a breach, want step 37 with tokens_per_session", marked)
			}
		})
	}
}

// 6b: a tool outside tool_scope breaches at once; five identical calls breach loop.
func TestGuardToolScopeAndLoop(t *testing.T) {
	e := guardEnv(t, false, `      - metric: tool_scope
        allow: ["salesforce.*", "sendgrid.*"]
      - metric: loop
        count: 5
`)
	run := newAgentRun(t, e, "s-scope")
	run.tool("salesforce.get_case", `{"id":1}`)
	run.tool("shell.exec", `{"cmd":"rm -rf /"}`)
	e.eventually("tool_scope breach", func() bool {
		return e.breaches("support-bot") == "tool_scope s-scope shell.exec step 2 outcome \"alert\"\n"
	})
	loop := newAgentRun(t, e, "s-loop")
	for i := 0; i < 4; i++ {
		loop.tool("salesforce.get_case", `{"id":42}`)
	}
	loop.tool("salesforce.get_case", `{"id":43}`)
	time.Sleep(100 * time.Millisecond)
	if got := e.breaches("support-bot"); strings.Contains(got, "s-loop") {
		t.Fatalf("four identical calls breached loop count 5:\n%s", got)
	}
	loop.tool("salesforce.get_case", `{"id":42}`)
	e.eventually("loop breach", func() bool {
		return strings.Contains(e.breaches("support-bot"), "loop s-loop salesforce.get_case step 6 outcome \"alert\"")
	})
	rec := e.session("s-loop")
	for _, st := range rec.Steps {
		if st.Content != "" || st.ArgsHash == "" {
			t.Fatalf("step %+v: want the arguments hashed, not kept", st)
		}
	}
	e.eventually("page", func() bool { return len(e.PD.Events()) > 0 })

	// See the guard: the CLI reads the store, the bot asks the server.
	code, out, errOut := cli(t, e.env, "agents")
	for _, want := range []string{"SLAs of support-bot", "• tool_scope: 1 (session s-scope) vs allow salesforce.*, sendgrid.* · 1 breach",
		"• loop: 5 (session s-loop) vs 5 identical calls · 1 breach"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("reins agents: exit %d, want %q in\n%s%s", code, want, out, errOut)
		}
	}
	e.slash(alice, "C0SUPPORTAI", "status support-bot")
	e.eventually("the /agent status reply lists the SLAs", func() bool {
		for _, r := range e.Slack.Responses() {
			if b := string(r.Blocks); strings.Contains(b, "loop: 5 (session s-loop)") && strings.Contains(b, "tool_scope") {
				return true
			}
		}
		return false
	})
}

// An SLA whose attribute never arrived shows "no data", not healthy.
func TestGuardStatusNoData(t *testing.T) {
	e := guardEnv(t, false, `      - metric: score
        attribute: eval.confidence
        min: 0.6
`)
	run := newAgentRun(t, e, "s-nodata")
	run.chat(10)
	code, out, errOut := cli(t, e.env, "agents")
	if code != 0 || !strings.Contains(out, "• score:eval.confidence: no data vs min 0.6 · 0 breaches") {
		t.Errorf("reins agents: exit %d\n%s%s", code, out, errOut)
	}
}

// 6c: dry_run halts nothing and the timeline says what would have happened.
func TestGuardDryRun(t *testing.T) {
	e := guardEnv(t, false, `      - metric: steps_per_session
        max: 3
        on_breach: halt_session
        dry_run: true
`)
	run := newAgentRun(t, e, "s-dry")
	for i := 0; i < 5; i++ {
		run.chat(10)
	}
	e.eventually("breach acted on", func() bool {
		return strings.Contains(e.breaches("support-bot"), `steps_per_session s-dry  step 4 outcome "dry_run"`)
	})
	time.Sleep(100 * time.Millisecond)
	if n := len(haltsOf(e.Halt, "s-dry")); n != 0 {
		t.Errorf("dry run sent %d halt requests", n)
	}
	e.eventually("incident channel", func() bool { return len(incidentChannels(e.Slack)) == 1 })
	ch := incidentChannels(e.Slack)[0].ID
	e.eventually("the channel says nothing was halted", func() bool {
		for _, m := range e.Slack.Messages(ch) {
			if strings.Contains(m.Text+string(m.Blocks), "Dry run: reins would have halted") {
				return true
			}
		}
		return false
	})
}

// 6d: a restart mid-session halts nothing twice and keeps counting.
func TestGuardRestartMidSession(t *testing.T) {
	e := guardEnv(t, false, `      - metric: steps_per_session
        max: 6
        on_breach: halt_session
      - metric: tokens_per_session
        max: 1000
        on_breach: halt_session
`)
	run := newAgentRun(t, e, "s-rs")
	for i := 0; i < 4; i++ {
		run.chat(300) // the 4th crosses 1,000 tokens
	}
	e.eventually("tokens halt", func() bool { return len(haltsOf(e.Halt, "s-rs")) == 1 })
	e.restart()
	run = newAgentRun(t, e, "s-rs")
	for i := 0; i < 2; i++ {
		run.chat(1)
	}
	time.Sleep(100 * time.Millisecond)
	if got := e.breaches("support-bot"); strings.Contains(got, "steps_per_session") {
		t.Fatalf("6 steps across a restart breached max 6:\n%s", got)
	}
	run.chat(1) // step 7
	e.eventually("steps breach counted across the restart", func() bool {
		return strings.Contains(e.breaches("support-bot"), `steps_per_session s-rs  step 7`)
	})
	e.eventually("the steps breach acted on", func() bool {
		return strings.Contains(e.breaches("support-bot"), `steps_per_session s-rs  step 7 outcome "already_halted"`)
	})
	time.Sleep(100 * time.Millisecond)
	if got := e.breaches("support-bot"); strings.Count(got, "tokens_per_session") != 1 {
		t.Errorf("tokens breached again after the restart:\n%s", got)
	}
	if n := len(haltsOf(e.Halt, "s-rs")); n != 1 {
		t.Errorf("%d halt requests for the session across the restart, want 1", n)
	}
}

// A breach storm: 1,000 sessions crossing within a minute make one
// incident, one page for it and one saying sessions wait for the budget, at
// most one halt per session, no more automatic session halts than
// escalation.max_auto_halts_per_minute, then the overflow policy's default:
// the whole agent halted, so none is left running.
func TestGuardBreachStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 breaches")
	}
	e := guardEnv(t, false, `      - metric: tokens_per_session
        max: 200000
        on_breach: halt_session
`)
	const sessionsN = 1000
	for r := 0; r < sessionsN/100; r++ {
		var spans []string
		for i := 0; i < 100; i++ {
			n := r*100 + i
			spans = append(spans, fmt.Sprintf(`{"traceId":"5b8efff798038103d269b633813f%04x","spanId":"eee19b7ec3c1%04x","name":"chat",
			 "startTimeUnixNano":"1765000000000000000","endTimeUnixNano":"1765000001000000000",
			 "attributes":[{"key":"session.id","value":{"stringValue":"s-storm-%d"}},{"key":"gen_ai.usage.input_tokens","value":{"intValue":"250000"}}]}`, n, n, n))
		}
		body := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"support-bot"}}]},
		  "scopeSpans":[{"spans":[` + strings.Join(spans, ",") + `]}]}]}`
		hdr := http.Header{"Authorization": {"Bearer " + otlpToken}, "Content-Type": {"application/json"}}
		if status, resp := e.do(http.MethodPost, "/v1/traces", hdr, []byte(body)); status != 200 {
			t.Fatalf("export %d: %d %s", r, status, resp)
		}
	}
	e.eventuallyWithin(2*time.Minute, "every breach acted on", func() bool {
		list, err := e.Main.Store.PendingBreaches(context.Background(), 10)
		all, _ := e.Main.Store.FindBreaches(context.Background(), "support-bot", time.Time{}, 0)
		return err == nil && len(list) == 0 && len(all) == sessionsN
	})
	all, _ := e.Main.Store.FindBreaches(context.Background(), "support-bot", time.Time{}, 0)
	outcomes := map[string]int{}
	for _, b := range all {
		outcomes[b.Outcome]++
	}
	if outcomes["halt_session"] == 0 || outcomes["halt_session"] > 20 || outcomes["halt_agent"] != 1 ||
		outcomes["halt_session"]+outcomes["halt_agent"]+outcomes["already_halted"] != sessionsN {
		t.Errorf("outcomes = %v: want at most 20 session halts (max_auto_halts_per_minute), one agent halt (escalation.overflow) and the rest already halted", outcomes)
	}
	perSession := map[string]int{}
	for _, m := range e.Halt.Messages() {
		if m.Action == "halt" {
			for _, s := range m.Sessions {
				perSession[s]++
			}
		}
	}
	for s, n := range perSession {
		if n > 1 {
			t.Errorf("session %s halted %d times", s, n)
		}
	}
	if n := len(incidentChannels(e.Slack)); n != 1 {
		t.Errorf("%d incident channels, want 1", n)
	}
	time.Sleep(200 * time.Millisecond)
	triggers, queuePages := map[string]bool{}, 0
	for _, ev := range e.PD.Events() {
		if ev.Action != "trigger" {
			continue
		}
		if strings.HasSuffix(ev.DedupKey, "/auto-halt-queue") {
			queuePages++
			if ev.Payload == nil || !strings.Contains(ev.Payload.Summary, "breaching sessions of support-bot are waiting") {
				t.Errorf("queue page %+v does not say what waits", ev.Payload)
			}
			continue
		}
		triggers[ev.DedupKey] = true
	}
	if len(triggers) != 1 || queuePages != 1 {
		t.Errorf("pages for %d incidents and %d queue pages, want 1 each", len(triggers), queuePages)
	}
	// The channel hears of the halts and of the limit once, not of each of
	// the 980 sessions left running.
	if msgs := e.Slack.Messages(incidentChannels(e.Slack)[0].ID); len(msgs) > 40 {
		t.Errorf("%d messages in the incident channel, want the halts and one note of the limit", len(msgs))
	}
}
