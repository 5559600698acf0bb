#!/usr/bin/env bash
# scripts/deps.sh — installs the Debian packages cispo builds against (docs/architecture.md lists why
# each is needed). Idempotent: does nothing when every package is present.
set -euo pipefail
pkgs=(build-essential cmake pkg-config python3 python3-venv python3-pip
      libopenblas-dev libhdf5-dev libopenmpi-dev openmpi-bin libcurl4-openssl-dev libcjson-dev
      libyaml-dev libpcre2-dev libgmp-dev libmpfr-dev libseccomp-dev libmicrohttpd-dev libutf8proc-dev
      curl
      # the sandbox's languages beyond Python/C/C++ (sandbox/README.md); bash is always there
      nodejs golang-go rustc default-jdk-headless
      # the sandbox's cgroup v2 test boots a VM (tests/sandbox/cgroup2_vm.sh)
      qemu-system-x86 busybox-static cpio)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
