#!/usr/bin/env bash
# Installs what rackllm needs to build and test, from Debian's packages, by
# name. Does nothing when everything is already there. Usage:
#   scripts/deps.sh          build + test dependencies
set -euo pipefail

pkgs=(build-essential cmake pkg-config libpcre2-dev libcjson-dev libmicrohttpd-dev
      libcurl4-openssl-dev python3-jinja2
      clang libclang-rt-dev curl jq prometheus libxml2-utils haproxy systemd
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static)
pkgs+=(chromium) # the web pages' browser test (puppeteer-core from tests/web/package-lock.json)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
