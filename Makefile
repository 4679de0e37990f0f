# make demo  — set up .venv, train the sine GAN, export it, generate a grid
# make test  — set up .venv with the test extras and run the whole suite
# make bench — run the benchmark scenarios (benchmarks/) and write benchmarks/results/
#
# TORCH_INDEX=URL installs torch and torchvision from that index before the extras, e.g. the
# CPU-only build (0.7 GB installed instead of about 4.4 GB with the CUDA libraries), into a fresh .venv:
#   make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu
# (pip keeps a torch that is already installed: run make clean first to switch builds.)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
TORCH_INDEX ?=

.PHONY: demo test bench lean-check gpu-check clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel

# One stamp per set of extras; re-installs when the package metadata changes. Not --quiet: torch is
# hundreds of MB, and the install says what it is fetching (a bar on a terminal, a line a package in a log).
$(VENV)/.installed-%: setup.cfg pyproject.toml | $(PY)
	$(if $(and $(TORCH_INDEX),$(filter train,$(subst -, ,$*))),$(PY) -m pip install --progress-bar on torch torchvision --index-url '$(TORCH_INDEX)')
	$(PY) -m pip install --progress-bar on -e '.[$(subst -,$(comma),$*)]'
	@touch $@

comma := ,

demo: $(VENV)/.installed-train-cpu
	$(BIN)/gan-train
	$(BIN)/gan-export --format all
	$(BIN)/gan-infer --n 64 --out grid.png
	@echo
	@echo "run folder:   runs/latest -> $$(readlink runs/latest)"
	@echo "  config.json, train.log, metrics.csv, losses.png, progress.gif, samples/, checkpoints/last.pt"
	@echo "exports:      runs/latest/export/generator.onnx, generator.ts, generator.pt2, triton/, export.json"
	@echo "generated:    grid.png (64 samples, seed 0)"
	@echo "commands:     source $(VENV)/bin/activate   (then gan-train --list, gan-infer --help, ...)"

test: $(VENV)/.installed-train-cpu-dev
	$(PY) -m pytest -q

# gan-bench for every variant (a few minutes); the sine learning-rate probe and the
# export matrix are separate: python benchmarks/sine_lr_probe.py, benchmarks/export_matrix.py RUN...
bench: $(VENV)/.installed-train-cpu
	$(PY) benchmarks/run_all.py

# gan-infer from an install of '.[cpu]' only: no torch anywhere.
lean-check:
	bash scripts/check-lean-install.sh

clean:
	rm -rf $(VENV) runs bench eval grid.png more.png fashion.png served.png *.egg-info src/*.egg-info

# The CUDA paths on a GPU machine (training with AMP, torchrun over NCCL, onnxruntime's CUDA
# provider with and without IO binding, torch on the GPU): writes benchmarks/results/gpu.md.
# It uses .venv-gpu, with onnxruntime-gpu (never beside onnxruntime in one venv). Without a GPU
# it says so and exits 0; `python benchmarks/gpu_check.py --rehearse` runs the steps on the CPU.
gpu-check:
	@if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then \
	  echo "gpu-check: no NVIDIA GPU on this machine (nvidia-smi finds none); nothing to check"; exit 0; fi; \
	$(MAKE) --no-print-directory VENV=.venv-gpu .venv-gpu/.installed-train-gpu && \
	  .venv-gpu/bin/python benchmarks/gpu_check.py
