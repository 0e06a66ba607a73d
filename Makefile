# sfnap: the two commands a newcomer needs are `make demo` and `make test`.
# Both install what is missing first (Mesa's lavapipe, idempotently).

SHELL := /bin/bash
CARGO ?= cargo
# Mesa's CPU Vulkan driver: version 25.x is named lvp_icd.json, 22.x lvp_icd.x86_64.json.
LAVAPIPE = $(firstword $(wildcard /usr/share/vulkan/icd.d/lvp_icd*.json))

.PHONY: setup demo test test-gpu lint bench

## Install Mesa lavapipe (Vulkan) and llvmpipe (GL/EGL) if missing.
setup:
	@bash scripts/setup-lavapipe.sh

## The main job on the best adapter present (lavapipe when there is no GPU).
demo: setup
	$(CARGO) run --release --example logistic

## Every test: formatting, lints, the GPU suite on lavapipe.
test: setup lint test-gpu

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

test-gpu:
	@lvp="$(firstword $(wildcard /usr/share/vulkan/icd.d/lvp_icd*.json))"; \
	  if [ -z "$$lvp" ]; then echo "error: no lavapipe driver file (lvp_icd*.json); run make setup" >&2; exit 1; fi; \
	  export VK_DRIVER_FILES="$$lvp" SFNAP_BACKEND=vulkan; \
	  $(CARGO) build --all-targets && \
	  ./target/debug/sfnap devices && \
	  $(CARGO) test --all-targets
