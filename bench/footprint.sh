#!/usr/bin/env bash
# The card firmware's footprint, as "key value" lines (bench/run.sh puts them in
# docs/performance.md): flash (text + rodata + exidx + the .data load image) and RAM (stack
# region + data + bss, which holds mbedtls' static buffer), each split into mbedtls, the card
# core (common/ + card/core/), the firmware glue (card/fw/), the C runtime (newlib-nano,
# libgcc) and alignment padding (the rest), from the linker map; and the stack: the largest
# single frame (-fstack-usage, .su files) and the deepest path from the reset handler through the call graph
# of -fcallgraph-info=su (.ci files), twice: "direct" follows direct calls and the command
# dispatch of card_process (the cmd_table), and is a lower bound; "upper" also lets every other
# indirect call (HAL ops, RNG callbacks, mbedtls' cipher and calloc pointers, ECP modp) reach
# any function whose address is taken (R_ARM_ABS32 relocations), an over-approximation. Both
# leave out the C runtime's frames (memcpy ...; not in the graph) and cut recursion (reported,
# not followed). Usage: bench/footprint.sh [build/firmware]   (make firmware first)
set -euo pipefail
cd "$(dirname "$0")/.."
fw=${1:-build/firmware}
map="$fw/icdup-card.map"
elf="$fw/icdup-card.elf"
[ -f "$map" ] && [ -f "$elf" ] || { echo "footprint: no $map or $elf (make firmware)" >&2; exit 1; }
ls "$fw"/obj/card/core/*.ci >/dev/null 2>&1 ||
  { echo "footprint: no .ci files under $fw/obj (rebuild: rm -rf $fw/obj; make firmware)" >&2; exit 1; }

# Functions whose address is taken: targets of R_ARM_ABS32 relocations (data tables, and
# literal pools of code that passes a callback), with the section holding the pointer.
addr_taken=$(for o in $(find "$fw/obj" -name '*.o'); do
  arm-none-eabi-objdump -r "$o" | awk '
    /^RELOCATION RECORDS FOR/ { sec = $4; sub(/^\[/, "", sec); sub(/\]:$/, "", sec); next }
    $2 == "R_ARM_ABS32" && sec !~ /^\.(debug|ARM)/ { print sec, $3 }'
done)
syms=$(arm-none-eabi-nm --defined-only "$elf" | awk '$2 ~ /[tT]/ { print $3 }')

python3 - "$map" "$fw" <<EOF
import glob, os, re, sys
mp, fw = sys.argv[1], sys.argv[2]

def cat(path):
    if '/obj/mbedtls/' in path: return 'mbedtls'
    if '/obj/common/' in path or '/obj/card/core/' in path: return 'core'
    if '/obj/card/fw/' in path: return 'fw'
    return 'libc'

flash = {k: 0 for k in ('mbedtls', 'core', 'fw', 'libc', 'pad')}
ram = dict(flash)
out_sizes = {}
lines = open(mp).read().split('\n')
start = next(i for i, l in enumerate(lines) if l.startswith('Linker script and memory map'))
out = None
pending = None
for l in lines[start + 1:]:
    m = re.match(r'^(\.[\w.]+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)', l)
    if m:
        out = m.group(1); out_sizes[out] = int(m.group(2), 16); pending = None; continue
    if re.match(r'^\.[\w.]+\s*$', l):
        out = l.strip(); pending = None; continue
    if out not in ('.text', '.ARM.exidx', '.data', '.bss'):
        continue
    m = re.match(r'^ \*fill\*\s+0x[0-9a-f]+\s+0x([0-9a-f]+)', l)
    if m:
        n = int(m.group(1), 16)
        if out != '.bss': flash['pad'] += n
        if out in ('.data', '.bss'): ram['pad'] += n
        continue
    m = re.match(r'^ (\.\S+|COMMON)\s*$', l)
    if m:
        pending = m.group(1); continue
    m = re.match(r'^ (\.\S+|COMMON)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$', l)
    if m and (m.group(1) or pending):
        n = int(m.group(3), 16); c = cat(m.group(4))
        if out != '.bss': flash[c] += n
        if out in ('.data', '.bss'): ram[c] += n
    pending = None

stack_region = out_sizes.get('.stack', 0)
ft = out_sizes['.text'] + out_sizes.get('.ARM.exidx', 0) + out_sizes.get('.data', 0)
rt = stack_region + out_sizes.get('.data', 0) + out_sizes.get('.bss', 0)
flash['pad'] = ft - sum(v for k, v in flash.items() if k != 'pad')
ram['pad'] = rt - stack_region - sum(v for k, v in ram.items() if k != 'pad')
print('fw_flash_total_bytes', ft)
for k in ('mbedtls', 'core', 'fw', 'libc', 'pad'):
    print('fw_flash_%s_bytes' % k, flash[k])
print('fw_ram_total_bytes', rt)
print('fw_ram_stack_region_bytes', stack_region)
for k in ('mbedtls', 'core', 'fw', 'libc', 'pad'):
    print('fw_ram_%s_bytes' % k, ram[k])
heap = 0
for i, l in enumerate(lines):
    if l.strip() == '.bss.crypto_heap':
        heap = int(lines[i + 1].split()[1], 16)
print('fw_ram_mbedtls_heap_bytes', heap)

# ---- stack: .su frames, .ci call graph ----------------------------------------------------
frames = {}   # node title -> (bytes, qualifier)
edges = {}
for ci in glob.glob(os.path.join(fw, 'obj', '**', '*.ci'), recursive=True):
    for l in open(ci):
        m = re.match(r'node: \{ title: "([^"]+)" label: "[^\\\\"]*\\\\n[^"]*\\\\n(\d+) bytes \(([^)]*)\)"', l)
        if m:
            frames[m.group(1)] = (int(m.group(2)), m.group(3)); continue
        m = re.match(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"', l)
        if m:
            edges.setdefault(m.group(1), set()).add(m.group(2))
largest = max(frames.items(), key=lambda kv: kv[1][0])
print('fw_stack_largest_frame_bytes', largest[1][0])
print('fw_stack_largest_frame_function', largest[0].split(':')[-1])
dynamic = sorted(t.split(':')[-1] for t, (n, q) in frames.items() if q.startswith('dynamic') and t in frames)
print('fw_stack_dynamic_frames', len(dynamic))

linked = set("""$syms""".split())
def short(t): return t.split(':')[-1]
# An indirect call in card_process reaches the command table; the vector table is reached by
# exceptions only; any other indirect call is taken to reach any other address-taken function.
cmds, taken = set(), set()
for line in """$addr_taken""".strip().split('\n'):
    if not line: continue
    sec, sym = line.split()
    if sym not in linked or sec == '.vectors': continue
    (cmds if 'cmd_table' in sec else taken).add(sym)
taken -= cmds
titles = {}
for t in frames:
    titles.setdefault(short(t), []).append(t)
def nodes(names): return {t for n in names for t in titles.get(n, [])}
cmd_nodes, indirect = nodes(cmds), nodes(taken)
mode = 'upper'
def resolve(src, tgt):
    if tgt == '__indirect_call':
        if short(src) == 'card_process': return cmd_nodes
        return indirect if mode == 'upper' else set()
    if tgt in frames: return {tgt}
    return set()

sys.setrecursionlimit(10000)
def depth(n, memo, onpath, cycles):
    if n in memo: return memo[n]
    if n in onpath:
        cycles.add(short(n)); return (0, [])
    onpath.add(n)
    best = (0, [])
    for t in sorted(edges.get(n, ())):
        for r in sorted(resolve(n, t)):
            d = depth(r, memo, onpath, cycles)
            if d[0] > best[0]: best = d
    onpath.discard(n)
    res = (frames.get(n, (0, ''))[0] + best[0], [n] + best[1])
    memo[n] = res
    return res
root = 'fw_reset_handler' if 'fw_reset_handler' in frames else 'main'
def fmt(path): return '>'.join(short(p) + '(' + str(frames[p][0]) + ')' for p in path)
for mode in ('direct', 'upper'):
    cycles = set()
    d, path = depth(root, {}, set(), cycles)
    print('fw_stack_%s_path_bytes' % mode, d)
    print('fw_stack_%s_path' % mode, fmt(path))
    print('fw_stack_%s_recursion' % mode, ','.join(sorted(cycles)) if cycles else 'none')
print('fw_stack_indirect_targets', len(cmd_nodes) + len(indirect))
EOF
