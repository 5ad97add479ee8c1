// Package web is reins' web view (docs/architecture.md, web view): incidents, an
// incident, a session with its waterfall, agents, and the one thing it
// writes: answers to an incident's checklist and postmortem questions,
// through plain forms. Pages are rendered on the
// server with html/template from embedded files, work without JavaScript
// and sit behind Sign in with Slack (OpenID Connect) or a trusted proxy's
// user header. With neither configured every page says how to turn it on.
package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Auth modes.
const (
	AuthOff   = ""      // no sign-in configured: the view is off
	AuthSlack = "slack" // Sign in with Slack
	AuthProxy = "proxy" // trust a header set by an authenticating proxy
)

// DefaultIssuer is Slack's OpenID Connect issuer.
const DefaultIssuer = "https://slack.com"

// Config is the web view's settings and collaborators.
type Config struct {
	PublicURL string // REINS_PUBLIC_URL: cookie security and sign-in callback
	Auth      string // AuthOff | AuthSlack | AuthProxy

	// Sign in with Slack.
	ClientID     string
	ClientSecret string
	Issuer       string // default https://slack.com
	// TeamID returns the installed workspace's team ID. nil: any workspace
	// the client ID lets sign in is accepted; an error refuses the sign-in.
	TeamID     func(ctx context.Context) (string, error)
	HTTPClient *http.Client // for the provider; default http.DefaultClient

	// Trusted proxy.
	UserHeader     string         // e.g. X-Forwarded-Email
	TrustedProxies []netip.Prefix // only requests from these may set it

	// Key signs the session cookie; at least 32 bytes.
	Key []byte

	Incidents IncidentSource
	// Postmortems assembles the postmortem pages.
	Postmortems PostmortemSource
	Answers     AnswerSink    // may be nil: the checklist and postmortem are read-only
	Names       NameSource    // may be nil: people appear as their Slack IDs
	Drills      DrillSource   // may be nil: no drill strip
	Sessions    SessionSource // may be nil: session pages say records are off
	Refusals    RefusalSource // may be nil: the agents page lists no refused spans

	// SetupHint says how to turn the view on, shown when Auth is off.
	SetupHint string
	Log       *slog.Logger
	Now       func() time.Time
}

// Handler serves the web view.
type Handler struct {
	cfg    Config
	sign   signer
	secure bool
	base   *url.URL
	tmpl   map[string]*template.Template
	now    func() time.Time
	log    *slog.Logger
	names  *names

	mu       sync.Mutex
	provider *oidc.Provider // discovered on first sign-in
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/style.css static/icon.svg
var staticFS embed.FS

// New returns the web view's handler.
func New(cfg Config) (*Handler, error) {
	base, err := url.Parse(strings.TrimRight(cfg.PublicURL, "/"))
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("web view: REINS_PUBLIC_URL %q is not an absolute URL", cfg.PublicURL)
	}
	if cfg.Auth != AuthOff && len(cfg.Key) < 32 {
		return nil, errors.New("web view: the session key must be at least 32 bytes")
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	h := &Handler{cfg: cfg, sign: signer{key: cfg.Key}, secure: base.Scheme == "https", base: base,
		now: cfg.Now, log: cfg.Log, names: &names{src: cfg.Names, now: cfg.Now, cache: map[string]cachedName{}}}
	// Templates name people through the cache; a lookup has its own
	// timeout, so a page never waits on Slack longer than that per person.
	person := func(s string) string { return h.names.people(context.Background(), s) }
	if h.tmpl, err = parseTemplates(person); err != nil {
		return nil, err
	}
	return h, nil
}

// Mux is where Register adds the routes: an *http.ServeMux, or a wrapper
// that also lists them.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the web view's routes to mux.
func (h *Handler) Register(mux Mux) {
	page := func(pattern string, fn func(http.ResponseWriter, *http.Request, *session)) {
		mux.Handle(pattern, h.secured(h.signedIn(fn)))
	}
	page("GET /{$}", h.incidentsPage)
	page("GET /incidents/{id}", h.incidentPage)
	page("GET /incidents/{id}/postmortem.md", h.postmortemDownload)
	page("GET /sessions/{id}", h.sessionPage)
	page("GET /agents", h.agentsPage)
	page("GET /agents/{name}", h.agentPage)
	page("POST /incidents/{id}/checklist", h.startChecklist)
	page("POST /incidents/{id}/checklist/{item}", h.answerChecklist)
	page("POST /incidents/{id}/postmortem/{key}", h.answerPostmortem)
	mux.Handle("GET /auth/login", h.secured(http.HandlerFunc(h.login)))
	mux.Handle("GET /auth/callback", h.secured(http.HandlerFunc(h.callback)))
	mux.Handle("GET /auth/logout", h.secured(http.HandlerFunc(h.logout)))
	mux.Handle("POST /auth/logout", h.secured(http.HandlerFunc(h.logout)))
	mux.Handle("GET /static/style.css", h.secured(h.static("static/style.css", "text/css; charset=utf-8")))
	icon := h.secured(h.static("static/icon.svg", "image/svg+xml"))
	mux.Handle("GET /static/icon.svg", icon)
	mux.Handle("GET /favicon.ico", icon)
}

// CSP allows the one stylesheet and nothing else: no script at all, no inline
// style, no framing, forms only back to reins.
const CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"base-uri 'none'; frame-ancestors 'none'"

// secured sets the headers every web response carries.
func (h *Handler) secured(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", CSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		// Session IDs and titles in URLs stay out of other sites' logs.
		hd.Set("Referrer-Policy", "same-origin")
		if h.secure {
			hd.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// static serves an embedded file; these are the same for everyone and
// need no sign-in.
func (h *Handler) static(name, contentType string) http.Handler {
	b, _ := fs.ReadFile(staticFS, name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(b)
	})
}

// signedIn runs fn with the signed-in person, or answers for them: the view
// is off, the proxy is untrusted, or the browser goes to sign in and comes
// back to this page.
func (h *Handler) signedIn(fn func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private, no-store")
		switch h.cfg.Auth {
		case AuthOff:
			h.render(w, r, http.StatusServiceUnavailable, "off", nil, map[string]any{"Hint": h.cfg.SetupHint})
			return
		case AuthProxy:
			s, status, msg := h.proxyUser(r)
			if s == nil {
				h.fail(w, r, status, "Not signed in", msg)
				return
			}
			fn(w, r, s)
			return
		}
		var s session
		if err := h.readCookie(r, "reins_session", &s); err != nil {
			http.Redirect(w, r, "/auth/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		fn(w, r, &s)
	})
}

// proxyUser trusts the user header only from a trusted proxy's address.
func (h *Handler) proxyUser(r *http.Request) (*session, int, string) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	trusted := false
	if err == nil {
		addr := ap.Addr().Unmap()
		for _, p := range h.cfg.TrustedProxies {
			if p.Contains(addr) {
				trusted = true
				break
			}
		}
	}
	if !trusted {
		h.log.Warn("web view: request not from a trusted proxy", "remote", r.RemoteAddr)
		return nil, http.StatusForbidden, "This request did not come through the sign-in proxy. " +
			"Open reins through your organisation's proxy, or ask an admin to add its address to REINS_WEB_TRUSTED_PROXIES."
	}
	user := strings.TrimSpace(r.Header.Get(h.cfg.UserHeader))
	if user == "" || len(user) > 256 {
		return nil, http.StatusUnauthorized, "The sign-in proxy did not say who you are (header " +
			h.cfg.UserHeader + " is empty). Sign in through the proxy and try again."
	}
	return &session{User: user, Name: user}, 0, ""
}

// safeNext accepts only a path on this site: "/x", never "//host", "/\host",
// a scheme or control characters. Anything else goes to the incident list.
func safeNext(next string) string {
	if next == "" || len(next) > 2048 || next[0] != '/' || strings.HasPrefix(next, "//") ||
		strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\\\r\n\t\x00") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(u.Path, "/auth/") {
		return "/"
	}
	return u.RequestURI()
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// oauth returns the provider and client configuration, discovering the
// provider on first use so reins starts even while Slack is unreachable.
func (h *Handler) oauth(ctx context.Context) (*oidc.Provider, *oauth2.Config, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.provider == nil {
		ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, h.cfg.HTTPClient), 10*time.Second)
		defer cancel()
		p, err := oidc.NewProvider(ctx, h.cfg.Issuer)
		if err != nil {
			return nil, nil, fmt.Errorf("discover OpenID provider %s: %w", h.cfg.Issuer, err)
		}
		h.provider = p
	}
	return h.provider, &oauth2.Config{
		ClientID: h.cfg.ClientID, ClientSecret: h.cfg.ClientSecret,
		Endpoint:    h.provider.Endpoint(),
		RedirectURL: h.base.String() + "/auth/callback",
		Scopes:      []string{oidc.ScopeOpenID, "profile", "email"},
	}, nil
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	next := safeNext(r.URL.Query().Get("next"))
	switch h.cfg.Auth {
	case AuthOff:
		h.render(w, r, http.StatusServiceUnavailable, "off", nil, map[string]any{"Hint": h.cfg.SetupHint})
		return
	case AuthProxy:
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	_, oc, err := h.oauth(r.Context())
	if err != nil {
		h.log.Error("web sign-in: provider unavailable", "err", err)
		h.fail(w, r, http.StatusBadGateway, "Sign-in unavailable",
			"Slack's sign-in service could not be reached. Try again in a minute.")
		return
	}
	st := loginState{State: randomToken(), Nonce: randomToken(), Next: next, Expires: h.now().Add(loginTTL).Unix()}
	v, err := h.sign.encode("reins_login", st)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, "Sign-in failed", "Try again.")
		return
	}
	h.setCookie(w, "reins_login", v, loginTTL)
	http.Redirect(w, r, oc.AuthCodeURL(st.State, oidc.Nonce(st.Nonce)), http.StatusFound)
}

// Claims Slack puts in its ID token besides the standard ones.
type slackClaims struct {
	Nonce string `json:"nonce"`
	Name  string `json:"name"`
	Email string `json:"email"`
	Team  string `json:"https://slack.com/team_id"`
	User  string `json:"https://slack.com/user_id"`
}

func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if h.cfg.Auth != AuthSlack {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	again := func(status int, msg string) {
		h.clearCookie(w, "reins_login")
		h.fail(w, r, status, "Sign-in failed", msg)
	}
	var st loginState
	if err := h.readCookie(r, "reins_login", &st); err != nil {
		again(http.StatusBadRequest, "This sign-in link expired or was not started in this browser. Sign in again.")
		return
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		again(http.StatusUnauthorized, "Slack did not sign you in ("+clipText(e, 80)+"). Sign in again.")
		return
	}
	if q.Get("state") == "" || !constEq(q.Get("state"), st.State) {
		again(http.StatusBadRequest, "The sign-in answer does not match the sign-in this browser started. Sign in again.")
		return
	}
	p, oc, err := h.oauth(r.Context())
	if err != nil {
		again(http.StatusBadGateway, "Slack's sign-in service could not be reached. Try again in a minute.")
		return
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(r.Context(), h.cfg.HTTPClient), 15*time.Second)
	defer cancel()
	tok, err := oc.Exchange(ctx, q.Get("code"))
	if err != nil {
		h.log.Warn("web sign-in: code exchange failed", "err", err)
		again(http.StatusUnauthorized, "Slack did not accept the sign-in code. Sign in again.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: h.cfg.ClientID, Now: h.now}).Verify(ctx, raw)
	if err != nil {
		h.log.Warn("web sign-in: ID token refused", "err", err)
		again(http.StatusUnauthorized, "Slack's answer could not be verified. Sign in again.")
		return
	}
	var c slackClaims
	if err := idt.Claims(&c); err != nil || !constEq(c.Nonce, st.Nonce) {
		again(http.StatusUnauthorized, "Slack's answer was not for this sign-in. Sign in again.")
		return
	}
	if h.cfg.TeamID != nil {
		want, err := h.cfg.TeamID(r.Context())
		if err != nil {
			h.log.Warn("web sign-in: workspace unknown", "err", err)
			again(http.StatusServiceUnavailable, "reins could not check your Slack workspace right now. Try again in a minute.")
			return
		}
		if want != "" && c.Team != want {
			h.log.Warn("web sign-in: other workspace refused", "team", c.Team)
			again(http.StatusForbidden, "You signed in to a different Slack workspace. Sign in with the workspace reins is installed in.")
			return
		}
	}
	user := c.User
	if user == "" {
		user = idt.Subject
	}
	name := c.Name
	if name == "" {
		name = c.Email
	}
	v, err := h.sign.encode("reins_session", session{User: user, Name: clipText(name, 80), Team: c.Team,
		Expires: h.now().Add(sessionTTL).Unix()})
	if err != nil {
		again(http.StatusInternalServerError, "Try again.")
		return
	}
	h.clearCookie(w, "reins_login")
	h.setCookie(w, "reins_session", v, sessionTTL)
	http.Redirect(w, r, safeNext(st.Next), http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	h.clearCookie(w, "reins_session")
	h.render(w, r, http.StatusOK, "signedout", nil, nil)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	h.render(w, r, status, "error", nil, map[string]any{"Title": title, "Message": msg,
		"SignIn": h.cfg.Auth == AuthSlack})
}

func constEq(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
