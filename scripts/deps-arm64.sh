#!/usr/bin/env bash
# Installs what the aarch64 cross build and its tests under qemu need, from
# Debian's packages: the cross compiler, qemu-user, and the arm64 builds of
# the libraries rackllm links (Debian multiarch). Does nothing when they are
# all there. Used by `make test-arm` (see cmake/aarch64-linux-gnu.cmake).
set -euo pipefail

host=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static)
arm=(libpcre2-dev:arm64 libcjson-dev:arm64 libmicrohttpd-dev:arm64 libcurl4-openssl-dev:arm64)

missing=()
for p in "${host[@]}" "${arm[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps-arm64: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
dpkg --print-foreign-architectures | grep -qx arm64 || $sudo dpkg --add-architecture arm64
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
