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
# checkov pins its own dependency versions too (boto3, pydantic...): its own venv as well.
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp
CHECKOV_VERSION := 3.3.30
# Skipped for every function alike (each other skip sits next to its resource in template.yaml):
#   CKV_AWS_117 (function in a VPC): the functions reach only public endpoints (provider APIs, AWS
#     APIs); a VPC would add NAT gateways (cost, a failure point) and protect nothing.
#   CKV_AWS_115 (reserved concurrency): reserving takes capacity from the account pool for good;
#     concurrency is bounded where it matters: the state machine's Map (MaxConcurrency) and the
#     API's throttling.
CHECKOV_SKIP := CKV_AWS_117,CKV_AWS_115

DEMO_PROVIDER ?= openai
DEMO_MODEL ?= gpt-4o-mini

.PHONY: venv venvs demo test lint types template unit integration e2e bench bench-history build clean openapi api console screenshots chromium iam-report chaos

$(STAMP): pyproject.toml layers/batch_gateway/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

$(CHECKOV_STAMP):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --no-compile checkov==$(CHECKOV_VERSION)
	touch $@

$(SAM_STAMP):
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet --no-compile aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

venv: $(STAMP)

# The three venvs side by side: installing is mostly unpacking on one core each (checkov's and the SAM
# CLI's tools run once per `make test`, so they skip compiling to bytecode up front).
venvs:
	$(MAKE) -j3 $(STAMP) $(SAM_STAMP) $(CHECKOV_STAMP)

demo: $(STAMP)
	$(BIN)/batch-gateway local run samples/demo.jsonl --provider $(DEMO_PROVIDER) --model $(DEMO_MODEL) \
		--system-prompt "You are a concise assistant for a customer-support team." --out demo-output

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy layers/batch_gateway/batch_gateway src/batch_gateway_local src/batch_gateway_client functions

# BC_SKIP_MAPPING and --skip-download keep checkov offline (no guideline or policy downloads).
template: $(STAMP) $(SAM_STAMP) $(CHECKOV_STAMP)
	$(BIN)/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --region us-east-1 --template-file template.yaml
	BC_SKIP_MAPPING=TRUE $(CHECKOV) --file template.yaml --framework cloudformation --quiet --compact \
		--skip-download --skip-check $(CHECKOV_SKIP)

# openapi.json is generated from the API's routes and models (tests/unit/test_api_contract.py checks it).
openapi: $(STAMP)
	$(BIN)/python -m batch_gateway_local.openapi

# The HTTP API on 127.0.0.1:8000 over the offline stack (Ctrl-C to stop); see docs/http-api-and-cli.md.
api: $(STAMP)
	$(BIN)/batch-gateway local up --port 8000

# The web console on 127.0.0.1:8080 next to the API on :8000, with demo jobs; see docs/console.md.
console: $(STAMP)
	$(BIN)/batch-gateway local up --port 8000 --console --console-port 8080 --demo-jobs

# The console's browser tests drive Debian's chromium (never `playwright install`); as root, installed when missing.
chromium:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# The console's screenshots in docs/images, taken by its browser tests (docs/console.md shows them).
screenshots: $(STAMP) chromium
	CONSOLE_SCREENSHOTS=docs/images $(BIN)/pytest tests/e2e/test_console.py -q

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

integration: $(STAMP)
	$(BIN)/pytest tests/integration -q

e2e: $(STAMP) chromium
	$(BIN)/pytest tests/e2e -q

# Four workers on two cores: much of a whole-job test is waiting (Step Functions waits, polling).
# loadfile keeps each module's tests on one worker, so its module-scoped offline stack is built once.
test: venvs
	$(MAKE) lint types template chromium
	$(BIN)/pytest -q -n 4 --dist loadfile

# A few whole jobs with the offline IAM check on: calls checked, calls denied (must be 0) and, per
# function, the grants no call used with the reason next to each in template.yaml (about 2 minutes).
iam-report: $(STAMP)
	$(BIN)/python -m batch_gateway_local.stack.iam.report

# Intake throughput vs a naive baseline, peak memory, cold starts, orchestration and AWS cost, a 100k-line
# job end to end; prints a table and writes bench/results.json (about 6 minutes on 2 cores).
bench: $(STAMP)
	$(BIN)/python bench/run.py

# 100 seeded jobs (mixed providers, 1-9 lines, item errors, expiring batches, a provider quota) under random faults: handlers
# dying before/after AWS and provider calls, lost answers, duplicate and late events, stopped executions.
# Prints the report (docs/what-happens-when.md has the last figures); exits 1 on any broken guarantee.
chaos: $(STAMP)
	$(BIN)/batch-gateway local chaos --jobs 100 --seed 1 --json chaos-report.json
# History events per execution: jobs of 20 and 200 one-line chunks on the offline stack, projected
# to 24-hour batches and the worst retry path; writes bench/history.json (long: ~45 min, ~1 s per Lambda call).
bench-history: $(STAMP)
	$(BIN)/python bench/history.py --sizes 20,200 --scenario slow

# sam build needs the Lambda runtime's Python (3.12) on PATH; with pyenv, pick its 3.12 for this call.
build: $(SAM_STAMP)
	PYENV_VERSION=$$(command -v pyenv >/dev/null && pyenv versions --bare | grep '^3\.12' | tail -1 || true) \
		SAM_CLI_TELEMETRY=0 $(SAM) build

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .mypy_cache .ruff_cache .pytest_cache demo-output .aws-sam
