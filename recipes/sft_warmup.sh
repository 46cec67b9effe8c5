#!/usr/bin/env bash
# Warm-up SFT (recipes/sft_warmup.yaml). Multi-node: run this on every node with
# PET_RDZV_ENDPOINT=<head-node>:29500 set; extra arguments go to `qwenlong-verl train`.
set -euo pipefail
cd "$(dirname "$0")/.."
exec qwenlong-verl train recipes/sft_warmup.yaml "$@"
