# The two set-up commands of the README: `make demo` and `make test`. Each creates .venv on first
# use (torch and torchvision pinned by constraints.txt) and reuses it afterwards.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# napari's viewer tests need a GL-capable virtual display (Xvfb + Mesa).
XVFB = $(shell command -v xvfb-run >/dev/null 2>&1 && echo "xvfb-run -a")
SYSTEM_PACKAGES := xvfb xauth libgl1 libglx-mesa0 libgl1-mesa-dri libegl1 libxkbcommon-x11-0 \
	libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 \
	libxcb-xinerama0 libxcb-xinput0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 \
	libfontconfig1 libdbus-1-3

.PHONY: demo test lint bench system-packages clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m napari_resfuse.demo --out out

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP) system-packages lint
	$(or $(XVFB),$(error xvfb-run not found: run `make system-packages` as root)) \
		$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_fusion.py

# Debian packages for the viewer tests; installs only what is missing (needs root or sudo).
system-packages:
	@command -v xvfb-run >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(SYSTEM_PACKAGES); }

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
