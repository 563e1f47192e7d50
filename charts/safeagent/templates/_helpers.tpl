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

{{- define "safeagent.canaryName" -}}
{{- printf "%s-canary" (include "safeagent.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of the egress canary Pod. */}}
{{- define "safeagent.canarySelector" -}}
app.kubernetes.io/name: {{ include "safeagent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: canary
{{- end -}}

{{/* The file name of the policy the operator enforces, chosen by policy.preset; fails the render
     on a contradictory choice or a preset whose file the chart does not hold. */}}
{{- define "safeagent.policyFile" -}}
{{- $preset := .Values.policy.preset -}}
{{- if and (ne $preset "custom") (ne (trim .Values.policy.custom) "") -}}
{{- fail (printf "policy.custom is set but policy.preset is %q: set policy.preset=custom to use it" $preset) -}}
{{- end -}}
{{- $file := "" -}}
{{- if eq $preset "inspect-only" -}}
{{- $file = "policy.yaml" -}}
{{- else if eq $preset "execution" -}}
{{- $file = "policy.execution.yaml" -}}
{{- else if eq $preset "custom" -}}
{{- if eq (trim .Values.policy.custom) "" -}}
{{- fail "policy.preset is custom but policy.custom is empty: give the whole policy file as YAML text" -}}
{{- end -}}
{{- $file = "policy.custom.yaml" -}}
{{- else -}}
{{- fail (printf "policy.preset must be inspect-only, execution or custom, not %q" $preset) -}}
{{- end -}}
{{- if and (ne $preset "custom") (eq (trim (.Files.Get (printf "files/%s" $file))) "") -}}
{{- fail (printf "the chart's files/%s is missing or empty" $file) -}}
{{- end -}}
{{- $file -}}
{{- end -}}

{{/* The policy ConfigMap's data: every preset the chart holds (files/policy*.yaml, byte for byte,
     so that a policy can extend another by file name), plus policy.custom.yaml when chosen. */}}
{{- define "safeagent.policyData" -}}
{{- $chosen := include "safeagent.policyFile" . -}}
{{- range $path, $_ := .Files.Glob "files/policy*.yaml" }}
{{ base $path }}: |
  {{- $.Files.Get $path | nindent 2 }}
{{- end }}
{{- if eq $chosen "policy.custom.yaml" }}
policy.custom.yaml: |
  {{- .Values.policy.custom | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The port of Kopf's /healthz in the operator Pod. */}}
{{- define "safeagent.healthPort" -}}8080{{- end -}}

{{/* A Kubernetes quantity as a plain number, for the comparisons in safeagent.validate. The schema
     has already checked its form: digits, an optional fraction, one of the suffixes below. */}}
{{- define "safeagent.quantityValue" -}}
{{- $text := toString . -}}
{{- $number := regexFind "^[0-9]*\\.?[0-9]*" $text -}}
{{- $factors := dict "" 1.0 "m" 0.001 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 -}}
{{- mulf (float64 $number) (get $factors (trimPrefix $number $text)) -}}
{{- end -}}

{{/* Rules the schema cannot express; a broken one fails the render with the value's name. */}}
{{- define "safeagent.validate" -}}
{{- range .Values.sandboxNamespaces -}}
{{- if eq . $.Release.Namespace -}}
{{- fail (printf "sandboxNamespaces: %q is the release namespace: sandbox Pods may not run beside the operator" .) -}}
{{- end -}}
{{- end -}}
{{- $sandbox := .Values.sandbox -}}
{{- range $key := list "cpu" "memory" "ephemeralStorage" -}}
{{- $request := index $sandbox.requests $key -}}
{{- $limit := index $sandbox.resources $key -}}
{{- if gt (include "safeagent.quantityValue" $request | float64) (include "safeagent.quantityValue" $limit | float64) -}}
{{- fail (printf "sandbox.requests.%s (%v) is above sandbox.resources.%s (%v): the API server would refuse every sandbox Pod" $key $request $key $limit) -}}
{{- end -}}
{{- end -}}
{{- $volumes := 0.0 -}}
{{- range $key := list "workspaceSizeLimit" "tmpSizeLimit" "shmSizeLimit" "memoryMargin" -}}
{{- $volumes = addf $volumes (include "safeagent.quantityValue" (index $sandbox $key) | float64) -}}
{{- end -}}
{{- if ge $volumes (include "safeagent.quantityValue" $sandbox.resources.memory | float64) -}}
{{- fail (printf "sandbox.workspaceSizeLimit (%v) + sandbox.tmpSizeLimit (%v) + sandbox.shmSizeLimit (%v) + sandbox.memoryMargin (%v) must be below sandbox.resources.memory (%v): the workspace, /tmp and /dev/shm are memory-backed and count against the memory limit, and the margin is what the runner keeps to write its record" $sandbox.workspaceSizeLimit $sandbox.tmpSizeLimit $sandbox.shmSizeLimit $sandbox.memoryMargin $sandbox.resources.memory) -}}
{{- end -}}
{{- if gt (add (int64 $sandbox.uidRange.first) (int64 $sandbox.uidRange.count) -1) 2147483646 -}}
{{- fail (printf "sandbox.uidRange: first (%v) + count (%v) - 1 is above 2147483646 (2^31-2), the last UID a sandbox Pod may run as" (int64 $sandbox.uidRange.first) (int64 $sandbox.uidRange.count)) -}}
{{- end -}}
{{- if gt (add (int .Values.egressCheck.maxDeadlineSeconds) 30) (int $sandbox.launchGraceSeconds) -}}
{{- fail (printf "egressCheck.maxDeadlineSeconds (%v) must be at least 30 seconds below sandbox.launchGraceSeconds (%v): the pre-flight runs inside the Pod's launch budget, after scheduling and preparation" .Values.egressCheck.maxDeadlineSeconds $sandbox.launchGraceSeconds) -}}
{{- end -}}
{{- if lt (int .Values.egressCheck.maxDeadlineSeconds) (int .Values.egressCheck.deadlineSeconds) -}}
{{- fail (printf "egressCheck.maxDeadlineSeconds (%v) must be at least egressCheck.deadlineSeconds (%v)" .Values.egressCheck.maxDeadlineSeconds .Values.egressCheck.deadlineSeconds) -}}
{{- end -}}
{{- $grace := int .Values.retention.sourceGraceSeconds -}}
{{- if and (gt $grace 0) (lt $grace 600) -}}
{{- fail (printf "retention.sourceGraceSeconds (%v) must be 0 (keep) or at least 600: an upload precedes its job, and a younger object may belong to a job about to be created" $grace) -}}
{{- end -}}
{{- if eq (int .Values.egressCheck.canary.openPort) (int .Values.egressCheck.canary.closedPort) -}}
{{- fail "egressCheck.canary.openPort and closedPort must differ" -}}
{{- end -}}
{{- range $name, $profile := .Values.networkProfiles -}}
{{- range $profile.egress -}}
{{- if and (has .cidr (list "0.0.0.0/0" "::/0")) (not $profile.allowAnyDestination) -}}
{{- fail (printf "networkProfiles.%s: %s is every address: set networkProfiles.%s.allowAnyDestination=true to mean it" $name .cidr $name) -}}
{{- end -}}
{{- if regexMatch "^(169\\.254\\.|[fF][eE][89aAbB][0-9a-fA-F]?:)" .cidr -}}
{{- fail (printf "networkProfiles.%s: %s is link-local (cloud metadata services answer there): no profile may reach it" $name .cidr) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) -}}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled" -}}
{{- end -}}
{{- end -}}

{{- /* The operator's user name, as the API server authenticates its ServiceAccount token. */ -}}
{{- define "safeagent.operatorUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "safeagent.operatorName" . }}
{{- end -}}

{{- /* An admission policy binding's matchResources: this release's sandbox namespaces, by name
(the name label is set by the API server and cannot be changed). */ -}}
{{- define "safeagent.sandboxNamespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: In
      values:
        {{- toYaml .Values.sandboxNamespaces | nindent 8 }}
{{- end -}}
