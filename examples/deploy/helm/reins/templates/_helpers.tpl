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
