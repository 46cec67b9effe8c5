#!/usr/bin/env bash
# Real training on the CPU: tiny random Qwen2, memory-agent RL, one phase x 2 steps (docs/memory.md).
# Extra arguments go to `qwenlong-verl train` (e.g. --output-dir DIR).
set -euo pipefail
exec qwenlong-verl train cpu_memory "$@"
