#!/usr/bin/env bash
# QwenLong-L1.5 pipeline: full-context RL 20K -> 60K -> 120K, Memory-RL 128K/32K/15K, SCE merge, stage 4.
# Run on the Ray head node; extra arguments go to `qwenlong-verl train`.
set -euo pipefail
exec qwenlong-verl train qwenlong_l15_full "$@"
