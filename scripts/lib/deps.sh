# Shared by scripts/demo and scripts/test: install what a fresh Debian machine lacks.
# shellcheck shell=bash

# need_apt PACKAGE... : installs the Debian packages that are not installed yet.
need_apt() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing Debian packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# need_cmd COMMAND HINT : fails loudly when a command is missing.
need_cmd() {
  command -v "$1" >/dev/null || { echo "error: $1 is required: $2" >&2; exit 1; }
}
