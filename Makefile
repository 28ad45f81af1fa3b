# Batch Gateway: every set-up step lives here, so `make demo` and `make test` work on a bare machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The SAM CLI pins its own dependency versions; it gets a venv of its own so they never clash with ours.
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.installed-stamp
SAM_CLI_VERSION := 1.170.0

DEMO_PROVIDER ?= openai
DEMO_MODEL ?= gpt-4o-mini

.PHONY: venv demo test lint types template unit integration e2e bench build clean openapi api

$(STAMP): pyproject.toml layers/batch_gateway/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

$(SAM_STAMP):
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/batch-gateway local run samples/demo.jsonl --provider $(DEMO_PROVIDER) --model $(DEMO_MODEL) \
		--system-prompt "You are a concise assistant for a customer-support team." --out demo-output

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy layers/batch_gateway/batch_gateway src/batch_gateway_local functions

template: $(STAMP) $(SAM_STAMP)
	$(BIN)/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --region us-east-1 --template-file template.yaml

# openapi.json is generated from the API's routes and models (tests/unit/test_api_contract.py checks it).
openapi: $(STAMP)
	$(BIN)/python -m batch_gateway_local.openapi

# The HTTP API on 127.0.0.1:8000 over the offline stack (Ctrl-C to stop); see README "HTTP API".
api: $(STAMP)
	$(BIN)/batch-gateway local up --port 8000

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

integration: $(STAMP)
	$(BIN)/pytest tests/integration -q

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e -q

test: lint types template
	$(BIN)/pytest -q -n 2

# Intake throughput vs a naive baseline, peak memory, cold starts, orchestration and AWS cost, a 100k-line
# job end to end; prints a table and writes bench/results.json (about 6 minutes on 2 cores).
bench: $(STAMP)
	$(BIN)/python bench/run.py

# sam build needs the Lambda runtime's Python (3.12) on PATH; with pyenv, pick its 3.12 for this call.
build: $(SAM_STAMP)
	PYENV_VERSION=$$(command -v pyenv >/dev/null && pyenv versions --bare | grep '^3\.12' | tail -1 || true) \
		SAM_CLI_TELEMETRY=0 $(SAM) build

clean:
	rm -rf $(VENV) $(SAM_VENV) .mypy_cache .ruff_cache .pytest_cache demo-output .aws-sam
