#!/usr/bin/env bash
# QwenLong-L1.5 setting: 3 phases 20K/12K -> 60K/20K -> 120K/50K, task balance, task-norm advantage, AEPO.
# Run on the Ray head node; extra arguments go to `qwenlong-verl train`.
set -euo pipefail
exec qwenlong-verl train qwenlong_l15_aepo "$@"
