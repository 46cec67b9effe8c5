#!/usr/bin/env bash
# Warm-up SFT (recipes/sft_warmup.yaml); extra arguments go to `qwenlong-verl train`.
# Multi-node: run this on the head node and the torchrun command of `qwenlong-verl plan recipes/sft_warmup.yaml`
# on the other nodes, all with PET_RDZV_ENDPOINT=<head-node>:29500 set and outputs/ on a shared filesystem.
set -euo pipefail
cd "$(dirname "$0")/.."
exec qwenlong-verl train recipes/sft_warmup.yaml "$@"
