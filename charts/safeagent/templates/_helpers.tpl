{{/* Shared names and labels of the safeagent chart. */}}

{{/* The chart name, trimmed to the 63 characters a label value allows. */}}
{{- define "safeagent.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Base name of namespaced objects: the release name, plus the chart name unless it is in it. */}}
{{- define "safeagent.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "safeagent.operatorName" -}}
{{- printf "%s-operator" (include "safeagent.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "safeagent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "safeagent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: safeagent
{{- end -}}

{{/* Selector labels of the operator Pod: stable across upgrades. */}}
{{- define "safeagent.operatorSelector" -}}
app.kubernetes.io/name: {{ include "safeagent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* The policy file chosen by policy.preset; fails the render on a contradictory choice. */}}
{{- define "safeagent.policyText" -}}
{{- $text := include "safeagent.policyChoice" . -}}
{{- if eq (trim $text) "" -}}
{{- fail "the chosen policy is empty: the chart's files/policy*.yaml are missing (run `make chart-files`)" -}}
{{- end -}}
{{- $text -}}
{{- end -}}

{{- define "safeagent.policyChoice" -}}
{{- $preset := .Values.policy.preset -}}
{{- if and (ne $preset "custom") (ne (trim .Values.policy.custom) "") -}}
{{- fail (printf "policy.custom is set but policy.preset is %q: set policy.preset=custom to use it" $preset) -}}
{{- end -}}
{{- if eq $preset "inspect-only" -}}
{{- .Files.Get "files/policy.yaml" -}}
{{- else if eq $preset "execution" -}}
{{- .Files.Get "files/policy.execution.yaml" -}}
{{- else if eq $preset "custom" -}}
{{- if eq (trim .Values.policy.custom) "" -}}
{{- fail "policy.preset is custom but policy.custom is empty: give the whole policy file as YAML text" -}}
{{- end -}}
{{- .Values.policy.custom -}}
{{- else -}}
{{- fail (printf "policy.preset must be inspect-only, execution or custom, not %q" $preset) -}}
{{- end -}}
{{- end -}}
