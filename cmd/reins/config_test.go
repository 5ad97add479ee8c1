package main

import (
	"fmt"
	"strings"
	"testing"
)

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestConfigFromEnvDefaults(t *testing.T) {
	c := ConfigFromEnv(envOf(nil))
	if c.DatabaseURL != "sqlite:reins.db" || c.Listen != ":8080" || c.PublicURL != "http://localhost:8080" ||
		c.ConfigPath != "reins.yaml" || c.SlackAPIURL != "https://slack.com/api/" {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults must validate: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // the variable named in the one-line error
	}{
		{"OK", map[string]string{"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}, ""},
		{"OKSocketMode", map[string]string{"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}, ""},
		{"ErrDatabaseScheme", map[string]string{"REINS_DATABASE_URL": "mysql://x"}, "REINS_DATABASE_URL"},
		{"ErrListen", map[string]string{"REINS_LISTEN": "8080"}, "REINS_LISTEN"},
		{"ErrPublicURL", map[string]string{"REINS_PUBLIC_URL": "localhost:8080"}, "REINS_PUBLIC_URL"},
		{"ErrBotToken", map[string]string{"SLACK_BOT_TOKEN": "xoxp-user"}, "SLACK_BOT_TOKEN"},
		{"ErrAppToken", map[string]string{"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-2"}, "SLACK_APP_TOKEN"},
		{"ErrAppTokenAlone", map[string]string{"SLACK_APP_TOKEN": "xapp-1"}, "SLACK_APP_TOKEN"},
		{"ErrNoSigningSecret", map[string]string{"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET"},
		{"ErrLogLevel", map[string]string{"REINS_LOG_LEVEL": "loud"}, "REINS_LOG_LEVEL"},
		{"ErrEventsURL", map[string]string{"PAGERDUTY_EVENTS_URL": "events"}, "PAGERDUTY_EVENTS_URL"},
		{"OKDatabaseMaxConns", map[string]string{"REINS_DATABASE_MAX_CONNS": "8"}, ""},
		{"ErrDatabaseMaxConnsTooFew", map[string]string{"REINS_DATABASE_MAX_CONNS": "2"}, "REINS_DATABASE_MAX_CONNS"},
		{"ErrDatabaseMaxConnsNotACount", map[string]string{"REINS_DATABASE_MAX_CONNS": "many"}, "REINS_DATABASE_MAX_CONNS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ConfigFromEnv(envOf(tt.env)).Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr+":")):
				t.Fatalf("got %v, want an error starting with %s:", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestConfigSummaryHidesSecrets(t *testing.T) {
	secrets := map[string]string{
		"REINS_API_TOKEN": "s3cr3t-api", "REINS_WEBHOOK_TOKEN": "s3cr3t-hook", "SLACK_BOT_TOKEN": "xoxb-s3cr3t",
		"SLACK_SIGNING_SECRET": "s3cr3t-sign", "PAGERDUTY_ROUTING_KEY": "s3cr3t-pd",
		"REINS_DATABASE_URL": "postgres://u:s3cr3t-db@db:5432/reins",
	}
	if got := fmt.Sprint(ConfigFromEnv(envOf(secrets)).Summary()...); strings.Contains(got, "s3cr3t") {
		t.Fatalf("start-up summary leaks a secret: %s", got)
	}
}
