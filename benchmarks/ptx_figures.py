"""Static GPU figures of the CUDA kernels, read from the code compiled for sm_90 (no GPU needed).

``python benchmarks/ptx_figures.py [--out FILE.md]`` compiles the GBM kernels in float64 and
float32 to PTX for compute capability 9.0 (H100) with numba-cuda's NVVM, assembles
each with ``ptxas -arch=sm_90 -c -v`` and prints, per kernel:

* registers per thread, spill stores and loads (bytes) and stack frame, from ptxas;
* instruction counts in the PTX: ``fma.rn.f64`` (contracted multiply-adds), float64 and float32
  arithmetic and comparisons, conversions, ``ld.global`` (of which ``ld.global.nc``, through
  the read-only data cache) / ``st.global``, over the whole kernel and inside its step loop.

Each kernel is compiled as launches compile it for its run: specialised on the code paths the
run's rows, costs and grid need (``_math.Features``) and on the shape of a path's state (hedger
rows x state rows, in the thread's local memory); the kernel with every path compiled in is
listed beside them. The "16 x 4" case is 16 delta hedgers (kernel rows) x 4 cost levels.

The step loop is taken as the backward branch of the PTX whose loop holds the most other loops
(the loop over the time grid, around the phases' loops over rows and options; the widest of
those), and "inside the loop" means the instructions
between its label and its branch, the inner loops and inlined functions included. ptxas is
looked up in the ``nvidia-cuda-nvcc`` wheel beside numba-cuda's NVVM (same CUDA release, so it
reads NVVM's PTX ISA), then on ``PATH``; an older ptxas is given the PTX with its ``.version``
line lowered to the newest ISA it reads (the figures are then read from that ptxas, as said in
``Figures.ptxas``).
"""

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CC = (9, 0)
ARCH = "sm_90"
# PTX arithmetic and comparisons whose type suffix says their precision (conversions are counted
# on their own)
ARITHMETIC = ("add", "sub", "mul", "mad", "fma", "div", "rcp", "sqrt", "rsqrt", "neg", "abs",
              "min", "max", "ex2", "lg2", "sin", "cos", "setp", "selp", "copysign")
_INSTRUCTION = re.compile(r"^\s*(?:@!?%\w+\s+)?([a-z][\w.]*)")
_BRANCH = re.compile(r"^\s*(?:@!?%\w+\s+)?bra(?:\.uni)?\s+(\$?[\w$]+);")
_LABEL = re.compile(r"^(\$?[\w$]+):")


@dataclasses.dataclass(frozen=True)
class Counts:
    """Instruction counts of a stretch of PTX."""

    instructions: int
    fma_f64: int
    f64: int
    f32: int
    cvt: int
    ld_global: int
    ld_global_nc: int
    st_global: int


@dataclasses.dataclass(frozen=True)
class Figures:
    """What ptxas and the PTX say of one compiled kernel."""

    name: str
    registers: int
    spill_stores: int
    spill_loads: int
    stack_frame: int
    ptx_version: str
    ptxas: str
    kernel: Counts
    loop: Counts
    loop_f64: dict


def compile_ptx(dynamics, dtype: str, features=None, rows=1) -> str:
    """PTX of the CUDA kernel of ``dynamics``, ``dtype``, ``features`` (the code paths
    compiled in, ``_math.Features``; default: all) and ``rows`` hedger rows (without lag) for
    ``CC`` as launches compile it (``kernels.cuda.ptx``: no contraction), without a GPU."""
    import numba.cuda.dispatcher

    from gpuhedge.kernels import _math

    from gpuhedge.kernels import cuda as target

    class _Device:  # compiling device-function calls asks for the current device's capability
        compute_capability = CC

    saved = numba.cuda.dispatcher.get_current_device
    numba.cuda.dispatcher.get_current_device = _Device
    try:
        return target.ptx(dynamics, dtype, cc=CC, features=features or _math.GENERIC,
                          rows=(rows, _math.N_STATE))
    finally:
        numba.cuda.dispatcher.get_current_device = saved


def find_ptxas() -> str:
    """Path of ptxas: the ``nvidia-cuda-nvcc`` wheel's (same release as NVVM), else PATH's."""
    for root in map(Path, sys.path):
        for candidate in sorted(root.glob("nvidia/cu*/bin/ptxas")):
            if os.access(candidate, os.X_OK):
                return str(candidate)
    found = shutil.which("ptxas")
    if found is None:
        raise FileNotFoundError("ptxas not found: install the 'nvidia-cuda-nvcc' wheel "
                                "(test extra) or the CUDA toolkit")
    return found


def _ptxas_isa(ptxas: str) -> str | None:
    """The newest PTX ISA ``ptxas`` reads (None when its error does not say)."""
    with tempfile.TemporaryDirectory() as folder:
        probe = Path(folder, "probe.ptx")
        probe.write_text(".version 99.9\n.target sm_90\n.address_size 64\n")
        done = subprocess.run([ptxas, "-arch", ARCH, str(probe), "-o", os.devnull],
                              capture_output=True, text=True)
    found = re.search(r"current version is '(\d+\.\d+)'", done.stdout + done.stderr)
    return found.group(1) if found else None


def assemble(ptx: str, ptxas: str | None = None) -> tuple[dict, str]:
    """``ptxas -arch=sm_90 -c -v`` of ``ptx``: ({registers, spill_stores, spill_loads,
    stack_frame}, a description of the ptxas used). ``-c``: relocatable code, the kernel
    assembled alone, without a link step."""
    ptxas = ptxas or find_ptxas()
    version = subprocess.run([ptxas, "--version"], capture_output=True, text=True).stdout
    release = re.search(r"release ([\d.]+)", version)
    used = f"ptxas {release.group(1) if release else '?'}"
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder, "kernel.ptx")
        source.write_text(ptx)
        command = [ptxas, "-arch", ARCH, "-c", "-v", str(source), "-o",
                   str(Path(folder, "kernel.cubin"))]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 and "Unsupported .version" in done.stderr + done.stdout:
            isa = _ptxas_isa(ptxas)
            if isa is None:
                raise RuntimeError(f"{ptxas} rejects the PTX: {done.stderr}")
            source.write_text(re.sub(r"^\.version .*$", f".version {isa}", ptx, count=1,
                                     flags=re.M))
            used += f" (PTX .version lowered to {isa})"
            done = subprocess.run(command, capture_output=True, text=True)
    text = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"{ptxas} failed: {text}")
    return parse_ptxas(text), used


def parse_ptxas(text: str) -> dict:
    """Registers, spill stores and loads and stack frame (bytes) from ``ptxas -v`` output (of
    a single kernel)."""
    def grab(pattern):
        found = re.search(pattern, text)
        if found is None:
            raise ValueError(f"parse_ptxas: no {pattern!r} in the ptxas output: {text}")
        return int(found.group(1))

    return dict(registers=grab(r"Used (\d+) registers"),
                spill_stores=grab(r"(\d+) bytes spill stores"),
                spill_loads=grab(r"(\d+) bytes spill loads"),
                stack_frame=grab(r"(\d+) bytes stack frame"))


def count(lines) -> Counts:
    """Instruction counts of PTX ``lines``."""
    ops = [m.group(1) for m in map(_INSTRUCTION.match, lines) if m and not m.group(1)
           .startswith((".", "//"))]
    ops = [op for op in ops if not op.endswith(":")]

    def precision(op, suffix):
        return op.split(".")[0] in ARITHMETIC and op.endswith(suffix)

    return Counts(instructions=len(ops),
                  fma_f64=sum(op.startswith("fma.rn.f64") for op in ops),
                  f64=sum(precision(op, ".f64") for op in ops),
                  f32=sum(precision(op, ".f32") for op in ops),
                  cvt=sum(op.startswith("cvt.") for op in ops),  # not cvta (address spaces)
                  ld_global=sum(op.startswith("ld.global") for op in ops),
                  ld_global_nc=sum(op.startswith("ld.global.nc") for op in ops),
                  st_global=sum(op.startswith("st.global") for op in ops))


def f64_mix(lines) -> dict:
    """Float64 instructions of PTX ``lines`` by operation (``add``, ``setp``, ``cvt`` with a
    float64 side, ...), most frequent first: what a float32 kernel still does in float64."""
    ops = [m.group(1) for m in map(_INSTRUCTION.match, lines) if m]
    found = {}
    for op in ops:
        base = op.split(".")[0]
        if (base in ARITHMETIC and op.endswith(".f64")) or (base == "cvt" and "f64" in op):
            found[base] = found.get(base, 0) + 1
    return dict(sorted(found.items(), key=lambda item: -item[1]))


def step_loop(ptx: str) -> list[str]:
    """The lines of the step loop of ``ptx`` (label to backward branch): of its loops, the one
    that holds the most other loops (the phases' loops over rows and options), the widest of
    those. (Not simply the widest: the start's loop over the rows, which prices the book, can
    span more lines.)"""
    lines = ptx.splitlines()
    labels = {m.group(1): i for i, m in enumerate(map(_LABEL.match, lines)) if m}
    loops = []
    for i, line in enumerate(lines):
        branch = _BRANCH.match(line)
        if branch and labels.get(branch.group(1), i) < i:
            loops.append((labels[branch.group(1)], i))

    def rank(loop):
        start, end = loop
        inner = sum(start <= s and e <= end for s, e in loops) - 1
        return inner, end - start

    start, end = max(loops, key=rank, default=(0, 0))
    return lines[start:end + 1]


def figures(name: str, ptx: str, ptxas: str | None = None) -> Figures:
    """ptxas's and the PTX's figures of one kernel's ``ptx``."""
    assembled, used = assemble(ptx, ptxas)
    version = re.search(r"^\.version (\S+)", ptx, re.M)
    body = ptx.splitlines()
    loop = step_loop(ptx)
    return Figures(name=name, ptx_version=version.group(1) if version else "?", ptxas=used,
                   kernel=count(body), loop=count(loop), loop_f64=f64_mix(loop), **assembled)


def delta_hedgers(n_rows: int, n_costs: int):
    """``_math.Features`` of a run of ``n_rows`` delta hedgers on time schedules at constant
    vol, no lag, and ``n_costs`` levels of proportional costs, without dividends (``Features.of``
    its tables, as the engine passes it to the CUDA kernel)."""
    import numpy as np

    import gpuhedge as gh
    from gpuhedge.kernels import _math

    hedgers = np.zeros((n_rows, _math.N_HEDGER))
    rule = gh.DeltaHedge(vol=0.2)
    for column, value in {_math.HEDGER_KIND: rule.kind, _math.HEDGER_RULE: rule.rule,
                          **rule.trait_columns()}.items():
        hedgers[:, column] = value
    costs = np.zeros((n_costs, _math.N_COST))
    costs[:, _math.COST_PROPORTIONAL] = 1e-3 * np.arange(1, n_costs + 1)
    return _math.Features.of(hedgers, costs, np.zeros((2, 3)))


def kernel_figures(ptxas: str | None = None) -> list[Figures]:
    """Figures of the GBM kernels: one delta hedger and 16 x 4 (16 delta hedgers x 4 cost
    levels) in float64, one delta hedger in float32, each specialised on its run's features as
    launches are, and the kernel with every code path compiled in."""
    from gpuhedge.models import BlackScholes

    gbm = BlackScholes.dynamics
    one, zoo = delta_hedgers(1, 1), delta_hedgers(16, 4)
    ptx = {dtype: compile_ptx(gbm, dtype, one) for dtype in ("float64", "float32")}
    return [figures("GBM, 1 hedger, float64", ptx["float64"], ptxas),
            figures("GBM, 16 x 4, float64", compile_ptx(gbm, "float64", zoo, 16), ptxas),
            figures("GBM, 1 hedger, float32", ptx["float32"], ptxas),
            figures("GBM, every code path compiled in, float64", compile_ptx(gbm, "float64"),
                    ptxas)]


def markdown(rows: list[Figures]) -> str:
    """The figures as a Markdown table (one row per kernel, whole kernel / step loop)."""
    head = ("| kernel | registers | spill st/ld (B) | stack (B) | PTX instr. (loop) | "
            "fma.rn.f64 (loop) | f64 arith. (loop) | f32 arith. (loop) | cvt (loop) | "
            "ld.global (loop) | of which .nc (loop) | st.global (loop) |\n|" + " --- |" * 12)
    body = []
    for f in rows:
        k, lp = f.kernel, f.loop
        body.append(f"| {f.name} | {f.registers} | {f.spill_stores}/{f.spill_loads} | "
                    f"{f.stack_frame} | {k.instructions} ({lp.instructions}) | "
                    f"{k.fma_f64} ({lp.fma_f64}) | {k.f64} ({lp.f64}) | {k.f32} ({lp.f32}) | "
                    f"{k.cvt} ({lp.cvt}) | {k.ld_global} ({lp.ld_global}) | "
                    f"{k.ld_global_nc} ({lp.ld_global_nc}) | "
                    f"{k.st_global} ({lp.st_global}) |")
    tools = sorted({f"PTX ISA {f.ptx_version}, {f.ptxas}" for f in rows})
    mixes = [f"- {f.name}: " + ", ".join(f"{op} {n}" for op, n in f.loop_f64.items())
             for f in rows if "float32" in f.name]
    return "\n".join([head, *body, "", f"Compiled for {ARCH} by numba-cuda's NVVM; "
                      + "; ".join(tools) + ".", "", "Float64 instructions in the step loop of "
                      "the float32 kernels, by operation (the trades' accounting, the "
                      "settlements, the sum of the book's delta and the hedger table's flags; "
                      "docs/precision.md):", *mixes])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    table = markdown(kernel_figures())
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
