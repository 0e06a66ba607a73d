#!/usr/bin/env bash
# Installs what the web build needs, only what is missing (idempotent):
#   - the wasm32-unknown-unknown Rust target;
#   - wasm-bindgen-cli at exactly the `wasm-bindgen` version in Cargo.lock (the
#     CLI and the library must match; building it takes minutes, so an installed
#     CLI of the right version is kept);
#   - with --browser: Debian's chromium and chromium-driver, for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$HOME/.cargo/bin:$PATH"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "setup-web: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [ -z "$want" ]; then
  echo "setup-web: error: no wasm-bindgen in Cargo.lock (run cargo generate-lockfile)" >&2
  exit 1
fi
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have" != "$want" ]; then
  echo "setup-web: installing wasm-bindgen-cli $want (found: ${have:-none}); this takes several minutes, once"
  cargo install wasm-bindgen-cli --version "$want"
fi

if [ "${1:-}" = "--browser" ]; then
  if [ ! -x /usr/bin/chromium ] || ! command -v chromedriver >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    # Update the package lists first when apt does not know chromium yet.
    if ! apt-cache show chromium-driver >/dev/null 2>&1; then
      $SUDO apt-get update -qq
    fi
    echo "setup-web: installing Debian's chromium and chromium-driver"
    $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null \
      || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }
  fi
  command -v chromedriver >/dev/null || { echo "setup-web: error: chromedriver missing after install" >&2; exit 1; }
fi
