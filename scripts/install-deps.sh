#!/usr/bin/env bash
# Installs hpoc's build and test dependencies from Debian 12 packages (run as root).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  llvm-19-dev llvm-19-tools
  antlr4 libantlr4-runtime-dev default-jre-headless
  libeigen3-dev catch2 libcli11-dev nlohmann-json3-dev libtomlplusplus-dev
  libbenchmark-dev python3
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
