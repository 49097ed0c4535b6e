{{/* The release's base name: the release name, prefixed with the chart's unless it contains it. */}}
{{- define "capstan.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "capstan.labels" -}}
app.kubernetes.io/part-of: capstan
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Labels of one role's objects besides capstan.labels; call with (dict "root" $ "component" "api"). */}}
{{- define "capstan.componentLabels" -}}
app.kubernetes.io/name: capstan
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Selector labels of one role; call with (dict "root" $ "component" "api"). */}}
{{- define "capstan.selector" -}}
app.kubernetes.io/name: capstan
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The image reference. */}}
{{- define "capstan.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Where the Secret and the broker password are mounted; capstan.toml names these paths. */}}
{{- define "capstan.secretsDir" -}}/etc/capstan/secrets{{- end -}}
{{- define "capstan.rabbitmqDir" -}}/etc/capstan/rabbitmq{{- end -}}

{{/* The Pod template of one role; call with (dict "root" $ "component" "api" "settings" .Values.api). */}}
{{- define "capstan.podTemplate" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "capstan.selector" . | nindent 4 }}
  annotations:
    # Rolls the Pods when capstan.toml changes.
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- if $root.Values.metrics.scrapeAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: "8080"
    prometheus.io/path: /metrics
    {{- end }}
spec:
  serviceAccountName: {{ include "capstan.fullname" $root }}-{{ .component }}
  # Stopping drains HTTP requests (up to 30 s); a worker lets its jobs in progress finish.
  terminationGracePeriodSeconds: {{ .settings.terminationGracePeriodSeconds | default 45 }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    fsGroup: 65532
    seccompProfile: {type: RuntimeDefault}
  topologySpreadConstraints:
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "capstan.selector" . | nindent 10 }}
  {{- with $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: capstan
      image: {{ include "capstan.image" $root | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: [serve, --role, {{ .component }}, --config, /etc/capstan/config/capstan.toml]
      {{- if or (not $root.Values.rabbitmq.enabled) $root.Values.extraEnv }}
      env:
        {{- if not $root.Values.rabbitmq.enabled }}
        - name: CAPSTAN__QUEUE__URL
          valueFrom: {secretKeyRef: {name: {{ $root.Values.secrets.name | quote }}, key: amqp-url}}
        {{- end }}
        {{- with $root.Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
      ports:
        - {name: http, containerPort: 8080}
      # The port opens once the CRDs, the namespace and the queue are set up.
      startupProbe:
        httpGet: {path: /healthz, port: http}
        periodSeconds: 2
        failureThreshold: 60
      livenessProbe:
        httpGet: {path: /healthz, port: http}
        periodSeconds: 10
      # Ready when the queue takes messages and the cluster answers.
      readinessProbe:
        httpGet: {path: /readyz, port: http}
        periodSeconds: 5
      resources:
        {{- toYaml .settings.resources | nindent 8 }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: [ALL]}
      volumeMounts:
        - {name: config, mountPath: /etc/capstan/config, readOnly: true}
        - {name: secrets, mountPath: {{ include "capstan.secretsDir" $root }}, readOnly: true}
        {{- if $root.Values.rabbitmq.enabled }}
        - {name: rabbitmq, mountPath: {{ include "capstan.rabbitmqDir" $root }}, readOnly: true}
        {{- end }}
        - {name: data, mountPath: /var/lib/capstan}
        - {name: tmp, mountPath: /tmp}
  volumes:
    - name: config
      configMap: {name: {{ include "capstan.fullname" $root }}-config}
    - name: secrets
      secret: {secretName: {{ $root.Values.secrets.name | quote }}, defaultMode: 288}  # = 0440, read by owner and group; decimal, as YAML versions disagree on octal
    {{- if $root.Values.rabbitmq.enabled }}
    - name: rabbitmq
      secret:
        secretName: {{ $root.Values.rabbitmq.existingSecret | quote }}
        defaultMode: 288  # = 0440
        items: [{key: password, path: password}]
    {{- end }}
    - name: data
      emptyDir: {sizeLimit: {{ $root.Values.dataDirSizeLimit }}}
    # Renderers' scratch directories and their private HOME.
    - name: tmp
      emptyDir: {sizeLimit: 1Gi}
{{- end -}}
