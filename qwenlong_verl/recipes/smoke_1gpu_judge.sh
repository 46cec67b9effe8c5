#!/usr/bin/env bash
# smoke_1gpu plus a 1.5B LLM judge at an OpenAI-compatible URL (start the judge server first, see the YAML).
# Extra arguments go to `qwenlong-verl train`.
set -euo pipefail
exec qwenlong-verl train smoke_1gpu_judge "$@"
