# apt-uss: `make pipeline-run N_SHOT=5` and `make test` work on a fresh clone; both run `setup` first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STATE  ?= .apt-uss
export APT_USS_HOME := $(abspath $(STATE))

# A profile sets the defaults of BACKBONE, EPOCHS, LR, LOSS_FUNCTION and CROP_RULE; each can still be
# given on its own.
#   demo:  the shipped CPU backbone, 20 epochs. It takes about 25x fewer tuning steps than the
#          paper's 100 epochs over ESC-50's 50 classes, so its lr is raised to keep the paper's
#          lr x steps (docs/demo-backbone.md has the measured lr comparison). It tunes on the
#          negative SNR of loud crops: under the paper's L1 the demo separator mutes sparse targets
#          (docs/demo-backbone.md, "Why the demo tunes on the SNR of loud crops").
#   paper: the official checkpoints' shape and the paper's settings (pass the checkpoint URIs).
PROFILE ?= demo
ifeq ($(PROFILE),demo)
  PROFILE_BACKBONE := demo
  PROFILE_EPOCHS := 20
  PROFILE_LR := 1e-2
  PROFILE_LOSS_FUNCTION := snr
  PROFILE_CROP_RULE := loud
else ifeq ($(PROFILE),paper)
  PROFILE_BACKBONE := paper
  PROFILE_EPOCHS := 100
  PROFILE_LR := 3e-4
  PROFILE_LOSS_FUNCTION := l1
  PROFILE_CROP_RULE := random
else
  $(error PROFILE=$(PROFILE) is unknown: use demo or paper)
endif

# Pipeline parameters (upper case of the pipeline's own names).
N_SHOT      ?= 5
SEED        ?= 0
EPOCHS      ?= $(PROFILE_EPOCHS)
LR          ?= $(PROFILE_LR)
LR_SCHEDULE ?= constant
LOSS_FUNCTION ?= $(PROFILE_LOSS_FUNCTION)
BATCH_SIZE  ?= 4
TUNE        ?= prompts
PRECISION   ?= fp32
CHECKPOINT_URI ?=
DATASET     ?= synthetic
DATASET_URI ?=
DATASET_SHA256 ?=
N_CLASSES   ?= 10
TRAIN_FOLDS ?= 1,2,3
TEST_FOLDS  ?= 4,5
CROP_SECONDS ?= 2.0
MIX_RULE    ?= energy_match
CROP_RULE   ?= $(PROFILE_CROP_RULE)
BACKBONE    ?= $(PROFILE_BACKBONE)
SED_CHECKPOINT_URI ?=
SEPARATOR_CHECKPOINT_URI ?=
BACKBONE_SEED ?= 0
DEVICE      ?= auto
TRACKING_URI ?=
EXPERIMENT  ?= apt-uss
ARTIFACT_URI ?= s3://apt-uss/runs
AUDIO_EXAMPLES ?= 2
RUNS        ?=
RUNNER      ?= subprocess
S3_PORT     ?= 8333
MLFLOW_PORT ?= 5000
PIPELINE_YAML ?= dist/apt_uss_pipeline.yaml

# Cluster runs (make pipeline-submit): the GPUs of the tuning pod, and the Secret and ConfigMap
# every pod reads (charts/apt-uss creates them).
TUNE_GPUS   ?= 1
# JSON; empty: the pipeline's defaults (tolerate nvidia.com/gpu:NoSchedule; no node selector).
GPU_TOLERATIONS ?=
GPU_NODE_SELECTOR ?=
CREDENTIALS_SECRET ?= apt-uss-credentials
CONFIG_MAP  ?= apt-uss-config
KFP_HOST    ?=
KFP_NAMESPACE ?=
PIPELINE_NAME ?= apt-uss

# The pipeline parameters as flags of pipelines.run_local and pipelines.submit.
PIPELINE_FLAGS = \
	  --n-shot "$(N_SHOT)" --seed "$(SEED)" --epochs "$(EPOCHS)" --lr "$(LR)" --lr-schedule "$(LR_SCHEDULE)" \
	  --loss-function "$(LOSS_FUNCTION)" --batch-size "$(BATCH_SIZE)" --tune "$(TUNE)" --precision "$(PRECISION)" \
	  --checkpoint-uri "$(CHECKPOINT_URI)" \
	  --dataset "$(DATASET)" --dataset-uri "$(DATASET_URI)" \
	  --dataset-sha256 "$(DATASET_SHA256)" --n-classes "$(N_CLASSES)" \
	  --train-folds "$(TRAIN_FOLDS)" --test-folds "$(TEST_FOLDS)" --crop-seconds "$(CROP_SECONDS)" \
	  --mix-rule "$(MIX_RULE)" --crop-rule "$(CROP_RULE)" --backbone "$(BACKBONE)" \
	  --sed-checkpoint-uri "$(SED_CHECKPOINT_URI)" \
	  --separator-checkpoint-uri "$(SEPARATOR_CHECKPOINT_URI)" --backbone-seed "$(BACKBONE_SEED)" \
	  --device "$(DEVICE)" --tracking-uri "$(TRACKING_URI)" --experiment "$(EXPERIMENT)" \
	  --artifact-uri "$(ARTIFACT_URI)" --audio-examples-per-class "$(AUDIO_EXAMPLES)" \
	  --tune-gpus "$(TUNE_GPUS)" --credentials-secret "$(CREDENTIALS_SECRET)" --config-map "$(CONFIG_MAP)" \
	  $(if $(GPU_TOLERATIONS),--gpu-tolerations '$(GPU_TOLERATIONS)') \
	  $(if $(GPU_NODE_SELECTOR),--gpu-node-selector '$(GPU_NODE_SELECTOR)')

# Use the local SeaweedFS server unless the user points at an S3 endpoint of their own.
S3_ENV = $(if $(AWS_ENDPOINT_URL)$(AWS_ENDPOINT_URL_S3),,set -a && . $(APT_USS_HOME)/s3/s3.env && set +a &&)

SWEEP_EXPERIMENT ?= apt-uss-sweep
SWEEP_SHOTS ?= 1 5 10 full

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

.PHONY: help setup test test-fast test-kernels bench gpu-check backbone sweep compare pipeline-run pipeline-compile mlflow-ui s3-up s3-down \
        mlflow-server-up mlflow-server-down pipeline-submit kfp-host-given clean

help:
	@echo "make setup                     create $(VENV) and install everything (idempotent)"
	@echo "make pipeline-run N_SHOT=5     run the whole pipeline locally (KFP local runner)"
	@echo "make test                      run the whole test suite (what CI runs)"
	@echo "make test-fast                 the suite without the slow tests (pipelines, containers, servers)"
	@echo "make test-kernels              the fast lane under each CPU kernel family (AVX2, default, oneDNN capped)"
	@echo "make backbone                  retrain the shipped demo backbone (CPU, under 60 min)"
	@echo "make sweep                     pipeline-run for N_SHOT in $(SWEEP_SHOTS); prints Table 2 from MLflow"
	@echo "make compare [RUNS='id ...']   headline SDRs of chosen MLflow runs (default: the latest of EXPERIMENT)"
	@echo "make pipeline-compile          write $(PIPELINE_YAML) (KFP IR YAML; images $(IMAGE)/$(GPU_IMAGE):$(TAG))"
	@echo "make pipeline-submit KFP_HOST=...  upload a new version to Kubeflow Pipelines and start a run"
	@echo "make docker-up / base-image / images / images-push REGISTRY=...   containers (README)"
	@echo "make bench                     forward time/memory, SDR vs museval, prompt-tuning steps/s (dist/bench.json)"
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
	# torch first and pinned: an unpinned resolve would pull a multi-GB CUDA build.
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock -r requirements-dev.lock
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
	$(BIN)/python -m apt_uss.bench --configs small paper --json dist/bench.json

# On a CUDA machine, in under 5 minutes: the paper config's tuning steps/s (fp32, bf16, torch.compile),
# batched evaluation throughput, peak GPU memory and a short pipeline on the GPU; a CPU dry mode without CUDA.
gpu-check: setup
	@mkdir -p dist
	$(BIN)/python -m apt_uss.gpu_check --json dist/gpu_check.json

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
pipeline-run: setup s3-up $(if $(filter docker,$(RUNNER)),images)
	$(S3_ENV) MLFLOW_PORT=$(MLFLOW_PORT) $(if $(filter docker,$(RUNNER)),$(PIPELINE_IMAGES_LOCAL)) \
	  $(BIN)/python -m pipelines.run_local --runner "$(RUNNER)" $(PIPELINE_FLAGS)

backbone: setup
	$(BIN)/python -m pipelines.run_backbone

sweep: setup s3-up
	@for shot in $(SWEEP_SHOTS); do \
	  $(MAKE) --no-print-directory pipeline-run N_SHOT=$$shot EXPERIMENT=$(SWEEP_EXPERIMENT) || exit 1; done
	$(BIN)/python -m apt_uss few-shot-table --experiment $(SWEEP_EXPERIMENT) --csv dist/few_shot_table.csv \
	  --plot dist/few_shot.png --log

compare: setup
	$(BIN)/python -m apt_uss compare $(RUNS) --experiment "$(EXPERIMENT)" --tracking-uri "$(TRACKING_URI)"

# The compiled pipeline names the images `make images` builds (with REGISTRY: as `make images-push` pushes them).
PIPELINE_IMAGES = APT_USS_IMAGE="$(if $(REGISTRY),$(REGISTRY)/)$(IMAGE):$(TAG)" \
  APT_USS_GPU_IMAGE="$(if $(REGISTRY),$(REGISTRY)/)$(GPU_IMAGE):$(TAG)"

PIPELINE_IMAGES_LOCAL = APT_USS_IMAGE="$(IMAGE):$(TAG)" APT_USS_GPU_IMAGE="$(GPU_IMAGE):$(TAG)"

pipeline-compile: setup
	$(PIPELINE_IMAGES) $(BIN)/python -m pipelines.compile --out $(PIPELINE_YAML)

kfp-host-given:
	@test -n "$(KFP_HOST)" || { echo "pipeline-submit: set KFP_HOST (e.g. KFP_HOST=http://localhost:8080)" >&2; exit 2; }

# Upload as a new version of pipeline PIPELINE_NAME and start a run (token: $$KFP_TOKEN when set).
pipeline-submit: kfp-host-given pipeline-compile
	$(BIN)/python -m pipelines.submit --host "$(KFP_HOST)" --namespace "$(KFP_NAMESPACE)" \
	  --pipeline-name "$(PIPELINE_NAME)" --package $(PIPELINE_YAML) $(PIPELINE_FLAGS)

mlflow-ui: setup
	$(BIN)/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(APT_USS_HOME)/mlflow.db}" \
	  --host 127.0.0.1 --port $(MLFLOW_PORT)

clean: s3-down
	@test -x $(BIN)/python && $(BIN)/python -m apt_uss mlflow-server down --purge || true
	rm -rf $(STATE) dist
