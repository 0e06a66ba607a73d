# sfnap: the two commands a newcomer needs are `make demo` and `make test`.
# Both install what is missing first (Mesa's lavapipe and llvmpipe, idempotently).

SHELL := /bin/bash
CARGO ?= cargo
# Backends the GPU suite runs on: Vulkan (lavapipe) and OpenGL (llvmpipe through EGL).
BACKENDS ?= vulkan gl
# Targets whose builds are checked without their machines: DX12 (Windows) and Metal (macOS).
CROSS_TARGETS ?= x86_64-pc-windows-msvc aarch64-apple-darwin

.PHONY: setup demo test lint test-gpu cross-check

## Install Mesa lavapipe (Vulkan) and llvmpipe (GL/EGL) if missing.
setup:
	@bash scripts/setup-lavapipe.sh

## The main job on the best adapter present (lavapipe when there is no GPU).
demo: setup
	$(CARGO) run --release --example logistic

## Every test: formatting and lints, the GPU suite on every backend, the cross-target builds.
test: setup lint test-gpu cross-check

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# Vulkan runs on lavapipe only (VK_DRIVER_FILES), so results do not depend on
# whatever other driver a machine has; no adapter is a failure, not a skip.
test-gpu:
	@lvp="$(firstword $(wildcard /usr/share/vulkan/icd.d/lvp_icd*.json))"; \
	  if [ -z "$$lvp" ]; then echo "error: no lavapipe driver file (lvp_icd*.json); run make setup" >&2; exit 1; fi; \
	  export VK_DRIVER_FILES="$$lvp"; \
	  $(CARGO) build --all-targets || exit 1; \
	  for backend in $(BACKENDS); do \
	    echo "== GPU suite on $$backend"; \
	    SFNAP_BACKEND=$$backend ./target/debug/sfnap devices || exit 1; \
	    SFNAP_BACKEND=$$backend $(CARGO) test --all-targets || exit 1; \
	  done

cross-check:
	@for t in $(CROSS_TARGETS); do \
	  rustup target list --installed | grep -qx "$$t" || rustup target add "$$t" || exit 1; \
	  echo "== cargo check --target $$t"; \
	  $(CARGO) check --target "$$t" --all-targets || exit 1; \
	done
