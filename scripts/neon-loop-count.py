#!/usr/bin/env python3
"""Counts the instructions of act-core's NEON microkernel inner loop as compiled, and runs
llvm-mca on it (docs/AARCH64.md). Builds the release C library for aarch64 first.

    python3 scripts/neon-loop-count.py [--mca /usr/lib/llvm-19/bin/llvm-mca] [--cpus neoverse-n1,...]

The loop is the innermost backward branch of `<Neon as Kernel>::run` (and `run_f16`) whose body
holds the FMLAs: four k steps of the 8 x 8 tile.
"""
import argparse, collections, re, shutil, subprocess, sys, tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = "aarch64-unknown-linux-gnu"


def disassemble(lib):
    out = subprocess.run(["llvm-objdump", "-d", "--no-show-raw-insn", str(lib)], check=True, capture_output=True, text=True).stdout
    funcs, name = {}, None
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            name = m.group(1)
            funcs[name] = []
            continue
        m = re.match(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
        if m and name:
            funcs[name].append((int(m.group(1), 16), m.group(2), re.sub(r"\s*<.*>$", "", m.group(3))))
    return funcs


def hot_loop(insns):
    """The innermost loop (a backward branch with no other loop inside) holding the most FMLAs."""
    loops = []
    for addr, op, args in insns:
        m = re.search(r"0x([0-9a-f]+)", args)
        if op.startswith("b") and op not in ("bl", "blr", "br") and m and int(m.group(1), 16) < addr:
            loops.append((int(m.group(1), 16), addr))
    innermost = [(s, e) for s, e in loops if not any((s2, e2) != (s, e) and s <= s2 and e2 <= e for s2, e2 in loops)]
    best = max(innermost, key=lambda r: sum(1 for a, op, _ in insns if r[0] <= a <= r[1] and op == "fmla"), default=None)
    return [x for x in insns if best and best[0] <= x[0] <= best[1]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mca", default=shutil.which("llvm-mca-19") or shutil.which("llvm-mca"))
    ap.add_argument("--cpus", default="neoverse-n1,neoverse-v1,cortex-a55,cortex-a76")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "act-core-ffi", "--lib", "--target", TARGET], cwd=REPO, check=True)
    lib = REPO / "target" / TARGET / "release" / "libact_core.so"
    funcs = disassemble(lib)
    for kernel in ("3run17", "7run_f1617"):
        name = next(n for n in funcs if "neon..Neon" in n and "Kernel$GT$" + kernel in n)
        loop = hot_loop(funcs[name])
        counts = collections.Counter(op for _, op, _ in loop)
        print(f"\n{'run (f32 weights)' if kernel == '3run17' else 'run_f16 (f16 weights)'}: {len(loop)} instructions per 4 k steps")
        for op, n in counts.most_common():
            print(f"  {n:3d} {op}")
        if args.mca:
            with tempfile.NamedTemporaryFile("w", suffix=".s", delete=False) as f:
                f.writelines(f"\t{op}\t{a}\n" for _, op, a in loop if not op.startswith("b"))
            for cpu in args.cpus.split(","):
                out = subprocess.run([args.mca, "-mtriple=aarch64", f"-mcpu={cpu}", "-iterations=1000", f.name], capture_output=True, text=True).stdout
                cycles = int(re.search(r"Total Cycles:\s+(\d+)", out).group(1)) / 1000
                model = re.search(r"Resources:\n\[[0-9.]+\]\s+- (\w+)", out)
                print(f"  llvm-mca {cpu}: {cycles:.1f} cycles per iteration, {counts['fmla'] / cycles:.2f} FMLA/cycle (model resources: {model.group(1) if model else '?'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
