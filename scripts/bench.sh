#!/usr/bin/env bash
# `npm run bench`: vdm kernels against TensorFlow.js's WebGPU backend on this machine's adapter, then
# whole training steps (bench/train.ts; about 4 more minutes on two cores). Not part of the tests.
# Arguments pass through to both (e.g. --only=attention --target-ms=1000); --only picks cases of
# each by name, and one with no matching case writes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh >&2
node --import tsx bench/run.ts "$@"
exec node --import tsx bench/train.ts "$@"
