#!/usr/bin/env bash
# Installs the project's npm dependencies when they are missing or older than the lockfile,
# then makes sure a WebGPU adapter exists (installing the software one where possible) and a
# Python with torch for the PyTorch parity tests (Debian's python3-torch, where possible).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-gpu.sh # its functions only
if ! command -v node >/dev/null || ! node_version_ok "$(node --version)"; then
  echo "vdm needs Node.js >= $MIN_NODE; this machine has $(node --version 2>/dev/null || echo none) (Debian bookworm's own is 18)." >&2
  echo "  Install a newer one from https://nodejs.org, NodeSource or nvm, then run this again." >&2
  exit 1
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
bash scripts/install-gpu.sh || echo "warning: no WebGPU adapter; the GPU tests will be skipped (VDM_REQUIRE_GPU=1 makes that a failure)" >&2
# A Python with torch for the PyTorch parity tests and .pt files (Debian's python3-torch as root);
# without one those tests are skipped, so this never fails the set-up.
bash scripts/install-torch.sh || true
