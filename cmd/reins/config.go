package main

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/reins-oss/reins/migrations"
)

// Config is everything reins reads from the environment (README.md, Settings). Secrets
// live only here and are never logged: LogValue prints which are set, not what.
type Config struct {
	ConfigPath string // --config, REINS_CONFIG, default reins.yaml
	// ConfigExplicit is true when the path was given (--config or
	// REINS_CONFIG): then the file must exist; only the default may be absent.
	ConfigExplicit bool
	// PublicURLSet is true when REINS_PUBLIC_URL was given, not defaulted.
	PublicURLSet bool

	DatabaseURL string
	// REINS_DATABASE_MAX_CONNS: PostgreSQL connections one reins may hold;
	// replicas times this must stay under the server's max_connections.
	DatabaseMaxConns string
	Listen           string
	PublicURL        string
	LogLevel         string

	APIToken     string
	FlagToken    string
	WebhookToken string

	SlackBotToken      string
	SlackSigningSecret string
	SlackAppToken      string
	SlackAPIURL        string

	PagerDutyRoutingKey    string
	PagerDutyEventsURL     string
	PagerDutyAPIToken      string
	PagerDutyAPIURL        string
	PagerDutyWebhookSecret string

	GrafanaWebhookSecret  string
	LangfuseWebhookSecret string

	OTLPToken    string // REINS_OTLP_TOKEN: bearer token of /v1/traces
	OTLPMaxBytes string // REINS_OTLP_MAX_BYTES: body cap after decompression
	// REINS_OTLP_MAX_INFLIGHT_BYTES, REINS_OTLP_MAX_SPANS,
	// REINS_OTLP_MAX_ATTRIBUTES: the intake's memory bounds.
	OTLPMaxInflightBytes string
	OTLPMaxSpans         string
	OTLPMaxAttributes    string
	// REINS_OTLP_BULK_WRITES: writes of requests of more than 32 spans at
	// once (the intake's bulk lane); "" for the CPUs reins may use, at
	// least 2.
	OTLPBulkWrites string
	// The web view (docs/architecture.md, web view): Sign in with Slack, or a trusted proxy header.
	SlackClientID     string
	SlackClientSecret string
	SlackOIDCIssuer   string
	SlackTeamID       string
	WebAuth           string
	WebUserHeader     string
	WebTrustedProxies string
	WebSessionKey     string
}

// envVars maps each variable to its field and default, in the order of README.md (Settings).
func (c *Config) envVars() []struct {
	name string
	dst  *string
	def  string
} {
	return []struct {
		name string
		dst  *string
		def  string
	}{
		{"REINS_CONFIG", &c.ConfigPath, "reins.yaml"},
		{"REINS_DATABASE_URL", &c.DatabaseURL, "sqlite:reins.db"},
		{"REINS_DATABASE_MAX_CONNS", &c.DatabaseMaxConns, ""}, // "": migrations.PostgresMaxConns (16)
		{"REINS_LISTEN", &c.Listen, ":8080"},
		{"REINS_PUBLIC_URL", &c.PublicURL, "http://localhost:8080"},
		{"REINS_LOG_LEVEL", &c.LogLevel, "info"},
		{"REINS_API_TOKEN", &c.APIToken, ""},
		{"REINS_FLAG_TOKEN", &c.FlagToken, ""},
		{"REINS_WEBHOOK_TOKEN", &c.WebhookToken, ""},
		{"SLACK_BOT_TOKEN", &c.SlackBotToken, ""},
		{"SLACK_SIGNING_SECRET", &c.SlackSigningSecret, ""},
		{"SLACK_APP_TOKEN", &c.SlackAppToken, ""},
		{"SLACK_API_URL", &c.SlackAPIURL, "https://slack.com/api/"},
		{"PAGERDUTY_ROUTING_KEY", &c.PagerDutyRoutingKey, ""},
		{"PAGERDUTY_EVENTS_URL", &c.PagerDutyEventsURL, "https://events.pagerduty.com"},
		{"PAGERDUTY_API_TOKEN", &c.PagerDutyAPIToken, ""},
		{"PAGERDUTY_API_URL", &c.PagerDutyAPIURL, "https://api.pagerduty.com"},
		{"PAGERDUTY_WEBHOOK_SECRET", &c.PagerDutyWebhookSecret, ""},
		{"REINS_GRAFANA_WEBHOOK_SECRET", &c.GrafanaWebhookSecret, ""},
		{"REINS_LANGFUSE_WEBHOOK_SECRET", &c.LangfuseWebhookSecret, ""},
		{"REINS_OTLP_TOKEN", &c.OTLPToken, ""},
		{"REINS_OTLP_MAX_BYTES", &c.OTLPMaxBytes, "8388608"},
		{"REINS_OTLP_MAX_INFLIGHT_BYTES", &c.OTLPMaxInflightBytes, "16777216"},
		{"REINS_OTLP_MAX_SPANS", &c.OTLPMaxSpans, "10000"},
		{"REINS_OTLP_MAX_ATTRIBUTES", &c.OTLPMaxAttributes, "128"},
		{"REINS_OTLP_BULK_WRITES", &c.OTLPBulkWrites, ""},
		{"REINS_SLACK_CLIENT_ID", &c.SlackClientID, ""},
		{"REINS_SLACK_CLIENT_SECRET", &c.SlackClientSecret, ""},
		{"REINS_SLACK_OIDC_ISSUER", &c.SlackOIDCIssuer, "https://slack.com"},
		{"REINS_SLACK_TEAM_ID", &c.SlackTeamID, ""},
		{"REINS_WEB_AUTH", &c.WebAuth, ""},
		{"REINS_WEB_USER_HEADER", &c.WebUserHeader, ""},
		{"REINS_WEB_TRUSTED_PROXIES", &c.WebTrustedProxies, ""},
		{"REINS_WEB_SESSION_KEY", &c.WebSessionKey, ""},
	}
}

// ConfigFromEnv reads the environment through getenv, applying defaults.
func ConfigFromEnv(getenv func(string) string) Config {
	var c Config
	for _, v := range c.envVars() {
		*v.dst = strings.TrimSpace(getenv(v.name))
		if *v.dst == "" {
			*v.dst = v.def
		}
	}
	c.ConfigExplicit = strings.TrimSpace(getenv("REINS_CONFIG")) != ""
	c.PublicURLSet = strings.TrimSpace(getenv("REINS_PUBLIC_URL")) != ""
	return c
}

// SlackEnabled says whether the Slack Web API is configured.
func (c Config) SlackEnabled() bool { return c.SlackBotToken != "" }

// PagerEnabled says whether pages can be sent at all (a default key or a
// per-team key may be named by the config file; the client is cheap).
func (c Config) PagerEnabled() bool { return true }

// Validate checks every value and returns the first problem as one line that
// names the variable and says why.
func (c Config) Validate() error {
	if _, _, err := migrations.ParseURL(c.DatabaseURL); err != nil {
		return fmt.Errorf("REINS_DATABASE_URL: %w", err)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("REINS_LISTEN: %q is not host:port (for example :8080): %v", c.Listen, err)
	}
	for _, u := range []struct{ name, val string }{
		{"REINS_PUBLIC_URL", c.PublicURL},
		{"SLACK_API_URL", c.SlackAPIURL},
		{"PAGERDUTY_EVENTS_URL", c.PagerDutyEventsURL},
		{"PAGERDUTY_API_URL", c.PagerDutyAPIURL},
	} {
		p, err := url.Parse(u.val)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%s: %q is not an absolute http(s) URL", u.name, u.val)
		}
	}
	switch lvl := strings.ToLower(c.LogLevel); lvl {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("REINS_LOG_LEVEL: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	if n, err := strconv.ParseInt(c.OTLPMaxBytes, 10, 64); err != nil || n < 1024 {
		return fmt.Errorf("REINS_OTLP_MAX_BYTES: %q is not a byte count of at least 1024 (default 8388608, 8 MiB)", c.OTLPMaxBytes)
	}
	if n, err := strconv.ParseInt(c.OTLPMaxInflightBytes, 10, 64); err != nil || n < 1<<20 {
		return fmt.Errorf("REINS_OTLP_MAX_INFLIGHT_BYTES: %q is not a byte count of at least 1048576 (default 16777216, 16 MiB)", c.OTLPMaxInflightBytes)
	}
	if n, err := strconv.Atoi(c.DatabaseMaxConns); c.DatabaseMaxConns != "" && (err != nil || n < minDatabaseConns) {
		return fmt.Errorf("REINS_DATABASE_MAX_CONNS: %q is not a count of at least %d (default 16)", c.DatabaseMaxConns, minDatabaseConns)
	}
	if n, err := strconv.Atoi(c.OTLPMaxSpans); err != nil || n < 1 {
		return fmt.Errorf("REINS_OTLP_MAX_SPANS: %q is not a positive count (default 10000)", c.OTLPMaxSpans)
	}
	if n, err := strconv.Atoi(c.OTLPMaxAttributes); err != nil || n < 16 {
		return fmt.Errorf("REINS_OTLP_MAX_ATTRIBUTES: %q is not a count of at least 16 (default 128)", c.OTLPMaxAttributes)
	}
	if n, err := strconv.Atoi(c.OTLPBulkWrites); c.OTLPBulkWrites != "" && (err != nil || n < 1) {
		return fmt.Errorf("REINS_OTLP_BULK_WRITES: %q is not a positive count (default: the CPUs reins may use, at least 2)", c.OTLPBulkWrites)
	}
	if c.SlackBotToken != "" && !strings.HasPrefix(c.SlackBotToken, "xoxb-") {
		return fmt.Errorf("SLACK_BOT_TOKEN: must be a bot token starting with xoxb-")
	}
	if c.SlackAppToken != "" && !strings.HasPrefix(c.SlackAppToken, "xapp-") {
		return fmt.Errorf("SLACK_APP_TOKEN: must be an app-level token starting with xapp-")
	}
	if c.SlackAppToken != "" && c.SlackBotToken == "" {
		return fmt.Errorf("SLACK_APP_TOKEN: Socket Mode also needs SLACK_BOT_TOKEN")
	}
	if err := c.validateWeb(); err != nil {
		return err
	}
	if c.SlackBotToken != "" && c.SlackAppToken == "" && c.SlackSigningSecret == "" {
		return fmt.Errorf("SLACK_SIGNING_SECRET: required to verify /slack/* requests when SLACK_BOT_TOKEN is set without SLACK_APP_TOKEN")
	}
	return nil
}

// slackAPIURL returns the Slack API base with the trailing slash slack-go expects.
func (c Config) slackAPIURL() string {
	if strings.HasSuffix(c.SlackAPIURL, "/") {
		return c.SlackAPIURL
	}
	return c.SlackAPIURL + "/"
}

// Summary describes the configuration for the start-up log line, secrets as
// set/unset only.
func (c Config) Summary() []any {
	set := func(s string) bool { return s != "" }
	return []any{
		"database", migrations.Redact(c.DatabaseURL),
		"listen", c.Listen,
		"public_url", c.PublicURL,
		"config", c.ConfigPath,
		"slack", set(c.SlackBotToken),
		"socket_mode", set(c.SlackAppToken),
		"pagerduty_default_key", set(c.PagerDutyRoutingKey),
		"pagerduty_api", set(c.PagerDutyAPIToken),
		"api_token", set(c.APIToken),
		"webhook_token", set(c.WebhookToken),
		"flag_token", set(c.FlagToken),
		"otlp_token", set(c.OTLPToken),
		"web_auth", c.webAuthSummary(),
	}
}
