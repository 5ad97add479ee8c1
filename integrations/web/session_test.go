package web_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/integrations/web"
)

// fakeSessions is a SessionSource holding sessions by ID.
type fakeSessions map[string]*web.SessionView

func (f fakeSessions) Session(ctx context.Context, agent, id string) (*web.SessionView, error) {
	if s, ok := f[agent+"/"+id]; ok {
		return s, nil
	}
	if agent == "" && f[id] == nil && (f["alpha/"+id] != nil || f["beta/"+id] != nil) {
		return nil, &sessions.AmbiguousError{ID: id, Agents: []string{"alpha", "beta"}}
	}
	if s, ok := f[id]; ok {
		return s, nil
	}
	return nil, incidents.Errorf(incidents.ENOTFOUND, "No session %q is recorded.", id)
}

// FakeSession is a support-bot session of n steps, one second apart: model
// calls, Salesforce writes every fifth step, an error at step 7 and the
// token SLA crossed at step 9.
func fakeSession(id string, n int) *web.SessionView {
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	s := &web.SessionView{ID: id, Agent: "support-bot", Status: "halted", Start: t0, Incident: 1}
	for i := range n {
		st := web.StepView{Start: t0.Add(time.Duration(i) * time.Second), Duration: 800 * time.Millisecond,
			Kind: "llm", Name: "chat", Model: "gpt-5", InputTokens: int64(1000 + i*10), OutputTokens: 200, CostUSD: 0.002}
		if i%5 == 4 {
			st = web.StepView{Start: st.Start, Duration: 300 * time.Millisecond, Kind: "tool", Name: "update_case",
				Tool: "salesforce.update", System: "Salesforce"}
		}
		if i == 6 {
			st.Error = "429 <b>rate limited</b>"
		}
		if i == 8 {
			st.Breach = "tokens_per_session"
		}
		s.Steps = append(s.Steps, st)
	}
	return s
}

func TestSessionPageDrawsOneBarPerStep(t *testing.T) {
	s := newSite(t, func(c *web.Config) { c.Sessions = fakeSessions{"s-8812": fakeSession("s-8812", 12)} })
	res, body := get(t, s.signedIn(), s.srv.URL+"/sessions/s-8812")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%d\n%s", res.StatusCode, body)
	}
	if n := strings.Count(body, `<rect class="bar `); n != 12 {
		t.Errorf("%d bars, want 12", n)
	}
	if n := strings.Count(body, `class="bar k-tool s0`); n != 2 {
		t.Errorf("%d Salesforce-coloured tool bars, want 2 (Salesforce is support-bot's first system)", n)
	}
	if !strings.Contains(body, `<rect class="breach"`) || !strings.Contains(body, "SLA breach: tokens_per_session at &#43;8.0s (step 9)") {
		t.Errorf("no breach marker at step 9:\n%s", body[strings.Index(body, "<svg"):strings.Index(body, "</svg>")])
	}
	if !strings.Contains(body, `class="errmark"`) || !strings.Contains(body, "429 &lt;b&gt;rate limited&lt;/b&gt;") {
		t.Error("the error is not marked, or not escaped")
	}
	if strings.Contains(body, "style=") {
		t.Error("inline style: the CSP would block it")
	}
}

// A session ID two agents use, opened without ?agent=, asks which agent's
// with a link to each; with ?agent= it shows that agent's.
func TestSessionPageAsksWhichAgent(t *testing.T) {
	a, b := fakeSession("victim-77", 3), fakeSession("victim-77", 5)
	a.Agent, b.Agent = "alpha", "beta"
	s := newSite(t, func(c *web.Config) { c.Sessions = fakeSessions{"alpha/victim-77": a, "beta/victim-77": b} })
	res, body := get(t, s.signedIn(), s.srv.URL+"/sessions/victim-77")
	if res.StatusCode != http.StatusConflict || !strings.Contains(body, `href="/sessions/victim-77?agent=alpha"`) ||
		!strings.Contains(body, `href="/sessions/victim-77?agent=beta"`) {
		t.Fatalf("without ?agent=: %d\n%s\nwant 409 linking each agent's session", res.StatusCode, body)
	}
	res, body = get(t, s.signedIn(), s.srv.URL+"/sessions/victim-77?agent=beta")
	if res.StatusCode != http.StatusOK || strings.Count(body, `<rect class="bar `) != 5 {
		t.Errorf("?agent=beta: %d, want beta's 5 steps", res.StatusCode)
	}
}

var svgElement = regexp.MustCompile(`<(rect|line|text|title|svg|g|path|circle)[ >/]`)

func TestLongSessionsAreBucketedAndLight(t *testing.T) {
	s := newSite(t, func(c *web.Config) { c.Sessions = fakeSessions{"long": fakeSession("long", 10000)} })
	res, body := get(t, s.signedIn(), s.srv.URL+"/sessions/long")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%d", res.StatusCode)
	}
	svg := body[strings.Index(body, "<svg"):strings.Index(body, "</svg>")]
	if n := len(svgElement.FindAllString(svg, -1)); n > 2000 {
		t.Errorf("SVG has %d elements, want at most 2,000", n)
	}
	if n := strings.Count(svg, `<rect class="bar `); n != 500 {
		t.Errorf("%d bars, want 500 buckets of 20 steps", n)
	}
	if !strings.Contains(body, "each bar merges 20 consecutive steps") {
		t.Error("the page does not say the chart is bucketed")
	}
	if len(body) > 250*1024 {
		t.Errorf("page weighs %d KB, want at most 250 KB", len(body)/1024)
	}
	if !strings.Contains(body, "page 1 of 100") {
		t.Error("the steps table is not paginated")
	}
	t.Logf("10,000-step session page: %d KB, %d SVG elements", len(body)/1024, len(svgElement.FindAllString(svg, -1)))
	_, p2 := get(t, s.signedIn(), s.srv.URL+"/sessions/long?page=2")
	if !strings.Contains(p2, fmt.Sprintf(`<td class="num">%d</td>`, 101)) {
		t.Error("page 2 does not start at step 101")
	}
}
