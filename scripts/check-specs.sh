#!/usr/bin/env bash
# `npm run check-specs`: installs what is missing, then checks every spec in the library and prints
# a one-line report per spec (parameters, MACs, activation memory).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
node bin/vdm.mjs check specs/*.vdm
node scripts/spec-summary.mjs specs/*.vdm
