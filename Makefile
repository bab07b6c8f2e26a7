# apt-uss: `make pipeline-run N_SHOT=5` and `make test` work on a fresh clone; both run `setup` first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STATE  ?= .apt-uss
export APT_USS_HOME := $(abspath $(STATE))

# Pipeline parameters: each one of apt_uss/params/spec.py, as its upper-case name (make pipeline-run N_SHOT=10
# LR=3e-3); README, Parameters lists them. A profile (data in the same spec) sets the defaults of the ones not
# given: demo (the shipped CPU backbone) or paper (the paper's settings; pass the checkpoint URIs).
PROFILE ?= demo
ifeq ($(filter $(PROFILE),$(shell python3 -m apt_uss.params.spec profiles)),)
  $(error PROFILE=$(PROFILE) is unknown: use $(shell python3 -m apt_uss.params.spec profiles | sed 's/ / or /g'))
endif
# NAME=--flag pairs, read from the spec (standard library only: it runs before the virtual environment exists).
PIPELINE_VARIABLE_FLAGS := $(shell python3 -m apt_uss.params.spec make-variables)
# The flags of the parameters given on the command line (or in the environment); the others take the profile's.
given_flag = $(if $(filter command line environment override,$(origin $(1))),$(2) '$(subst ','\'',$($(1)))')
PIPELINE_FLAGS = --profile "$(PROFILE)" $(foreach pair,$(PIPELINE_VARIABLE_FLAGS),\
	$(call given_flag,$(firstword $(subst =, ,$(pair))),$(lastword $(subst =, ,$(pair)))))
# The sweep pipeline's parameters: the run's less n_shot and the per-purpose seeds, plus SWEEP_SHOTS and SEEDS.
SWEEP_VARIABLE_FLAGS := $(shell python3 -m apt_uss.params.spec make-variables sweep)
SWEEP_FLAGS = --profile "$(PROFILE)" $(foreach pair,$(SWEEP_VARIABLE_FLAGS),\
	$(call given_flag,$(firstword $(subst =, ,$(pair))),$(lastword $(subst =, ,$(pair)))))
PARALLELISM ?=

RUNS        ?=
RUNNER      ?= subprocess
# The local runs (pipeline-run, sweep, backbone) fold the JSON each task's executor logs at its start into one line;
# SHOW_EXECUTOR_INPUT=1 prints it (any other value: folded).
SHOW_EXECUTOR_INPUT ?=
SHOW_EXECUTOR_INPUT_FLAG = $(if $(filter 1,$(SHOW_EXECUTOR_INPUT)),--show-executor-input)
S3_PORT     ?= 8333
MLFLOW_PORT ?= 5000
PIPELINE_YAML ?= dist/apt_uss_pipeline.yaml
SWEEP_YAML ?= dist/apt_uss_sweep.yaml

# Cluster runs (make pipeline-submit); the tuning pod's GPUs, tolerations and node selector and the names of
# the Secret and ConfigMap every pod reads are pipeline parameters (TUNE_GPUS, GPU_TOLERATIONS, ...).
KFP_HOST    ?=
KFP_NAMESPACE ?=
PIPELINE_NAME ?= apt-uss
SWEEP_PIPELINE_NAME ?= apt-uss-sweep

# Use the local SeaweedFS server unless the user points at an S3 endpoint of their own.
S3_ENV = $(if $(AWS_ENDPOINT_URL)$(AWS_ENDPOINT_URL_S3),,set -a && . $(APT_USS_HOME)/s3/s3.env && set +a &&)


# Container images and the local Docker engine: make docker-up, base-image, images, images-push.
include images/images.mk

# A variable given on the command line that no makefile here assigns or reads is a misspelling
# (make pipeline-run NSHOT=10 would otherwise run 5 shots): stop, naming it and the closest name.
COMMAND_LINE_VARIABLES := $(strip $(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v))))
ifneq ($(COMMAND_LINE_VARIABLES),)
  UNKNOWN_VARIABLES_ERROR := $(shell python3 pipelines/make_variables.py $(COMMAND_LINE_VARIABLES) -- $(MAKEFILE_LIST))
  ifneq ($(UNKNOWN_VARIABLES_ERROR),)
    $(error $(UNKNOWN_VARIABLES_ERROR))
  endif
endif

.PHONY: help setup test test-fast test-kernels bench gpu-check corpus backbone onnx sweep sweep-compile sweep-submit select-settings compare pipeline-run pipeline-compile mlflow-ui s3-up s3-down \
        mlflow-server-up mlflow-server-down pipeline-submit kfp-host-given clean

help:
	@echo "make setup                     create $(VENV) and install everything (idempotent)"
	@echo "make pipeline-run N_SHOT=5     run the whole pipeline locally (KFP local runner)"
	@echo "make test                      run the whole test suite (what CI runs)"
	@echo "make test-fast                 the suite without the slow tests (pipelines, containers, servers)"
	@echo "make test-kernels              the fast lane under each CPU kernel family (AVX2, default, oneDNN capped)"
	@echo "make corpus                    build the real-audio corpus (DATASET=debian_sounds) from a Debian package"
	@echo "make backbone                  retrain the shipped demo backbone on the corpus's seen classes (CPU, under 60 min)"
	@echo "make sweep SEEDS=3             Table 2 in one KFP run: SWEEP_SHOTS x SEEDS cells, intervals, MLflow parent run"
	@echo "make sweep-compile / sweep-submit KFP_HOST=...   the sweep pipeline for a cluster"
	@echo "make onnx PROMPTS=... CLASS=...  the separator with one class's prompt as ONNX (ONNX_OUT, CHECK_AUDIO, ONNX_SECONDS)"
	@echo "make select-settings [DATASET=debian_sounds] [SELECTION_SEEDS=0,100,101]  choose the demo tuning settings on validation clips only"
	@echo "make compare [RUNS='id ...']   headline SDRs of chosen MLflow runs (default: the latest of EXPERIMENT)"
	@echo "make pipeline-compile          write $(PIPELINE_YAML) (KFP IR YAML; images $(IMAGE)/$(GPU_IMAGE):$(TAG))"
	@echo "make pipeline-submit KFP_HOST=...  upload a new version to Kubeflow Pipelines and start a run"
	@echo "make docker-up / base-image / images / images-push REGISTRY=...   containers (README)"
	@echo "make bench                     every speed/memory benchmark, cost growth included (docs/performance.md; dist/bench.json)"
	@echo "make gpu-check                 CUDA check in <5 min: tuning steps/s fp32/bf16/compile, evaluation, memory (dist/gpu_check.json)"
	@echo "make mlflow-ui                 browse local runs on http://127.0.0.1:$(MLFLOW_PORT)"
	@echo "make s3-up / s3-down           start / stop the local SeaweedFS S3 server"
	@echo "make mlflow-server-up / -down  start / stop the local MLflow server on PostgreSQL (RUNNER=docker uses it)"

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock requirements-dev.lock
	@command -v ffmpeg >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing ffmpeg (decodes MUSDB18 stems; museval needs it)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ffmpeg >/dev/null \
	      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ffmpeg >/dev/null; } \
	      || echo "warning: could not install ffmpeg; install it with your package manager"; \
	  else echo "warning: ffmpeg not found; install it (apt-get install ffmpeg) for MUSDB18 decoding"; fi; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "setup: installing the pinned packages into $(VENV) (about 3 minutes the first time; later runs skip it)"
	# torch first and pinned: an unpinned resolve would pull a multi-GB CUDA build.
	@echo "setup 1/3: torch 2.13.0"
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	@echo "setup 2/3: the locked packages (kfp, MLflow, museval, boto3, ...)"
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock -r requirements-dev.lock
	@echo "setup 3/3: apt_uss"
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	# torchaudio 2.11 wheels link CUDA libraries; without them its pure-PyTorch transforms work on CPU torch.
	rm -f $(VENV)/lib/python3.11/site-packages/torchaudio/lib/*.so
	$(BIN)/python -c "import apt_uss, kfp, mlflow, torchaudio.transforms; print('setup ok: kfp', kfp.__version__, 'mlflow', mlflow.__version__)"
	@touch $@

# The full suite (what CI runs); test-fast leaves out the tests marked slow (whole pipelines, containers,
# real servers); test-kernels runs the fast lane under each CPU kernel family (tests/kernel_sweep.sh).
# TEST_WORKERS pytest-xdist processes share the tests (the container tests stay in one of them).
TEST_WORKERS ?= 2
PYTEST = $(BIN)/python -m pytest -q $(if $(filter-out 0 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup)

test: setup
	$(PYTEST) tests

test-fast: setup
	$(PYTEST) -m "not slow" tests

test-kernels: setup
	PYTHON=$(BIN)/python TEST_WORKERS=$(TEST_WORKERS) tests/kernel_sweep.sh

bench: setup
	@mkdir -p dist
	$(BIN)/python -m apt_uss.tools.bench --configs small paper --json dist/bench.json

# On a CUDA machine, in under 5 minutes: the paper config's tuning steps/s (fp32, bf16, torch.compile),
# batched evaluation throughput, peak GPU memory and a short pipeline on the GPU; a CPU dry mode without CUDA.
gpu-check: setup
	@mkdir -p dist
	$(BIN)/python -m apt_uss.tools.gpu_check --json dist/gpu_check.json

s3-up: setup
	@if [ -n "$(AWS_ENDPOINT_URL)$(AWS_ENDPOINT_URL_S3)" ]; then \
	  echo "using the S3 endpoint from AWS_ENDPOINT_URL; no local server started"; \
	else $(BIN)/python -m apt_uss s3 up --port $(S3_PORT); fi

s3-down:
	@test -x $(BIN)/python && $(BIN)/python -m apt_uss s3 down || true

mlflow-server-up: setup s3-up
	$(S3_ENV) $(BIN)/python -m apt_uss mlflow-server up --port $(MLFLOW_PORT)

# PURGE=1 also deletes the server's database (the local containerized runs' tracking data).
mlflow-server-down:
	@test -x $(BIN)/python && $(BIN)/python -m apt_uss mlflow-server down $(if $(PURGE),--purge) || true

# RUNNER=docker: every step in its image (built first: cached, seconds when nothing changed).
# DATASET=debian_sounds (no DATASET_URI) reads the corpus `make corpus` builds: built first when needed.
NEEDS_CORPUS = $(if $(and $(filter debian_sounds,$(DATASET)),$(if $(DATASET_URI),,yes)),corpus)

pipeline-run: setup s3-up $(NEEDS_CORPUS) $(if $(filter docker,$(RUNNER)),images)
	$(S3_ENV) MLFLOW_PORT=$(MLFLOW_PORT) $(if $(filter docker,$(RUNNER)),$(PIPELINE_IMAGES_LOCAL)) \
	  $(BIN)/python -m pipelines.run_local --runner "$(RUNNER)" $(SHOW_EXECUTOR_INPUT_FLAG) $(PIPELINE_FLAGS)

# The real-audio corpus: fluid-soundfont-gm (pinned .deb) rendered by fluidsynth; kept when already up to date.
corpus: setup
	@command -v fluidsynth >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing fluidsynth (renders the corpus)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends fluidsynth >/dev/null \
	      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends fluidsynth >/dev/null; }; \
	  else echo "error: fluidsynth not found; install it (apt-get install fluidsynth)" >&2; exit 1; fi; }
	$(BIN)/python -m apt_uss build-corpus $(if $(DEB_DIR),--deb-dir "$(DEB_DIR)")

backbone: setup corpus
	$(BIN)/python -m pipelines.run_backbone $(SHOW_EXECUTOR_INPUT_FLAG)

# Table 2 in one KFP run: every SWEEP_SHOTS value with each of SEEDS seeds (make sweep SEEDS=3).
# A cell sets these: given to a sweep target they would be silently unused, so they stop it.
sweep_refuses_cell_variables = $(foreach v,N_SHOT SHOT_SEED MIX_SEED AUDIO_EXAMPLES_PER_CLASS,\
	$(if $(filter command line environment override,$(origin $(v))),\
	$(error $(v) is set per cell by the sweep: give SWEEP_SHOTS and SEEDS instead)))

sweep: setup s3-up $(NEEDS_CORPUS) $(if $(filter docker,$(RUNNER)),images)
	$(sweep_refuses_cell_variables)
	$(S3_ENV) MLFLOW_PORT=$(MLFLOW_PORT) $(if $(filter docker,$(RUNNER)),$(PIPELINE_IMAGES_LOCAL)) \
	  $(BIN)/python -m pipelines.run_sweep --runner "$(RUNNER)" $(SHOW_EXECUTOR_INPUT_FLAG) $(SWEEP_FLAGS) \
	  $(if $(PARALLELISM),--parallelism $(PARALLELISM))

# The separator with one class's prompt as ONNX, checked with onnxruntime against PyTorch (docs/serving.md).
# PROMPTS: a prompt file or a model URI (models:/<name>/<version>); CLASS: one of its classes.
ONNX_OUT ?= dist/separator.onnx
ONNX_SECONDS ?= 5
onnx: setup
	@test -n "$(PROMPTS)" -a -n "$(CLASS)" || { echo "make onnx needs PROMPTS=<prompt file or models:/...> CLASS=<class>" >&2; exit 2; }
	$(BIN)/python -m apt_uss export-onnx $(if $(filter models:/% runs:/%,$(PROMPTS)),--model,--prompts) $(PROMPTS) \
	  --class $(CLASS) --out $(ONNX_OUT) --seconds $(ONNX_SECONDS) $(if $(CHECK_AUDIO),--check-audio $(CHECK_AUDIO))

# The demo profile's tuning settings chosen on validation clips of the training folds (docs/selection.md).
select-settings: setup $(NEEDS_CORPUS)
	$(BIN)/python -m apt_uss.tools.select_settings --out dist/select_settings/$(or $(DATASET),synthetic) --dataset $(or $(DATASET),synthetic) \
	  $(if $(SELECTION_SEEDS),--selection-seeds "$(SELECTION_SEEDS)")

compare: setup
	$(BIN)/python -m apt_uss compare $(RUNS) --experiment "$(or $(EXPERIMENT),apt-uss)" --tracking-uri "$(TRACKING_URI)"

# The compiled pipeline names the images `make images` builds (with REGISTRY: as `make images-push` pushes them).
PIPELINE_IMAGES = APT_USS_IMAGE="$(if $(REGISTRY),$(REGISTRY)/)$(IMAGE):$(TAG)" \
  APT_USS_GPU_IMAGE="$(if $(REGISTRY),$(REGISTRY)/)$(GPU_IMAGE):$(TAG)"

PIPELINE_IMAGES_LOCAL = APT_USS_IMAGE="$(IMAGE):$(TAG)" APT_USS_GPU_IMAGE="$(GPU_IMAGE):$(TAG)"

pipeline-compile: setup
	$(PIPELINE_IMAGES) $(BIN)/python -m pipelines.compile --out $(PIPELINE_YAML) --profile "$(PROFILE)"

sweep-compile: setup
	$(sweep_refuses_cell_variables)
	$(PIPELINE_IMAGES) $(BIN)/python -m pipelines.compile --pipeline sweep --out $(SWEEP_YAML) --profile "$(PROFILE)" \
	  $(if $(PARALLELISM),--parallelism $(PARALLELISM))

kfp-host-given:
	@test -n "$(KFP_HOST)" || { echo "pipeline-submit: set KFP_HOST (e.g. KFP_HOST=http://localhost:8080)" >&2; exit 2; }

# Upload as a new version of pipeline PIPELINE_NAME and start a run (token: $$KFP_TOKEN when set).
pipeline-submit: kfp-host-given pipeline-compile
	$(BIN)/python -m pipelines.submit --host "$(KFP_HOST)" --namespace "$(KFP_NAMESPACE)" \
	  --pipeline-name "$(PIPELINE_NAME)" --package $(PIPELINE_YAML) $(PIPELINE_FLAGS)

sweep-submit: kfp-host-given sweep-compile
	$(BIN)/python -m pipelines.submit --pipeline sweep --host "$(KFP_HOST)" --namespace "$(KFP_NAMESPACE)" \
	  --pipeline-name "$(SWEEP_PIPELINE_NAME)" --package $(SWEEP_YAML) $(SWEEP_FLAGS)

mlflow-ui: setup
	$(BIN)/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(APT_USS_HOME)/mlflow.db}" \
	  --host 127.0.0.1 --port $(MLFLOW_PORT)

clean: s3-down
	@test -x $(BIN)/python && $(BIN)/python -m apt_uss mlflow-server down --purge || true
	rm -rf $(STATE) dist
