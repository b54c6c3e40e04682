# mailstrata: `make synth` and `make test` work on a fresh machine; both install what they need.
SHELL := /bin/bash
export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_NOSPIN := 1
export PIPENV_YES := 1
export PIPENV_IGNORE_VIRTUALENVS := 1  # an activated virtualenv must not replace the project's .venv/
export CHECKPOINT_DISABLE := 1
export TF_CLI_CONFIG_FILE ?= $(CURDIR)/.ci/terraformrc
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# npm 10 when the machine's is older (scripts/install-node.sh; Debian 12's npm 9 cannot read our lockfile)
export PATH := $(CURDIR)/.tools/npm/node_modules/.bin:$(PATH)
PY := .venv/bin/python
CHECKOV_FLAGS := --framework terraform_json --skip-download --quiet --compact \
	--external-checks-dir mailstrata/policies/checks

.PHONY: help install deps-apt deps-node synth test lint typecheck unit scan schema bench twin-test bench-twin \
	fresh-check clean-caches clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

PIPENV := .tools/bin/pipenv

$(PIPENV): scripts/bootstrap-python.sh
	./scripts/bootstrap-python.sh

.venv/.installed: Pipfile.lock pyproject.toml $(PIPENV)
	$(PIPENV) sync --dev
	touch $@

node_modules/.installed: package-lock.json
	./scripts/install-node.sh
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

install: .venv/.installed node_modules/.installed ## install Python and npm dependencies (pinned)

deps-apt: ## install the Debian daemons the tests run (root)
	./scripts/install-debian-packages.sh

deps-node: ## install Node.js and npm if missing (Debian's packages; root)
	./scripts/install-node.sh

# deps-node: jsii runs cdktf's JavaScript in Node.js, so even `make synth` needs it (Debian 12: nodejs 18).
synth: .venv/.installed deps-node ## synthesize the default platform (or MAILSTRATA_CONFIG) into cdktf.out/
	$(PY) main.py

lint: .venv/.installed ## ruff
	$(PY) -m ruff check mailstrata tests main.py benchmarks

typecheck: .venv/.installed ## mypy
	$(PY) -m mypy

unit: .venv/.installed deps-node ## pytest (the whole suite)
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test: install deps-apt lint typecheck unit ## everything: lint, types, the whole pytest suite

scan: synth ## checkov with the built-in and mailstrata's own checks on every synthesized stack
	@set -e; for f in cdktf.out/stacks/*/cdk.tf.json; do d=$$(dirname $$f); echo "checkov: $$d"; \
		.venv/bin/checkov -d $$d $(CHECKOV_FLAGS); done  # a removed stack's folder may keep only .terraform/

schema: .venv/.installed ## regenerate docs/config-schema.json and the key tables of docs/config.md
	$(PY) -m mailstrata.cli schema > docs/config-schema.json
	$(PY) -m mailstrata.cli schema --format markdown > .schema.md
	$(PY) -c "import re,pathlib; d=pathlib.Path('docs/config.md'); t=d.read_text(); g=pathlib.Path('.schema.md').read_text(); \
	b=t.index('<!-- BEGIN GENERATED'); e=t.index('<!-- END GENERATED -->'); s=t.index('\n', b)+1; d.write_text(t[:s]+g+t[e:])"
	rm -f .schema.md

bench: .venv/.installed deps-node ## synth against a bare cdktf app (paired ratio), synth and checkov timings (prints numbers; docs/benchmarks.md)
	$(PY) benchmarks/bench_synth.py

twin-test: install deps-apt ## the local twin: start it, run tests/twin, stop it (root)
	$(PY) -m mailstrata.cli twin test

bench-twin: install deps-apt ## end-to-end throughput on the local twin (root; prints numbers)
	$(PY) benchmarks/bench_twin.py

fresh-check: ## prove `make synth` and `make test` in a fresh debootstrapped Debian 12 under .cache/ (root)
	./scripts/fresh-check.sh

clean-caches: ## remove what tests reuse between runs (.cache/, the twin's folder): the next run is cold
	./scripts/clean-caches.sh

clean: ## remove generated output
	rm -rf cdktf.out .cdktf.out.* .pytest_cache .mypy_cache .ruff_cache
