package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/integrations/halt/halttest"
)

// Issue 23: telemetry reins can act on. Two agents, alpha and beta, each
// with its own OTLP token, its own halt endpoint and SLAs that halt.
const (
	alphaToken = "alpha-otlp-token"
	betaToken  = "beta-otlp-token"
)

const telemetryYAML = `slack:
  channel_prefix: inc
  governance_channel: agent-governance
teams:
  support-ai:
    slack_channel: support-ai
    slack_usergroup: S0SUPPORTAI
    pagerduty:
      routing_key_env: PD_SUPPORT_AI_KEY
      escalation_policy: PABC123
agents:
  alpha:
    team: support-ai
    kill_authority: {users: [U01ALICE]}
    halt: {adapter: webhook, url: "{{ALPHA_URL}}", secret_env: SUPPORT_BOT_HALT_SECRET, confirm: false}
    telemetry:
      token_env: [ALPHA_OTLP_TOKEN, ALPHA_OTLP_TOKEN_NEXT]
    slas:
      - metric: tokens_per_session
        max: 1000
        on_breach: halt_session
  beta:
    team: support-ai
    kill_authority: {users: [U01ALICE]}
    halt: {adapter: webhook, url: "{{BETA_URL}}", secret_env: SUPPORT_BOT_HALT_SECRET, confirm: false}
    telemetry:
      token_env: BETA_OTLP_TOKEN
    slas:
      - metric: tokens_per_session
        max: 1000
        on_breach: halt_session
      - metric: tool_scope
        allow: ["search.*"]
        on_breach: halt_agent
`

// twoAgents runs reins with alpha and beta; env adds to or overrides the
// environment (REINS_OTLP_TOKEN is not set unless env sets it).
type twoAgents struct {
	*testEnv
	alpha, beta *halttest.Webhook
}

func startTwoAgents(t *testing.T, pg bool, env map[string]string) *twoAgents {
	t.Helper()
	alpha, beta := halttest.NewWebhook(t, haltSecret), halttest.NewWebhook(t, haltSecret)
	yaml := strings.NewReplacer("{{ALPHA_URL}}", alpha.URL(), "{{BETA_URL}}", beta.URL()).Replace(telemetryYAML)
	path := filepath.Join(t.TempDir(), "reins.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"ALPHA_OTLP_TOKEN": alphaToken, "ALPHA_OTLP_TOKEN_NEXT": alphaToken + "-next", "BETA_OTLP_TOKEN": betaToken}
	for k, v := range env {
		all[k] = v
	}
	e := startTestMain(t, testOptions{Postgres: pg, Config: path, Halt: alpha, Env: all})
	return &twoAgents{testEnv: e, alpha: alpha, beta: beta}
}

// otlpSpan is one span as an exporter sends it, in OTLP/JSON.
type otlpSpan struct {
	service, session, tool string
	tokens                 int
	start                  time.Time
}

var spanSeq atomic.Uint64

// sendSpans posts spans in one OTLP/JSON request with the bearer token and
// returns the status and the decoded answer.
func (e *testEnv) sendSpans(token string, spans ...otlpSpan) (int, string) {
	e.t.Helper()
	var rs []string
	for _, sp := range spans {
		start := sp.start
		if start.IsZero() {
			start = time.Now()
		}
		seq := spanSeq.Add(1)
		attrs := []string{fmt.Sprintf(`{"key":"session.id","value":{"stringValue":%q}}`, sp.session)}
		if sp.tool != "" {
			attrs = append(attrs, `{"key":"gen_ai.operation.name","value":{"stringValue":"execute_tool"}}`,
				fmt.Sprintf(`{"key":"gen_ai.tool.name","value":{"stringValue":%q}}`, sp.tool))
		} else {
			attrs = append(attrs, `{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}}`,
				fmt.Sprintf(`{"key":"gen_ai.usage.input_tokens","value":{"intValue":"%d"}}`, sp.tokens))
		}
		rs = append(rs, fmt.Sprintf(`{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":%q}}]},
		  "scopeSpans":[{"spans":[{"traceId":"%032x","spanId":"%016x","name":"span",
		   "startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":[%s]}]}]}`,
			sp.service, seq, seq, start.UnixNano(), start.Add(time.Second).UnixNano(), strings.Join(attrs, ",")))
	}
	body := `{"resourceSpans":[` + strings.Join(rs, ",") + `]}`
	hdr := http.Header{"Authorization": {"Bearer " + token}, "Content-Type": {"application/json"}}
	status, resp := e.do(http.MethodPost, "/v1/traces", hdr, []byte(body))
	return status, string(resp)
}

// sessionOf reads agent's session id through the agent-scoped API route.
func (e *testEnv) sessionOf(agent, id string) (sessions.Record, int) {
	e.t.Helper()
	status, body := e.api(http.MethodGet, "/agents/"+agent+"/sessions/"+id, nil)
	var rec sessions.Record
	if status == http.StatusOK {
		if err := json.Unmarshal(body, &rec); err != nil {
			e.t.Fatalf("decode session: %v", err)
		}
	}
	return rec, status
}

// listed returns the IDs GET /api/v1/agents/{agent}/sessions?since= lists.
func (e *testEnv) listed(agent, since string) []string {
	e.t.Helper()
	status, body := e.api(http.MethodGet, "/agents/"+agent+"/sessions?since="+since, nil)
	if status != http.StatusOK {
		e.t.Fatalf("list sessions of %s: %d %s", agent, status, body)
	}
	var d struct{ Sessions []sessions.Totals }
	if err := json.Unmarshal(body, &d); err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, s := range d.Sessions {
		ids = append(ids, s.Session)
	}
	return ids
}

// killFlag polls agent's kill flag; query is the raw session parameter,
// "-" for none (the whole agent).
func (e *testEnv) killFlag(agent, query string) (int, string) {
	e.t.Helper()
	path := "/api/v1/agents/" + agent + "/halted"
	if query != "-" {
		path += "?session=" + query
	}
	status, body := e.do(http.MethodGet, path, nil, nil)
	return status, string(body)
}

func eachStore(t *testing.T, fn func(t *testing.T, pg bool)) {
	for _, store := range []struct {
		name string
		pg   bool
	}{{"SQLite", false}, {"PostgreSQL", true}} {
		t.Run(store.name, func(t *testing.T) { fn(t, store.pg) })
	}
}

// Acceptance 1: agent alpha's token cannot make reins store, judge or halt
// anything of beta: forged tokens-per-session and tool-scope spans for beta
// are rejected, beta's halt endpoint receives nothing, its kill flag stays
// down. Beta's own token, sent the same spans, halts it: the forgery was
// refused for the token, not for the spans.
func TestTelemetryTokenCannotTouchAnotherAgent(t *testing.T) {
	eachStore(t, func(t *testing.T, pg bool) {
		e := startTwoAgents(t, pg, nil)
		status, resp := e.sendSpans(alphaToken,
			otlpSpan{service: "beta", session: "b-forged", tokens: 5000},
			otlpSpan{service: "beta", session: "b-forged", tool: "shell.exec"},
			otlpSpan{service: "alpha", session: "a-own", tokens: 10})
		if status != http.StatusOK || !strings.Contains(resp, `"rejectedSpans":"2"`) ||
			!strings.Contains(resp, "2 spans of agent beta refused: the token (ALPHA_OTLP_TOKEN) does not cover beta") {
			t.Fatalf("alpha's token sending beta's spans: %d %s; want both rejected in partial_success naming beta", status, resp)
		}
		if strings.Contains(resp, alphaToken) {
			t.Errorf("the answer echoes the token: %s", resp)
		}
		if status, resp := e.sendSpans(alphaToken+"-wrong", otlpSpan{service: "alpha", session: "a-own", tokens: 1}); status != http.StatusUnauthorized {
			t.Errorf("a wrong token: %d %s, want 401", status, resp)
		}
		// The next token of a rotation covers the same agents, no more.
		if status, resp := e.sendSpans(alphaToken+"-next", otlpSpan{service: "alpha", session: "a-own", tokens: 1},
			otlpSpan{service: "beta", session: "b-forged", tokens: 5000}); status != http.StatusOK ||
			!strings.Contains(resp, `"rejectedSpans":"1"`) || !strings.Contains(resp, "ALPHA_OTLP_TOKEN_NEXT") {
			t.Errorf("alpha's next token: %d %s, want alpha's span stored and beta's rejected", status, resp)
		}
		if rec, status := e.sessionOf("alpha", "a-own"); status != http.StatusOK || rec.Totals.Steps != 2 {
			t.Errorf("alpha's own spans: %d %+v, want 2 stored", status, rec.Totals)
		}
		time.Sleep(200 * time.Millisecond) // what a wrongly admitted span would have set off
		if ids := e.listed("beta", "24h"); len(ids) != 0 {
			t.Errorf("beta's sessions after forged spans: %v, want none stored", ids)
		}
		if _, status := e.sessionOf("beta", "b-forged"); status != http.StatusNotFound {
			t.Errorf("GET beta's forged session: %d, want 404", status)
		}
		if got := e.breaches("beta"); got != "" {
			t.Errorf("forged spans were judged:\n%s", got)
		}
		if msgs := e.beta.Messages(); len(msgs) != 0 {
			t.Errorf("beta's halt endpoint received %+v, want nothing", msgs)
		}
		for _, session := range []string{"-", "b-forged"} {
			if status, body := e.killFlag("beta", session); status != http.StatusOK || !strings.Contains(body, `"halted":false`) {
				t.Errorf("beta's kill flag (session %q): %d %s, want down", session, status, body)
			}
		}
		if got := e.metric(`reins_otlp_spans_dropped_total{reason="token_scope"}`); got != 3 {
			t.Errorf("spans dropped for token scope = %v, want 3", got)
		}

		// Beta's own token: the tool outside its scope halts the agent.
		if status, resp := e.sendSpans(betaToken, otlpSpan{service: "beta", session: "b-real", tool: "shell.exec"}); status != http.StatusOK || strings.Contains(resp, "rejected") {
			t.Fatalf("beta's own token: %d %s", status, resp)
		}
		e.eventually("beta halted by its own tool_scope breach", func() bool {
			for _, m := range e.beta.Messages() {
				if m.Action == "halt" && m.Agent == "beta" && len(m.Sessions) == 0 {
					return true
				}
			}
			return false
		})
		if msgs := e.alpha.Messages(); len(msgs) != 0 {
			t.Errorf("alpha's halt endpoint received %+v, want nothing", msgs)
		}
	})
}

// Acceptance 2: alpha and beta both send session victim-77: two sessions,
// each with its own totals, each breaching and halted on its own. A person
// naming the ID without an agent is asked which.
func TestTelemetrySameSessionIDTwoAgents(t *testing.T) {
	eachStore(t, func(t *testing.T, pg bool) {
		e := startTwoAgents(t, pg, nil)
		for _, s := range []struct {
			token, agent string
			tokens       int
		}{{betaToken, "beta", 700}, {alphaToken, "alpha", 600}} {
			if status, resp := e.sendSpans(s.token, otlpSpan{service: s.agent, session: "victim-77", tokens: s.tokens}); status != http.StatusOK ||
				strings.Contains(resp, "rejected") {
				t.Fatalf("%s's span for victim-77: %d %s, want stored", s.agent, status, resp)
			}
		}
		for agent, want := range map[string]int64{"alpha": 600, "beta": 700} {
			rec, status := e.sessionOf(agent, "victim-77")
			if status != http.StatusOK || rec.Totals.Agent != agent || rec.Totals.InputTokens != want || rec.Totals.Steps != 1 {
				t.Errorf("%s's victim-77: %d %+v, want its own %d tokens", agent, status, rec.Totals, want)
			}
		}
		// Named without its agent, the ID is ambiguous: reins asks.
		status, body := e.api(http.MethodGet, "/sessions/victim-77", nil)
		if status != http.StatusConflict || !strings.Contains(string(body), `"alpha"`) || !strings.Contains(string(body), `"beta"`) {
			t.Errorf("GET /api/v1/sessions/victim-77: %d %s, want 409 listing alpha and beta", status, body)
		}
		if status, body := e.api(http.MethodGet, "/sessions/victim-77?agent=beta", nil); status != http.StatusOK ||
			!strings.Contains(string(body), `"input_tokens": 700`) {
			t.Errorf("GET /api/v1/sessions/victim-77?agent=beta: %d %s", status, body)
		}
		code, out, errOut := cli(t, e.env, "session", "victim-77")
		if code == 0 || !strings.Contains(out+errOut, "alpha, beta") || !strings.Contains(out+errOut, "--agent") {
			t.Errorf("reins session victim-77: exit %d\n%s%s\nwant a refusal listing the agents and --agent", code, out, errOut)
		}
		if code, out, errOut := cli(t, e.env, "session", "--agent", "alpha", "--format", "json", "victim-77"); code != 0 ||
			!strings.Contains(out, `"input_tokens": 600`) {
			t.Errorf("reins session --agent alpha victim-77: exit %d\n%s%s", code, out, errOut)
		}
		e.slash(alice, "C0LEADS", "session victim-77")
		e.eventually("/agent session asks which agent", func() bool {
			for _, r := range e.Slack.Responses() {
				if strings.Contains(r.Text+string(r.Blocks), "alpha, beta") {
					return true
				}
			}
			return false
		})
		e.slash(alice, "C0LEADS", "session beta victim-77")
		e.eventually("/agent session beta victim-77 shows beta's", func() bool {
			for _, r := range e.Slack.Responses() {
				if strings.Contains(r.Text+string(r.Blocks), "Session victim-77 of beta") {
					return true
				}
			}
			return false
		})

		// Alpha crosses 1,000 tokens: only alpha's session is halted.
		e.sendSpans(alphaToken, otlpSpan{service: "alpha", session: "victim-77", tokens: 500})
		e.eventually("alpha's victim-77 halted", func() bool { return len(haltsOf(e.alpha, "victim-77")) == 1 })
		time.Sleep(200 * time.Millisecond)
		if n := len(haltsOf(e.beta, "victim-77")); n != 0 {
			t.Fatalf("beta's victim-77 halted by alpha's breach: %d requests", n)
		}
		if status, body := e.killFlag("beta", "victim-77"); !strings.Contains(body, `"halted":false`) {
			t.Errorf("beta's victim-77 flag after alpha's halt: %d %s, want down", status, body)
		}
		// Beta crosses on its own total (700 + 400), not alpha's.
		e.sendSpans(betaToken, otlpSpan{service: "beta", session: "victim-77", tokens: 250})
		time.Sleep(200 * time.Millisecond)
		if n := len(haltsOf(e.beta, "victim-77")); n != 0 {
			t.Fatalf("beta halted at 950 tokens of its own: %d requests", n)
		}
		e.sendSpans(betaToken, otlpSpan{service: "beta", session: "victim-77", tokens: 150})
		e.eventually("beta's victim-77 halted", func() bool { return len(haltsOf(e.beta, "victim-77")) == 1 })
		for _, agent := range []string{"alpha", "beta"} {
			if got := e.breaches(agent); strings.Count(got, "tokens_per_session victim-77") != 1 {
				t.Errorf("%s's breaches:\n%s\nwant one of its own victim-77", agent, got)
			}
		}
		if n := len(haltsOf(e.alpha, "victim-77")); n != 1 {
			t.Errorf("alpha's victim-77 halted %d times, want once", n)
		}
	})
}

// Acceptance 6: arrival time decides. Spans stamped 1970 and 2100 arrive
// now: both are listed by since=1h, and retention keeps both until they are
// older than the retention by arrival, then deletes both.
func TestTelemetryArrivalTimeDecides(t *testing.T) {
	eachStore(t, func(t *testing.T, pg bool) {
		e := startTwoAgents(t, pg, nil)
		past := time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC)
		future := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
		before := time.Now()
		if status, resp := e.sendSpans(alphaToken,
			otlpSpan{service: "alpha", session: "s-1970", tokens: 1, start: past},
			otlpSpan{service: "alpha", session: "s-2100", tokens: 1, start: future}); status != http.StatusOK || strings.Contains(resp, "rejected") {
			t.Fatalf("send: %d %s", status, resp)
		}
		got := e.listed("alpha", "1h")
		if len(got) != 2 || !containsAll(got, "s-1970", "s-2100") {
			t.Errorf("since=1h lists %v, want s-1970 and s-2100 (they arrived just now)", got)
		}
		rec, _ := e.sessionOf("alpha", "s-1970")
		if rec.Totals.Last.Before(before.Add(-time.Second)) || rec.Totals.First.Before(before.Add(-time.Second)) {
			t.Errorf("s-1970 first/last seen %v/%v, want its arrival (after %v)", rec.Totals.First, rec.Totals.Last, before)
		}
		if len(rec.Steps) != 1 || !rec.Steps[0].Start.Equal(past) {
			t.Errorf("s-1970's step: %+v, want the agent's clock (1970) shown", rec.Steps)
		}
		ctx := context.Background()
		n, err := e.Main.Sessions.EnforceRetention(ctx, time.Now())
		if err != nil || n != 0 {
			t.Errorf("retention now removed %d sessions (%v), want none: both arrived just now", n, err)
		}
		if got := e.listed("alpha", "1h"); len(got) != 2 {
			t.Errorf("after retention now: %v, want both kept", got)
		}
		retention := e.Main.Registry.Current().Agent("alpha").Sessions.Retention
		n, err = e.Main.Sessions.EnforceRetention(ctx, time.Now().Add(retention+time.Hour))
		if err != nil || n != 2 {
			t.Errorf("retention past %v removed %d sessions (%v), want both", retention, n, err)
		}
	})
}

func containsAll(list []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, l := range list {
			found = found || l == w
		}
		if !found {
			return false
		}
	}
	return true
}

// Item 7: a malformed or empty session on the kill flag is 400, never
// halted:false; verbose readiness needs the API token.
func TestTelemetrySmallOnes(t *testing.T) {
	e := startTwoAgents(t, false, nil)
	for _, q := range []string{"%00x", "", "a%0Ab", strings.Repeat("x", 257)} {
		if status, body := e.killFlag("alpha", q); status != http.StatusBadRequest || strings.Contains(body, "halted") {
			t.Errorf("kill flag ?session=%.20s: %d %s, want 400", q, status, body)
		}
	}
	if status, body := e.killFlag("alpha", "ok-1"); status != http.StatusOK {
		t.Errorf("kill flag of a good session: %d %s", status, body)
	}
	status, body := e.do(http.MethodGet, "/readyz?verbose=1", nil, nil)
	if status != http.StatusUnauthorized || strings.Contains(string(body), "127.0.0.1") || strings.Contains(string(body), "SECRET") {
		t.Errorf("/readyz?verbose=1 without a token: %d %s, want 401 and no detail", status, body)
	}
	if status, _ := e.do(http.MethodGet, "/readyz", nil, nil); status != http.StatusOK {
		t.Errorf("/readyz: %d, want open for probes", status)
	}
	status, body = e.do(http.MethodGet, "/readyz?verbose=1", http.Header{"Authorization": {"Bearer " + apiToken}}, nil)
	if status != http.StatusOK || !strings.Contains(string(body), "per-agent tokens for 2 of 2 agents") {
		t.Errorf("/readyz?verbose=1 with the API token: %d %s, want the OTLP mode", status, body)
	}
}

// The modes `reins doctor` reports, and `reins validate` warning about the
// all-agents token (so --strict fails on it).
func TestTelemetryModes(t *testing.T) {
	e := startTwoAgents(t, false, map[string]string{"REINS_OTLP_TOKEN": otlpToken})
	code, out, errOut := cli(t, e.env, "doctor")
	if !strings.Contains(out, "per-agent tokens for 2 of 2 agents; all-agents token REINS_OTLP_TOKEN set") {
		t.Errorf("reins doctor: exit %d\n%s%s\nwant both modes named", code, out, errOut)
	}
	if strings.Contains(out+errOut, alphaToken) || strings.Contains(out+errOut, otlpToken) {
		t.Error("reins doctor printed a token")
	}
	code, out, errOut = cli(t, e.env, "validate", "--strict")
	if code == 0 || !strings.Contains(out, "REINS_OTLP_TOKEN is set: it admits spans of every agent, so its holder can make reins halt any agent") {
		t.Errorf("reins validate --strict with REINS_OTLP_TOKEN: exit %d\n%s%s", code, out, errOut)
	}
	// The all-agents token admits any agent's spans.
	if status, resp := e.sendSpans(otlpToken, otlpSpan{service: "beta", session: "b-gw", tokens: 1}); status != http.StatusOK || strings.Contains(resp, "rejected") {
		t.Errorf("all-agents token: %d %s", status, resp)
	}

	none := map[string]string{}
	for k, v := range e.env {
		none[k] = v
	}
	delete(none, "REINS_OTLP_TOKEN")
	none["ALPHA_OTLP_TOKEN"], none["ALPHA_OTLP_TOKEN_NEXT"], none["BETA_OTLP_TOKEN"] = "", "", ""
	code, out, _ = cli(t, none, "doctor")
	if code == 0 || !strings.Contains(out, "no token: REINS_OTLP_TOKEN is not set: every span sent to /v1/traces is refused") {
		t.Errorf("reins doctor without tokens: exit %d\n%s", code, out)
	}
}
