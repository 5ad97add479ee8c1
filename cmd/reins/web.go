package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/reins-oss/reins/bot"
	"github.com/reins-oss/reins/integrations/web"
)

// webAuthMode is how people sign in to the web view: proxy when asked for,
// Slack when its client is configured, off otherwise.
func (c Config) webAuthMode() string {
	switch {
	case strings.EqualFold(c.WebAuth, "proxy"):
		return web.AuthProxy
	case c.SlackClientID != "" && c.SlackClientSecret != "":
		return web.AuthSlack
	}
	return web.AuthOff
}

// trustedProxies parses REINS_WEB_TRUSTED_PROXIES: addresses or CIDR ranges.
func (c Config) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(c.WebTrustedProxies, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("REINS_WEB_TRUSTED_PROXIES: %q is neither an address nor a CIDR range", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func (c Config) validateWeb() error {
	if c.WebAuth != "" && !strings.EqualFold(c.WebAuth, "proxy") {
		return fmt.Errorf("REINS_WEB_AUTH: %q is not supported: set proxy, or leave it empty and set REINS_SLACK_CLIENT_ID and REINS_SLACK_CLIENT_SECRET", c.WebAuth)
	}
	if c.SlackClientID != "" && c.SlackClientSecret == "" {
		return fmt.Errorf("REINS_SLACK_CLIENT_SECRET: Sign in with Slack needs it with REINS_SLACK_CLIENT_ID (Basic Information in your Slack app)")
	}
	if c.SlackClientID == "" && c.SlackClientSecret != "" {
		return fmt.Errorf("REINS_SLACK_CLIENT_ID: Sign in with Slack needs it with REINS_SLACK_CLIENT_SECRET (Basic Information in your Slack app)")
	}
	if p, err := url.Parse(c.SlackOIDCIssuer); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("REINS_SLACK_OIDC_ISSUER: %q is not an absolute http(s) URL", c.SlackOIDCIssuer)
	}
	if c.WebSessionKey != "" && len(c.WebSessionKey) < 32 {
		return fmt.Errorf("REINS_WEB_SESSION_KEY: must be at least 32 characters (try: openssl rand -base64 32)")
	}
	if c.webAuthMode() == web.AuthProxy {
		if c.WebUserHeader == "" {
			return fmt.Errorf("REINS_WEB_USER_HEADER: required with REINS_WEB_AUTH=proxy (for example X-Forwarded-Email)")
		}
		ps, err := c.trustedProxies()
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			return fmt.Errorf("REINS_WEB_TRUSTED_PROXIES: required with REINS_WEB_AUTH=proxy: the proxy's addresses or CIDR ranges")
		}
	}
	return nil
}

// openWeb builds the web view (docs/architecture.md, web view); routes registers it.
func (m *Main) openWeb(ctx context.Context) error {
	if m.WebSessions == nil && m.Sessions != nil {
		m.WebSessions = webSessionSource{svc: m.Sessions, breaches: m.Store}
	}
	cfg := web.Config{
		PublicURL:    m.Config.PublicURL,
		Auth:         m.Config.webAuthMode(),
		ClientID:     m.Config.SlackClientID,
		ClientSecret: m.Config.SlackClientSecret,
		Issuer:       m.Config.SlackOIDCIssuer,
		TeamID:       m.teamID(),
		UserHeader:   m.Config.WebUserHeader,
		Incidents:    m.Service,
		Postmortems:  m.Aftermath,
		Answers:      m.Aftermath,
		Names:        m.webNames(),
		Drills:       m.Store,
		Sessions:     m.WebSessions,
		Refusals:     webRefusals{m},
		SetupHint:    strings.TrimRight(m.Config.PublicURL, "/"),
		Log:          m.Log,
		Now:          m.Clock.Now,
	}
	cfg.TrustedProxies, _ = m.Config.trustedProxies() // validated in Open
	if cfg.Auth == web.AuthSlack && cfg.TeamID == nil {
		m.Log.Warn("web view: any Slack workspace may sign in: set REINS_SLACK_TEAM_ID or SLACK_BOT_TOKEN to allow only yours")
	}
	if cfg.Auth != web.AuthOff {
		key, err := m.webKey(ctx)
		if err != nil {
			return err
		}
		cfg.Key = key
	}
	h, err := web.New(cfg)
	if err != nil {
		return err
	}
	m.web = h
	return nil
}

// webKey is REINS_WEB_SESSION_KEY, else a key generated once and kept in the
// store, so every replica and every restart accept the same cookies.
func (m *Main) webKey(ctx context.Context) ([]byte, error) {
	if m.Config.WebSessionKey != "" {
		return []byte(m.Config.WebSessionKey), nil
	}
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	v, err := m.Store.WebKey(ctx, "session", base64.StdEncoding.EncodeToString(fresh))
	if err != nil {
		return nil, fmt.Errorf("web view session key: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(key) < 32 {
		return nil, fmt.Errorf("web view session key: the stored key is damaged; set REINS_WEB_SESSION_KEY")
	}
	return key, nil
}

// teamID is the workspace people must sign in with: REINS_SLACK_TEAM_ID, else
// the one the bot token belongs to (asked once, then remembered).
func (m *Main) teamID() func(context.Context) (string, error) {
	if m.Config.SlackTeamID != "" {
		id := m.Config.SlackTeamID
		return func(context.Context) (string, error) { return id, nil }
	}
	if m.Slack == nil {
		return nil
	}
	var mu sync.Mutex
	var known string
	return func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if known == "" {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			res, err := m.Slack.AuthTestContext(ctx)
			if err != nil {
				return "", fmt.Errorf("ask Slack which workspace reins is installed in: %w", err)
			}
			known = res.TeamID
		}
		return known, nil
	}
}

// webAuthSummary names the sign-in for the start-up log line.
func (c Config) webAuthSummary() string {
	if m := c.webAuthMode(); m != web.AuthOff {
		return m
	}
	return "off"
}

// webNames is where the web view finds people's names: Slack's users.info
// through the bot token (cached by the view), or nowhere without Slack.
func (m *Main) webNames() web.NameSource {
	if m.Slack == nil {
		return nil
	}
	return bot.NewDirectory(m.Slack)
}
