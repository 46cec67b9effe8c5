#!/usr/bin/env bash
# QwenLong-L1 paper setting with the 1.5B judge served by veRL's reward-model pool
# Run on the Ray head node; extra arguments go to `qwenlong-verl train`.
set -euo pipefail
exec qwenlong-verl train qwenlong_l1_32b_judge_pool "$@"
