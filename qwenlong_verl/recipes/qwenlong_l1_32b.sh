#!/usr/bin/env bash
# QwenLong-L1 paper setting, R1-Distill-Qwen-32B, 4x8 GPUs, 20K -> 60K input, 10K output
# Run on the Ray head node; extra arguments go to `qwenlong-verl train`.
set -euo pipefail
exec qwenlong-verl train qwenlong_l1_32b "$@"
