# One-command entry points. Each target installs into .venv first if needed.
SHELL   := /bin/bash
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# Every version we test, runtime and dev (pip-compile output; `make lock` refreshes it).
LOCK    := requirements.lock
# pip's "Location ... is ignored" notes about an empty extra index are noise, not errors.
QUIET_PIP := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: install test test-fast lint format serve lock check-fresh bench bench-restore \
	bench-omission bench-schedule bench-service bench-reliability bench-real-learned default-model \
	default-read-model corrupted-band-model corrupted-band-model-rgb clean

# Install exactly the locked versions (pip itself included), then the project without
# re-resolving, then check that the environment is consistent.
$(STAMP): pyproject.toml $(LOCK)
	@command -v $(PY) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PY) not found); set PY=/path/to/python3.11"; exit 2; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	set -o pipefail; $(BIN)/python -m pip install --quiet -r $(LOCK) $(QUIET_PIP)
	set -o pipefail; $(BIN)/python -m pip install --quiet --no-deps -e . $(QUIET_PIP)
	$(BIN)/python -m pip check
	touch $(STAMP)

install: $(STAMP)

# About 8 minutes on 2 cores (README, "Install and test").
test: lint
	scripts/ensure_browser.sh
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not integration"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Refresh the lock to the newest versions pyproject.toml's ranges allow (LOCK_FLAGS= keeps the
# current pins and only re-resolves what pyproject.toml changed). pip-compile records the build
# it resolved (torch 2.13.0+cpu from a local CPU wheel); the lock pins the public release
# number, torch==2.13.0, which pip satisfies with that CPU wheel where one is on its find-links
# path and with PyPI's build elsewhere.
LOCK_FLAGS ?= --upgrade
lock: $(STAMP)
	set -o pipefail; CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet $(LOCK_FLAGS) \
		--extra dev --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
		--output-file $(LOCK) pyproject.toml $(QUIET_PIP)
	sed -i -E 's/^(torch==[0-9.]+)\+[A-Za-z0-9.]+$$/\1/' $(LOCK)
	@echo "$(LOCK) refreshed: run 'make check-fresh', then commit it with pyproject.toml"

# A clean clone of the committed HEAD, a new .venv from the lock, `make test` there.
check-fresh:
	scripts/check_fresh.sh

serve: $(STAMP)
	$(BIN)/python -m service.embedded

# Rebuild the shipped default natural-image model (sagd_core/models/default/, MODEL_CARD.md):
# 12 minutes (723 s) on 2 CPU cores shared with other jobs, at nice 10 with THREADS=2; resumes
# from var/default-model-train.
THREADS ?= 2
default-model: $(STAMP)
	OMP_NUM_THREADS=$(THREADS) nice -n 10 $(BIN)/python -m sagd_core.bench.default_model.build

# Rebuild the shipped band reader (sagd_core/models/default_read/, MODEL_CARD.md): 7,000 steps,
# about 52 minutes on one CPU thread (see the card); resumes from var/default-read-train.
default-read-model: $(STAMP)
	OMP_NUM_THREADS=1 nice -n 10 $(BIN)/python -m sagd_core.bench.default_read.build \
		--out sagd_core/models/default_read/weights

# Selective omission's headline path at real size (issue #18 item 2): a band model trained only
# on corrupted 64-px patches of the natural TRAIN photos (band-limited noise in [0.15, 0.30), std
# 0.06 of the intensity range, as `sagd bench real` adds it), forward noise shaped like the
# corruption; 38 minutes (2283 s) for 6000 steps on one thread of a 2-core VM (66 minutes on
# cores shared with other jobs at nice 15). Resumes from its folder.
CORRUPTED_MODEL ?= bench-out/models/band-noise-64
corrupted-band-model: $(STAMP)
	OMP_NUM_THREADS=1 nice -n 15 $(BIN)/sagd train --preset natural-band-noise-band \
		--image-size 64 --unet cpu-tiny --steps 6000 --batch-size 16 --lr 1e-3 \
		--corruption '{"kind":"band_noise","low":0.15,"high":0.3,"gamma":0.12}' \
		--out $(CORRUPTED_MODEL)

# The same recipe on RGB patches (the colour TRAIN photos in colour, the gray ones as three equal
# channels), for the RGB scenes of the benchmark; 46 minutes (2744 s) on one thread.
CORRUPTED_MODEL_RGB ?= bench-out/models/band-noise-64-rgb
corrupted-band-model-rgb: $(STAMP)
	OMP_NUM_THREADS=1 nice -n 15 $(BIN)/sagd train --preset natural-band-noise-band \
		--image-size 64 --channels 3 --unet cpu-tiny --steps 6000 --batch-size 16 --lr 1e-3 \
		--corruption '{"kind":"band_noise","low":0.15,"high":0.3,"gamma":0.12}' \
		--out $(CORRUPTED_MODEL_RGB)

# Benchmarks print their environment and markdown tables (record them in docs/BENCHMARKS.md).
bench: $(STAMP)
	$(BIN)/sagd bench train

bench-restore: $(STAMP)
	$(BIN)/sagd bench restore

bench-omission: $(STAMP)
	$(BIN)/sagd bench omission

bench-schedule: $(STAMP)
	$(BIN)/sagd bench schedule

# The real-size benchmark with the learned columns (auto, DDNM with the default model, sagd with
# the corrupted-only band models of `make corrupted-band-model` and `corrupted-band-model-rgb`);
# about 35 minutes on 2 cores.
bench-real-learned: $(STAMP)
	$(BIN)/sagd bench real --learned --retrained band_noise=$(CORRUPTED_MODEL) \
		--retrained band_noise=$(CORRUPTED_MODEL_RGB) --out bench-out/real-learned

# Service-level benchmarks live outside sagd_core (the library knows nothing of the service).
bench-service: $(STAMP)
	$(BIN)/python benchmarks/bench_service.py

bench-reliability: $(STAMP)
	$(BIN)/python benchmarks/bench_reliability.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
