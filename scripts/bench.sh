#!/usr/bin/env bash
# `npm run bench`: vdm kernels against TensorFlow.js's WebGPU backend on this machine's adapter.
# Not part of the tests. Arguments pass through (e.g. --only=attention --target-ms=1000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh >&2
exec node --import tsx bench/run.ts "$@"
