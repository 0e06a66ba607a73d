#!/usr/bin/env bash
# The peer numbers for BENCHMARKS.md: the official schedulefree.AdamWScheduleFree
# (foreach=True) step in PyTorch, at the sizes `sfnap bench` is run at (peers.py);
# with `train` first, whole training steps of sfnap's gpt and mlp and a matmul
# sweep (train_peer.py, the peer of `sfnap bench --train`).
#
#   bash benches/peers/run.sh [--out FILE] [--device cpu|cuda|auto] [--sizes PARAMS:TENSORS,...] [--steps N]
#   bash benches/peers/run.sh train [--out FILE] [--device cpu|cuda|auto] [--models gpt,mlp] [--matmul N,N,...]
#
# Creates its own virtual environment (target/peers-venv, or $PEERS_VENV) and
# installs torch and schedulefree there from PyPI; nothing is installed elsewhere.
# Writes one JSON object per line (the `sfnap bench --json` fields that apply).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${PEERS_VENV:-$root/target/peers-venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "peers: creating $venv" >&2
    "$python" -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import torch, schedulefree' 2>/dev/null; then
    echo "peers: installing torch and schedulefree from PyPI into $venv (the Linux torch wheel brings CUDA libraries: a few GB)" >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
fi
script=peers.py
if [ "${1:-}" = train ]; then
    shift
    script=train_peer.py
fi
exec "$venv/bin/python" "$here/$script" "$@"
