#!/usr/bin/env bash
# The first run to try: a 0.5B model on one GPU, 4K -> 8K input, a few steps per phase.
# Extra arguments go to `qwenlong-verl train`.
set -euo pipefail
exec qwenlong-verl train smoke_1gpu "$@"
