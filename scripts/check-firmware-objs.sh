#!/usr/bin/env bash
# The card core is firmware: after the Cortex-M compile, list each module's size and fail if
# any object needs a heap, stdio or OS symbol (only a port may bring those).
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 OBJ..." >&2; exit 2; }
arm-none-eabi-size -t "$@" | sed 's|build/arm/obj/||'
forbidden='^(malloc|calloc|realloc|free|printf|fprintf|sprintf|snprintf|puts|putchar|fopen|fread|fwrite|fclose|exit|abort|getenv|time|open|read|write|close|_sbrk|sbrk)$'
bad=$(arm-none-eabi-nm -u "$@" 2>/dev/null | awk '{print $NF}' | grep -E "$forbidden" | sort -u || true)
if [ -n "$bad" ]; then
  echo "card core references forbidden symbols:" $bad >&2
  exit 1
fi
echo "cross-compile: card core is firmware-clean for Cortex-M4 (no heap, stdio or OS symbols)"
