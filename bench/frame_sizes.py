#!/usr/bin/env python3
"""Coroutine frame sizes, from the debug information of a binary.

GCC describes each coroutine's frame as a structure named `<mangled>.Frame`
in DWARF. This lists every such frame with its size, the block the frame
allocator hands out for it (64-byte size classes, as in
src/runtime/frame_allocator.cpp) and the glibc malloc chunk behind that
block: what one live instance of the coroutine costs in RSS. With --layout it
also prints the members of the frames (or any structure) whose name contains
the given text: the parameters copied into the frame, the locals that live
across a suspension point, the awaiters and temporaries.

Needs a build with -g (the code is the same as Release without it):

  cmake -S . -B build/frames -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS=-g -DATOLL_TESTS=OFF
  cmake --build build/frames --target echo
  bench/frame_sizes.py build/frames/examples/echo
  bench/frame_sizes.py build/frames/examples/echo --layout connection --layout 'echo(' --layout wait_readable
  bench/frame_sizes.py build/frames/examples/echo --struct Socket --struct Conn
"""

import argparse
import re
import subprocess
import sys

DIE = re.compile(r"^ <(\d+)><([0-9a-f]+)>: Abbrev Number: \d+(?: \((\w+)\))?")
ATTR = re.compile(r"^\s+<[0-9a-f]+>\s+(DW_AT_\w+)\s*: (.*)$")


def parse(binary):
    """The DIEs of the binary, in order: (depth, offset, tag, attributes)."""
    out = subprocess.run(["readelf", "--debug-dump=info", binary],
                         capture_output=True, text=True, check=True).stdout
    dies, order, cur = {}, [], None
    for line in out.split("\n"):
        m = DIE.match(line)
        if m:
            cur = {"depth": int(m.group(1)), "off": int(m.group(2), 16), "tag": m.group(3), "attrs": {}}
            dies[cur["off"]] = cur
            order.append(cur)
            continue
        m = ATTR.match(line)
        if m and cur is not None:
            # Drop the form annotations readelf may print: "(strp) (offset: 0x1): name",
            # "(data1) 144", "(ref4) <0x2a>".
            value = m.group(2).strip()
            while value.startswith("("):
                close = value.find(")")
                if close < 0:
                    break
                value = value[close + 1:].lstrip(": ").strip()
            cur["attrs"][m.group(1)] = value
    return dies, order


def ref(die):
    m = re.search(r"<0x([0-9a-f]+)>", die["attrs"].get("DW_AT_type", ""))
    return int(m.group(1), 16) if m else None


def type_name(dies, off, depth=0):
    d = dies.get(off)
    if d is None or depth > 10:
        return "?"
    tag, a = d["tag"], d["attrs"]
    if tag == "DW_TAG_pointer_type":
        return (type_name(dies, ref(d), depth + 1) if ref(d) else "void") + "*"
    if tag in ("DW_TAG_reference_type", "DW_TAG_rvalue_reference_type"):
        return type_name(dies, ref(d), depth + 1) + "&"
    if tag in ("DW_TAG_const_type", "DW_TAG_volatile_type"):
        return type_name(dies, ref(d), depth + 1) if ref(d) else "void"
    return a.get("DW_AT_name", tag.replace("DW_TAG_", "").replace("_type", ""))


def type_size(dies, off, depth=0):
    d = dies.get(off)
    if d is None or depth > 10:
        return None
    if "DW_AT_byte_size" in d["attrs"]:
        return int(d["attrs"]["DW_AT_byte_size"].split()[0], 0)
    if d["tag"] in ("DW_TAG_pointer_type", "DW_TAG_reference_type", "DW_TAG_rvalue_reference_type"):
        return 8
    return type_size(dies, ref(d), depth + 1) if ref(d) else None


def demangle(names):
    if not names:
        return {}
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout
    return dict(zip(names, out.split("\n")))


def frame_block(size, granule, classes):
    """What the frame allocator hands out for `size` bytes, and glibc's chunk for it."""
    c = (size + granule - 1) // granule - 1
    block = (c + 1) * granule if c < classes else size
    chunk = max(32, (block + 8 + 15) & ~15)  # glibc: 8-byte header, 16-byte alignment
    return block, chunk


def layout(dies, order, index, title):
    d = order[index]
    print(f"\n{title}: {d['attrs']['DW_AT_byte_size']} bytes")
    print(f"  {'offset':>6} {'size':>5}  member")
    for e in order[index + 1:]:
        if e["depth"] <= d["depth"]:
            break
        if e["depth"] != d["depth"] + 1 or e["tag"] != "DW_TAG_member":
            continue
        a = e["attrs"]
        off = a.get("DW_AT_data_member_location", "?")
        size = type_size(dies, ref(e)) if ref(e) else None
        print(f"  {off:>6} {str(size):>5}  {a.get('DW_AT_name', '?'):32} {type_name(dies, ref(e)) if ref(e) else ''}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("binary", help="a binary built with -g")
    p.add_argument("--layout", action="append", default=[], metavar="TEXT",
                   help="print the members of frames whose demangled name contains TEXT")
    p.add_argument("--struct", action="append", default=[], metavar="NAME",
                   help="print the members of the structure or class NAME")
    p.add_argument("--granule", type=int, default=64, help="frame allocator size class step")
    p.add_argument("--classes", type=int, default=32, help="frame allocator size classes")
    args = p.parse_args()

    dies, order = parse(args.binary)
    frames = {}
    for i, d in enumerate(order):
        name = d["attrs"].get("DW_AT_name", "")
        if name.endswith(".Frame") and "DW_AT_byte_size" in d["attrs"] and name not in frames:
            frames[name] = i
    if not frames:
        sys.exit("frame_sizes: no coroutine frames found: build with -g (see --help)")
    names = demangle([n[: -len(".Frame")] for n in frames])

    rows = []
    for mangled, i in frames.items():
        size = int(order[i]["attrs"]["DW_AT_byte_size"].split()[0], 0)
        block, chunk = frame_block(size, args.granule, args.classes)
        rows.append((size, block, chunk, names.get(mangled[: -len(".Frame")], mangled)))
    rows.sort()
    print(f"{'frame':>6} {'block':>6} {'chunk':>6}  coroutine")
    for size, block, chunk, name in rows:
        print(f"{size:>6} {block:>6} {chunk:>6}  {name}")
    print("frame: sizeof the frame; block: what the frame allocator hands out; "
          "chunk: the malloc chunk (what RSS pays)")

    for text in args.layout:
        for mangled, i in frames.items():
            name = names.get(mangled[: -len(".Frame")], mangled)
            if text in name:
                layout(dies, order, i, f"frame of {name}")
    for want in args.struct:
        for i, d in enumerate(order):
            if (d["tag"] in ("DW_TAG_structure_type", "DW_TAG_class_type")
                    and d["attrs"].get("DW_AT_name") == want and "DW_AT_byte_size" in d["attrs"]):
                layout(dies, order, i, want)
                break
        else:
            print(f"\n{want}: not found")


if __name__ == "__main__":
    main()
