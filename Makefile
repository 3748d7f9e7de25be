# Serverless model platform. `make up` runs it locally; `make test` runs the test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BUILD ?= build
# Terraform cannot reach its registry here: use a local provider mirror when one exists.
TF_PLUGIN_MIRROR ?= $(firstword $(wildcard /opt/tf-plugins $(HOME)/.terraform.d/plugins \
	/usr/local/share/terraform/plugins /usr/share/terraform/plugins))
TF_CLI_CONFIG := $(abspath $(BUILD))/terraformrc
export TF_CLI_CONFIG_FILE := $(TF_CLI_CONFIG)
PYTEST_ARGS ?=
# Python runtime of the functions, e.g. python3.13; empty: the default of model_registry/core/contract.json.
LAMBDA_RUNTIME ?=
# Extra Terraform variables for `make up`, e.g. VAR_FILE=terraform/examples/snapstart.tfvars.
VAR_FILE ?=

.PHONY: help install tools check test bench bench-pool lint fmt docs hooks up demo build clean terraformrc aws-acceptance

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed ## create .venv and install the platform with its dev tools

# checkov pins libraries (packaging) that clash with pytest: it gets a virtualenv of its own.
TOOLS_VENV ?= .venv-tools
$(TOOLS_VENV)/.installed:
	@test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet 'checkov>=3.2,<4'
	@touch $@

tools: $(TOOLS_VENV)/.installed ## install checkov into its own virtualenv

build: install ## build the Lambda function zip and the framework layers into build/lambda
	$(PY) scripts/build_lambda.py --out $(BUILD)/lambda $(if $(LAMBDA_RUNTIME),--runtime $(LAMBDA_RUNTIME))

terraformrc: ## write the Terraform CLI config (filesystem mirror when present)
	@mkdir -p $(BUILD)
	@if [ -n "$(TF_PLUGIN_MIRROR)" ] && [ -d "$(TF_PLUGIN_MIRROR)" ]; then \
	  printf 'provider_installation {\n  filesystem_mirror {\n    path    = "%s"\n    include = ["registry.terraform.io/*/*"]\n  }\n  direct {\n    exclude = ["registry.terraform.io/*/*"]\n  }\n}\n' "$(TF_PLUGIN_MIRROR)" > $(TF_CLI_CONFIG); \
	else : > $(TF_CLI_CONFIG); fi

check: install ## under a minute: ruff (lint and format), mypy and the unit tests
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

test: install tools terraformrc ## install and run the whole test suite
	$(PY) -m pytest -m "not benchmark" $(PYTEST_ARGS)

# The acceptance tests against a real AWS account: applies the platform under a unique name prefix,
# registers the example models, calls every route over HTTPS, runs a canary and a progressive rollout
# whose gate reads CloudWatch, then destroys everything (also when a step fails). `make test` runs the
# same tests against the local platform.
aws-acceptance: install terraformrc ## acceptance tests on a real AWS account (your credentials; AWS_ACCEPTANCE=create-and-destroy)
	@if [ "$$AWS_ACCEPTANCE" != "create-and-destroy" ]; then \
	  echo "make aws-acceptance creates billable resources in your AWS account and destroys them afterwards."; \
	  echo "Run it with AWS credentials in the environment and AWS_ACCEPTANCE=create-and-destroy."; exit 2; fi
	$(PY) -m pytest tests/e2e/test_acceptance.py --target aws -p no:cacheprovider -v $(PYTEST_ARGS)

FUZZ_EXAMPLES ?= 5000

bench: install terraformrc build ## benchmarks: handler overhead, cold start, data plane, sizes -> reports/
	@mkdir -p $(BUILD)/bench && rm -f $(BUILD)/bench/paired.json
	$(PY) -m pytest tests/performance -m benchmark -q --benchmark-enable \
		--benchmark-min-rounds=200 --benchmark-json=$(BUILD)/bench/handler.json --benchmark-save-data
	$(PY) -m tooling.bench_report
	@echo "fuzzing the request codecs: $(FUZZ_EXAMPLES) cases per strategy (make test runs 300)"
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/integration/test_bad_input.py -k fuzzed -q -p no:cacheprovider
	@echo "the pooled tier: 1,000 models (make bench-pool POOL_MODELS=10000 wrote reports/pool_scale.md)"
	$(PY) -m tooling.pool_bench --models 1000 --sample 500 --zipf-models 1000 --requests 3000 \
		--pool-memory-mb 256 --cache-fraction 0.025 --out $(BUILD)/bench/pool.json --markdown $(BUILD)/bench/pool_scale.md
	@echo "sustained load: 300 s (make test runs 30 s)"
	SOAK_SECONDS=300 $(PY) -m pytest tests/e2e/test_sustained_load.py -q -s -p no:cacheprovider
	@echo "raw HTTP requests against the local front end: $$(( $(FUZZ_EXAMPLES) / 2 )) cases (make test runs 150)"
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/e2e/test_http_framing.py -k generated -q -p no:cacheprovider \
		--hypothesis-show-statistics

lint: install ## ruff (lint and format), mypy and terraform fmt
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@if command -v terraform >/dev/null && [ -d terraform ]; then terraform fmt -check -recursive terraform; fi
	$(PY) -m tooling.terraform_docs --check
	@if command -v tflint >/dev/null; then tflint --chdir=terraform --recursive; else echo "tflint not installed: skipped"; fi

POOL_MODELS ?= 1000

bench-pool: install terraformrc build ## the pooled tier at scale: POOL_MODELS models registered, sampled, Zipf load
	$(PY) -m tooling.pool_bench --models $(POOL_MODELS) --sample 500 --zipf-models 1000 --requests 3000 \
		--pool-memory-mb 256 --cache-fraction 0.025 --markdown reports/pool_scale.md

docs: install ## regenerate the inputs/outputs tables of the Terraform module READMEs
	$(PY) -m tooling.terraform_docs

hooks: install ## install the pre-commit hooks (ruff, mypy, terraform fmt, module docs, tflint)
	$(VENV)/bin/pre-commit install

fmt: install ## format Python and Terraform
	$(VENV)/bin/ruff check --fix . || true
	$(VENV)/bin/ruff format .
	@if command -v terraform >/dev/null && [ -d terraform ]; then terraform fmt -recursive terraform; fi

EMULATOR_PORT ?= 5005
PORT ?= 8080

up: install terraformrc build ## run the platform locally (no AWS, no Docker) until Ctrl-C
	$(PY) scripts/run_local.py up --emulator-port $(EMULATOR_PORT) --port $(PORT) \
		$(if $(VAR_FILE),--var-file $(VAR_FILE))

demo: install ## tour canary / promote / rollback on the platform `make up` is running
	$(PY) scripts/demo.py

clean: ## remove build outputs and the local platform's state
	rm -rf $(BUILD) .local .pytest_cache
