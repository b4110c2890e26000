# journeylab: `make demo` runs the main job, `make test` runs the tests (what CI runs).
# Both first build the project virtual environment in .venv (torch 2.13.0 CPU build first,
# then the project with its dev extra), once; it is rebuilt when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install browser demo test test-fast pytest lint format bench bench-learning calibrate-starbucks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) browser

browser:  ## Debian's Chromium, for the tests that look at the MLflow UI and the API docs in a real browser
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

demo: $(STAMP)
	$(VENV)/bin/journeylab demo

test: lint pytest  ## the whole suite, slow tests included: what CI and the README run

test-fast: $(STAMP)  ## the inner loop: no training, no Ray cluster, no wheel builds (~2 min on 2 cores)
	$(PY) -m pytest -m "not slow"

pytest: $(STAMP) browser
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)  ## CLI start (~10 s), simulator (~2 min), RLlib stock vs bulk (~3 min), serving (~1 min), calibration (~2 min), OPE vs truth (~5 min)
	$(PY) benchmarks/bench_cli.py
	$(PY) benchmarks/bench_sim.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_serving.py
	$(PY) benchmarks/bench_calibration.py
	$(PY) benchmarks/bench_ope.py

bench-learning: $(STAMP)  ## does learning win? every preset and variants, 10 min of training each (~2.5 h; MINUTES=3 for a quick pass)
	$(PY) benchmarks/bench_learning.py --minutes $(or $(MINUTES),10)

STARBUCKS ?= ../shared/data/starbucks

calibrate-starbucks: $(STAMP)  ## refit the starbucks_offers preset and its committed fidelity report from the Starbucks log (~2 min)
	$(VENV)/bin/journeylab data starbucks $(STARBUCKS) --out out/starbucks
	$(VENV)/bin/journeylab calibrate out/starbucks/events.parquet --customers out/starbucks/customers.parquet \
		--mapping configs/calibration/starbucks_mapping.yaml --base configs/calibration/starbucks_base.yaml \
		--name starbucks_offers --iterations 10 --no-mlflow \
		--out configs/scenarios/starbucks_offers.yaml --report docs/calibration/starbucks_offers; \
	status=$$?; [ $$status -eq 0 ] || [ $$status -eq 3 ]  # 3: written, but the fit fails its joint test (see the report)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build dist
