#!/usr/bin/env bash
# Build tools odinw needs beyond Rust: CMake and NASM, with which turbojpeg-sys builds
# libjpeg-turbo (Pillow's JPEG decoder, SIMD included) from source. Installs them with apt-get
# (as root, or with sudo) when either is missing; says what to install otherwise.
set -euo pipefail
command -v cmake >/dev/null && command -v nasm >/dev/null && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
if command -v apt-get >/dev/null; then
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq cmake nasm >/dev/null
else
  echo "odinw needs cmake and nasm to build libjpeg-turbo; install them and rerun" >&2
  exit 1
fi
