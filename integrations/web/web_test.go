package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/incidents/incidentstest"
	"github.com/reins-oss/reins/integrations/web"
	"github.com/reins-oss/reins/integrations/web/oidcfake"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// site is the web view on a real listener with one incident in its store.
type site struct {
	t     *testing.T
	env   *incidentstest.Env
	h     *web.Handler
	srv   *httptest.Server
	idp   *oidcfake.Server
	now   time.Time
	inc   int64
	cfg   web.Config
	alice oidcfake.User
}

func newSite(t *testing.T, mod func(*web.Config)) *site {
	t.Helper()
	s := &site{t: t, env: incidentstest.NewEnv(), now: time.Now()}
	s.alice = oidcfake.User{ID: "U01ALICE", Team: "T0TEST", Name: "Alice", Email: "alice@example.com"}
	s.idp = oidcfake.New("client-1", "secret-1", s.alice)
	t.Cleanup(s.idp.Close)
	res, err := s.env.Intake.Ingest(context.Background(), []incidents.Alert{incidentstest.Alert()})
	if err != nil {
		t.Fatal(err)
	}
	s.inc = res.Incidents[0]
	mux := http.NewServeMux()
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.cfg = web.Config{
		PublicURL: s.srv.URL, Auth: web.AuthSlack, ClientID: "client-1", ClientSecret: "secret-1",
		Issuer: s.idp.URL(), Key: testKey, Incidents: s.env.Service, Postmortems: s.env.Aftermath, Drills: s.env.Store,
		TeamID:    func(context.Context) (string, error) { return "T0TEST", nil },
		SetupHint: s.srv.URL,
		Now:       func() time.Time { return s.now },
	}
	if mod != nil {
		mod(&s.cfg)
	}
	if s.h, err = web.New(s.cfg); err != nil {
		t.Fatal(err)
	}
	s.h.Register(mux)
	return s
}

// browser is a client with cookies that follows redirects like a browser.
func (s *site) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func noFollow(c *http.Client) *http.Client {
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func TestSignInWithSlackLandsOnThePageTheLinkNamed(t *testing.T) {
	s := newSite(t, nil)
	res, body := get(t, s.browser(), fmt.Sprintf("%s/incidents/%d", s.srv.URL, s.inc))
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != fmt.Sprintf("/incidents/%d", s.inc) {
		t.Fatalf("landed on %s with %d, want the incident page:\n%s", res.Request.URL, res.StatusCode, body)
	}
	for _, want := range []string{"Token spend 12x baseline", "support-bot", "Alice", "Timeline"} {
		if !strings.Contains(body, want) {
			t.Errorf("incident page lacks %q", want)
		}
	}
}

func TestSignInFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(s *site)
		status int
		says   string
	}{
		{"other workspace", func(s *site) { s.idp.SetUser(oidcfake.User{ID: "U9", Team: "T0OTHER", Name: "Eve"}) },
			http.StatusForbidden, "different Slack workspace"},
		{"forged nonce", func(s *site) { s.idp.Tamper(func(c map[string]any) { c["nonce"] = "forged" }) },
			http.StatusUnauthorized, "not for this sign-in"},
		{"token for another client", func(s *site) { s.idp.Tamper(func(c map[string]any) { c["aud"] = "other-client" }) },
			http.StatusUnauthorized, "could not be verified"},
		{"expired ID token", func(s *site) {
			s.idp.Tamper(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
		}, http.StatusUnauthorized, "could not be verified"},
		{"signature by another key", func(s *site) { s.idp.SignWithWrongKey() },
			http.StatusUnauthorized, "could not be verified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t, nil)
			tc.setup(s)
			res, body := get(t, s.browser(), s.srv.URL+"/agents")
			if res.StatusCode != tc.status || !strings.Contains(body, tc.says) {
				t.Fatalf("got %d, want %d saying %q:\n%s", res.StatusCode, tc.status, tc.says, body)
			}
			if strings.Contains(body, "support-bot") {
				t.Error("a refused sign-in shows the agents")
			}
		})
	}
}

// startLogin runs /auth/login and returns the browser, with its state cookie,
// and the provider's answer as the callback URL.
func (s *site) startLogin(next string) (*http.Client, string) {
	s.t.Helper()
	c := noFollow(s.browser())
	res, _ := get(s.t, c, s.srv.URL+"/auth/login?next="+url.QueryEscape(next))
	if res.StatusCode != http.StatusFound {
		s.t.Fatalf("login: %d", res.StatusCode)
	}
	res, _ = get(s.t, c, res.Header.Get("Location")) // the provider signs in at once
	return c, res.Header.Get("Location")
}

func TestCallbackRefusesExpiredForgedOrForeignState(t *testing.T) {
	t.Run("expired", func(t *testing.T) {
		s := newSite(t, nil)
		c, back := s.startLogin("/agents")
		s.now = s.now.Add(11 * time.Minute)
		res, body := get(t, c, back)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "expired") {
			t.Fatalf("got %d:\n%s", res.StatusCode, body)
		}
	})
	t.Run("forged state", func(t *testing.T) {
		s := newSite(t, nil)
		c, back := s.startLogin("/agents")
		u, _ := url.Parse(back)
		q := u.Query()
		q.Set("state", "attacker-state")
		u.RawQuery = q.Encode()
		res, body := get(t, c, u.String())
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "does not match") {
			t.Fatalf("got %d:\n%s", res.StatusCode, body)
		}
	})
	t.Run("another browser's answer", func(t *testing.T) {
		s := newSite(t, nil)
		_, back := s.startLogin("/agents")
		res, body := get(t, noFollow(s.browser()), back) // login CSRF: no state cookie here
		if res.StatusCode != http.StatusBadRequest || strings.Contains(res.Header.Get("Set-Cookie"), "reins_session=") {
			t.Fatalf("got %d, cookies %q:\n%s", res.StatusCode, res.Header.Get("Set-Cookie"), body)
		}
	})
	t.Run("state cookie signed with another key", func(t *testing.T) {
		s := newSite(t, nil)
		c, back := s.startLogin("/agents")
		u, _ := url.Parse(s.srv.URL)
		for _, ck := range c.Jar.Cookies(u) {
			if ck.Name == "reins_login" {
				ck.Value = strings.Replace(ck.Value, ".", "x.", 1)
				c.Jar.SetCookies(u, []*http.Cookie{ck})
			}
		}
		if res, body := get(t, c, back); res.StatusCode != http.StatusBadRequest {
			t.Fatalf("got %d:\n%s", res.StatusCode, body)
		}
	})
	t.Run("provider error", func(t *testing.T) {
		s := newSite(t, nil)
		c, _ := s.startLogin("/agents")
		res, body := get(t, c, s.srv.URL+"/auth/callback?error=access_denied&state=x")
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "access_denied") {
			t.Fatalf("got %d:\n%s", res.StatusCode, body)
		}
	})
}

func TestForgedNextStaysOnReins(t *testing.T) {
	for _, next := range []string{"//evil.example", "/\\evil.example", "https://evil.example/x",
		"javascript:alert(1)", "/\t/evil.example", "evil.example", "/auth/logout"} {
		t.Run(next, func(t *testing.T) {
			s := newSite(t, nil)
			c, back := s.startLogin(next)
			res, _ := get(t, c, back)
			if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != "/" {
				t.Fatalf("after sign-in: %d to %q, want 303 to /", res.StatusCode, loc)
			}
		})
	}
	s := newSite(t, nil)
	c, back := s.startLogin("/?agent=support-bot&status=open")
	if res, _ := get(t, c, back); res.Header.Get("Location") != "/?agent=support-bot&status=open" {
		t.Fatalf("a same-site next with a query went to %q", res.Header.Get("Location"))
	}
}

func TestForgedSessionCookieIsNotSignedIn(t *testing.T) {
	s := newSite(t, nil)
	c := noFollow(s.browser())
	u, _ := url.Parse(s.srv.URL)
	// A session for Mallory, MAC'd with a key reins does not hold.
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "reins_session", Value: "eyJ1IjoiVTA1TUFMTE9SWSIsImUiOjk5OTk5OTk5OTl9.AAAA"}})
	res, _ := get(t, c, s.srv.URL+"/agents")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/auth/login?next=%2Fagents") {
		t.Fatalf("got %d to %q, want a redirect to sign in", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestCSPAndCookieFlagsOnHTTPS(t *testing.T) {
	s := newSite(t, func(c *web.Config) { c.PublicURL = "https://reins.example.com" })
	// The handler is behind a TLS-terminating proxy here: talk to it directly.
	req := httptest.NewRequest(http.MethodGet, "/auth/login?next=/agents", nil)
	rec := httptest.NewRecorder()
	mux := http.NewServeMux()
	h, _ := web.New(s.cfg)
	h.Register(mux)
	mux.ServeHTTP(rec, req)
	if got := rec.Header().Get("Content-Security-Policy"); got != web.CSP || strings.Contains(got, "unsafe") || strings.Contains(got, "script-src") {
		t.Errorf("CSP %q", got)
	}
	cs := rec.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("cookies %v", cs)
	}
	c := cs[0]
	if c.Name != "__Host-reins_login" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Errorf("state cookie %+v: want __Host-, Secure, HttpOnly, SameSite=Lax", c)
	}
	if loc := rec.Header().Get("Location"); !strings.Contains(loc, "redirect_uri="+url.QueryEscape("https://reins.example.com/auth/callback")) ||
		!strings.Contains(loc, "nonce=") || !strings.Contains(loc, "state=") {
		t.Errorf("authorize URL %q", loc)
	}
	// And the session cookie after a full sign-in on http is HttpOnly and Lax, not Secure.
	s2 := newSite(t, nil)
	c2, back := s2.startLogin("/")
	res, _ := get(t, c2, back)
	var sess *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "reins_session" {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || sess.Secure || sess.SameSite != http.SameSiteLaxMode {
		t.Errorf("session cookie on http %+v", sess)
	}
	if res.Header.Get("Content-Security-Policy") != web.CSP {
		t.Error("the callback has no CSP")
	}
}

func TestProxyHeaderOnlyFromTrustedProxies(t *testing.T) {
	s := newSite(t, func(c *web.Config) {
		c.Auth = web.AuthProxy
		c.UserHeader = "X-Forwarded-Email"
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	mux := http.NewServeMux()
	h, _ := web.New(s.cfg)
	h.Register(mux)
	for _, tc := range []struct {
		remote, user string
		status       int
	}{
		{"203.0.113.9:5555", "alice@example.com", http.StatusForbidden}, // straight to reins, header forged
		{"10.1.2.3:5555", "alice@example.com", http.StatusOK},
		{"10.1.2.3:5555", "", http.StatusUnauthorized},
		{"[::ffff:10.1.2.3]:5555", "alice@example.com", http.StatusOK},
	} {
		req := httptest.NewRequest(http.MethodGet, "/agents", nil)
		req.RemoteAddr = tc.remote
		if tc.user != "" {
			req.Header.Set("X-Forwarded-Email", tc.user)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s as %q: %d, want %d", tc.remote, tc.user, rec.Code, tc.status)
		}
		if tc.status != http.StatusOK && strings.Contains(rec.Body.String(), "support-bot") {
			t.Errorf("%s: refused request shows agents", tc.remote)
		}
		if tc.status == http.StatusOK && !strings.Contains(rec.Body.String(), tc.user) {
			t.Errorf("%s: page does not say who is signed in", tc.remote)
		}
	}
}

func TestOffSaysHowToTurnItOn(t *testing.T) {
	s := newSite(t, func(c *web.Config) { c.Auth = web.AuthOff })
	for _, p := range []string{"/", "/agents", fmt.Sprintf("/incidents/%d", s.inc)} {
		res, body := get(t, s.browser(), s.srv.URL+p)
		if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "REINS_SLACK_CLIENT_ID") ||
			!strings.Contains(body, "REINS_WEB_TRUSTED_PROXIES") || strings.Contains(body, "Token spend") {
			t.Errorf("%s: %d\n%s", p, res.StatusCode, body)
		}
	}
}

// signedIn returns a browser signed in as Alice.
func (s *site) signedIn() *http.Client {
	c, back := s.startLogin("/")
	get(s.t, c, back)
	c.CheckRedirect = nil
	return c
}

func TestHostileAlertTextIsEscapedEverywhere(t *testing.T) {
	s := newSite(t, nil)
	hostile := `<script>alert(1)</script><img src=x onerror=alert(2)>`
	_, err := s.env.Intake.Ingest(context.Background(), []incidents.Alert{incidentstest.Alert(func(a *incidents.Alert) {
		a.Fingerprint, a.Agent, a.Title, a.Summary = "evil", "evil-agent"+hostile, hostile, "[x](javascript:alert(3)) "+hostile
		a.Links = []incidents.Link{{Text: hostile, URL: "javascript:alert(4)"}}
		a.Sessions = []string{"s/../" + hostile}
	})})
	if err != nil {
		t.Fatal(err)
	}
	c := s.signedIn()
	// An agent reins does not know joins its source's unrouted incident,
	// which names the hostile agent label among the values seen.
	all, _ := s.env.Service.FindIncidents(context.Background(), incidents.IncidentFilter{})
	var list []*incidents.Incident
	for _, inc := range all {
		if strings.HasPrefix(inc.Agent, "unrouted:") {
			list = append(list, inc)
		}
	}
	if len(list) != 1 {
		t.Fatalf("hostile incident not stored: %v", list)
	}
	for _, p := range []string{"/", fmt.Sprintf("/incidents/%d", list[0].ID), "/?agent=" + url.QueryEscape(hostile)} {
		res, body := get(t, c, s.srv.URL+p)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", p, res.StatusCode)
		}
		for _, bad := range []string{"<script>alert", "<img src=x", `href="javascript:`, "href=javascript:"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s carries %q unescaped", p, bad)
			}
		}
		// The unrouted incident has a title of reins' own; what fired (the
		// hostile title) is on the incident's page.
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") && strings.HasPrefix(p, "/incidents/") {
			t.Errorf("%s does not show the hostile title as text", p)
		}
	}
}

func TestPostmortemRendersAndDownloads(t *testing.T) {
	s := newSite(t, nil)
	c := s.signedIn()
	_, body := get(t, c, fmt.Sprintf("%s/incidents/%d", s.srv.URL, s.inc))
	if !regexp.MustCompile(`<div class="md"><h1[^>]*>`).MatchString(body) {
		t.Error("the postmortem is not rendered as HTML")
	}
	res, md := get(t, c, fmt.Sprintf("%s/incidents/%d/postmortem.md", s.srv.URL, s.inc))
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment;") ||
		!strings.Contains(md, "Token spend 12x baseline") || !strings.Contains(md, fmt.Sprintf("/incidents/%d", s.inc)) {
		t.Fatalf("download: %d %q\n%s", res.StatusCode, res.Header.Get("Content-Disposition"), md)
	}
}

func TestUnknownPagesSayWhat(t *testing.T) {
	s := newSite(t, nil)
	c := s.signedIn()
	for p, want := range map[string]int{"/incidents/999": 404, "/incidents/abc": 404, "/agents/nobody": 404,
		"/sessions/s-1": 404} {
		if res, body := get(t, c, s.srv.URL+p); res.StatusCode != want {
			t.Errorf("%s: %d, want %d\n%s", p, res.StatusCode, want, body)
		}
	}
}
