#!/usr/bin/env bash
# Unpacks Debian's mbedtls source package into DEST (default build/firmware/mbedtls-src) for the
# firmware build: the card's mbedtls is compiled from it with card/port/mbedtls_card_config.h.
# Needs a deb-src entry (scripts/install-deps.sh writes one). Does nothing when DEST already
# holds an unpacked tree. No mbedtls source is ever committed: everything lands under build/.
set -euo pipefail
dest=${1:-build/firmware/mbedtls-src}
if [ -f "$dest/library/aes.c" ] && [ -f "$dest/include/mbedtls/build_info.h" ]; then
  exit 0
fi
command -v apt-get >/dev/null || { echo "fetch-mbedtls-src: apt-get not found" >&2; exit 1; }
command -v dpkg-source >/dev/null || {
  echo "fetch-mbedtls-src: dpkg-source missing (install dpkg-dev)" >&2; exit 1; }
mkdir -p "$(dirname "$dest")"
work=$(mktemp -d "$(cd "$(dirname "$dest")" && pwd)/mbedtls-src.tmp-XXXXXX")
log="$work/apt-get.log"
trap 'rm -rf "$work"' EXIT
echo "fetch-mbedtls-src: apt-get source mbedtls into $dest"
if ! (cd "$work" && apt-get source -qq mbedtls >"$log" 2>&1); then
  cat "$log" >&2 || true
  echo "fetch-mbedtls-src: apt-get source mbedtls failed; is a deb-src entry configured?" \
       "run scripts/install-deps.sh (it adds /etc/apt/sources.list.d/icdup-src.sources)" >&2
  exit 1
fi
tree=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'mbedtls-*' | head -n 1)
[ -n "$tree" ] && [ -f "$tree/library/aes.c" ] || {
  echo "fetch-mbedtls-src: no unpacked mbedtls tree in the source package" >&2; exit 1; }
rm -rf "$dest"
mv "$tree" "$dest"
echo "fetch-mbedtls-src: $(basename "$tree") unpacked into $dest"
