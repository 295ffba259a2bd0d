#!/usr/bin/env bash
# Makes sure a Python with torch and numpy exists, for vdm convert's .pt/.pth files and the PyTorch
# parity tests (test/interop/). Looks where vdm does (src/interop/python.ts): VDM_PYTHON when set,
# else python3, /usr/bin/python3 and python. Where none has torch and this is Debian or Ubuntu as
# root, installs the distribution's python3-torch (apt-get, no recommends) and checks again.
# Exits 0 when an interpreter with torch is there, 1 (having said why) when not: without root or
# apt-get, offline, or VDM_NO_TORCH_INSTALL=1. The tests then skip the parity checks and say so.
set -uo pipefail

has_torch() {
  "$1" -c 'import torch, numpy' >/dev/null 2>&1
}

candidates() {
  if [ -n "${VDM_PYTHON:-}" ]; then echo "$VDM_PYTHON"; else printf '%s\n' python3 /usr/bin/python3 python; fi
}

found() {
  local py
  while read -r py; do
    if has_torch "$py"; then return 0; fi
  done < <(candidates)
  return 1
}

found && exit 0

why=""
if [ -n "${VDM_PYTHON:-}" ]; then
  why="VDM_PYTHON=$VDM_PYTHON has no torch and numpy (installing Debian's python3-torch would not change that interpreter)"
elif [ "${VDM_NO_TORCH_INSTALL:-}" = 1 ]; then
  why="VDM_NO_TORCH_INSTALL=1"
elif [ "$(id -u)" != 0 ]; then
  why="not root, so python3-torch cannot be installed here (Debian/Ubuntu: apt-get install python3-torch)"
elif ! command -v apt-get >/dev/null; then
  why="no apt-get to install python3-torch with"
fi
if [ -n "$why" ]; then
  echo "note: no Python with torch: $why; the PyTorch parity tests will be skipped" >&2
  exit 1
fi

echo "installing Debian's python3-torch for the PyTorch parity tests and .pt files ..." >&2
run_apt() {
  # bounded, so an unreachable mirror cannot stall the caller
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get "$@" -o Acquire::Retries=1 -o Acquire::http::Timeout=20 >/dev/null 2>&1
}
if ! run_apt install -y --no-install-recommends python3-torch; then
  # the package lists may be missing or stale (a fresh container)
  run_apt update || true
  run_apt install -y --no-install-recommends python3-torch || true
fi
if found; then
  echo "python3-torch installed: $(/usr/bin/python3 -c 'import torch; print("torch", torch.__version__)' 2>/dev/null)" >&2
  exit 0
fi
echo "note: python3-torch could not be installed (offline, or no such package in this distribution's sources); the PyTorch parity tests will be skipped" >&2
exit 1
