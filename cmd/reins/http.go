package main

import (
	"context"
	"net/http"
	"time"

	"github.com/reins-oss/reins/integrations/alerts"
	"github.com/reins-oss/reins/integrations/api"
	"github.com/reins-oss/reins/integrations/pagerduty"
)

// maxBody caps every request body (docs/api.md).
const maxBody = api.MaxBody

// routes is the HTTP route table (docs/api.md lists the API).
func (m *Main) routes() http.Handler { return m.routeTable().ServeMux }

// privateRoutes are the routes for the cluster only, never for an Ingress:
// metrics, liveness and readiness (whose verbose form lists every
// dependency). examples/deploy/helm routes everything else out
// (TestHelmChartRoutes checks it against routeTable).
var privateRoutes = []string{"GET /healthz", "GET /readyz", "GET /metrics"}

// routeMux is a ServeMux that remembers the patterns registered on it, so the
// routes the server really serves can be listed (TestHelmChartRoutes).
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func (r *routeMux) Handle(pattern string, h http.Handler) {
	r.patterns = append(r.patterns, pattern)
	r.ServeMux.Handle(pattern, h)
}

func (r *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	r.Handle(pattern, http.HandlerFunc(h))
}

// routeTable registers every route the server serves.
func (m *Main) routeTable() *routeMux {
	mux := &routeMux{ServeMux: http.NewServeMux()}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", m.readyz)
	mux.Handle("GET /metrics", m.metricsHandler())

	m.slackRoutes(mux)
	m.webhookRoutes(mux)
	m.apiRoutes(mux)
	m.sessionRoutes(mux)
	if m.web != nil {
		m.web.Register(mux)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, http.StatusNotFound, "no route for "+r.Method+" "+r.URL.Path)
	})
	return mux
}

func (m *Main) readyz(w http.ResponseWriter, r *http.Request) {
	if v := r.URL.Query().Get("verbose"); v != "" && v != "0" {
		// The detail names the database, the config path, the workspace,
		// halt endpoints and secret variables: the API token's, not a
		// probe's. /readyz itself stays open.
		api.RequireToken(m.Config.APIToken, "REINS_API_TOKEN (verbose readiness names hosts and secrets; /readyz without verbose is open)",
			http.HandlerFunc(m.readyzVerbose)).ServeHTTP(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := m.Store.Ping(ctx); err != nil {
		m.Log.Warn("not ready", "err", err)
		api.WriteError(w, http.StatusServiceUnavailable, "store not ready: "+err.Error())
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (m *Main) slackRoutes(mux *routeMux) {
	if m.Bot == nil || m.Config.SlackSigningSecret == "" {
		off := func(w http.ResponseWriter, r *http.Request) {
			api.WriteError(w, http.StatusServiceUnavailable,
				"Slack is not configured here: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET")
		}
		mux.HandleFunc("POST /slack/commands", off)
		mux.HandleFunc("POST /slack/interactions", off)
		mux.HandleFunc("POST /slack/events", off)
		return
	}
	mux.Handle("POST /slack/commands", m.Bot.Commands())
	mux.Handle("POST /slack/interactions", m.Bot.Interactions())
	mux.Handle("POST /slack/events", m.Bot.Events())
}

func (m *Main) webhookRoutes(mux *routeMux) {
	opts := func() alerts.Options {
		reg := m.Registry.Current()
		return alerts.Options{
			AgentLabels:   reg.Alerts.AgentLabels,
			SessionLabels: reg.Alerts.SessionLabels,
			Resolve: func(name string) (string, bool) {
				if a := m.Registry.Current().Agent(name); a != nil {
					return a.Name, true
				}
				return "", false
			},
			Now: m.Clock.Now(),
		}
	}
	// The sources that sign their webhooks, with the secret to check.
	secrets := map[string]string{
		alerts.SourceGrafana:  m.Config.GrafanaWebhookSecret,
		alerts.SourceLangfuse: m.Config.LangfuseWebhookSecret,
	}
	for _, src := range alerts.Sources() {
		mux.Handle("POST /webhooks/"+src, alerts.NewHandler(alerts.HandlerConfig{
			Source: src, Token: m.Config.WebhookToken, Secret: secrets[src],
			Options: opts, Ingest: m.Intake, Log: m.Log, Metrics: m.metrics().alerts,
		}))
	}
	mux.Handle("POST /webhooks/pagerduty", pagerduty.NewWebhookHandler(
		m.Config.PagerDutyWebhookSecret, m.Service, m.Service, m.Log))
}

// apiRoutes registers the REST API (integrations/api), and the kill flag and
// OFREP, which take the flag token, never the API token.
func (m *Main) apiRoutes(mux *routeMux) {
	h := &api.Handler{Token: m.Config.APIToken, Incidents: m.Service, Intake: m.Intake, Halting: useCasesOf(m), Aftermath: m.Aftermath,
		Sessions: m.Sessions, Registry: m.Registry, Leave: m.leaveSession, Now: m.Clock.Now, Log: m.Log}
	h.Register(mux)
	mux.Handle("GET /api/v1/agents/{agent}/halted", m.Flags.Handler(m.Config.FlagToken, m.agentName))
	// The same state over OFREP (docs/containment.md), with the flag token.
	ofrep := m.Flags.OFREP(m.Config.FlagToken, m.agentName, func() []string { return m.Registry.Current().Names() })
	mux.Handle("/ofrep/v1/evaluate/flags/{key}", ofrep.Evaluate())
	mux.Handle("/ofrep/v1/evaluate/flags", ofrep.Bulk())
	mux.Handle("/api/v1/", h.NotFound())
}

// agentName resolves a name or alias to the configured agent's name.
func (m *Main) agentName(nameOrAlias string) (string, bool) {
	if ag := m.Registry.Current().Agent(nameOrAlias); ag != nil {
		return ag.Name, true
	}
	return "", false
}
