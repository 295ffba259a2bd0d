#!/usr/bin/env bash
# The one test command: installs what is missing, type-checks, runs every suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
npx --no-install tsc --noEmit -p .
node scripts/run-tests.mjs "$@"
