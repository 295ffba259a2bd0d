#!/usr/bin/env bash
# The main command (`npm start`): installs what is missing, trains a tiny video DiT on the built-in
# moving shapes for a few minutes on the WebGPU adapter (a software one is enough), samples it,
# compares the samples with the data and prints where the GIF and the PNG grid are.
# Run again, it keeps the trained model (runs/start) and samples it again; delete the folder to
# train afresh. Checking every spec of the library is `npm run check-specs`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh

SPEC=specs/tiny-shapes.vdm
RUN=runs/start
SAMPLES="$RUN/samples"
# A high learning rate over a short cosine schedule; the EMA warms up (decay (1 + k) / (10 + k)),
# so after 4000 steps it averages about the last 450.
STEPS=4000
LR=2e-3

resume=()
if ls "$RUN"/step-*.safetensors >/dev/null 2>&1; then resume=(--resume); fi
echo "== training $SPEC on the built-in moving shapes: $STEPS steps into $RUN"
node bin/vdm.mjs train "$SPEC" --steps "$STEPS" --lr "$LR" --every 1000 --out "$RUN" "${resume[@]}"
echo
echo "== sampling 8 clips (the spec's sampler: DDIM, 50 steps)"
node bin/vdm.mjs sample "$RUN" --spec "$SPEC" --n 8 --seed 0 --out "$SAMPLES"
echo
echo "== comparing the samples with 8 clips of the data"
node bin/vdm.mjs eval "$RUN" --spec "$SPEC" --samples "$SAMPLES/samples.safetensors"
echo
echo "The samples, a row per clip and a column per frame: $SAMPLES/grid.png"
echo "The samples as an animation:                        $SAMPLES/samples.gif"
