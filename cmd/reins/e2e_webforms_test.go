package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// webEnv runs reins with the web view behind a trusted proxy on 127.0.0.1.
func webEnv(t *testing.T) *testEnv {
	t.Helper()
	return startTestMain(t, testOptions{Env: map[string]string{
		"REINS_WEB_AUTH": "proxy", "REINS_WEB_USER_HEADER": "X-Forwarded-Email", "REINS_WEB_TRUSTED_PROXIES": "127.0.0.1/32",
		"REINS_WEB_SESSION_KEY": "0123456789abcdef0123456789abcdef",
	}})
}

// page gets a web page as the proxy's user.
func (e *testEnv) page(user, path string) (int, string) {
	e.t.Helper()
	st, b := e.do(http.MethodGet, path, http.Header{"X-Forwarded-Email": {user}}, nil)
	return st, string(b)
}

// form posts a form as the proxy's user, without following the redirect.
func (e *testEnv) form(user, path string, v url.Values, extra http.Header) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.URL+path, strings.NewReader(v.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-Email", user)
	for k, vs := range extra {
		req.Header[k] = vs
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := res.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return res.StatusCode, res.Header.Get("Location") + sb.String()
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// The checklist and the postmortem are answered from the web view with
// plain forms: no JavaScript, the thread's rules (impact needs details),
// the answer on the timeline under the signed-in person, and no answer
// taken without this person's token or from another site.
func TestWebFormsAnswerChecklistAndPostmortem(t *testing.T) {
	e := webEnv(t)
	body := []byte(`{"agent":"support-bot","summary":"Token spend 12x baseline","severity":"critical","status":"firing","dedup_key":"tok"}`)
	if st, b := e.webhook("generic", body); st != http.StatusOK {
		t.Fatalf("webhook: %d %s", st, b)
	}
	const who = "ops@example.com"
	st, html := e.page(who, "/incidents/1")
	m := csrfField.FindStringSubmatch(html)
	if st != http.StatusOK || m == nil || !strings.Contains(html, `action="/incidents/1/checklist"`) {
		t.Fatalf("incident page: %d, want a start-checklist form with a token:\n%s", st, html)
	}
	token := m[1]
	if strings.Contains(html, "<script") {
		t.Errorf("the incident page uses JavaScript")
	}

	// Refused: no token, someone else's token, another site.
	if st, _ := e.form(who, "/incidents/1/checklist", url.Values{}, nil); st != http.StatusForbidden {
		t.Errorf("start without a token: %d, want 403", st)
	}
	_, other := e.page("mallory@example.com", "/incidents/1")
	if mt := csrfField.FindStringSubmatch(other); mt == nil || mt[1] == token {
		t.Errorf("two people got the same form token")
	} else if st, _ := e.form(who, "/incidents/1/checklist", url.Values{"csrf": {mt[1]}}, nil); st != http.StatusForbidden {
		t.Errorf("start with another person's token: %d, want 403", st)
	}
	if st, _ := e.form(who, "/incidents/1/checklist", url.Values{"csrf": {token}},
		http.Header{"Origin": {"https://evil.example"}}); st != http.StatusForbidden {
		t.Errorf("start from another site: %d, want 403", st)
	}
	if st, _ := e.form(who, "/incidents/1/checklist", url.Values{"csrf": {token}},
		http.Header{"Sec-Fetch-Site": {"cross-site"}}); st != http.StatusForbidden {
		t.Errorf("start cross-site: %d, want 403", st)
	}

	if st, loc := e.form(who, "/incidents/1/checklist", url.Values{"csrf": {token}}, nil); st != http.StatusSeeOther || !strings.HasPrefix(loc, "/incidents/1") {
		t.Fatalf("start the checklist: %d %q, want 303 back to the incident", st, loc)
	}
	_, html = e.page(who, "/incidents/1")
	if !strings.Contains(html, `action="/incidents/1/checklist/blast:salesforce"`) {
		t.Fatalf("no answer form for blast:salesforce:\n%s", html)
	}
	// The thread's rule: impact found needs details.
	if st, b := e.form(who, "/incidents/1/checklist/blast:salesforce", url.Values{"csrf": {token}, "choice": {"impact_found"}}, nil); st != http.StatusUnprocessableEntity || !strings.Contains(b, "Say what was found") {
		t.Errorf("impact without details: %d, want 422 (api.StatusOf, as the API answers) saying what to add:\n%s", st, b)
	}
	if st, _ := e.form(who, "/incidents/1/checklist/blast:salesforce", url.Values{"csrf": {token}, "choice": {"impact_found"},
		"details": {"12 refunds to 3 customers"}}, nil); st != http.StatusSeeOther {
		t.Fatalf("answer impact: %d, want 303", st)
	}
	if st, _ := e.form(who, "/incidents/1/postmortem/root_cause", url.Values{"csrf": {token},
		"text": {"A prompt change removed the refund cap."}}, nil); st != http.StatusSeeOther {
		t.Fatalf("answer root_cause: %d, want 303", st)
	}
	_, html = e.page(who, "/incidents/1?done=postmortem")
	for _, want := range []string{"12 refunds to 3 customers", "A prompt change removed the refund cap.", "1 of 6 answered", "Postmortem answer saved."} {
		if !strings.Contains(html, want) {
			t.Errorf("the incident page lacks %q after the answers", want)
		}
	}
	code, out, _ := cli(t, e.env, "incident", "1")
	if code != 0 || !strings.Contains(out, "checklist_answered") || !strings.Contains(out, "web:"+who) {
		t.Errorf("the timeline does not record the web answers under %s:\n%s", who, out)
	}
}

// People appear in the web view by name, from Slack's users.info, asked
// once and cached; someone Slack does not know stays their ID.
func TestWebViewShowsPeopleByName(t *testing.T) {
	e := webEnv(t)
	e.Slack.SetRealName(alice, "Alice Example")
	body := []byte(`{"agent":"support-bot","summary":"Token spend 12x baseline","severity":"critical","status":"firing","dedup_key":"tok"}`)
	if st, b := e.webhook("generic", body); st != http.StatusOK {
		t.Fatalf("webhook: %d %s", st, b)
	}
	if st, b := e.api(http.MethodPost, "/incidents/1/ack", map[string]any{"actor": alice}); st >= 300 {
		t.Logf("ack via API: %d %s", st, b)
	}
	st, html := e.page("ops@example.com", "/incidents/1")
	if st != http.StatusOK || !strings.Contains(html, "Alice Example") {
		t.Fatalf("incident page: %d, want Alice by name:\n%s", st, html)
	}
	if strings.Contains(html, ">"+alice) || strings.Contains(html, alice+",") || strings.Contains(html, " "+alice+"<") {
		t.Errorf("the incident page still shows %s as an ID", alice)
	}
	calls := e.Slack.UsersInfoCalls()
	for range 3 {
		e.page("ops@example.com", "/incidents/1")
		e.page("ops@example.com", "/agents")
	}
	if got := e.Slack.UsersInfoCalls() - calls; got > 0 {
		t.Errorf("users.info asked %d more times for pages already shown: want the names cached", got)
	}
	if _, html := e.page("ops@example.com", "/agents"); !strings.Contains(html, "Alice Example") {
		t.Errorf("/agents does not name Alice:\n%s", html)
	}
}

// Issue 27: the web view shows a restriction and a throttle, in the agents
// list as on the agent's page, never as running.
func TestWebShowsSofterRungs(t *testing.T) {
	e := webEnv(t)
	if st, b := e.api(http.MethodPost, "/agents/flag-bot/throttle", map[string]any{"rate": 6, "reason": "tokens", "actor": "ops"}); st != http.StatusOK {
		t.Fatalf("throttle: %d %s", st, b)
	}
	if st, b := e.api(http.MethodPost, "/agents/support-bot/restrict",
		map[string]any{"sessions": []string{"s-1"}, "allow": []string{"kb.read"}, "reason": "scope", "actor": "ops"}); st != http.StatusOK {
		t.Fatalf("restrict: %d %s", st, b)
	}
	const who = "ops@example.com"
	for path, want := range map[string][]string{
		"/agents":             {"throttled to 6/min (all sessions)", "running; session s-1 restricted to kb.read"},
		"/agents/flag-bot":    {"throttled to 6/min (all sessions)"},
		"/agents/support-bot": {"running; session s-1 restricted to kb.read"},
	} {
		st, html := e.page(who, path)
		for _, w := range want {
			if st != http.StatusOK || !strings.Contains(html, w) {
				t.Errorf("%s: %d, lacks %q", path, st, w)
			}
		}
		if path == "/agents" && strings.Contains(html, `class="badge running"`) {
			t.Errorf("/agents shows an agent as running while both are contained")
		}
	}
}
