# Quick start: `make demo` (train, evaluate, explain on the embedded synthetic data) and
# `make test`. Both create the virtual environment they need in .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WORKDIR ?= runs/demo

.PHONY: demo test test-all lint bench clean

$(VENV)/.core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# The PyTorch reference (benchmarks, Captum/pytorch-grad-cam/zennit/Quantus parity tests).
# torch==2.13.0 first: on the project's machines it is a local CPU wheel, and captum's own torch
# requirement is then met. The peers (grad-cam, zennit, quantus) require torchvision, whose
# PyPI wheels do not load beside that torch and would pull a CUDA torch: their other
# requirements come with the `peers` extra, the peers themselves with --no-deps, and the parity
# tests supply a torchvision stand-in (tests/peer_stubs/README.md).
PEERS := grad-cam==1.5.7 zennit==0.5.1 quantus==0.6.0
$(VENV)/.torch: $(VENV)/.core
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,torch,peers]'
	$(PY) -m pip install -q --no-deps $(PEERS)
	touch $@

demo: $(VENV)/.core
	$(PY) -m bugnist_jax.train --config=configs/synthetic3d.py --workdir=$(WORKDIR)
	$(PY) -m bugnist_jax.evaluate --workdir=$(WORKDIR) --splits=train,validation,test
	$(PY) -m bugnist_jax.explain --workdir=$(WORKDIR) --method=smoothgrad,vanilla_gradient,grad_cam,integrated_gradients --num_samples=32 --batch_size=8 --sigma_sweep=0.05,0.1,0.2,0.3

# CI runs `make test`; `make test-all` adds the slow tier (torch.compile, worker processes, two
# training processes, the method table on every family).
test: $(VENV)/.torch
	$(PY) -m pytest -n 2 --dist loadgroup -m "not slow" --durations=25 tests

test-all: $(VENV)/.torch
	$(PY) -m pytest -n 2 --dist loadgroup tests

lint: $(VENV)/.core
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: $(VENV)/.torch
	$(PY) -m benchmarks.run --suite=quick

clean:
	rm -rf $(VENV) runs
