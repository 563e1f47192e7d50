# safeagent — every entry point a user or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

SAFEAGENT_CACHE ?= $(HOME)/.cache/safeagent
export SAFEAGENT_CACHE
# Tools built by `make cluster` (kind, kubectl, helm, ...) come first on PATH.
export PATH := $(SAFEAGENT_CACHE)/bin:$(PATH)
CLUSTER_NAME ?= safeagent
export CLUSTER_NAME

VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: operator/pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -e 'operator[operator,mcp,dev]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## create the Python virtualenv with the operator and test dependencies

.PHONY: unit
# Two processes: the unit tests are CPU-bound and independent.
unit: venv ## pure unit tests (no cluster)
	$(PYTEST) -q -n 2 tests/unit

# The API tier (tests/api): the operator against a real kube-apiserver and etcd that this target
# starts on loopback for the run (the test bed's own builds; no kubelet, no docker), with the chart's
# CRDs, RBAC, admission policy and configuration installed. Seconds to start; about a minute in all.
# Two processes, each with a server of its own; a module stays in one process (its fixtures do).
.PHONY: api-test
api-test: venv ## the operator against a real API server (no kubelet): reconcile steps, Kopf, CEL, RBAC, admission
	tests/cluster/build-tools.sh
	$(PYTEST) -q -p no:cacheprovider -n 2 --dist loadfile tests/api

.PHONY: cluster
cluster: ## build (cached) and start the kind test bed: NetworkPolicy enforced, one sandbox node behind the nftables wall (SANDBOX_NODES=0, EGRESS_WALL=none to change)
	tests/cluster/up.sh

.PHONY: cluster-down
cluster-down: ## delete the kind cluster (caches are kept)
	tests/cluster/down.sh

# --- chart & images (issue 5) ---
CHART := charts/safeagent
RELEASE ?= safeagent
RELEASE_NAMESPACE ?= safeagent-system
export RELEASE RELEASE_NAMESPACE
# Extra flags for `make install`, e.g. HELM_FLAGS='--set policy.preset=execution'.
HELM_FLAGS ?=

.PHONY: wheelhouse images images-load install uninstall demo manifests lint e2e test
wheelhouse: ## build the operator's Python wheels on the host (cached by pyproject.toml)
	sandbox-images/build-images.sh wheelhouse

images: ## build the base, sandbox and operator images locally, without pulling
	sandbox-images/build-images.sh

images-load: ## load the sandbox and operator images into the kind cluster
	kind load docker-image --name $(CLUSTER_NAME) safeagent/operator:dev safeagent/sandbox:dev

install: ## install or upgrade the chart in the current cluster and wait for the operator
	charts/install.sh $(HELM_FLAGS)

uninstall: ## remove the release (CRDs, SandboxJobs and sandbox namespaces are kept)
	helm uninstall $(RELEASE) --namespace $(RELEASE_NAMESPACE) --wait

demo: venv ## cluster up, chart installed, example jobs run, an approval round trip shown
	tests/demo/demo.sh

manifests: ## render the chart into manifests/safeagent.yaml
	charts/render-manifests.sh

lint: code-gates checkov ## the code gates, helm lint (strict), checkov on the rendered chart, a syntax check of the shell scripts
	helm lint --strict $(CHART)
	@# One file per `bash -n`: with several, bash checks the first and reads the rest as arguments.
	@for script in charts/*.sh sandbox-images/*.sh configs/apply-nftables.sh tests/demo/demo.sh tests/e2e/soak.sh tests/cluster/*.sh \
	    tests/cluster/node/files/usr/local/bin/*; do bash -n "$$script" || exit 1; done

# Configured in operator/pyproject.toml. Tests get pyflakes and syntax errors only (their style is
# not gated); the package gets the full rule set, mypy --strict and the import contracts.
.PHONY: code-gates
code-gates: venv ## ruff, mypy --strict and import-linter's layer contracts on the operator package
	$(VENV)/bin/ruff check --config operator/pyproject.toml operator/safeagent
	$(VENV)/bin/ruff check --config operator/pyproject.toml --select F,E9 tests
	$(VENV)/bin/ruff check --config operator/pyproject.toml charts/values-doc.py
	@# mypy's cache lives with the test bed's, outside the clone: a fresh clone checks only what changed.
	cd operator && $(abspath $(VENV))/bin/mypy --cache-dir $(SAFEAGENT_CACHE)/mypy
	cd operator && $(abspath $(VENV))/bin/lint-imports pyproject.toml

# checkov lives in a virtualenv of its own: its many pinned dependencies stay out of the operator's.
# It is a tool like helm, not part of the clone: it is kept with the test bed's cache, one per version.
CHECKOV_VERSION ?= 3.3.30
CHECKOV_VENV ?= $(SAFEAGENT_CACHE)/venv-checkov-$(CHECKOV_VERSION)
$(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION):
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --disable-pip-version-check 'checkov==$(CHECKOV_VERSION)'
	touch $@

.PHONY: checkov
checkov: $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION) ## checkov's Kubernetes checks on the chart rendered with defaults and with every option on
	@out=$$(mktemp -d) && trap 'rm -rf "$$out"' EXIT && \
	helm template $(RELEASE) $(CHART) --namespace $(RELEASE_NAMESPACE) >"$$out/defaults.yaml" && \
	helm template $(RELEASE) $(CHART) --namespace $(RELEASE_NAMESPACE) --set metrics.serviceMonitor.enabled=true \
	    --set operator.networkPolicy.allowDns=true --set policy.preset=execution >"$$out/options.yaml" && \
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml --directory "$$out"

# The e2e tests mostly wait on Pods: those that disturb nothing run side by side (E2E_WORKERS
# processes), then the disruptive modules (they take down the enforcer, the wall or the operator,
# or count the operator's metrics; marked `disruptive`) run alone.
E2E_WORKERS ?= 3
e2e: venv ## cluster, images and chart, then the end-to-end tests against the in-cluster operator
	$(MAKE) cluster images images-load install
	$(PYTEST) -q -rs -p no:cacheprovider -n $(E2E_WORKERS) -m "not disruptive" tests/e2e
	$(PYTEST) -q -rs -p no:cacheprovider -m disruptive tests/e2e

# The cluster comes first so that helm exists when the chart's unit tests run (they skip without
# it), and the images before the unit tests that probe the sandbox image's own tools.
# SAFEAGENT_ARITY_PROBE=image: the policy's option arity is probed in the sandbox image only.
test: ## all tests: lint, unit, the API tier, the oracle, then end-to-end on the kind cluster
	$(MAKE) cluster
	$(MAKE) images
	$(MAKE) lint
	SAFEAGENT_ARITY_PROBE=image $(MAKE) unit
	$(MAKE) api-test
	$(MAKE) oracle
	$(MAKE) e2e

# Not run by CI (it takes about an hour): bursts of 100 per profile, bursts under a flood of the
# egress canary, and each e2e module that launches many jobs 5 times in a row (tests/e2e/soak.sh).
.PHONY: soak
soak: venv ## bursts of 100, floods and 5x repeats of the e2e modules that launch many jobs (not in CI)
	$(MAKE) cluster images images-load install
	tests/e2e/soak.sh

# --- the behavioural oracle (issue 9): allowed command lines run under strace in the sandbox image ---
ORACLE_IMAGE ?= safeagent/sandbox-oracle:dev
export ORACLE_IMAGE
.PHONY: oracle-image oracle test-oracle
oracle-image: ## build the oracle image: the sandbox image (SANDBOX_IMAGE, default safeagent/sandbox:dev) plus strace
	sandbox-images/build-images.sh oracle

oracle: venv oracle-image ## the behavioural oracle on a few hundred command lines (every table row first; part of make test)
	ORACLE_LINES=600 SAFEAGENT_ORACLE=required $(PYTEST) -q -s -p no:cacheprovider tests/oracle

test-oracle: venv oracle-image ## the behavioural oracle at full size: 20,000 command lines (about 10 min on 2 cores)
	ORACLE_LINES=20000 SAFEAGENT_ORACLE=required $(PYTEST) -q -s -p no:cacheprovider tests/oracle

# --- policy (issue 3) ---
.PHONY: bench-policy
bench-policy: venv ## benchmark the command policy: decisions/s and p99 latency (not a test)
	$(PY) tests/bench/bench_policy.py

.PHONY: bench-egress
bench-egress: venv ## on the cluster: what the egress pre-flight costs a job, alone and in a burst (not a test)
	$(PY) tests/bench/bench_egress.py --jobs 10 --parallel 1
	$(PY) tests/bench/bench_egress.py --jobs 20 --parallel 10
	$(PY) tests/bench/bench_egress.py --reprove 100

# Issue 21: `ls -la` as a bare Pod, as a SandboxJob (cold) and as an exec into a running Pod, 20 in a
# row and a burst of 50 each (about 4 minutes; BENCH_JOBS_FLAGS=--big adds bursts of 200, about 6
# minutes more). Writes docs/bench/latest.json and latest.png and prints the table (docs/bench.md).
BENCH_JOBS_FLAGS ?=
.PHONY: bench-jobs
bench-jobs: venv ## on the cluster: `ls -la` as a bare Pod, a SandboxJob and an exec, side by side (docs/bench.md)
	$(PY) tests/bench/bench_jobs.py $(BENCH_JOBS_FLAGS)

# 1,000 finished SandboxJobs and 200 waiting ones present: the operator's memory and the work it
# does for finished ones (about 7 minutes). Writes docs/bench/scale.json and prints the table (docs/bench.md).
.PHONY: bench-scale
bench-scale: venv ## on the cluster: what 1,000 finished and 200 waiting SandboxJobs cost the operator (docs/bench.md)
	$(PY) tests/bench/bench_scale.py $(BENCH_SCALE_FLAGS)

.PHONY: bench
bench: bench-policy bench-egress bench-jobs bench-scale ## all benchmarks

# --- operator (issue 4) ---
.PHONY: crds crds-check
# The CRDs live in the chart (crds/ at the top is a link to it, for `kubectl apply -f crds/`).
crds: venv ## regenerate the chart's crds/ from the pydantic models (safeagent/models.py)
	$(PY) -m safeagent.crdgen $(CHART)/crds

crds-check: venv ## fail if the chart's crds/ differs from a fresh generation
	$(PY) -m safeagent.crdgen --check $(CHART)/crds

# --- docs (issue 16) ---
.PHONY: docs docs-check
docs: venv ## regenerate docs/helm-values.md from the chart's values.yaml and values.schema.json
	$(PY) charts/values-doc.py docs/helm-values.md

docs-check: venv ## fail if docs/helm-values.md differs from a fresh generation (a unit test checks this too)
	$(PY) charts/values-doc.py --check docs/helm-values.md
