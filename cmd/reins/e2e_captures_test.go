package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/reins-oss/reins/incidents/guard"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/integrations/halt/halttest"
)

// captureDir holds what real GenAI instrumentations sent
// (integrations/otlp/testdata/capture/README.md).
const captureDir = "../../integrations/otlp/testdata/capture/requests"

type captureReq struct {
	File        string `json:"file"`
	ContentType string `json:"content_type"`
	body        []byte
}

func readCapture(t *testing.T, name string) []captureReq {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(captureDir, name, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var reqs []captureReq
	if err := json.Unmarshal(b, &reqs); err != nil {
		t.Fatal(err)
	}
	for i := range reqs {
		if reqs[i].body, err = os.ReadFile(filepath.Join(captureDir, name, reqs[i].File)); err != nil {
			t.Fatal(err)
		}
	}
	return reqs
}

// telemetryEnv starts reins with support-bot's SLAs replaced by slas and
// extra top-level YAML appended.
func telemetryEnv(t *testing.T, pg bool, slas, extra string, logTo *syncBuffer) *testEnv {
	t.Helper()
	hook := halttest.NewWebhook(t, haltSecret)
	tmpl, err := os.ReadFile("testdata/reins.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.ReplaceAll(string(tmpl), "{{HALT_URL}}", hook.URL())
	if slas != "" {
		if !strings.Contains(yaml, templateSLAs) {
			t.Fatal("testdata/reins.yaml.tmpl no longer holds the SLA block this test replaces")
		}
		yaml = strings.Replace(yaml, templateSLAs, "    slas:\n"+slas, 1)
	}
	yaml += "\n" + extra
	path := filepath.Join(t.TempDir(), "reins.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	o := testOptions{Postgres: pg, Config: path, Halt: hook, Env: map[string]string{"REINS_OTLP_TOKEN": otlpToken,
		"REINS_WEB_AUTH": "proxy", "REINS_WEB_USER_HEADER": "X-Forwarded-Email", "REINS_WEB_TRUSTED_PROXIES": "127.0.0.1, ::1"}}
	if logTo != nil {
		o.LogTo = logTo
	}
	return startTestMain(t, o)
}

// export posts one OTLP request as its exporter did and returns the
// partial_success answer.
func (e *testEnv) export(ct string, body []byte) (rejected int64, msg string) {
	e.t.Helper()
	st, out := e.do(http.MethodPost, "/v1/traces", http.Header{"Content-Type": {ct}, "Authorization": {"Bearer " + otlpToken}}, body)
	if st != http.StatusOK {
		e.t.Fatalf("POST /v1/traces: %d %s", st, out)
	}
	resp := ptraceotlp.NewExportResponse()
	var err error
	if ct == "application/json" {
		err = resp.UnmarshalJSON(out)
	} else {
		err = resp.UnmarshalProto(out)
	}
	if err != nil {
		e.t.Fatalf("answer %q: %v", out, err)
	}
	return resp.PartialSuccess().RejectedSpans(), resp.PartialSuccess().ErrorMessage()
}

// Acceptance 2: OpenTelemetry's instrumentation with gen_ai.conversation.id
// on the root span only. The children arrive first and wait; the root
// arrives 5 s later (the batch processor's delay) and the session, now
// known, crosses tokens_per_session (5,700 > 5,000 at turn 10): halted
// within 500 ms of the root's arrival.
func TestCaptureRootOnlySessionHaltedWhenTheRootArrives(t *testing.T) {
	for _, store := range []struct {
		name string
		pg   bool
	}{{"SQLite", false}, {"PostgreSQL", true}} {
		t.Run(store.name, func(t *testing.T) {
			e := telemetryEnv(t, store.pg, `      - metric: tokens_per_session
        max: 5000
        on_breach: halt_session
`, "", nil)
			reqs := readCapture(t, "otel-genai")
			if n, msg := e.export(reqs[0].ContentType, reqs[0].body); n != 0 {
				t.Fatalf("children refused: %d: %s", n, msg)
			}
			time.Sleep(5 * time.Second)
			if n := len(haltsOf(e.Halt, "sess-otel-1")); n != 0 {
				t.Fatalf("halted before the root named the session: %d", n)
			}
			sent := time.Now()
			if n, msg := e.export(reqs[1].ContentType, reqs[1].body); n != 0 {
				t.Fatalf("root refused: %d: %s", n, msg)
			}
			var took time.Duration
			for took = time.Since(sent); len(haltsOf(e.Halt, "sess-otel-1")) == 0; took = time.Since(sent) {
				if took > 5*time.Second {
					t.Fatalf("no halt 5 s after the root arrived; breaches:\n%s", e.breaches("support-bot"))
				}
				time.Sleep(time.Millisecond)
			}
			if took > 500*time.Millisecond {
				t.Errorf("root's arrival to halt request took %v, want at most 500 ms", took)
			}
			t.Logf("root's arrival to the signed halt request: %v", took)
			rec, err := e.Main.Sessions.Session(context.Background(), "", "sess-otel-1")
			if err != nil {
				t.Fatal(err)
			}
			if rec.Totals.Steps != 21 || rec.Totals.InputTokens != 5500 || rec.Totals.ToolCalls != 9 || rec.Totals.Errors != 1 {
				t.Errorf("totals = %+v, want 21 steps, 5,500 input tokens, 9 tool calls, 1 error", rec.Totals)
			}
			// The crossing step is turn 10's model call: the same number
			// in the breach (alert, page, Slack) and the web view.
			if got := e.breaches("support-bot"); !strings.Contains(got, "tokens_per_session sess-otel-1") {
				t.Errorf("breaches:\n%s", got)
			}
			e.sameStepNumber("sess-otel-1")
		})
	}
}

// Acceptance 2: a tool call outside tool_scope from the OpenLLMetry and
// Vercel AI SDK captures (delete_account) halts its session.
func TestCaptureToolOutsideScopeHalts(t *testing.T) {
	for _, c := range []struct{ capture, session string }{
		{"openllmetry", "sess-openllmetry-1"}, {"vercel-ai", "sess-vercel-1"},
	} {
		for _, store := range []struct {
			name string
			pg   bool
		}{{"SQLite", false}, {"PostgreSQL", true}} {
			t.Run(c.capture+"/"+store.name, func(t *testing.T) {
				e := telemetryEnv(t, store.pg, `      - metric: tool_scope
        allow: [get_order, search_docs]
        on_breach: halt_session
`, "", nil)
				for _, q := range readCapture(t, c.capture) {
					if n, msg := e.export(q.ContentType, q.body); n != 0 {
						t.Fatalf("%s: %d spans refused: %s", q.File, n, msg)
					}
				}
				e.eventually("halt of "+c.session, func() bool { return len(haltsOf(e.Halt, c.session)) == 1 })
				if got := e.breaches("support-bot"); !strings.Contains(got, "tool_scope "+c.session+" delete_account") {
					t.Errorf("breaches:\n%s", got)
				}
				e.sameStepNumber(c.session)
			})
		}
	}
}

// spansJSON is an OTLP JSON request of n spans from service, each of its
// own trace, with a session attribute when session is not "".
func spansJSON(service, session string, n int, traceSeed byte) []byte {
	var spans []string
	for i := 0; i < n; i++ {
		attrs := `[{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}}`
		if session != "" {
			attrs += `,{"key":"gen_ai.conversation.id","value":{"stringValue":"` + session + `"}}`
		}
		attrs += `]`
		trace := strings.Repeat(string("0123456789abcdef"[traceSeed%16]), 30) + string("0123456789abcdef"[i/16]) + string("0123456789abcdef"[i%16])
		span := "10000000000000" + string("0123456789abcdef"[i/16]) + string("0123456789abcdef"[i%16])
		spans = append(spans, `{"traceId":"`+trace+`","spanId":"`+span+`","name":"chat","startTimeUnixNano":"1765000000000000000","endTimeUnixNano":"1765000000100000000","attributes":`+attrs+`}`)
	}
	return []byte(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"` + service +
		`"}}]},"scopeSpans":[{"spans":[` + strings.Join(spans, ",") + `]}]}]}`)
}

// Acceptance 3: spans of an agent reins.yaml does not name, and spans
// whose trace never names a session, are refused visibly: partial_success,
// a warn log (once per agent and reason a minute), reins doctor, the agents
// page, and reins session for the session they named.
func TestRefusedSpansAreReported(t *testing.T) {
	for _, c := range []struct {
		name, extra string
		held        bool // hold enabled: the missing session is refused after the wait
	}{
		{"hold off", "telemetry:\n  hold:\n    max_spans: 0\n", false},
		{"after the wait", "telemetry:\n  hold:\n    max_age: 1s\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs := &syncBuffer{}
			e := telemetryEnv(t, false, "", c.extra, logs)
			n, msg := e.export("application/json", spansJSON("mystery-bot", "s-mystery", 7, 1))
			if n != 7 || !strings.Contains(msg, "unknown_agent") || !strings.Contains(msg, "mystery-bot") {
				t.Errorf("unknown agent: partial_success %d %q, want 7 spans, unknown_agent, mystery-bot", n, msg)
			}
			// The same again within the minute: counted, not logged again.
			e.export("application/json", spansJSON("mystery-bot", "s-mystery", 7, 2))
			n, msg = e.export("application/json", spansJSON("support-bot", "", 3, 3))
			if c.held {
				if n != 0 {
					t.Errorf("session-less spans refused before the wait: %d %q", n, msg)
				}
				time.Sleep(1100 * time.Millisecond)
				if err := e.Main.sweepHeldSpans(context.Background()); err != nil {
					t.Fatal(err)
				}
			} else if n != 3 || !strings.Contains(msg, "no_session") || !strings.Contains(msg, "support-bot") {
				t.Errorf("no session: partial_success %d %q, want 3 spans, no_session, support-bot", n, msg)
			}
			log := logs.String()
			if k := strings.Count(log, `"reason":"unknown_agent"`); k != 1 || !strings.Contains(log, `"agent":"mystery-bot"`) {
				t.Errorf("warn log has %d unknown_agent lines for mystery-bot, want 1:\n%s", k, log)
			}
			if k := strings.Count(log, `"reason":"no_session"`); k != 1 {
				t.Errorf("warn log has %d no_session lines, want 1:\n%s", k, log)
			}
			env := map[string]string{"REINS_DATABASE_URL": e.DBURL, "REINS_CONFIG": e.env["REINS_CONFIG"]}
			code, out, _ := cli(t, env, "doctor")
			if code != 1 || !strings.Contains(out, "14 spans from service `mystery-bot`, not in reins.yaml, in the last hour") ||
				!strings.Contains(out, "3 spans of support-bot refused in the last hour: no session") {
				t.Errorf("doctor: exit %d, want 1 with both refusals:\n%s", code, out)
			}
			st, body := e.do(http.MethodGet, "/readyz?verbose=1", http.Header{"Authorization": {"Bearer " + apiToken}}, nil)
			if st != http.StatusOK || !strings.Contains(string(body), "mystery-bot") || !strings.Contains(string(body), "no session") {
				t.Errorf("/readyz?verbose=1: %d %s", st, body)
			}
			st, body = e.do(http.MethodGet, "/agents", http.Header{"X-Forwarded-Email": {"alice@example.com"}}, nil)
			page := string(body)
			if st != http.StatusOK || !strings.Contains(page, "14 spans from service `mystery-bot`, not in reins.yaml, in the last hour") ||
				!strings.Contains(page, "3 spans of support-bot refused") {
				t.Errorf("agents page: %d, lacks the refusals:\n%s", st, page)
			}
			code, out, errOut := cli(t, env, "session", "s-mystery")
			if code == 0 || !strings.Contains(out+errOut, "spans naming it were refused: 14 spans from mystery-bot") ||
				!strings.Contains(out+errOut, "agent not in reins.yaml") {
				t.Errorf("reins session s-mystery: exit %d:\n%s%s", code, out, errOut)
			}
		})
	}
}

// sameStepNumber checks that the crossing step of each breach of session
// has the breach's number in the alert's reason, the web view's row, the
// Slack/CLI timeline and the API, though the root span (which started
// first) arrived after it.
func (e *testEnv) sameStepNumber(session string) {
	e.t.Helper()
	ctx := context.Background()
	list, err := e.Main.Store.SessionBreaches(ctx, "support-bot", session)
	if err != nil || len(list) == 0 {
		e.t.Fatalf("breaches of %s: %v, %v", session, list, err)
	}
	b := list[0]
	if !strings.Contains(guard.Reason(b), fmt.Sprintf("at step %d", b.StepN)) {
		e.t.Errorf("reason %q lacks step %d", guard.Reason(b), b.StepN)
	}
	st, body := e.do(http.MethodGet, "/sessions/"+session+"?page="+fmt.Sprint((b.StepN-1)/200+1), http.Header{"X-Forwarded-Email": {"alice@example.com"}}, nil)
	row := regexp.MustCompile(`<tr class="bad"><td class="num">(\d+)</td>(?:[^\n]*?)SLA breach: ` + regexp.QuoteMeta(b.SLA))
	m := row.FindSubmatch(body)
	if st != http.StatusOK || m == nil || string(m[1]) != fmt.Sprint(b.StepN) {
		e.t.Errorf("web view: breach %s at step %d; the row marked is %q (status %d)", b.SLA, b.StepN, m, st)
	}
	rec, err := e.Main.Sessions.Session(ctx, "", session)
	if err != nil {
		e.t.Fatal(err)
	}
	entries, _ := sessions.Timeline(rec, e.Main.Registry.Current().Agent("support-bot"), 0)
	for _, en := range entries {
		if en.Step.SpanID == b.Step && int64(en.N) != b.StepN {
			e.t.Errorf("timeline (Slack, reins session) numbers the crossing step %d, the breach %d", en.N, b.StepN)
		}
	}
	_, api := e.api(http.MethodGet, "/sessions/"+session, nil)
	var got sessions.Record
	_ = json.Unmarshal(api, &got)
	for _, s := range got.Steps {
		if s.SpanID == b.Step && s.N != b.StepN {
			e.t.Errorf("API gives the crossing step n=%d, the breach %d", s.N, b.StepN)
		}
	}
	last := int64(0)
	for _, s := range got.Steps {
		last = max(last, s.N)
	}
	if last != rec.Totals.Steps {
		e.t.Errorf("steps numbered up to %d, the session has %d", last, rec.Totals.Steps)
	}
}

// One request holding a tool_scope crossing listed first but started later
// than a tokens_per_session crossing: steps are judged in the order they
// happened, so the earlier crossing (tokens) acts and the later one finds
// the session already halted.
func TestFirstCrossingActs(t *testing.T) {
	e := telemetryEnv(t, false, `      - metric: tokens_per_session
        max: 1000
        on_breach: halt_session
      - metric: tool_scope
        allow: [get_order]
        on_breach: halt_session
`, "", nil)
	span := func(id string, startMS int, attrs string) string {
		start := 1765000000000 + startMS
		return `{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"` + id + `","name":"s","startTimeUnixNano":"` +
			fmt.Sprint(start) + `000000","endTimeUnixNano":"` + fmt.Sprint(start+10) + `000000","attributes":[` +
			`{"key":"gen_ai.conversation.id","value":{"stringValue":"s-order"}},` + attrs + `]}`
	}
	body := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"support-bot"}}]},
	  "scopeSpans":[{"spans":[` +
		span("00000000000000a3", 300, `{"key":"gen_ai.tool.name","value":{"stringValue":"delete_account"}}`) + `,` +
		span("00000000000000a1", 100, `{"key":"gen_ai.usage.input_tokens","value":{"intValue":"600"}}`) + `,` +
		span("00000000000000a2", 200, `{"key":"gen_ai.usage.input_tokens","value":{"intValue":"600"}}`) + `]}]}]}`
	if n, msg := e.export("application/json", []byte(body)); n != 0 {
		t.Fatalf("refused %d: %s", n, msg)
	}
	e.eventually("both breaches acted on", func() bool {
		got := e.breaches("support-bot")
		return strings.Count(got, `outcome ""`) == 0 && strings.Count(got, "\n") == 2
	})
	got := e.breaches("support-bot")
	if !strings.Contains(got, `tokens_per_session s-order  step 2 outcome "halt_session"`) ||
		!strings.Contains(got, `tool_scope s-order delete_account step 3 outcome "already_halted"`) {
		t.Errorf("breaches:\n%s\nwant tokens_per_session at step 2 halting, tool_scope at step 3 already_halted", got)
	}
}
