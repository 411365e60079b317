# Set-up and the main jobs. `make demo` and `make test` create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The torch build to install; override for another CUDA/CPU build, e.g. make install TORCH="torch torchvision".
TORCH ?= torch==2.14.1 torchvision==0.29.1
# The wheel index torch comes from (empty: PyPI, whose Linux wheels bring ~4 GB of CUDA libraries). A CPU-only
# machine: make install TORCH_INDEX=https://download.pytorch.org/whl/cpu  (the same versions, built without CUDA).
TORCH_INDEX ?=
# The versions the suite passed with (see the file); CONSTRAINTS= installs the newest releases instead.
CONSTRAINTS ?= constraints.txt
RESULTS ?= results
DEMO_RESULTS ?= results/demo
DEMO_DEPTHS ?= 20,56
DEMO_JOBS ?=
JOBS ?=

.DEFAULT_GOAL := help
.PHONY: help install demo cpu-real test lowest lint reproduce-figures reproduce-imagenet bench mutation gpu-check gpu-wheels clean-demo

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml $(CONSTRAINTS)
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH)
	$(BIN)/python -m pip install --quiet $(if $(CONSTRAINTS),--constraint $(CONSTRAINTS)) -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## Create .venv and install the tool with its dependencies

demo: install ## The main job: offline synthetic-data sweep (plain vs ResNet), figures, summary, report.html on a CPU
	$(BIN)/degradation sweep --data synthetic --preset demo --depths $(DEMO_DEPTHS) --archs plain,resnet \
		$(if $(DEMO_JOBS),--jobs $(DEMO_JOBS)) --results $(DEMO_RESULTS)
	$(BIN)/degradation lesion --results $(DEMO_RESULTS) --draws 1 --max-k 2 --images 250  # coarse: about 1 min
	$(BIN)/degradation plot --results $(DEMO_RESULTS)
	$(BIN)/degradation report --results $(DEMO_RESULTS)  # one page: verdict, figures, tables, runs, provenance
	@echo "Figures: $(DEMO_RESULTS)/figures   Summary: $(DEMO_RESULTS)/summary.md"
	@echo "Report: $(abspath $(DEMO_RESULTS))/report.html"

# Real photographs on a CPU: CIFAR-10 (fetched and verified once; CIFAR=folder holding cifar-10-batches-py or the
# archive) or any folder of small images (IMAGES=folder with train/<class>/ and val/<class>/), a class-balanced
# training subset of SUBSET images (SUBSET= for all of them), the cpu preset (conf/schedule/cpu.yaml), then figures and the report.
CIFAR ?= $(or $(DEGRADATION_DATA),data)
IMAGES ?=
SUBSET ?= 1000
CPU_RESULTS ?= results/cpu
CPU_ARGS ?=
CPU_SUBSET := $(if $(SUBSET),data.train_subset=$(SUBSET))
CPU_SWEEP := --preset cpu --depths 20,56 --archs plain,resnet $(if $(JOBS),--jobs $(JOBS)) --results $(CPU_RESULTS)
cpu-real: install ## Real CIFAR-10 photos on a CPU: plain/ResNet 20 and 56 on a 1,000-image subset (~30 min, 2 cores), figures, report
ifeq ($(IMAGES),)
	@$(BIN)/degradation data fetch cifar10 --root $(CIFAR) || { echo "make cpu-real: no CIFAR-10 at $(CIFAR); point it at a local copy: make cpu-real CIFAR=<folder with cifar-10-batches-py or cifar-10-python.tar.gz>, or at small images: make cpu-real IMAGES=<folder with train/<class>/ and val/<class>/>"; exit 2; }
	$(BIN)/degradation sweep --data cifar10 $(CPU_SWEEP) -- data.root=$(CIFAR) $(CPU_SUBSET) $(CPU_ARGS)
else
	$(BIN)/degradation sweep --data imagefolder $(CPU_SWEEP) -- data.root=$(IMAGES) $(CPU_SUBSET) $(CPU_ARGS)
endif
	$(BIN)/degradation plot --results $(CPU_RESULTS)
	$(BIN)/degradation report --results $(CPU_RESULTS)
	@echo "Report: $(abspath $(CPU_RESULTS))/report.html"

test: lint ## Run the test suite (fast; slow tests with: make test PYTEST_ARGS='-m slow')
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lowest: install ## The lowest declared dependency versions in .venv-lowest (torch kept), and tests there
	$(BIN)/python .ci/lowest_versions.py

lint: install ## ruff check, and mypy on the package
	$(BIN)/ruff check degradation tests benchmarks examples
	$(BIN)/python -m mypy

PAPER := --data cifar10 --preset paper $(if $(JOBS),--jobs $(JOBS)) --results $(RESULTS)  # runs at once: auto unless JOBS=N
reproduce-figures: install ## The paper's CIFAR-10 study (plain 20-110, ResNet 20-1202), then figures and tables
	$(BIN)/degradation sweep $(PAPER) --archs plain,resnet --depths 20,32,44,56,110 --dry-run $(SWEEP_ARGS)
	$(BIN)/degradation sweep $(PAPER) --archs resnet --depths 1202 --dry-run $(SWEEP_ARGS)
	$(BIN)/degradation sweep $(PAPER) --archs plain,resnet --depths 20,32,44,56,110 $(SWEEP_ARGS)
	$(BIN)/degradation sweep $(PAPER) --archs resnet --depths 1202 $(SWEEP_ARGS)
	$(if $(SEEDS110),$(BIN)/degradation sweep $(PAPER) --archs resnet --depths 110 --seeds $(SEEDS110) $(SWEEP_ARGS))
	$(BIN)/degradation plot --results $(RESULTS)

IMAGENET ?= data/imagenet
IMAGENET_SWEEP := --family imagenet --data imagenet --preset imagenet --depths 18,34 --archs plain,resnet \
	$(if $(JOBS),--jobs $(JOBS)) --results $(RESULTS)
reproduce-imagenet: install ## ImageNet Figure 4 grid (plain/ResNet 18, 34): plan + estimate, sweep, figures, Tables 2-3
	$(BIN)/degradation sweep $(IMAGENET_SWEEP) --dry-run $(SWEEP_ARGS) -- data.root=$(IMAGENET)
	$(BIN)/degradation sweep $(IMAGENET_SWEEP) $(SWEEP_ARGS) -- data.root=$(IMAGENET)
	$(BIN)/degradation plot --results $(RESULTS)

bench: install ## Speed figures: the tool's training step against a bare PyTorch loop
	$(BIN)/degradation bench --depths 20,56,110 --archs resnet

GROUPS ?=
mutation: install ## Mutation score per science-core module group, survivors listed (long; GROUPS="conf verdict" for some)
	$(BIN)/python -c "import mutmut" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[mutation]'
	$(BIN)/python benchmarks/mutation.py $(GROUPS)

gpu-check: install ## On a CUDA machine: the GPU paths checked (tests, decode, resume, sweep, memory, speed) in <= 8 min; exit 1 on a failure
	benchmarks/gpu_check.sh $(RESULTS)/gpu_check

# A bare CUDA image with torch and Lightning but not this tool's other needs: these wheels, carried along,
# let benchmarks/gpu_check.sh install them there (it looks in .whl/). Pure-Python wheels, any Python 3.
GPU_WHEELS := hydra-core==1.3.8 omegaconf==2.3.1 submitit==1.5.4
gpu-wheels: install ## Fetch the wheels benchmarks/gpu_check.sh installs on a bare CUDA image into .whl/
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: -d .whl $(GPU_WHEELS)
	$(BIN)/python -m pip wheel --quiet --no-deps -w .whl antlr4-python3-runtime==4.9.3

clean-demo: ## Remove the demo's results folder
	rm -rf $(DEMO_RESULTS)
