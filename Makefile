PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install test bench

install:
	$(PIP) install -q -e ".[test]"

test: install
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) benchmarks/loss_overhead.py
