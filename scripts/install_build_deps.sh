#!/usr/bin/env bash
# Optional build tool: NASM. Building odinw needs only a C compiler (mozjpeg-sys compiles libjpeg
# with the `cc` crate); with NASM on the PATH it also assembles libjpeg's x86 SIMD, as Pillow's
# libjpeg-turbo has it, without which some damaged JPEGs decode to other pixels than Pillow's
# (the tests check that they don't, so the test script and CI run this). Installs NASM with
# apt-get (as root, or with sudo) when missing; says what to install otherwise.
set -euo pipefail
command -v nasm >/dev/null && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
if command -v apt-get >/dev/null; then
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq nasm >/dev/null
else
  echo "the JPEG tests need nasm (libjpeg's SIMD, as Pillow has it); install it and rerun" >&2
  exit 1
fi
