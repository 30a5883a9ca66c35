#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, only when one is missing.
# Safe to run again: with everything present it does nothing and needs no network.
set -euo pipefail

packages=(
  build-essential pkg-config
  clang libclang-rt-14-dev          # libFuzzer and the sanitizer runtimes
  libcmocka-dev                     # unit tests
  libmbedtls-dev                    # crypto (host side and simulator)
  gcc-arm-none-eabi libnewlib-arm-none-eabi   # the card core for Cortex-M
  libsqlite3-dev                    # the issuance file (icissue)
  libjansson-dev                    # card-type files (JSON)
  libcsv-dev                        # issuance records import (CSV)
  libcairo2-dev fonts-dejavu-core   # the card face, rendered to PNG
  libpcsclite-dev pcscd             # pcsc: reader URIs; pcscd for the PC/SC tests
  vsmartcard-vpcd                   # pcscd driver that turns icsim into a PC/SC reader
  pcsc-tools opensc                 # third-party clients in the PC/SC tests (scriptor, opensc-tool)
  libnfc-dev libnfc-bin             # nfc: reader URIs (libnfc, pn532_uart driver)
  python3                           # independent test vectors and helper scripts
  python3-cryptography              # tests/vectors/gen_vectors.py (independent implementation)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
