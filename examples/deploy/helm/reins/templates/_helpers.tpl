{{- define "reins.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "reins.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "reins.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "reins.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "reins.selectorLabels" -}}
app.kubernetes.io/name: {{ include "reins.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "reins.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "reins.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* usePostgres: "true" when a PostgreSQL URL is configured. */}}
{{- define "reins.usePostgres" -}}
{{- if or .Values.postgres.url .Values.postgres.urlSecret.name -}}true{{- end -}}
{{- end -}}

{{/* validate refuses settings that cannot work, saying what to change. */}}
{{- define "reins.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not (include "reins.usePostgres" .)) -}}
{{- fail (printf "replicaCount=%d needs PostgreSQL: SQLite is one file on one pod's volume. Set postgres.url (with postgres.passwordSecret) or postgres.urlSecret, or keep replicaCount=1." (int .Values.replicaCount)) -}}
{{- end -}}
{{- if and .Values.postgres.url (regexMatch "://[^/@]*:[^/@]*@" .Values.postgres.url) -}}
{{- fail "postgres.url contains a password: put it in a Secret and name it in postgres.passwordSecret (or the whole URL in postgres.urlSecret)" -}}
{{- end -}}
{{- end -}}

{{/* publicPaths: what reins serves to people, Slack and monitoring, as
     [path, pathType] pairs. Never /metrics, /healthz or /readyz.
     cmd/reins TestHelmChartRoutes checks this list against the routes the
     server registers. */}}
{{- define "reins.publicPaths" -}}
- [/, Exact]                # the web view: incident list
- [/incidents/, Prefix]     # incident pages, postmortems, the Slack link of pages
- [/sessions/, Prefix]      # session pages
- [/agents, Prefix]         # /agents and /agents/NAME
- [/static/, Prefix]        # the web view's CSS and icon
- [/favicon.ico, Exact]
- [/auth/, Prefix]          # Sign in with Slack: login, callback, logout
- [/slack/, Prefix]         # slash command, interactions, events (without Socket Mode)
- [/webhooks/, Prefix]      # monitoring alerts, PagerDuty webhooks
- [/api/, Prefix]           # the API and the kill flag agents poll
- [/ofrep/, Prefix]         # the kill flag over OpenFeature (OFREP)
{{- end -}}

{{/* otlpPaths: the agents' spans. */}}
{{- define "reins.otlpPaths" -}}
- [/v1/traces, Exact]
{{- end -}}

{{/* ingressPaths renders .paths ([path, pathType] pairs) to the Service. */}}
{{- define "reins.ingressPaths" -}}
{{- range .paths }}
- path: {{ index . 0 }}
  pathType: {{ index . 1 }}
  backend:
    service:
      name: {{ include "reins.fullname" $.root }}
      port:
        name: http
{{- end }}
{{- end -}}
