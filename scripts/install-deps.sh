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
  libsqlite3-dev sqlite3            # the issuance file (icissue); sqlite3 for the e2e tests
  libpq-dev postgresql              # the issuance file on PostgreSQL; a throwaway server for
                                    # the tests (scripts/pg-env.sh), psql for their checks
  libjansson-dev                    # card-type files (JSON)
  libcsv-dev                        # issuance records import (CSV)
  libcairo2-dev fonts-dejavu-core   # the card face, rendered to PNG
  libpcsclite-dev pcscd             # pcsc: reader URIs; pcscd for the PC/SC tests
  vsmartcard-vpcd                   # pcscd driver that turns icsim into a PC/SC reader
  pcsc-tools opensc                 # third-party clients in the PC/SC tests (scriptor, opensc-tool)
  libnfc-dev libnfc-bin             # nfc: reader URIs (libnfc, pn532_uart driver)
  python3                           # independent test vectors and helper scripts
  python3-cryptography              # tests/vectors/gen_vectors.py (independent implementation)
  qemu-system-arm                   # the card firmware under QEMU (mps2-an386, tests/e2e/qemu.sh)
  dpkg-dev                          # dpkg-source: apt-get source mbedtls for the firmware
)

# The firmware builds mbedtls from Debian's source package (scripts/fetch-mbedtls-src.sh), which
# needs a deb-src entry. Written once, when missing; then the package lists are refreshed.
src_list=/etc/apt/sources.list.d/icdup-src.sources
if [ ! -f "$src_list" ]; then
  echo "install-deps: adding deb-src entries ($src_list) for apt-get source mbedtls"
  sudo_src=""
  [ "$(id -u)" = 0 ] || sudo_src="sudo"
  printf '%s\n' \
    'Types: deb-src' \
    'URIs: http://deb.debian.org/debian' \
    'Suites: bookworm bookworm-updates' \
    'Components: main' \
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
    '' \
    'Types: deb-src' \
    'URIs: http://deb.debian.org/debian-security' \
    'Suites: bookworm-security' \
    'Components: main' \
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
    | $sudo_src tee "$src_list.tmp" >/dev/null
  $sudo_src mv "$src_list.tmp" "$src_list"
  $sudo_src apt-get update -qq
fi

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
