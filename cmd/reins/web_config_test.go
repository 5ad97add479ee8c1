package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestWebConfigValidate(t *testing.T) {
	proxy := func(kv ...string) map[string]string {
		m := map[string]string{"REINS_WEB_AUTH": "proxy", "REINS_WEB_USER_HEADER": "X-Forwarded-Email",
			"REINS_WEB_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16, ::1"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tt := range []struct {
		name    string
		env     map[string]string
		mode    string
		wantErr string
	}{
		{"Off", map[string]string{}, "off", ""},
		{"Slack", map[string]string{"REINS_SLACK_CLIENT_ID": "1.2", "REINS_SLACK_CLIENT_SECRET": "s"}, "slack", ""},
		{"Proxy", proxy(), "proxy", ""},
		{"ErrSecretMissing", map[string]string{"REINS_SLACK_CLIENT_ID": "1.2"}, "", "REINS_SLACK_CLIENT_SECRET"},
		{"ErrIDMissing", map[string]string{"REINS_SLACK_CLIENT_SECRET": "s"}, "", "REINS_SLACK_CLIENT_ID"},
		{"ErrIssuer", map[string]string{"REINS_SLACK_OIDC_ISSUER": "slack.com"}, "", "REINS_SLACK_OIDC_ISSUER"},
		{"ErrAuthMode", map[string]string{"REINS_WEB_AUTH": "basic"}, "", "REINS_WEB_AUTH"},
		{"ErrNoHeader", proxy("REINS_WEB_USER_HEADER", ""), "", "REINS_WEB_USER_HEADER"},
		{"ErrNoProxies", proxy("REINS_WEB_TRUSTED_PROXIES", ""), "", "REINS_WEB_TRUSTED_PROXIES"},
		{"ErrBadProxy", proxy("REINS_WEB_TRUSTED_PROXIES", "10.0.0.1, proxy.internal"), "", "REINS_WEB_TRUSTED_PROXIES"},
		{"ErrShortKey", map[string]string{"REINS_WEB_SESSION_KEY": "short"}, "", "REINS_WEB_SESSION_KEY"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := ConfigFromEnv(envOf(tt.env))
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v", err)
			case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr+":")):
				t.Fatalf("got %v, want an error starting with %s:", err, tt.wantErr)
			}
			if tt.mode != "" && c.webAuthSummary() != tt.mode {
				t.Fatalf("mode %q, want %q", c.webAuthSummary(), tt.mode)
			}
		})
	}
	c := ConfigFromEnv(envOf(map[string]string{"REINS_SLACK_CLIENT_ID": "1.2", "REINS_SLACK_CLIENT_SECRET": "s3cr3t-client",
		"REINS_WEB_SESSION_KEY": "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"}))
	if got := fmt.Sprint(c.Summary()...); strings.Contains(got, "s3cr3t") {
		t.Fatalf("start-up summary leaks a web secret: %s", got)
	}
}
