#!/usr/bin/env bash
# Makes sure a WebGPU adapter exists. Where none does, installs the software one (Mesa lavapipe
# >= 25) on Debian (from bookworm-backports) or Ubuntu as root, then checks again that Dawn opens it.
# Dawn rejects older Mesa (the 22 of plain bookworm), so every Mesa is checked for its version.
# Sourced (`source scripts/install-gpu.sh`), it only defines its functions: the tests call the
# pure ones (mirror_for_suite, mesa_version_ok, node_version_ok).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

MIN_MESA=25
MIN_NODE=20

# The URI of the first apt source that serves suite $1 (e.g. bookworm), read from the sources
# files that follow: one-line `deb [options] URI SUITE COMPONENTS...` lists (options such as
# `[signed-by=...]` skipped) and deb822 `.sources` stanzas (Types/URIs/Suites, `Enabled: no`
# honoured). Prints nothing when none does.
mirror_for_suite() {
  local suite="$1"; shift
  [ "$#" -gt 0 ] || return 0
  awk -v want="$suite" '
    function flush(   n, i, s, u) {
      if (!found && enabled != "no" && (" " types " ") ~ / deb /) {
        n = split(suites, s, /[ \t]+/)
        for (i = 1; i <= n; i++) if (s[i] == want && split(uris, u, /[ \t]+/) > 0 && u[1] != "") { print u[1]; found = 1; break }
      }
      types = ""; uris = ""; suites = ""; enabled = ""; key = ""
    }
    FNR == 1 { flush(); deb822 = (FILENAME ~ /\.sources$/) }
    found || /^[ \t]*#/ { next }
    { sub(/#.*/, "") }
    deb822 {
      if ($0 ~ /^[ \t]*$/) { flush(); next }
      if ($0 ~ /^[ \t]/) { val = $0 } else if (match($0, /^[A-Za-z0-9-]+:/)) { key = tolower(substr($0, 1, RLENGTH - 1)); val = substr($0, RLENGTH + 1) } else next
      gsub(/^[ \t]+|[ \t]+$/, "", val)
      if (key == "types") types = types " " val
      else if (key == "uris") uris = uris " " val
      else if (key == "suites") suites = suites " " val
      else if (key == "enabled") enabled = tolower(val)
      sub(/^ /, "", uris); sub(/^ /, "", suites)
      next
    }
    $1 == "deb" {
      i = 2
      if ($2 ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
      if (i < NF && $(i + 1) == want) { print $i; found = 1 }
    }
    END { flush() }' "$@"
}

# True when Debian package version $1 (e.g. 25.0.7-2~bpo12+1, 1:24.2.8-1ubuntu1) is Mesa >= 25.
mesa_version_ok() {
  local v="${1#*:}"
  [[ "$1" =~ ^([0-9]+:)?[0-9]+\. ]] || return 1
  [ "${v%%.*}" -ge "$MIN_MESA" ]
}

# True when `node --version` output $1 (e.g. v20.11.1) is Node >= 20.
node_version_ok() {
  [[ "$1" =~ ^v?([0-9]+)\. ]] && [ "${BASH_REMATCH[1]}" -ge "$MIN_NODE" ]
}

have_adapter() {
  [ -d "$here/node_modules/webgpu" ] && node "$here/scripts/probe-adapter.mjs" >/dev/null 2>&1
}

mesa_installed_version() {
  dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true
}

main() {
  if [ "${VDM_SKIP_GPU_INSTALL:-}" = "1" ]; then return 0; fi
  if ! command -v node >/dev/null; then
    echo "install-gpu: Node.js is not installed; vdm needs Node.js >= $MIN_NODE (https://nodejs.org, or nvm)." >&2
    return 1
  fi
  if ! node_version_ok "$(node --version)"; then
    echo "install-gpu: Node.js $(node --version) is too old; vdm needs Node.js >= $MIN_NODE (Debian bookworm's own is 18:" >&2
    echo "  install a newer one from https://nodejs.org, NodeSource or nvm)." >&2
    return 1
  fi
  if have_adapter; then
    echo "install-gpu: a WebGPU adapter is available"; return 0
  fi
  local installed; installed=$(mesa_installed_version)
  # lavapipe installed already (e.g. before npm ci ran, so Dawn could not be asked): nothing to do.
  if [ ! -d "$here/node_modules/webgpu" ] && ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 \
    && mesa_version_ok "$installed"; then
    echo "install-gpu: Mesa lavapipe $installed is installed"; return 0
  fi
  if [ ! -r /etc/os-release ]; then
    echo "install-gpu: no WebGPU adapter found. Install a Vulkan driver (Mesa >= $MIN_MESA lavapipe for a software one)." >&2
    return 1
  fi
  # shellcheck disable=SC1091
  . /etc/os-release
  if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
    echo "install-gpu: no WebGPU adapter found. On Debian/Ubuntu, \`sudo bash scripts/install-gpu.sh\` installs" >&2
    echo "  Mesa's software Vulkan driver (lavapipe >= $MIN_MESA); elsewhere install a Vulkan driver for your GPU." >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  case "${ID:-}" in
    debian)
      local codename="${VERSION_CODENAME:-bookworm}"
      local suite="$codename-backports"
      local lists=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
      local existing=()
      local f; for f in "${lists[@]}"; do [ -r "$f" ] && existing+=("$f"); done
      if [ -z "$(mirror_for_suite "$suite" "${existing[@]}")" ]; then
        # Reuse the mirror this machine already uses for its main suite.
        local mirror; mirror=$(mirror_for_suite "$codename" "${existing[@]}")
        [ -n "$mirror" ] || { echo "install-gpu: no apt source for $codename found to take the mirror from" >&2; return 1; }
        printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
          "$mirror" "$suite" > /etc/apt/sources.list.d/vdm-backports.sources
      fi
      apt-get update -qq
      apt-get install -y -qq -t "$suite" mesa-vulkan-drivers libvulkan1 >/dev/null
      ;;
    ubuntu)
      apt-get update -qq
      apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
      ;;
    *)
      echo "install-gpu: unsupported distribution '${ID:-?}'. Install Mesa >= $MIN_MESA (lavapipe) and the Vulkan loader." >&2
      return 1
      ;;
  esac
  installed=$(mesa_installed_version)
  if ! mesa_version_ok "$installed"; then
    echo "install-gpu: ${PRETTY_NAME:-this distribution} provides Mesa ${installed:-?}, older than the $MIN_MESA Dawn needs." >&2
    [ "${ID:-}" = ubuntu ] && echo "  A newer Mesa comes from the kisak-mesa PPA (add-apt-repository ppa:kisak/kisak-mesa), then run this again." >&2
    return 1
  fi
  echo "install-gpu: installed mesa-vulkan-drivers $installed"
  if [ -d "$here/node_modules/webgpu" ] && ! have_adapter; then
    echo "install-gpu: Mesa $installed is installed but Dawn still finds no WebGPU adapter; \`npx vdm doctor\` says more." >&2
    return 1
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
