# Container images for the pipeline's steps (included by the Makefile).
#   make docker-up / docker-down   start / stop a local Docker Engine (images/engine.sh)
#   make base-image                a local python:3.11-slim-bookworm stand-in (no registry needed)
#   make images                    build $(IMAGE):$(TAG) and $(GPU_IMAGE):$(TAG), the names the
#                                  compiled pipeline uses (APT_USS_IMAGE / APT_USS_GPU_IMAGE)
#   make images-check              import everything a step needs inside $(IMAGE):$(TAG)
#   make images-push REGISTRY=registry.example.com/team [TAG=...]
# Without a registry (offline):
#   make base-image && make images BASE_IMAGE=apt-uss-base:bookworm-py3.11 GPU_BASE_IMAGE=apt-uss-base:bookworm-py3.11
# Behind a TLS-intercepting proxy: EXTRA_CA_CERTS_DIR=/usr/local/share/ca-certificates (its *.crt).
IMAGES_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

IMAGE          ?= apt-uss
GPU_IMAGE      ?= apt-uss-gpu
TAG            ?= 0.1.0
# The CPU stand-in `make base-image` builds (Debian 12 + Python 3.11 from Debian's packages).
LOCAL_BASE_IMAGE ?= apt-uss-base:bookworm-py3.11
# Defaults: the official images. Where one is not on the engine and the local stand-in
# (make base-image) is, the stand-in is used instead: nothing is pulled for it (offline here).
OFFICIAL_BASE_IMAGE     := python:3.11-slim-bookworm
# Official PyTorch CUDA runtime image (torch preinstalled; the venv keeps it when it matches the lock).
OFFICIAL_GPU_BASE_IMAGE := pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime
here_or_local = $(shell if $(DOCKER) image inspect $(1) >/dev/null 2>&1 \
  || ! $(DOCKER) image inspect $(LOCAL_BASE_IMAGE) >/dev/null 2>&1; then echo $(1); else echo $(LOCAL_BASE_IMAGE); fi)
BASE_IMAGE     ?= $(call here_or_local,$(OFFICIAL_BASE_IMAGE))
GPU_BASE_IMAGE ?= $(call here_or_local,$(OFFICIAL_GPU_BASE_IMAGE))
EXTRA_CA_CERTS_DIR ?=
REGISTRY       ?=
# Wheels preferred over PyPI's (only those requirements.lock pins are used): by default pip's own
# find-links setting, which on the project's machines holds the CPU build of torch 2.13.0.
WHEELS_DIR     ?= $(or $(PIP_FIND_LINKS),$(shell pip config get global.find-links 2>/dev/null))
# Debian's client has BuildKit built in; a newer client without buildx cannot use it.
DOCKER         ?= $(if $(wildcard /usr/bin/docker),/usr/bin/docker,docker)

IMAGES_BUILD = DOCKER="$(DOCKER)" EXTRA_CA_CERTS_DIR="$(EXTRA_CA_CERTS_DIR)" WHEELS_DIR="$(WHEELS_DIR)" \
  $(IMAGES_DIR)/build.sh

.PHONY: docker-up docker-down base-image images images-cpu images-gpu images-check images-push

docker-up:
	@$(IMAGES_DIR)/engine.sh start

docker-down:
	@$(IMAGES_DIR)/engine.sh stop

base-image:
	@$(IMAGES_DIR)/base-image.sh "$(LOCAL_BASE_IMAGE)"

# One after the other (also under make -j): with a shared base the GPU build reuses the CPU one's layers.
images:
	@$(IMAGES_BUILD) "$(IMAGE):$(TAG)" "$(BASE_IMAGE)"
	@$(IMAGES_BUILD) "$(GPU_IMAGE):$(TAG)" "$(GPU_BASE_IMAGE)"

images-cpu:
	@$(IMAGES_BUILD) "$(IMAGE):$(TAG)" "$(BASE_IMAGE)"

images-gpu:
	@$(if $(filter $(LOCAL_BASE_IMAGE),$(GPU_BASE_IMAGE)),echo "images: warning: $(GPU_IMAGE):$(TAG) is built from the CPU stand-in $(LOCAL_BASE_IMAGE): no CUDA (fine for RUNNER=docker here; images-push refuses it)" >&2;)
	@$(IMAGES_BUILD) "$(GPU_IMAGE):$(TAG)" "$(GPU_BASE_IMAGE)"

images-check:
	$(DOCKER) run --rm --network host "$(IMAGE):$(TAG)" python3 -c "import apt_uss, kfp, torch, torchaudio.transforms, mlflow, boto3, soundfile, museval; \
	  from apt_uss.models.backbone import load_backbone; load_backbone('demo'); print('image ok: kfp', kfp.__version__, 'torch', torch.__version__)"

images-push:
	@test -n "$(REGISTRY)" || { echo "images-push: set REGISTRY (e.g. REGISTRY=registry.example.com/team)" >&2; exit 1; }
	@! $(DOCKER) image inspect "$(GPU_IMAGE):$(TAG)" >/dev/null 2>&1 || [ -n "$(ALLOW_CPU_GPU_IMAGE)" ] \
	  || $(DOCKER) run --rm --network none "$(GPU_IMAGE):$(TAG)" python3 -c "import sys, torch; sys.exit(0 if torch.version.cuda else 1)" \
	  || { echo "images-push: $(GPU_IMAGE):$(TAG) has a CPU-only torch (built from $(LOCAL_BASE_IMAGE)?): build it from a CUDA base (GPU_BASE_IMAGE=...) or pass ALLOW_CPU_GPU_IMAGE=1" >&2; exit 1; }
	@set -e; for name in "$(IMAGE)" "$(GPU_IMAGE)"; do \
	  $(DOCKER) image inspect "$$name:$(TAG)" >/dev/null 2>&1 \
	    || { echo "images-push: $$name:$(TAG) is not built; run 'make images TAG=$(TAG)'" >&2; exit 1; }; \
	  $(DOCKER) tag "$$name:$(TAG)" "$(REGISTRY)/$$name:$(TAG)"; \
	  echo "pushing $(REGISTRY)/$$name:$(TAG)"; \
	  $(DOCKER) push "$(REGISTRY)/$$name:$(TAG)"; \
	done
	@echo "compile the pipeline against them: APT_USS_IMAGE=$(REGISTRY)/$(IMAGE):$(TAG) APT_USS_GPU_IMAGE=$(REGISTRY)/$(GPU_IMAGE):$(TAG)"
