#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a Linux x86_64 GPU machine that has no Node.js and no
# network into one folder (default .gpu-bundle/, git-ignored; at most ~60 MB):
#   node.xz               this machine's Node binary (Node >= 20, linux-x64), xz-compressed
#   node_modules.tar.xz   the checkout's node_modules without the typescript package and without
#                         the other platforms' dawn.node prebuilds
#   debs/*.deb            Debian's Vulkan loader and GL dispatch libraries (libvulkan1, libglvnd0,
#                         libegl1, libgl1, libglx0, libgles2, libopengl0) that NVIDIA's Vulkan
#                         driver loads; gpu-check.sh unpacks only those the machine lacks
#   tree.tar.xz           the checkout's files (tracked and untracked, not ignored): used only when
#                         gpu-check.sh runs where no checkout is beside the bundle
#   gpu-check.sh, torch_dit.py, torch_gemm.py, manifest.txt
# Then, on the GPU machine, from the checkout with the bundle copied into it:
#   bash .gpu-bundle/gpu-check.sh            (see its header for the flags)
# Usage: bash scripts/gpu-bundle.sh [--out DIR] [--node PATH] [--max-mb N]
# Parts whose inputs have not changed (the Node binary, package-lock.json, the .deb list) are kept
# from the last run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

out=".gpu-bundle"
node_bin="$(command -v node || true)"
max_mb=60
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --node) node_bin="$2"; shift 2 ;;
    --max-mb) max_mb="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-bundle: unknown argument $1 (--help lists them)" >&2; exit 2 ;;
  esac
done

DEBS=(libvulkan1 libglvnd0 libegl1 libgl1 libglx0 libgles2 libopengl0)
say() { echo "gpu-bundle: $*" >&2; }
die() { say "$*"; exit 1; }

[ -n "$node_bin" ] && [ -x "$node_bin" ] || die "no Node binary (install Node >= 20, or give --node PATH)"
node_bin="$(readlink -f "$node_bin")"
platform="$("$node_bin" -p 'process.platform + "-" + process.arch')"
node_version="$("$node_bin" --version)"
[ "$platform" = linux-x64 ] || die "the GPU machine is linux-x64; this Node is $platform"
[[ "$node_version" =~ ^v([0-9]+)\. ]] && [ "${BASH_REMATCH[1]}" -ge 20 ] || die "Node $node_version is older than 20"
[ -f node_modules/webgpu/dist/linux-x64/dawn.node ] || die "node_modules lacks webgpu's linux-x64 dawn.node: run npm ci first"
command -v xz >/dev/null || die "xz is needed (apt-get install xz-utils)"

mkdir -p "$out/debs"
out="$(cd "$out" && pwd)"
stamp() { sha256sum | cut -c1-16; }
threads="-T$(nproc 2>/dev/null || echo 1)"

# 1. Node: the binary alone (the check runs node directly, not npm), recompressed only when it changed.
node_key="$(sha256sum < "$node_bin" | cut -c1-16) $node_version"
if [ "$(cat "$out/.node.key" 2>/dev/null)" != "$node_key" ] || [ ! -s "$out/node.xz" ]; then
  say "compressing $node_bin ($node_version, $(du -m "$node_bin" | cut -f1) MB)"
  xz -9 "$threads" -c "$node_bin" > "$out/node.xz.part" && mv "$out/node.xz.part" "$out/node.xz"
  echo "$node_key" > "$out/.node.key"
else
  say "node.xz is up to date ($node_version)"
fi

# 2. node_modules, keyed on the lockfile and the installed tree's own lock.
excludes=(
  --exclude=node_modules/typescript
  --exclude=node_modules/.bin/tsc --exclude=node_modules/.bin/tsserver
  --exclude=node_modules/webgpu/dist/darwin-universal
  --exclude=node_modules/webgpu/dist/linux-arm64
  --exclude=node_modules/webgpu/dist/win32-arm64
  --exclude=node_modules/webgpu/dist/win32-x64
  --exclude=node_modules/.cache
)
modules_key="$(cat package-lock.json node_modules/.package-lock.json 2>/dev/null | stamp)"
if [ "$(cat "$out/.modules.key" 2>/dev/null)" != "$modules_key" ] || [ ! -s "$out/node_modules.tar.xz" ]; then
  say "packing node_modules ($(du -sm node_modules | cut -f1) MB before the exclusions)"
  tar -cf - "${excludes[@]}" node_modules | xz -9 "$threads" > "$out/node_modules.tar.xz.part"
  mv "$out/node_modules.tar.xz.part" "$out/node_modules.tar.xz"
  echo "$modules_key" > "$out/.modules.key"
else
  say "node_modules.tar.xz is up to date"
fi

# 3. The libraries NVIDIA's Vulkan driver needs, as Debian packages (amd64).
missing=()
for p in "${DEBS[@]}"; do ls "$out/debs/${p}_"*_amd64.deb >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null; then
    say "downloading ${missing[*]}"
    if ! (cd "$out/debs" && apt-get download -q "${missing[@]/%/:amd64}" >/dev/null 2>&1); then
      say "apt-get download failed: running apt-get update once (as root) and trying again"
      [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 || true
      (cd "$out/debs" && apt-get download -q "${missing[@]/%/:amd64}" >/dev/null) \
        || say "warning: could not download ${missing[*]}; the GPU machine must have them installed"
    fi
  else
    say "warning: no apt-get here: the bundle carries no Vulkan loader; the GPU machine must have libvulkan1 and libglvnd"
  fi
fi

# 4. The scripts, and the checkout as a fallback.
cp scripts/gpu-check.sh "$out/gpu-check.sh"
cp bench/torch_dit.py "$out/torch_dit.py"
cp bench/torch_gemm.py "$out/torch_gemm.py"
git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | xz -6 "$threads" > "$out/tree.tar.xz"

head="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
dirty="$(git status --porcelain 2>/dev/null | wc -l)"
{
  echo "built:        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "checkout:     $head ($dirty paths changed or untracked)"
  echo "node:         $node_version linux-x64"
  echo "lockfile:     $(stamp < package-lock.json)"
  echo "webgpu:       $("$node_bin" -p 'require("./node_modules/webgpu/package.json").version')"
  echo "debs:         $(cd "$out/debs" && ls *.deb 2>/dev/null | tr '\n' ' ')"
} > "$out/manifest.txt"

total_kb="$(du -sk --exclude=out --exclude=.cache "$out" | cut -f1)"
say "bundle in ${out#"$root"/}: $((total_kb / 1024)) MB"
( cd "$out" && ls -l node.xz node_modules.tar.xz tree.tar.xz debs/*.deb 2>/dev/null | awk '{printf "  %6.1f MB  %s\n", $5 / 1048576, $NF}' ) >&2
[ "$total_kb" -le $((max_mb * 1024)) ] || die "the bundle is over $max_mb MB"
