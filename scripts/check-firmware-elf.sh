#!/usr/bin/env bash
# The linked card firmware must not contain a heap or stdio: mbedtls allocates only from its
# static buffer (MBEDTLS_MEMORY_BUFFER_ALLOC_C, card/core/crypto.c), the card core not at all.
# Fails (and the Makefile then deletes the image) if the ELF defines or still needs malloc &co.
# Usage: scripts/check-firmware-elf.sh ELF
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 ELF" >&2; exit 2; }
elf=$1
forbidden='^_?(malloc|calloc|realloc|free|_malloc_r|_calloc_r|_realloc_r|_free_r|_sbrk|_sbrk_r|sbrk|printf|fprintf|sprintf|snprintf|vfprintf|_vfprintf_r|puts|putchar|fopen|fwrite|exit|abort|_exit)$'
bad=$(arm-none-eabi-nm "$elf" | awk '{print $NF}' | grep -E "$forbidden" | sort -u || true)
if [ -n "$bad" ]; then
  echo "firmware $elf contains forbidden symbols (heap, stdio or exit):" $bad >&2
  echo "malloc is allowed only as mbedtls' static buffer (mbedtls_memory_buffer_alloc)" >&2
  exit 1
fi
arm-none-eabi-size "$elf"
echo "firmware: $elf has no heap, stdio or exit symbol"
