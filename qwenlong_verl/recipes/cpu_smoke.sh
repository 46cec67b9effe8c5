#!/usr/bin/env bash
# Real training on the CPU: tiny random Qwen2, two phases x 2 steps, the whole QwenLong recipe (docs/cpu.md).
# Extra arguments go to `qwenlong-verl train` (e.g. --output-dir DIR).
set -euo pipefail
exec qwenlong-verl train cpu_smoke "$@"
