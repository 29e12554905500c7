# One command each: `make run` (the demo sync), `make test` (the suite), `make airflow` (the UI),
# `make deploy-local` (the distributed profile: CeleryExecutor with 2 workers, Redis, PostgreSQL;
# needs both on 127.0.0.1), `make test-deployment` (only its integration test, a 3-night backfill).
PYTHON ?= python3.11
PORT ?= 8080
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint airflow deploy-local deploy-local-clean test-deployment sandbox bench clean

$(STAMP): requirements.txt constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH (or make PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) scripts/run_demo.py

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

airflow: $(STAMP)
	$(PY) scripts/airflow_standalone.py --port $(PORT)

deploy-local: $(STAMP)
	$(PY) scripts/deploy_local.py

deploy-local-clean: $(STAMP)
	$(PY) scripts/deploy_local.py --clean

test-deployment: $(STAMP)
	$(PY) -m pytest tests/deployment -m deployment

sandbox: $(STAMP)
	$(PY) -m dev.hubspot_sandbox --port 8099 --rate-limit-per-10s 190

bench: $(STAMP)
	$(PY) bench/bench_push.py
	$(PY) bench/bench_validation.py

clean:
	rm -rf .local
