# One-command entry points. Each target installs into .venv first if needed.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install test test-fast lint serve bench bench-restore bench-omission bench-schedule \
	bench-service bench-reliability clean

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PY) not found); set PY=/path/to/python3.11"; exit 2; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	scripts/ensure_browser.sh
	$(BIN)/python -m pytest -q || test $$? -eq 5  # 5 = no tests collected

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not integration"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

serve: $(STAMP)
	$(BIN)/python -m service.embedded

# Benchmarks print their environment and markdown tables (record them in docs/BENCHMARKS.md).
bench: $(STAMP)
	$(BIN)/sagd bench train

bench-restore: $(STAMP)
	$(BIN)/sagd bench restore

bench-omission: $(STAMP)
	$(BIN)/sagd bench omission

bench-schedule: $(STAMP)
	$(BIN)/sagd bench schedule

# Service-level benchmarks live outside sagd_core (the library knows nothing of the service).
bench-service: $(STAMP)
	$(BIN)/python benchmarks/bench_service.py

bench-reliability: $(STAMP)
	$(BIN)/python benchmarks/bench_reliability.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
