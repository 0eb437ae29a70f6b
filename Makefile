# The front door. `make` (or `make help`) lists every target.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
MODEL  ?= wgan
MODELS := $(sort $(basename $(notdir $(wildcard configs/*.yaml))))
# CONFIG=path.yaml: any config file (a fork's own model) in place of MODEL's
CONFIG ?= configs/$(if $(TOY),toy/,)$(MODEL).yaml
# EXP=<preset>: a paper-scale setting from configs/experiments/<EXP>/<MODEL>.yaml on top
EXPS    := $(sort $(notdir $(wildcard configs/experiments/*)))
EXP_CONFIG = $(if $(EXP),--config configs/experiments/$(EXP)/$(MODEL).yaml,)
ARGS   ?=
# W&B: offline unless you are logged in; WANDB=online|offline|disabled forces a mode.
WANDB_ENV = $(if $(WANDB),WANDB_MODE=$(WANDB),)
LOGGER_ARG = $(if $(LOGGER),--run.logger $(LOGGER),)
# RESUME=<checkpoint or run directory> continues a run in its own directory (placed after
# ARGS, so that a --config in ARGS, a run's own config.yaml say, never cancels it)
RESUME_ARG = $(if $(RESUME),--ckpt_path $(RESUME),)$(if $(TRUST), --weights_only false,)
# TRUST=1: read RESUME/CKPT as a full pickle, for a file you trust (it may run code)
TRUST_TOOL = $(if $(TRUST),--trust-checkpoint,)

.PHONY: help install train test test-all test-contract test-floor test-slow test-slurm lint format clean check-model theory-plot bench-toy bench-emd slurm sweep slurm-sweep \
	classifier fetch-weights eval sample bench gpu-check check-ckpt

help: ## show this help
	@echo "usage: make <target> [MODEL=$(MODEL)] [TOY=1] [ARGS=\"--trainer.max_steps 200\"]"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'
	@echo "models: $(MODELS)"
	@echo "presets (EXP=): $(EXPS)"

# constraints.txt: the exact versions CI tests (CONSTRAINTS= installs the newest in range);
# TORCH_INDEX=<wheel index URL>: torch/torchvision built for another CUDA (see README)
CONSTRAINTS ?= constraints.txt
TORCH_INDEX ?=
PIP = $(PY) -m pip install --quiet --disable-pip-version-check $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)

install: $(VENV)/.installed ## create .venv and install the package with its dev tools (idempotent)

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { echo "error: PYTHON=$(PYTHON) is not Python >= 3.11; try make install PYTHON=python3.11 (on a cluster: module load python/3.11 first)" >&2; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH_INDEX),$(PIP) torch torchvision --index-url $(TORCH_INDEX),)
	$(PIP) -e '.[dev]'
	touch $@

check-model:
	@test -f "$(CONFIG)" -o "$(origin CONFIG)" != "command line" || { echo "CONFIG '$(CONFIG)' not found" >&2; exit 2; }
	@test -f "$(CONFIG)" || { echo "unknown MODEL '$(MODEL)'$(if $(TOY), (toy),); available: $(MODELS)" >&2; exit 2; }
	@test -z "$(EXP)" -o -f "configs/experiments/$(EXP)/$(MODEL).yaml" || { echo "no preset EXP '$(EXP)' for MODEL '$(MODEL)'; presets: $(foreach e,$(EXPS),$(e) ($(basename $(notdir $(wildcard configs/experiments/$(e)/*.yaml)))))" | sed 's/ )/)/g' >&2; exit 2; }

train: check-model install ## train: MODEL=<name> or CONFIG=<file.yaml> [TOY=1 | EXP=<preset>] [ARGS="..."] [RESUME=run dir [TRUST=1]] [WANDB=online] [LOGGER=csv]
	$(WANDB_ENV) exec $(PY) -m lightning_gans fit --config $(CONFIG) $(EXP_CONFIG) $(LOGGER_ARG) $(ARGS) $(RESUME_ARG)

test: install ## the fast suite, after every change: each model's step, resume, one-line errors, canaries (~5 min)
	$(PY) -m pytest -q

test-all: install ## everything but the real-Slurm tests: CLI end to end, DDP, eval, W&B, presets (what CI runs)
	$(PY) -m pytest -q -m "not slurm"

# The lowest versions pyproject.toml allows, in a second environment: training, resume,
# preemption, eval, sample, validate, the Lightning canaries and W&B
FLOOR_TESTS = tests/test_lightning_internals.py tests/test_model_contract.py tests/test_resume.py \
	tests/test_preemption.py tests/test_cli.py tests/test_evaluation.py tests/test_tracking.py \
	tests/test_fork_safety.py tests/test_faults.py tests/test_wandb_preemption.py
test-floor: ## the floor versions (constraints-floor.txt) in .venv-floor: a subset of the suite
	$(MAKE) install VENV=.venv-floor CONSTRAINTS=constraints-floor.txt
	VENV=.venv-floor CONSTRAINTS=constraints-floor.txt .venv-floor/bin/python -m pytest -q -m "not slurm" $(FLOOR_TESTS)

CONTRACT ?=
test-contract: install ## the template's contract for each model, yours too: CONTRACT=pkg.Class=config.yaml[,...]
	CONTRACT="$(CONTRACT)" $(PY) -m pytest -q tests/test_model_contract.py

test-slow: test-all

lint: install ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## ruff format and autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

DATASET    ?= mnist5k
IMAGE_SIZE ?= 32
N          ?=
OUT        ?=
FEATURES   ?= domain
REFERENCE  ?= test
N_REAL     ?=
check-ckpt:
	@test -n "$(CKPT)" || { echo "CKPT is required: make $(MAKECMDGOALS) CKPT=runs/<run> (a run directory or a .ckpt file)" >&2; exit 2; }

classifier: install ## train the domain-FID classifier: DATASET=mnist5k [IMAGE_SIZE=32] [SHIP=1: the package's shipped copy]
	$(PY) -m lightning_gans.tools.classifier --dataset $(DATASET) --image-size $(IMAGE_SIZE) $(if $(SHIP),--ship,)

fetch-weights: install ## download the Inception weights for published-style FID into data/weights (needs internet)
	$(PY) -m lightning_gans.tools.fetch_weights

eval: check-ckpt install ## FID/KID (+IS), exact W1 (2-D), ELBO (VAE): CKPT=<run or .ckpt> [N=2000] [FEATURES=domain|inception] [REFERENCE=test|val|train|full_train] [N_REAL=N] [TRUST=1]
	$(PY) -m lightning_gans.tools.evaluate $(CKPT) $(if $(N),--n $(N),) --features $(FEATURES) --reference $(REFERENCE) $(if $(N_REAL),--n-real $(N_REAL),) $(TRUST_TOOL)

sample: check-ckpt install ## sample grid + interpolation strip into the run's samples/: CKPT=<run or .ckpt> [N=64] [OUT=file.png] [TRUST=1]
	$(PY) -m lightning_gans.tools.sample $(CKPT) $(if $(N),--n $(N),) $(if $(OUT),--out $(OUT),) $(TRUST_TOOL)

DEVICE ?= cpu
bench: install ## Lightning vs a plain PyTorch loop, and the null workload -> benchmarks/results.md (~14 min); DEVICE=cuda: GPU throughput -> benchmarks/gpu.md
	$(if $(filter cpu,$(DEVICE)),$(PY) benchmarks/bench.py,$(PY) benchmarks/gpu_bench.py --device $(DEVICE))

test-slurm: install ## the real-Slurm tests: throwaway one- and two-node clusters (root; installs Debian's Slurm)
	tests/slurm/cluster.sh install || true
	$(PY) -m pytest -q -m slurm -p no:cacheprovider tests/test_slurm_cluster.py tests/test_slurm_nodes.py tests/test_slurm_sweeps.py

gpu-check: install ## the GPU suite (pytest -m gpu): precisions, no host syncs, CUDA<->CPU checkpoints, DDP on one GPU
	$(PY) -m pytest -m gpu -q

bench-toy: install ## quality benchmark: exact W1 on toy8 after 2,000 iterations, 3 seeds (~40 min)
	$(PY) benchmarks/toy_w1.py

SWEEP_CONFIG ?= configs/sweeps/$(MODEL).yaml
sweep: install ## create a W&B sweep for MODEL (or SWEEP_CONFIG=file.yaml) and run an agent on it (needs W&B online)
	@test -f "$(SWEEP_CONFIG)" -o "$(origin SWEEP_CONFIG)" != "command line" || { echo "SWEEP_CONFIG '$(SWEEP_CONFIG)' not found" >&2; exit 2; }
	@test -f "$(SWEEP_CONFIG)" || { echo "no sweep for MODEL '$(MODEL)'; available: $(basename $(notdir $(wildcard configs/sweeps/*.yaml)))" >&2; exit 2; }
	@mkdir -p runs
	$(VENV)/bin/wandb sweep --project lightning-gans $(SWEEP_CONFIG) 2>&1 | tee runs/.sweep.log
	$(VENV)/bin/wandb agent $$(grep -o 'wandb agent .*' runs/.sweep.log | tail -1 | cut -d' ' -f3)

NODES ?= 1
GPUS  ?= 1
TASKS ?=
TIME  ?= 24:00:00
CPUS  ?= 8
SIGNAL_LEAD ?= 90
SLURM_OPTS = $(foreach o,partition account qos mem constraint,$(if $($(shell echo $(o) | tr a-z A-Z)),--$(o) $($(shell echo $(o) | tr a-z A-Z)),))
slurm: check-model install ## sbatch a run: MODEL= NODES=1 GPUS=1 (0: CPU) [TASKS=] CPUS=8 [TIME= SIGNAL_LEAD=90 PARTITION= ACCOUNT= QOS= MEM= CONSTRAINT= SBATCH_ARGS= WANDB= DRY_RUN=1 ARGS=]
	$(PY) -m lightning_gans.launch.slurm --config $(CONFIG) --nodes "$(NODES)" --gpus "$(GPUS)" --time "$(TIME)" \
		--cpus "$(CPUS)" --signal-lead "$(SIGNAL_LEAD)" $(if $(TASKS),--tasks "$(TASKS)",) $(SLURM_OPTS) $(if $(SBATCH_ARGS),--sbatch-args "$(SBATCH_ARGS)",) \
		$(if $(WANDB),--wandb $(WANDB),) $(if $(DRY_RUN),--dry-run,) -- $(EXP_CONFIG) $(ARGS)

AGENTS ?= 8
slurm-sweep: install ## W&B sweep trials as a SLURM array: SWEEP=<entity/project/id> [AGENTS=8 GPUS=1 (0: CPU) TIME= PARTITION= ... DRY_RUN=1]
	@test -n "$(SWEEP)" || { echo "SWEEP is required: make slurm-sweep SWEEP=<entity/project/sweep id> (wandb sweep configs/sweeps/<model>.yaml prints it)" >&2; exit 2; }
	$(PY) -m lightning_gans.launch.slurm --sweep $(SWEEP) --agents $(AGENTS) --time $(TIME) --cpus $(CPUS) \
		--gpus "$(GPUS)" --signal-lead "$(SIGNAL_LEAD)" \
		$(SLURM_OPTS) $(if $(SBATCH_ARGS),--sbatch-args "$(SBATCH_ARGS)",) \
		$(if $(WANDB),--wandb $(WANDB),) $(if $(DRY_RUN),--dry-run,)

DATA ?= toy8
bench-emd: install ## the EMD estimate vs the truth: DATA=toy8 exact W1 (~25 min); DATA=mnist5k domain FID, WGAN-GP/WGAN/GAN (~14 min)
	@test "$(DATA)" = toy8 -o "$(DATA)" = mnist5k || { echo "DATA '$(DATA)': bench-emd runs on toy8 or mnist5k" >&2; exit 2; }
	$(PY) benchmarks/$(if $(filter mnist5k,$(DATA)),emd_quality.py,emd_tracking.py)

theory-plot: install ## draw worked example A (KL, JS, TV, W between parallel lines) to docs/
	$(PY) -m lightning_gans.tools.theory_plot docs/theory_example_a.png

clean: ## remove caches and build files (keeps .venv, runs/ and data/)
	rm -rf .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
