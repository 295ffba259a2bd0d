#!/usr/bin/env bash
# Installs the project's npm dependencies when they are missing or older than the lockfile,
# then makes sure a WebGPU adapter exists (installing the software one where possible).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
bash scripts/install-gpu.sh || echo "warning: no WebGPU adapter; GPU tests will report it" >&2
