#!/usr/bin/env bash
# Installs what the `mpi` feature needs: OpenMPI (mpirun and the library) and
# libclang (the `mpi` crate generates its bindings with it at build time).
# Idempotent: does nothing when mpirun, mpi.h and libclang are already present.
set -euo pipefail

have() {
  command -v mpirun >/dev/null 2>&1 \
    && { [ -e /usr/include/x86_64-linux-gnu/openmpi/mpi.h ] || [ -e /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h ] \
         || command -v mpicc >/dev/null 2>&1; } \
    && ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1
}

if have; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq openmpi-bin libopenmpi-dev libclang-dev >/dev/null

if ! have; then
  echo "setup: error: OpenMPI or libclang missing after installing openmpi-bin libopenmpi-dev libclang-dev" >&2
  exit 1
fi
echo "setup: $(mpirun --version 2>/dev/null | head -n 1)"
