# One command each: `make run` (the demo sync), `make test` (the suite), `make airflow` (the UI).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint airflow sandbox bench clean

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
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .

airflow: $(STAMP)
	$(PY) scripts/airflow_standalone.py

sandbox: $(STAMP)
	$(PY) -m include.hubspot_sandbox --port 8099 --rate-limit-per-10s 190

bench: $(STAMP)
	$(PY) bench/bench_push.py
	$(PY) bench/bench_validation.py

clean:
	rm -rf .local
