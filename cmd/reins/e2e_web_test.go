package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/reins-oss/reins/bot/slackfake"
	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/web"
	"github.com/reins-oss/reins/integrations/web/oidcfake"
)

// webSessions is the session record the browser test shows: twelve steps
// of support-bot's s-8812, two Salesforce writes, an error, a breach.
type webSessions struct{ t0 time.Time }

func (f webSessions) Session(ctx context.Context, agent, id string) (*web.SessionView, error) {
	if id != "s-8812" {
		return nil, incidents.Errorf(incidents.ENOTFOUND, "No session %q is recorded.", id)
	}
	s := &web.SessionView{ID: id, Agent: "support-bot", Status: "halted", Start: f.t0, Incident: 1}
	for i := range 12 {
		st := web.StepView{Start: f.t0.Add(time.Duration(i) * 2 * time.Second), Duration: 1500 * time.Millisecond,
			Kind: "llm", Name: "answer customer", Model: "gpt-5", InputTokens: int64(4000 + i*i*900), OutputTokens: 600, CostUSD: 0.01}
		switch i {
		case 3, 7:
			st = web.StepView{Start: st.Start, Duration: 700 * time.Millisecond, Kind: "tool", Name: "update_case",
				Tool: "salesforce.update", System: "Salesforce"}
		case 5:
			st.Kind, st.Name, st.Tool, st.System, st.Model = "tool", "send_email", "sendgrid.send", "SendGrid", ""
			st.InputTokens, st.OutputTokens = 0, 0
			st.Error = "429 Too Many Requests"
		case 9:
			st.Breach = "tokens_per_session"
		}
		s.Steps = append(s.Steps, st)
	}
	return s, nil
}

func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed: .ci/run installs it with apt-get install -y chromium")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); the browser test runs in CI")
	return ""
}

var reinsLink = regexp.MustCompile(`<(http://127\.0\.0\.1:\d+/[^|>]+)\|([^>]+)>`)

// slackLinks returns the links to reins' pages in a Slack message, by label.
func slackLinks(raw string) map[string]string {
	out := map[string]string{}
	for _, m := range reinsLink.FindAllStringSubmatch(raw, -1) {
		out[m[2]] = m[1]
	}
	return out
}

// The web view in a real browser: a responder follows the links in the
// incident's Slack summary and `/agent status`, signs in with Slack once (a
// fake OpenID provider) and sees the incident, the session's waterfall, the
// agent and the list, with no console error.
func TestWebViewInABrowser(t *testing.T) {
	chrome := chromiumPath(t)
	idp := oidcfake.New("client-web", "secret-web", oidcfake.User{ID: alice, Team: slackfake.TeamID,
		Name: "Alice Example", Email: "alice@example.com"})
	t.Cleanup(idp.Close)
	addr := freeAddr(t)
	e := startTestMain(t, testOptions{
		Env: map[string]string{
			"REINS_LISTEN": addr, "REINS_PUBLIC_URL": "http://" + addr,
			"REINS_SLACK_CLIENT_ID": "client-web", "REINS_SLACK_CLIENT_SECRET": "secret-web",
			"REINS_SLACK_OIDC_ISSUER": idp.URL(),
		},
		Setup: func(m *Main) { m.WebSessions = webSessions{t0: time.Now().Add(-10 * time.Minute)} },
	})

	// An alert opens incident #1 for support-bot; then a halt, and a drill.
	body := []byte(`{"agent":"support-bot","summary":"Token spend 12x baseline <script>alert(1)</script>","severity":"critical",
		"status":"firing","sessions":["s-8812"],"dedup_key":"tok-spike","source":"langfuse",
		"details":{"tokens_per_session":240000}}`)
	if st, b := e.webhook("generic", body); st != http.StatusAccepted && st != http.StatusOK {
		t.Fatalf("webhook: %d %s", st, b)
	}
	var summary string
	e.eventually("the incident summary in Slack", func() bool {
		for _, ch := range incidentChannels(e.Slack) {
			for _, m := range e.Slack.Messages(ch.ID) {
				if strings.Contains(string(m.Blocks), "Incident page") {
					summary = string(m.Blocks)
					return true
				}
			}
		}
		return false
	})
	if st, b := e.api(http.MethodPost, "/agents/support-bot/halt", map[string]any{"reason": "token spike", "actor": "ops"}); st != http.StatusOK && st != http.StatusAccepted {
		t.Fatalf("halt: %d %s", st, b)
	}
	if _, err := e.Main.Drills.RunDrill(context.Background(), "support-bot", time.Now()); err != nil {
		t.Fatalf("drill: %v", err)
	}
	e.slash(alice, "C0SUPPORTAI", "status support-bot")
	var status string
	e.eventually("the /agent status reply", func() bool {
		for _, r := range e.Slack.Responses() {
			if strings.Contains(string(r.Blocks), "/incidents/1|page") {
				status = string(r.Blocks)
				return true
			}
		}
		return false
	})
	links := slackLinks(jsonUnescape(summary))
	base := "http://" + addr
	for label, want := range map[string]string{"Incident page": base + "/incidents/1", "Agent page": base + "/agents/support-bot",
		"waterfall": base + "/sessions/s-8812?agent=support-bot"} {
		if links[label] != want {
			t.Fatalf("the Slack summary links %q to %q, want %q (links: %v)", label, links[label], want, links)
		}
	}
	if slackLinks(jsonUnescape(status))["page"] != base+"/incidents/1" {
		t.Fatalf("/agent status does not link the incident page: %s", status)
	}
	e.eventually("the page in PagerDuty", func() bool { return len(e.PD.Events()) > 0 })
	if ev := e.PD.Events()[0]; len(ev.Links) == 0 || ev.Links[0].Href != base+"/incidents/1" {
		t.Fatalf("the PagerDuty page links %+v, want %s/incidents/1 first", ev.Links, base)
	}

	// The browser, headless; the test fails on any console error or CSP report.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var mu sync.Mutex
	var consoleErrors []string
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				consoleErrors = append(consoleErrors, fmt.Sprintf("console %s: %v", ev.Type, ev.Args))
			}
		case *runtime.EventExceptionThrown:
			consoleErrors = append(consoleErrors, "exception: "+ev.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
				consoleErrors = append(consoleErrors, "log: "+ev.Entry.Text+" "+ev.Entry.URL)
			}
		}
	}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	for _, enable := range []func() error{
		func() error { _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); return err },
		func() error { _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); return err },
	} {
		if err := enable(); err != nil {
			t.Fatalf("start chromium: %v", err)
		}
	}
	shots := os.Getenv("REINS_SCREENSHOTS") == "1"
	save := func(name string, png []byte, err error) {
		t.Helper()
		if err == nil {
			err = os.MkdirAll("testdata/screenshots", 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join("testdata/screenshots", name+".png"), png, 0o644)
		}
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		if shots {
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			save(name, png, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	count := func(sel string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
		if err != nil {
			t.Fatalf("count %s: %v", sel, err)
		}
		return n
	}
	open := func(u string) string {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
			t.Fatalf("open %s: %v", u, err)
		}
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}

	// The incident, from the Slack summary: sign-in happens on the way.
	if loc := open(links["Incident page"]); loc != base+"/incidents/1" {
		t.Fatalf("after sign-in the browser is at %s, want the incident page", loc)
	}
	if h := text("h1"); !strings.Contains(h, "#1") || !strings.Contains(h, "<script>alert(1)</script>") {
		t.Errorf("incident heading %q: want #1 and the alert's text shown as text", h)
	}
	if who := text("header .who"); !strings.Contains(who, "Alice Example") {
		t.Errorf("signed in as %q", who)
	}
	if a := text("main > p:nth-of-type(2) a"); a != "support-bot" {
		t.Errorf("agent shown as %q", a)
	}
	if n := count("table.timeline tbody tr"); n < 4 {
		t.Errorf("%d timeline rows, want the opening, the alert, the page and the halt at least", n)
	}
	if n := count("#halts + div td"); n == 0 {
		t.Error("no halt row")
	}
	if n := count(".md h1, .md h2"); n < 3 {
		t.Errorf("postmortem not rendered: %d headings", n)
	}
	shot("incident")

	// The session's waterfall, from the summary's session link.
	open(links["waterfall"])
	if h := text("h1"); h != "Session s-8812" {
		t.Errorf("session heading %q", h)
	}
	if n := count("svg.waterfall rect.bar"); n != 12 {
		t.Errorf("%d bars in the waterfall, want 12", n)
	}
	if n := count("svg.waterfall rect.breach"); n != 1 {
		t.Errorf("%d breach markers, want 1", n)
	}
	if n := count("svg.waterfall rect.bar.s0"); n != 2 {
		t.Errorf("%d Salesforce bars, want 2", n)
	}
	if n := count("table.steps tbody tr.bad"); n != 2 {
		t.Errorf("%d steps marked bad, want the error and the breach", n)
	}
	shot("session")

	// The agent, from the summary's agent link.
	open(links["Agent page"])
	if h := text("h1"); h != "support-bot" {
		t.Errorf("agent heading %q", h)
	}
	if st := text("main > p:nth-of-type(2) .badge"); st != "halted" {
		t.Errorf("halt state %q, want halted", st)
	}
	if n := count(".strip span"); n != 26 {
		t.Errorf("drill strip of %d weeks, want 26", n)
	}
	if n := count(".strip span.pass"); n != 1 {
		t.Errorf("%d weeks with a passed drill, want 1", n)
	}
	// People show by the name Slack's users.info gives (the fake's handle
	// for Alice), not as IDs.
	if holders := text("#authority + dl dd"); !strings.Contains(holders, "alice") || strings.Contains(holders, alice) {
		t.Errorf("kill authority resolved to %q, want Alice among them by name", holders)
	}
	shot("agent")

	// The list, through the page's own navigation.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`header nav a[href="/"]`)),
		chromedp.WaitVisible(chromedp.CSS("table.incidents"))); err != nil {
		t.Fatal(err)
	}
	if h := text("h1"); h != "Incidents" {
		t.Errorf("list heading %q", h)
	}
	if n := count("table.incidents tbody tr"); n != 1 {
		t.Errorf("%d incidents listed, want 1", n)
	}
	shot("incidents")
	open(base + "/agents")
	shot("agents")
	// What a responder on a phone sees first.
	if shots {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2))); err != nil {
			t.Fatal(err)
		}
		for name, u := range map[string]string{"incident-phone": links["Incident page"], "session-phone": links["waterfall"]} {
			open(u)
			png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			save(name, png, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(consoleErrors) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(consoleErrors, "\n"))
	}
}

// jsonUnescape turns a Block Kit JSON text back into what Slack shows.
func jsonUnescape(s string) string {
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		return s
	}
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case string:
			b.WriteString(v + "\n")
		}
	}
	walk(v)
	return b.String()
}
