{{/* Names, labels, images and the settings several templates share. */}}

{{- define "apt-uss.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's object name prefix: <release>-<chart>, or <release> when it holds the chart name. */}}
{{- define "apt-uss.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "apt-uss.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "apt-uss.labels" -}}
helm.sh/chart: {{ include "apt-uss.chart" . }}
app.kubernetes.io/name: {{ include "apt-uss.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: include "apt-uss.selectorLabels" (list . "mlflow") */}}
{{- define "apt-uss.selectorLabels" -}}
{{- $ctx := index . 0 -}}
app.kubernetes.io/name: {{ include "apt-uss.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "apt-uss.pipelineNamespace" -}}
{{- default .Release.Namespace .Values.pipelineNamespace -}}
{{- end -}}

{{- define "apt-uss.image" -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" .Values.image.registry) $repo -}}
{{- end -}}
{{- printf "%s:%s" $repo (toString .Values.image.tag) -}}
{{- end -}}

{{- define "apt-uss.postgresql.image" -}}
{{- $img := .Values.postgresql.image -}}
{{- $repo := $img.repository -}}
{{- if $img.registry -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" $img.registry) $repo -}}
{{- end -}}
{{- printf "%s:%s" $repo (toString $img.tag) -}}
{{- end -}}

{{- define "apt-uss.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ if kindIs "map" . }}{{ .name }}{{ else }}{{ . }}{{ end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* MLflow */}}
{{- define "apt-uss.mlflow.fullname" -}}
{{- printf "%s-mlflow" (include "apt-uss.fullname" .) -}}
{{- end -}}

{{- define "apt-uss.mlflow.trackingUri" -}}
{{- printf "http://%s.%s.svc.%s:%v" (include "apt-uss.mlflow.fullname" .) .Release.Namespace .Values.clusterDomain .Values.mlflow.service.port -}}
{{- end -}}

{{/* The Host headers the MLflow server accepts: the Service's DNS names (with and without the
port), localhost (kubectl port-forward) and mlflow.extraAllowedHosts. */}}
{{- define "apt-uss.mlflow.allowedHosts" -}}
{{- $svc := include "apt-uss.mlflow.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $port := toString .Values.mlflow.service.port -}}
{{- $hosts := list -}}
{{- range (list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain)) -}}
{{- $hosts = append $hosts . -}}
{{- $hosts = append $hosts (printf "%s:%s" . $port) -}}
{{- end -}}
{{- $hosts = concat $hosts (list "localhost" "localhost:*" "127.0.0.1" "127.0.0.1:*") .Values.mlflow.extraAllowedHosts -}}
{{- join "," $hosts -}}
{{- end -}}

{{/* The S3 credentials Secret: the existing one or the chart's. */}}
{{- define "apt-uss.credentials.secretName" -}}
{{- default .Values.credentials.secretName .Values.credentials.existingSecret -}}
{{- end -}}

{{/* Fails rendering unless S3 keys or an existing Secret are given. */}}
{{- define "apt-uss.credentials.check" -}}
{{- $c := .Values.credentials -}}
{{- if not $c.existingSecret -}}
{{- $msg := "apt-uss: S3 credentials are required: set credentials.accessKeyId and credentials.secretAccessKey (e.g. --set-string credentials.accessKeyId=...,credentials.secretAccessKey=...), or credentials.existingSecret to the name of a Secret with the keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" -}}
{{- $_ := required $msg $c.accessKeyId -}}
{{- $_ := required $msg $c.secretAccessKey -}}
{{- end -}}
{{- end -}}

{{/* PostgreSQL */}}
{{- define "apt-uss.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "apt-uss.fullname" .) -}}
{{- end -}}

{{- define "apt-uss.db.host" -}}
{{- if .Values.postgresql.enabled -}}
{{- printf "%s.%s.svc.%s" (include "apt-uss.postgresql.fullname" .) .Release.Namespace .Values.clusterDomain -}}
{{- else -}}
{{- required "apt-uss: externalPostgresql.host is required when postgresql.enabled is false" .Values.externalPostgresql.host -}}
{{- end -}}
{{- end -}}

{{- define "apt-uss.db.port" -}}
{{- if .Values.postgresql.enabled -}}5432{{- else -}}{{ .Values.externalPostgresql.port }}{{- end -}}
{{- end -}}

{{- define "apt-uss.db.name" -}}
{{- if .Values.postgresql.enabled -}}{{ .Values.postgresql.auth.database }}{{- else -}}{{ .Values.externalPostgresql.database }}{{- end -}}
{{- end -}}

{{- define "apt-uss.db.user" -}}
{{- if .Values.postgresql.enabled -}}{{ .Values.postgresql.auth.username }}{{- else -}}{{ .Values.externalPostgresql.username }}{{- end -}}
{{- end -}}

{{/* The Secret and key holding the database password. */}}
{{- define "apt-uss.db.secretName" -}}
{{- if .Values.postgresql.enabled -}}
{{- default (include "apt-uss.postgresql.fullname" .) .Values.postgresql.auth.existingSecret -}}
{{- else -}}
{{- required "apt-uss: externalPostgresql.existingSecret (a Secret in the release namespace holding the database password) is required when postgresql.enabled is false" .Values.externalPostgresql.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "apt-uss.db.secretKey" -}}
{{- if .Values.postgresql.enabled -}}
{{- if .Values.postgresql.auth.existingSecret -}}{{ .Values.postgresql.auth.existingSecretPasswordKey }}{{- else -}}password{{- end -}}
{{- else -}}
{{- .Values.externalPostgresql.existingSecretPasswordKey -}}
{{- end -}}
{{- end -}}

{{/* The backend store URI; the password reaches the server through PGPASSWORD, never the URI. */}}
{{- define "apt-uss.db.uri" -}}
{{- $uri := printf "postgresql+psycopg2://%s@%s:%s/%s" (include "apt-uss.db.user" .) (include "apt-uss.db.host" .) (include "apt-uss.db.port" .) (include "apt-uss.db.name" .) -}}
{{- if and (not .Values.postgresql.enabled) .Values.externalPostgresql.sslMode -}}
{{- $uri = printf "%s?sslmode=%s" $uri .Values.externalPostgresql.sslMode -}}
{{- end -}}
{{- $uri -}}
{{- end -}}

{{/* Upload Job */}}
{{- define "apt-uss.upload.serviceAccountName" -}}
{{- if .Values.pipelineUpload.serviceAccount.create -}}
{{- default (printf "%s-pipeline-upload" (include "apt-uss.fullname" .)) .Values.pipelineUpload.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.pipelineUpload.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The S3 environment of MLflow (endpoint, region, keys from the credentials Secret). */}}
{{- define "apt-uss.s3.env" -}}
- name: MLFLOW_S3_ENDPOINT_URL
  value: {{ .Values.s3.endpoint | quote }}
- name: AWS_ENDPOINT_URL
  value: {{ .Values.s3.endpoint | quote }}
- name: AWS_DEFAULT_REGION
  value: {{ .Values.s3.region | quote }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "apt-uss.credentials.secretName" . }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "apt-uss.credentials.secretName" . }}
      key: AWS_SECRET_ACCESS_KEY
{{- end -}}

{{/* Environment every apt-uss container gets: a writable HOME (/tmp) on a read-only root. */}}
{{- define "apt-uss.python.env" -}}
- name: HOME
  value: /tmp
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
{{- end -}}
