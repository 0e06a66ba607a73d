#!/usr/bin/env bash
# Installs numpy for the system's python3: tests/own_data.rs runs the README's
# numpy example on an exported model. Idempotent: does nothing when python3 on
# the PATH or /usr/bin/python3 already imports numpy.
set -euo pipefail

have() {
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import numpy' >/dev/null 2>&1; then
      return 0
    fi
  done
  return 1
}

if have; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq python3-numpy >/dev/null

if ! have; then
  echo "setup: error: no python3 imports numpy after installing python3-numpy" >&2
  exit 1
fi
echo "setup: numpy for python3"
