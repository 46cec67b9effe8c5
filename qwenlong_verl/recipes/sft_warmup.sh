#!/usr/bin/env bash
# Warm-up SFT (the shipped recipe sft_warmup); extra arguments go to `qwenlong-verl train`.
# Multi-node: run this on the head node and the torchrun command of `qwenlong-verl plan sft_warmup`
# on the other nodes, all with PET_RDZV_ENDPOINT=<head-node>:29500 set and outputs/ on a shared filesystem.
set -euo pipefail
exec qwenlong-verl train sft_warmup "$@"
