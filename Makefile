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
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: operator/pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -e 'operator[dev]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## create the Python virtualenv with the operator and test dependencies

.PHONY: unit
unit: venv ## pure unit tests (no cluster)
	$(PYTEST) -q tests/unit

.PHONY: cluster
cluster: ## build (cached) and start the kind test-bed cluster with NetworkPolicy enforcement
	tests/cluster/up.sh

.PHONY: cluster-down
cluster-down: ## delete the kind cluster (caches are kept)
	tests/cluster/down.sh
