# `make run` and `make test` set everything up from scratch on a machine with Python 3.11+ and a C compiler.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
SCENARIO ?= scenarios/town.yaml
ARGS ?=
# llama.cpp's default native build uses every instruction the CPU advertises; on VMs that forbid AMX it
# segfaults on the first decode, so build a portable AVX2 binary. --no-cache-dir: pip's wheel cache ignores
# CMAKE_ARGS and would hand back a cached native build.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAVA_BUILD=OFF
export HF_HUB_OFFLINE := 1

.PHONY: setup run test lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; set PYTHON=/path/to/python3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c 'import llama_cpp' 2>/dev/null || CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
		$(PY) -m pip install --no-cache-dir "llama-cpp-python[server]>=0.3.36,<0.4"
	$(PY) -m pip install torch==2.13.0  # the CPU build, from the local disk; must precede sentence-transformers
	$(PY) -m pip install -e ".[dev]"
	touch $@

run: setup
	$(PY) run.py $(SCENARIO) $(ARGS)

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) runs .pytest_cache
