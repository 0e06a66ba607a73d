# sfnap: the two commands a newcomer needs are `make demo` and `make test`.
# Both install what is missing first (Mesa's lavapipe and llvmpipe, OpenMPI and libclang; idempotently).

SHELL := /bin/bash
CARGO ?= cargo
# Backends the GPU suite runs on: Vulkan (lavapipe) and OpenGL (llvmpipe through EGL).
BACKENDS ?= vulkan gl
# Targets whose builds are checked without their machines: DX12 (Windows) and Metal (macOS).
CROSS_TARGETS ?= x86_64-pc-windows-msvc aarch64-apple-darwin
# The web build: the demos' crate (web/, sfnap-web) as a wasm32 cdylib, bound for
# `--target web` into web/pkg/ as sfnap.js.
WASM := $(or $(CARGO_TARGET_DIR),target)/wasm32-unknown-unknown/release/sfnap_web.wasm
WEB_PORT ?= 8000

.PHONY: setup demo test lint test-gpu test-mpi cross-check web web-build test-web

## Install Mesa lavapipe (Vulkan) and llvmpipe (GL/EGL), OpenMPI and libclang (feature `mpi`),
## and numpy (the README's export example, run by tests/own_data.rs) if missing.
setup:
	@bash scripts/setup-lavapipe.sh
	@bash scripts/setup-mpi.sh
	@bash scripts/setup-numpy.sh

## The main job on the best adapter present (lavapipe when there is no GPU):
## the digits MLP with sf_plus + NaP and with adamw + WSD, side by side.
demo: setup
	$(CARGO) run --release --example digits

## Every test: formatting and lints, the GPU suite on every backend, the cross-target builds.
test: setup lint test-gpu test-mpi cross-check test-web

# The command line's dependencies (feature `cli`): an embedder building with
# `default-features = false` must compile none of them.
CLI_ONLY_DEPS := clap indicatif plotters env_logger ab_glyph

# Every link between the project's files resolves (scripts/check_links.py). The browser
# bindings compile for wasm32 only, so the web crate is linted there too;
# the library is linted without default features as an embedding program builds it.
lint:
	python3 scripts/check_links.py
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p sfnap --no-default-features --lib -- -D warnings
	$(CARGO) clippy -p sfnap --all-targets --features mpi -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	$(CARGO) clippy -p sfnap-web --target wasm32-unknown-unknown -- -D warnings
	@tree="$$($(CARGO) tree -p sfnap -e normal --no-default-features --prefix none --format '{p}')" || exit 1; \
	  for dep in $(CLI_ONLY_DEPS); do \
	    if grep -q "^$$dep v" <<< "$$tree"; then \
	      echo "error: sfnap without default features depends on $$dep (cargo tree -i $$dep -e normal --no-default-features shows why); it belongs behind the cli feature" >&2; \
	      exit 1; \
	    fi; \
	  done; \
	  echo "cargo tree --no-default-features: none of $(CLI_ONLY_DEPS)"
	@wgpus="$$($(CARGO) tree -p sfnap-burn -e normal --prefix none --format '{p}' | grep '^wgpu v' | sed 's/ (\*)$$//' | sort -u)" || exit 1; \
	  if [ "$$(wc -l <<< "$$wgpus")" != 1 ]; then echo "error: sfnap-burn depends on several wgpu versions (Burn and sfnap must share one device):" >&2; echo "$$wgpus" >&2; exit 1; fi; \
	  echo "cargo tree -p sfnap-burn: one wgpu ($$wgpus)"

# The examples an embedding program starts from; they run on every backend, built
# as such a program builds sfnap (without the command line's dependencies).
EMBED_EXAMPLES := bring_your_own_device custom_kernel

# Vulkan runs on lavapipe only (VK_DRIVER_FILES), so results do not depend on
# whatever other driver a machine has; no adapter is a failure, not a skip.
# GL runs one test at a time: Mesa's EGL stalls when several threads open
# devices at once (the layer tests took over 14 minutes in parallel, 65 s serially).
test-gpu:
	@lvp="$(firstword $(wildcard /usr/share/vulkan/icd.d/lvp_icd*.json))"; \
	  if [ -z "$$lvp" ]; then echo "error: no lavapipe driver file (lvp_icd*.json); run make setup" >&2; exit 1; fi; \
	  export VK_DRIVER_FILES="$$lvp"; \
	  $(CARGO) build --workspace --all-targets || exit 1; \
	  for backend in $(BACKENDS); do \
	    echo "== GPU suite on $$backend"; \
	    SFNAP_BACKEND=$$backend ./target/debug/sfnap devices || exit 1; \
	    if [ $$backend = gl ]; then export RUST_TEST_THREADS=1; else unset RUST_TEST_THREADS; fi; \
	    SFNAP_BACKEND=$$backend $(CARGO) test --workspace --all-targets || exit 1; \
	    for ex in $(EMBED_EXAMPLES); do \
	      echo "== example $$ex on $$backend (library without default features)"; \
	      SFNAP_BACKEND=$$backend WGPU_BACKEND=$$backend $(CARGO) run -q --no-default-features --example $$ex || exit 1; \
	    done; \
	  done; \
	  echo "== the code blocks of README.md, docs/library.md and sfnap-burn/README.md (doctests) on vulkan"; \
	  SFNAP_BACKEND=vulkan $(CARGO) test --doc --workspace || exit 1

# Data-parallel training (feature `mpi`): 2 ranks on lavapipe under mpirun. Only
# sfnap itself is rebuilt with the feature; its dependencies are the debug build's.
test-mpi:
	@lvp="$(firstword $(wildcard /usr/share/vulkan/icd.d/lvp_icd*.json))"; \
	  if [ -z "$$lvp" ]; then echo "error: no lavapipe driver file (lvp_icd*.json); run make setup" >&2; exit 1; fi; \
	  echo "== MPI tests (2 ranks) on vulkan"; \
	  VK_DRIVER_FILES="$$lvp" SFNAP_BACKEND=vulkan $(CARGO) test -p sfnap --features mpi --test mpi -- --test-threads 1

# sfnap-burn is left out: Burn's tree, checked for two more targets, would cost more
# CI time than it tells (the crate has no target-specific code; sfnap's is checked).
cross-check:
	@for t in $(CROSS_TARGETS); do \
	  rustup target list --installed | grep -qx "$$t" || rustup target add "$$t" || exit 1; \
	  echo "== cargo check --target $$t"; \
	  $(CARGO) check --target "$$t" --workspace --exclude sfnap-burn --all-targets || exit 1; \
	done

## The browser demos: build the wasm module, then serve web/ on http://127.0.0.1:$(WEB_PORT)/.
web: web-build
	python3 web/serve.py --port $(WEB_PORT)

# wasm-bindgen-cli must match Cargo.lock's wasm-bindgen exactly; setup-web.sh installs
# it once (minutes). `cargo rustc --crate-type cdylib` keeps native builds rlib-only.
web-build:
	@bash scripts/setup-web.sh
	$(CARGO) rustc -p sfnap-web --lib --release --target wasm32-unknown-unknown --crate-type cdylib
	PATH="$$HOME/.cargo/bin:$$PATH" wasm-bindgen --target web --no-typescript --out-dir web/pkg --out-name sfnap $(WASM)
	@mkdir -p web/pkg/golden && rm -f web/pkg/golden/*.json && cp tests/data/*.json web/pkg/golden/
	@python3 -c 'import json, pathlib; print(json.dumps(sorted(p.name for p in pathlib.Path("tests/data").glob("*.json"))))' \
	  > web/pkg/golden/index.json

## The pages in headless Chromium on its WebGPU adapter (SwiftShader without a GPU):
## every golden case, the race on every function, the live demos, every page's settings
## from its address, the update functions against the native computation (cargo runs
## web/examples/update_check.rs), the no-WebGPU notice. Screenshots: target/web-shots/.
test-web: web-build
	@bash scripts/setup-web.sh --browser
	python3 web/tests/run.py

.PHONY: gym-data
## The Gymnasium reference trajectories tests/rl.rs compares against (tests/data/gym/):
## installs the pinned Gymnasium into target/gym-venv and plays the episodes. Not part of `make test`.
GYMNASIUM_VERSION ?= 1.4.0
gym-data:
	@[ -x target/gym-venv/bin/python ] || python3 -m venv target/gym-venv
	target/gym-venv/bin/pip install -q "gymnasium==$(GYMNASIUM_VERSION)" numpy
	target/gym-venv/bin/python scripts/gym_trajectories.py

.PHONY: bench bench-peers gpu-check
## Optimizer-step sweeps against the faster copy (buffer copy or copy kernel), whole training
## steps against PyTorch and the browser race's steps/s: writes BENCHMARKS.md and
## benches/scale.svg (includes the PyTorch peers when target/peers-venv exists; see bench-peers).
bench: setup web-build
	bash scripts/bench.sh

## The PyTorch peers alone: makes target/peers-venv (torch, schedulefree from PyPI), times
## schedulefree.AdamWScheduleFree at the bench sizes, then the training steps and the matmul
## sweep (benches/peers/train_peer.py). Not part of `make test`.
bench-peers:
	bash benches/peers/run.sh
	bash benches/peers/run.sh train

## On a machine with a GPU: build, adapters, a reduced sweep, the peers (CUDA when present) and
## the GPU suite on the vendor's Vulkan driver, each step bounded, under 8 minutes; figures to
## GPU_CHECK_OUT (default target/gpu-check). GPU_CHECK_DRY=1 prints the plan only.
gpu-check:
	bash scripts/gpu-check.sh $(or $(GPU_CHECK_OUT),target/gpu-check)

.PHONY: evidence evidence-sf-plus evidence-plasticity update-functions evidence-bf16
## The studies below (finished runs are kept, so an interrupted one resumes).
evidence: evidence-sf-plus evidence-plasticity update-functions evidence-bf16

## ScheduleFree+ without a learning rate against tuned schedules (docs/evidence.md and its
## plots): the character model at 1,000 steps (whole grid, 2 seeds), 4,000 and 16,000 (sf_plus
## and WSD), digits + NaP, the continual stream, and the scale study of the paper's step.
## Runs land in target/evidence/. About 2.5 hours on lavapipe with 2 cores, two at a time (JOBS).
evidence-sf-plus: setup
	bash scripts/sf_plus_evidence.sh

## The plasticity study (docs/plasticity.md and its plots): the continual stream with every
## network and optimizer, --sf-window, the stationary digits, and the checkpoint-merging table
## (scripts/merge_study.sh). Runs land in target/plasticity/ (finished runs are kept; delete it
## to start over). About 1.8 hours of runs on lavapipe with 2 cores, two at a time (JOBS).
evidence-plasticity: setup
	bash scripts/plasticity.sh

## The update functions of every kind (docs/update-functions.md and its plots): digits runs
## frozen at 8 moments by `sfnap inspect update`. Runs land in target/update-functions/
## (finished runs are kept; delete it to start over). About 10 minutes on lavapipe with 2 cores.
update-functions: setup
	bash scripts/update_functions.sh

## Optimizer state in bf16 against f32 (docs/bf16-state.md and its plots): the character model
## (adamw_sf and sf_plus, 4,000 steps, 2 seeds), digits + NaP (5 seeds) and the continual stream
## with the window (2 seeds), each with f32 state, bf16 with stochastic rounding and bf16 rounded
## to nearest. Runs land in target/bf16-state/ (finished runs are kept; delete it to start over).
## About 70 minutes on lavapipe with 2 cores, two at a time (JOBS).
evidence-bf16: setup
	bash scripts/bf16_state.sh
