#!/usr/bin/env bash
# Checks vdm on a Linux x86_64 machine with an NVIDIA GPU, with no Node.js and no network, from the
# bundle scripts/gpu-bundle.sh packs (.gpu-bundle/), in at most 8 minutes:
#   setup     Node from the bundle (unless the machine has Node >= 20), node_modules unpacked into
#             the checkout when it has none, the Vulkan loader and GL dispatch libraries unpacked
#             where the machine lacks them (LD_LIBRARY_PATH; as root also ldconfig), and
#             VK_DRIVER_FILES pointed at NVIDIA's Vulkan driver where it lives outside the loader's
#             search path (/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json)
#   doctor    vdm doctor: the adapter Dawn opens
#   forward   vdm run specs/dit-xl-2.vdm --dim b=B for each batch size (the first with --profile)
#   torch     the same DiT-XL/2 in PyTorch, fp32, TF32 off (bench/torch_dit.py; skipped, saying
#             why, without torch or CUDA)
#   gemm      bench/gemm-shapes.ts: GEMM alone at the target shapes, every tiling the tuner offers
#   gemm-pytorch  the same shapes in PyTorch, fp32, TF32 off (bench/torch_gemm.py)
#   tests     VDM_REQUIRE_GPU=1 node scripts/run-tests.mjs 'codegen|runtime'
#   bench     npm run bench, short (bench/run.ts and bench/train.ts with --target-ms, --rounds 1);
#             its results.md and train.md go to OUT/bench/, the checkout's own are left as they were
#   train     a few steps of vdm train on DiT-XL/2 at batch 1: the time per step
# then prints one markdown table (vdm ms, PyTorch ms, vdm/PyTorch speed) and writes it, with the
# date, the devices, the test summary and the commands, to bench/gpu.md: only when the adapter is
# a hardware one, unless --table names a file. Each stage logs to OUT/NN-stage.log; a failing
# stage does not stop the others; each is cut to the time left, and the whole stays within
# --budget seconds (480).
#
# Usage, from the checkout with the bundle in it (or from the bundle folder; without a checkout
# beside it the bundle's own copy of the tree is unpacked into a temporary folder):
#   bash .gpu-bundle/gpu-check.sh [--out DIR] [--table FILE] [--budget S] [--batches "1 8"]
#     [--repeat N] [--skip STAGE,...] [--root DIR] [--bundle DIR] [--unpack-libs]
#   --out DIR       logs and results (default: BUNDLE/out, emptied first)
#   --table FILE    where the table goes besides OUT/gpu.md (default: bench/gpu.md on a hardware adapter)
#   --repeat N      timed passes of vdm run (20); PyTorch: 5 warm-up passes, then N timed
#   --skip LIST     stages not to run: doctor, forward, torch, gemm (both GEMM stages), tests, bench, train
#   --unpack-libs   use the bundle's libraries even where the machine has its own
#   --spec F        the spec the forward stages run (specs/dit-xl-2.vdm: the one torch_dit.py is)
#   --train-spec F  the spec the train stage times (specs/dit-xl-2.vdm)
#   --python P      the Python with PyTorch (default: python3 on PATH)
set -uo pipefail # no -e: a failing stage must not stop the others

started=$(date +%s)
self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
here="$(dirname "$self")"

bundle="" root="" out="" table="" python="" budget=480 batches="1 8" repeat=20 skip="" unpack_libs=0
spec="specs/dit-xl-2.vdm" train_spec="specs/dit-xl-2.vdm" train_steps=6
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --table) table="$2"; shift 2 ;;
    --budget) budget="$2"; shift 2 ;;
    --batches) batches="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --skip) skip=",$2,"; shift 2 ;;
    --root) root="$2"; shift 2 ;;
    --bundle) bundle="$2"; shift 2 ;;
    --unpack-libs) unpack_libs=1; shift ;;
    --spec) spec="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --train-spec) train_spec="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$self" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check: unknown argument $1 (--help lists them)" >&2; exit 2 ;;
  esac
done
deadline=$((started + budget))
RESERVE=15   # seconds kept for the table at the end
MIN_STAGE=20 # a stage with less time than this left is not started

say() { echo "gpu-check [$(( $(date +%s) - started ))s]: $*" >&2; }
has() { [ -e "$1" ]; }
is_checkout() { [ -f "$1/package.json" ] && [ -f "$1/scripts/run-tests.mjs" ] && [ -d "$1/src" ]; }

# The bundle: this script's folder when node.xz is beside it, else the checkout's .gpu-bundle/.
if [ -z "$bundle" ]; then
  if has "$here/node.xz"; then bundle="$here"; else bundle="$(dirname "$here")/.gpu-bundle"; fi
fi
bundle="$(cd "$bundle" 2>/dev/null && pwd)" || { echo "gpu-check: no bundle folder (run scripts/gpu-bundle.sh)" >&2; exit 2; }
out="${out:-$bundle/out}"
if [ -n "$(ls -A "$out" 2>/dev/null)" ] && [ ! -f "$out/00-setup.log" ]; then
  echo "gpu-check: $out holds files that are not an earlier check's: not emptying it (--out DIR)" >&2; exit 2
fi
rm -rf "$out" && mkdir -p "$out" && out="$(cd "$out" && pwd)" || { echo "gpu-check: cannot write $out" >&2; exit 2; }
cache="${TMPDIR:-/tmp}/vdm-gpu-check-$(id -u)"
mkdir -p "$cache"
setup_log="$out/00-setup.log"
: > "$setup_log"
log_setup() { echo "$*" >> "$setup_log"; }

# ---------------------------------------------------------------------------------------------
# Stage bookkeeping and the time guard
stages=()      # name, status, seconds, log, command; separated by US (\x1f)
US=$'\x1f'
current=""     # pid of the running stage's `timeout`
current_stage=() # its name, log, command, start
setup_status="not finished" setup_secs=0 node_bin=""
stage_no=0
finished=0

record() { stages+=("$1$US$2$US$3$US$4$US$5"); say "$1: $2 ($3 s)"; }
# shown ARGS...: the command as one line a shell would take back (arguments quoted where needed)
shown() {
  local a words=()
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./=:,+@%-]+$ ]]; then words+=("$a"); else words+=("'${a//\'/\'\\\'\'}'"); fi
  done
  echo "${words[*]}"
}
skipped() { [[ "$skip" == *",$1,"* ]]; }

# run_stage NAME CAP_SECONDS COMMAND...: runs COMMAND in the checkout under `timeout`, cut to the
# time left, logging to OUT/NN-NAME.log.
run_stage() {
  local name="$1" cap="$2"; shift 2
  stage_no=$((stage_no + 1))
  local log; log="$(printf '%02d' "$stage_no")-$name.log"
  local group="${name%%-*}"
  local cmd; cmd="$(shown "$@")"
  if skipped "$group"; then record "$name" "skipped (--skip)" 0 "" "$cmd"; return 0; fi
  local left=$((deadline - $(date +%s) - RESERVE - 10)) # 10: timeout's grace before KILL
  if [ "$left" -lt "$MIN_STAGE" ]; then record "$name" "not run: out of time" 0 "" "$cmd"; return 0; fi
  [ "$cap" -gt "$left" ] && cap="$left"
  say "$name (at most ${cap}s): $cmd"
  printf '$ %s\n' "$cmd" > "$out/$log"
  local t0; t0=$(date +%s)
  ( cd "$root" && exec timeout -k 10 "$cap" "$@" ) >> "$out/$log" 2>&1 < /dev/null &
  current=$! current_stage=("$name" "$log" "$cmd" "$t0")
  wait "$current"
  local rc=$?
  current=""
  local dt=$(( $(date +%s) - t0 ))
  local status
  case "$rc" in
    0) status="ok" ;;
    124|137) status="timed out after ${cap}s" ;;
    *) status="failed (exit $rc)" ;;
  esac
  echo "[gpu-check: $status in ${dt}s]" >> "$out/$log"
  record "$name" "$status" "$dt" "$log" "$cmd"
  return 0
}

# The bench reports the bench stage wrote go to OUT/bench/; the checkout's own are put back.
BENCH_REPORTS="results.md results.json train.md train.json"
restore_bench() {
  local keep="$out/.bench-keep" f
  [ -d "$keep" ] || return 0
  for f in $BENCH_REPORTS; do
    if [ -f "$root/bench/$f" ] && ! cmp -s "$root/bench/$f" "$keep/$f" 2>/dev/null; then cp "$root/bench/$f" "$out/bench/$f"; fi
    if [ -f "$keep/$f" ]; then cp -p "$keep/$f" "$root/bench/$f"; else rm -f "$root/bench/$f"; fi
  done
  rm -rf "$keep"
}

on_term() {
  trap - TERM INT
  if [ -n "$current" ]; then
    say "time guard: stopping the running stage"
    kill -TERM -- "-$current" 2>/dev/null # `timeout` leads its own process group
    sleep 2
    kill -KILL -- "-$current" 2>/dev/null
    wait "$current" 2>/dev/null
    current=""
    local name="${current_stage[0]}" log="${current_stage[1]}" dt=$(( $(date +%s) - current_stage[3] ))
    echo "[gpu-check: stopped by the time guard after ${dt}s]" >> "$out/$log"
    record "$name" "stopped by the time guard" "$dt" "$log" "${current_stage[2]}"
  fi
  restore_bench
  write_table
  exit 124
}
trap on_term TERM INT
# The guard: TERM to this script 5 s before the deadline, whatever is running then.
(
  exec > /dev/null 2>&1
  sleep $((budget > 10 ? budget - 5 : budget)) & nap=$!
  trap 'kill "$nap"; exit 0' TERM
  wait "$nap" && kill -TERM $$
) &
guard=$!
trap 'kill "$guard" 2>/dev/null' EXIT

# ---------------------------------------------------------------------------------------------
# Setup

# unxz SRC DEST: xz, or Python's lzma where xz is missing.
unxz_to() {
  if command -v xz >/dev/null; then timeout 120 xz -dc "$1" > "$2"
  else timeout 120 python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}
# untar_xz ARCHIVE DIR
untar_xz() {
  if command -v xz >/dev/null; then timeout 180 tar -xJf "$1" -C "$2"
  else timeout 180 python3 -c '
import sys, tarfile
t = tarfile.open(sys.argv[1])
t.extractall(sys.argv[2], **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))' "$1" "$2"; fi
}
# deb_x DEB DIR: dpkg -x, or the .deb read as an ar archive in Python.
deb_x() {
  if command -v dpkg >/dev/null; then dpkg -x "$1" "$2"
  else python3 -c '
import io, sys, tarfile
f = open(sys.argv[1], "rb")
assert f.read(8) == b"!<arch>\n", "not a .deb"
while True:
    h = f.read(60)
    if len(h) < 60: break
    name, size = h[:16].decode().strip().rstrip("/"), int(h[48:58])
    data = f.read(size); f.read(size % 2)
    if name.startswith("data.tar"):
        tarfile.open(fileobj=io.BytesIO(data)).extractall(sys.argv[2], **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))' "$1" "$2"; fi
}
node_ok() { [[ "$("$1" --version 2>/dev/null)" =~ ^v([0-9]+)\. ]] && [ "${BASH_REMATCH[1]}" -ge 20 ]; }
ldconfig_bin="$(command -v ldconfig || echo /sbin/ldconfig)"
have_lib() { "$ldconfig_bin" -p 2>/dev/null | grep -q "^[[:space:]]*$1 "; }

setup() {
  # The checkout
  if [ -n "$root" ]; then root="$(cd "$root" && pwd)"
  elif is_checkout "$(dirname "$bundle")"; then root="$(dirname "$bundle")"
  elif is_checkout "$PWD"; then root="$PWD"
  elif is_checkout "$(dirname "$here")"; then root="$(dirname "$here")"
  elif has "$bundle/tree.tar.xz"; then
    rm -rf "$cache/tree" && mkdir -p "$cache/tree" && untar_xz "$bundle/tree.tar.xz" "$cache/tree" && root="$cache/tree"
    log_setup "no checkout beside the bundle: unpacked the bundle's copy of the tree into $root"
  fi
  is_checkout "${root:-/nonexistent}" || { say "no vdm checkout found (--root DIR)"; return 1; }
  log_setup "checkout: $root"

  # Node
  if command -v node >/dev/null && node_ok "$(command -v node)"; then
    node_bin="$(command -v node)"
    log_setup "node: this machine's $(node --version) ($node_bin)"
  elif has "$bundle/node.xz"; then
    node_bin="$cache/node/bin/node"
    local key; key="$(cksum < "$bundle/node.xz")"
    if [ "$(cat "$cache/node/key" 2>/dev/null)" != "$key" ] || ! node_ok "$node_bin"; then
      mkdir -p "$cache/node/bin"
      unxz_to "$bundle/node.xz" "$node_bin.part" && chmod +x "$node_bin.part" && mv "$node_bin.part" "$node_bin" \
        && echo "$key" > "$cache/node/key"
    fi
    node_ok "$node_bin" || { say "the bundle's Node does not run here"; return 1; }
    export PATH="$cache/node/bin:$PATH"
    log_setup "node: the bundle's $(node --version) ($node_bin)"
  else
    say "no Node.js here and no node.xz in $bundle"; return 1
  fi

  # node_modules
  if [ -f "$root/node_modules/webgpu/dist/linux-x64/dawn.node" ] && [ -d "$root/node_modules/tsx" ]; then
    log_setup "node_modules: the checkout's own"
  elif has "$bundle/node_modules.tar.xz"; then
    untar_xz "$bundle/node_modules.tar.xz" "$root" || { say "could not unpack node_modules"; return 1; }
    log_setup "node_modules: unpacked from the bundle"
  else
    say "no node_modules in $root and none in the bundle"; return 1
  fi

  # The Vulkan loader and the GL dispatch libraries NVIDIA's driver loads
  local libroot="$cache/libs" unpacked=() missing_system=0 deb pkg soname
  local -A sonames=([libvulkan1]=libvulkan.so.1 [libglvnd0]=libGLdispatch.so.0 [libegl1]=libEGL.so.1 [libgl1]=libGL.so.1
    [libglx0]=libGLX.so.0 [libgles2]=libGLESv2.so.2 [libopengl0]=libOpenGL.so.0)
  for deb in "$bundle"/debs/*.deb; do
    [ -e "$deb" ] || continue
    pkg="$(basename "$deb")"; pkg="${pkg%%_*}"
    soname="${sonames[$pkg]:-}"
    if [ "$unpack_libs" = 1 ] || { [ -n "$soname" ] && ! have_lib "$soname"; }; then
      [ "$unpack_libs" = 1 ] || missing_system=1
      mkdir -p "$libroot" && deb_x "$deb" "$libroot" && unpacked+=("$pkg")
    fi
  done
  if [ "${#unpacked[@]}" -gt 0 ]; then
    local libdir="$libroot/usr/lib/x86_64-linux-gnu"
    export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    log_setup "libraries unpacked into $libdir (LD_LIBRARY_PATH): ${unpacked[*]}"
    if [ "$missing_system" = 1 ] && [ "$(id -u)" = 0 ] && [ -d /etc/ld.so.conf.d ]; then
      echo "$libdir" > /etc/ld.so.conf.d/zz-vdm-gpu-check.conf && "$ldconfig_bin" && log_setup "  and registered with ldconfig"
    fi
  else
    log_setup "libraries: the machine has them all"
  fi

  # NVIDIA's Vulkan driver manifest
  if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
    local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if [ -f "$icd" ]; then
      export VK_DRIVER_FILES="$icd"
    elif ! ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1 \
      && have_lib libGLX_nvidia.so.0; then
      # the driver's libraries are mounted but not its manifest: write one
      printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "libGLX_nvidia.so.0", "api_version": "1.3"}}\n' > "$cache/nvidia_icd.json"
      export VK_DRIVER_FILES="$cache/nvidia_icd.json"
    fi
  fi
  log_setup "VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-}"
  if command -v nvidia-smi >/dev/null; then
    log_setup "nvidia-smi: $(timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | paste -sd ';')"
  else
    log_setup "nvidia-smi: not found"
  fi
  return 0
}

# ---------------------------------------------------------------------------------------------
# The table

ms_cell() { if [ -n "$1" ]; then echo "$1 ms"; else echo "—"; fi; }
# num FILE PATTERN: the number just before the unit that ends PATTERN's last match (" ms", " steps/s")
num() { grep -o "$2" "$1" 2>/dev/null | tail -1 | grep -o '[0-9][0-9.]* [a-z/]*$' | cut -d' ' -f1; }
write_table() {
  [ "$finished" = 1 ] && return 0
  finished=1
  local md="$out/gpu.md" adapter software gpu torch_dev now
  now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  adapter="$(sed -n 's/^  adapter  *//p' "$out"/*-doctor.log 2>/dev/null | head -1)"
  software="$(grep -c 'kind  *software' "$out"/*-doctor.log 2>/dev/null | head -1)"
  gpu="$(sed -n 's/^nvidia-smi: //p' "$setup_log" | head -1)"
  torch_dev="$(sed -n 's/^torch_dit: DiT-XL\/2 ([^)]*) on \(.*\), fp32.*/\1/p' "$out"/*-torch.log 2>/dev/null | head -1)"
  local torch_skip torch_note; torch_skip="$(sed -n 's/^torch_dit: skipped: //p' "$out"/*-torch.log 2>/dev/null | head -1)"
  torch_note="${torch_dev:-not run}"; [ -n "$torch_skip" ] && torch_note="skipped: $torch_skip"
  {
    echo "# vdm on a GPU"
    echo
    echo "$now · GPU: ${gpu:-none reported} · WebGPU adapter: ${adapter:-none} · PyTorch: $torch_note · Node $(node --version 2>/dev/null || echo '?') · checkout $(cd "${root:-/nonexistent}" 2>/dev/null && git rev-parse --short HEAD 2>/dev/null || sed -n 's/^checkout: *\([0-9a-f]\{10\}\).*/\1/p' "$bundle/manifest.txt" 2>/dev/null)"
    echo
    echo "| | vdm | PyTorch fp32 eager | vdm / PyTorch |"
    echo "|---|---:|---:|---:|"
    local b v p speed f model
    model="$(basename "$spec" .vdm)"; [ "$model" = dit-xl-2 ] && model="DiT-XL/2"
    for b in $batches; do
      f="$(ls "$out"/*-forward-b"$b".log 2>/dev/null | head -1)"
      v="$( [ -n "$f" ] && num "$f" 'forward pass: [0-9.]* ms')"
      p="" # bench/torch_dit.py is DiT-XL/2 only
      [ "$model" = DiT-XL/2 ] && p="$(num "$(ls "$out"/*-torch.log 2>/dev/null | head -1)" "^torch_dit: batch $b: [0-9.]* ms")"
      speed="—"
      [ -n "$v" ] && [ -n "$p" ] && speed="$(awk -v v="$v" -v p="$p" 'BEGIN { printf "%.2fx", p / v }')"
      echo "| $model forward, batch $b | $(ms_cell "$v") | $(ms_cell "$p") | $speed |"
    done
    f="$(ls "$out"/*-train.log 2>/dev/null | head -1)"
    local rate tmodel; tmodel="$(basename "$train_spec" .vdm)"; [ "$tmodel" = dit-xl-2 ] && tmodel="DiT-XL/2"
    local step; step="$( [ -n "$f" ] && num "$f" '^gpu-check: training step [0-9.]* ms')"
    rate="$( [ -n "$f" ] && num "$f" 'then [0-9.]* steps/s')"
    [ -z "$step" ] && [ -n "$rate" ] && step="$(awk -v r="$rate" 'BEGIN { printf "%.0f", 1000 / r }')"
    [ -n "$step" ] && echo "| $tmodel training step, batch 1 | $step ms | — | — |"
    local g shape dflt tuned tg glog tlog
    glog="$(ls "$out"/*-gemm.log 2>/dev/null | head -1)"; tlog="$(ls "$out"/*-gemm-pytorch.log 2>/dev/null | head -1)"
    if [ -n "$glog" ] && grep -q '^gemm-shapes: [0-9x]*: default' "$glog"; then
      echo
      echo "| GEMM M x K x N, fp32 | vdm default tiling | vdm tuned | PyTorch | tuned / PyTorch |"
      echo "|---|---:|---:|---:|---:|"
      while IFS= read -r g; do
        shape="$(echo "$g" | sed -n 's/^gemm-shapes: \([0-9x]*\): .*/\1/p')"
        dflt="$(echo "$g" | sed -n 's/.*default \([0-9.]*\) TFLOP.*/\1/p')"
        tuned="$(echo "$g" | sed -n 's/.*tuned \([0-9.]*\) TFLOP\/s (\(.*\))$/\1 TFLOP\/s (\2)/p')"
        tg="$( [ -n "$tlog" ] && sed -n "s/^torch_gemm: $shape: .* ms, \([0-9.]*\) TFLOP\/s/\1/p" "$tlog" | head -1)"
        speed="—"; [ -n "$tg" ] && speed="$(awk -v v="${tuned%% *}" -v p="$tg" 'BEGIN { printf "%.2fx", v / p }')"
        echo "| $shape | $dflt TFLOP/s | $tuned | ${tg:-—}${tg:+ TFLOP/s} | $speed |"
      done < <(grep '^gemm-shapes: [0-9x]*: default' "$glog")
    fi
    echo
    echo "vdm / PyTorch = PyTorch time / vdm time (above 1: vdm is faster). vdm: \`vdm run\`, the mean of $repeat passes after a first one (compilation); the training step: the mean time of \`vdm train\`'s steps after the first (compilation) and before the last (a checkpoint). PyTorch: bench/torch_dit.py, eager, fp32 with TF32 off, the median of $repeat passes timed with CUDA events after 5 warm-up passes. Both with random weights."
    [ "${software:-0}" != 0 ] && echo "" && echo "**The adapter is a software one: these are not GPU numbers.**"
    echo
    local tests; tests="$(grep -E '^(tests: )?[0-9]+ passed, [0-9]+ failed' "$out"/*-tests.log 2>/dev/null | tail -1)"
    # no summary (cut short): what the test processes that finished reported
    [ -z "$tests" ] && tests="$(awk '/^  Total:/ { t += $2; n++ } /^  Passed:/ { p += $2 } END { if (n) printf "no summary line; the test processes that finished ran %d tests, %d passed", t, p }' "$out"/*-tests.log 2>/dev/null)"
    echo "Kernel and runtime tests (\`VDM_REQUIRE_GPU=1 node scripts/run-tests.mjs 'codegen|runtime'\`): ${tests:-no summary (see the stage below)}."
    local failures; failures="$(grep -E '^\s*(✘|FAIL)' "$out"/*-tests.log 2>/dev/null | head -8)"
    [ -n "$failures" ] && { echo; echo '```'; echo "$failures"; echo '```'; }
    echo
    echo "| stage | status | seconds | command |"
    echo "|---|---|---:|---|"
    local s name status secs log cmd
    echo "| setup | $setup_status | $setup_secs | node, node_modules, libraries, VK_DRIVER_FILES |"
    for s in "${stages[@]}"; do
      IFS="$US" read -r name status secs log cmd <<< "$s"
      echo "| $name | $status | $secs | \`${cmd//|/\\|}\` |"
    done
    echo
    echo "Total $(( $(date +%s) - started )) s. Logs: one per stage in the check's output folder; \`npm run bench\`'s own reports (kernels and training steps against TensorFlow.js on the same adapter) are bench/results.md and bench/train.md there."
    f="$(ls "$out"/*-forward-b"${batches%% *}".log 2>/dev/null | head -1)"
    if [ -n "$f" ] && grep -q '^kernel family' "$f"; then
      echo
      echo "GPU time per kernel family, $model forward at batch ${batches%% *} (\`--profile\`):"
      echo
      echo '```'
      sed -n '/^kernel family/,/^output /p' "$f" | sed '$d'
      echo '```'
    fi
  } > "$md"
  cat "$md"
  if [ -n "$table" ]; then
    mkdir -p "$(dirname "$table")" && cp "$md" "$table" && say "wrote $table"
  elif [ -n "$adapter" ] && [ "${software:-0}" = 0 ] && [ -d "$root/bench" ]; then
    cp "$md" "$root/bench/gpu.md" && say "wrote $root/bench/gpu.md"
  else
    say "no hardware adapter: the table is only in $md (--table FILE writes it elsewhere)"
  fi
}

# ---------------------------------------------------------------------------------------------
# Run

say "bundle $bundle, output $out, budget ${budget}s"
t0=$(date +%s)
if setup >> "$setup_log" 2>&1; then setup_status=ok; else setup_status="failed"; fi
setup_secs=$(( $(date +%s) - t0 ))
say "setup: $setup_status ($setup_secs s); $(grep -E '^(checkout|node|node_modules|libraries|VK_DRIVER|nvidia)' "$setup_log" | paste -sd ';' | cut -c1-400)"

if [ "$setup_status" = ok ]; then
  vdm=(node bin/vdm.mjs)
  run_stage doctor 60 "${vdm[@]}" doctor
  first=1
  for b in $batches; do
    if [ "$first" = 1 ]; then profile=(--profile); else profile=(); fi
    run_stage "forward-b$b" 120 "${vdm[@]}" run "$spec" --dim "b=$b" --repeat "$repeat" "${profile[@]}"
    first=0
  done
  py="${python:-$(command -v python3 || command -v python || echo python3)}"
  torch_script="bench/torch_dit.py"
  [ -f "$root/$torch_script" ] || torch_script="$bundle/torch_dit.py"
  # shellcheck disable=SC2086
  run_stage torch 150 "$py" "$torch_script" --batch $batches --warmup 5 --iters "$repeat" --json "$out/torch.json"
  run_stage gemm 120 node --import tsx bench/gemm-shapes.ts --json "$out/gemm.json"
  torch_gemm="bench/torch_gemm.py"
  [ -f "$root/$torch_gemm" ] || torch_gemm="$bundle/torch_gemm.py"
  run_stage gemm-pytorch 60 "$py" "$torch_gemm" --iters "$repeat" --json "$out/torch-gemm.json"
  run_stage tests 200 env VDM_REQUIRE_GPU=1 node scripts/run-tests.mjs 'codegen|runtime'
  # npm run bench, short; the checkout's reports are put back afterwards
  keep="$out/.bench-keep"; mkdir -p "$keep" "$out/bench"
  for f in $BENCH_REPORTS; do [ -f "$root/bench/$f" ] && cp -p "$root/bench/$f" "$keep/$f"; done
  run_stage bench 150 bash -c 'node --import tsx bench/run.ts "$@"; a=$?; node --import tsx bench/train.ts "$@"; b=$?; exit $((a > b ? a : b))' \
    bench --target-ms=250 --rounds=1
  restore_bench
  train_dir="$(mktemp -d "${TMPDIR:-/tmp}/vdm-gpu-train.XXXXXX")"
  run_stage train 180 "${vdm[@]}" train "$train_spec" --steps "$train_steps" --batch 1 --out "$train_dir" \
    --every 1000000 --log-every 1 --no-ema
  # train.jsonl's seconds count from the start: the steps between the first and the last
  train_log="$(ls "$out"/*-train.log 2>/dev/null | head -1)"
  if [ -f "$train_dir/train.jsonl" ] && [ -n "$train_log" ]; then
    sed -n 's/.*"step":\([0-9]*\).*"seconds":\([0-9.eE+-]*\).*/\1 \2/p' "$train_dir/train.jsonl" \
      | awk '{ s[NR] = $2; n = NR } END { if (n >= 3) printf "gpu-check: training step %.1f ms (mean of steps 2-%d)\n", 1000 * (s[n - 1] - s[1]) / (n - 2), n - 1 }' \
      | tee -a "$train_log" >&2
  fi
  rm -rf "$train_dir"
else
  say "setup failed: see $setup_log"
fi

write_table
say "done in $(( $(date +%s) - started )) s; logs in $out"
