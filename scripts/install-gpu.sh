#!/usr/bin/env bash
# Makes sure a WebGPU adapter exists. Where none does, installs the software one
# (Mesa lavapipe >= 25 from Debian bookworm-backports) on Debian/Ubuntu as root.
# Mesa 22 from plain bookworm is rejected by Dawn, hence the backports suite.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"

have_adapter() {
  node "$here/scripts/probe-adapter.mjs" >/dev/null 2>&1
}

if [ "${VDM_SKIP_GPU_INSTALL:-}" = "1" ]; then exit 0; fi
if [ -d "$here/node_modules/webgpu" ] && have_adapter; then
  echo "install-gpu: a WebGPU adapter is available"; exit 0
fi
# lavapipe installed already (e.g. before npm ci ran): nothing to do here.
if ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 && \
   dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -q '^2[5-9]\|^[3-9]'; then
  echo "install-gpu: Mesa lavapipe $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) is installed"; exit 0
fi

if [ ! -r /etc/os-release ]; then
  echo "install-gpu: no WebGPU adapter found. Install a Vulkan driver (Mesa >= 25 lavapipe for a software one)." >&2
  exit 1
fi
. /etc/os-release
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
  echo "install-gpu: no WebGPU adapter found. As root on Debian/Ubuntu this script installs Mesa's" >&2
  echo "  software Vulkan driver (lavapipe >= 25): mesa-vulkan-drivers and libvulkan1." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
case "${ID:-}" in
  debian)
    suite="${VERSION_CODENAME:-bookworm}-backports"
    if ! grep -rqs "$suite" /etc/apt/sources.list /etc/apt/sources.list.d/; then
      # Reuse the mirror this machine already uses for its main suite.
      mirror=$(grep -rhoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | awk '{print $2}' | grep -v security | head -n 1 || true)
      [ -n "$mirror" ] || { echo "install-gpu: no apt mirror configured" >&2; exit 1; }
      echo "Types: deb
URIs: $mirror
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" > /etc/apt/sources.list.d/vdm-backports.sources
    fi
    apt-get update -qq
    apt-get install -y -qq -t "$suite" mesa-vulkan-drivers libvulkan1 >/dev/null
    ;;
  ubuntu)
    apt-get update -qq
    apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
    ;;
  *)
    echo "install-gpu: unsupported distribution '${ID:-?}'. Install Mesa >= 25 (lavapipe) and the Vulkan loader." >&2
    exit 1
    ;;
esac
echo "install-gpu: installed mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
