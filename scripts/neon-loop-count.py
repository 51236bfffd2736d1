#!/usr/bin/env python3
"""Counts the instructions of act-core's NEON microkernel inner loop as compiled, and runs
llvm-mca on it (docs/AARCH64.md). Builds the release C library for aarch64 first.

    python3 scripts/neon-loop-count.py [--mca /usr/lib/llvm-19/bin/llvm-mca] [--cpus neoverse-n1,...]

The loop of each NEON kernel (f32, bf16, fp16; f16-stored weights are widened per panel block
and run by the f32 loop) is its innermost backward branch whose
body holds the FMLAs (or BFDOTs).
"""
import argparse, collections, re, shutil, subprocess, sys, tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = "aarch64-unknown-linux-gnu"


def disassemble(lib):
    out = subprocess.run(["llvm-objdump", "-d", "--no-show-raw-insn", "--mattr=+bf16,+fullfp16", str(lib)], check=True, capture_output=True, text=True).stdout
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
        if op.startswith("b") and op not in ("bl", "blr", "br", "bfdot") and m and int(m.group(1), 16) < addr:
            loops.append((int(m.group(1), 16), addr))
    innermost = [(s, e) for s, e in loops if not any((s2, e2) != (s, e) and s <= s2 and e2 <= e for s2, e2 in loops)]
    best = max(innermost, key=lambda r: sum(1 for a, op, _ in insns if r[0] <= a <= r[1] and op in ("fmla", "bfdot")), default=None)
    return [x for x in insns if best and best[0] <= x[0] <= best[1]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mca", default=shutil.which("llvm-mca-19") or shutil.which("llvm-mca"))
    ap.add_argument("--cpus", default="neoverse-n1,neoverse-v1,cortex-a55,cortex-a76")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--quiet", "--release", "-p", "act-core-ffi", "--lib", "--target", TARGET], cwd=REPO, check=True)
    lib = REPO / "target" / TARGET / "release" / "libact_core.so"
    funcs = disassemble(lib)
    def find(name):
        return next(i for n, i in funcs.items() if "4neon" in n and name in n)
    kernels = [
        (find("8run_neon"), "run_neon (f32 weights, and f16-stored weights once widened; FMLA .4S)", "4 k steps"),
        (find("9run_bfdot"), "run_bfdot (bf16 compute, BFDOT)", "4 k pairs"),
        (find("10run_fmla_h"), "run_fmla_h (fp16 compute, FMLA .8H)", "8 k steps"),
    ]
    for insns, title, per in kernels:
        loop = hot_loop(insns)
        counts = collections.Counter(op for _, op, _ in loop)
        macs = counts["fmla"] + counts["bfdot"]  # the multiply-accumulate instructions, either kind
        print(f"\n{title}: {len(loop)} instructions per {per}")
        for op, n in counts.most_common():
            print(f"  {n:3d} {op}")
        if args.mca:
            with tempfile.NamedTemporaryFile("w", suffix=".s", delete=False) as f:
                f.writelines(f"\t{op}\t{a}\n" for _, op, a in loop if op == "bfdot" or not op.startswith("b"))
            for cpu in args.cpus.split(","):
                out = subprocess.run([args.mca, "-mtriple=aarch64", f"-mcpu={cpu}", "-mattr=+bf16,+fullfp16", "-iterations=1000", f.name], capture_output=True, text=True).stdout
                cycles = int(re.search(r"Total Cycles:\s+(\d+)", out).group(1)) / 1000
                model = re.search(r"Resources:\n\[[0-9.]+\]\s+- (\w+)", out)
                print(f"  llvm-mca {cpu}: {cycles:.1f} cycles per iteration, {macs / cycles:.2f} FMLA or BFDOT per cycle (model: {model.group(1) if model else '?'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
