"""Sweep benchmark: how much do storage and scheduling add to the kernel time?

Run as ``python benchmarks/bench_sweep.py [--paths N] [--device cpu|cuda]``. The case: a short
ATM call book, 8 scenarios (market vol 0.1, 0.15, 0.2, 0.3 x strike 90, 110), 8 rules
(no hedge, static, delta every 1, 2, 4, 13, 26 steps at vol 0.2, and every step at vol 0.25),
one cost level (10 bp + 1 per trade), 52 steps; 10^7 paths per scenario on a CPU and 10^8
on a GPU by default.

Three timings of the same work, after a warm-up that compiles the kernels, each as wall
time and as this process's CPU time (all threads; on a shared or throttled machine the CPU
time is the steadier measure):

* **kernel, in sequence**: ``simulate`` on every (scenario, block of ``chunk_paths`` paths)
  of the sweep, one after another with every numba thread, results discarded: the engine's
  own time for the numbers;
* **kernel, as scheduled**: the sweep's own Dask tasks and threads, each task only running
  its kernel (no conversion, no store);
* **sweep**: ``gpuhedge.sweep.sweep`` into a new Zarr store with its default scheduler:
  the kernels plus float32 conversion, compression, writes, completion marks, creating and
  opening the store, and Dask scheduling.

overhead = sweep - kernel in sequence, as a fraction of the kernel time (target <= 10 %);
storage = sweep - kernel as scheduled isolates what the store costs. Also reported: the bytes
written per path, the compression ratio and the write rate (GB/s of stored bytes over the
sweep's wall time), and, inside the sweep's tasks, the time spent in the kernel and in the
writes (summed over threads). Results go to ``results/bench/sweep-<device>-<date>.json`` and
``.md``; the store is deleted afterwards unless ``--keep``.
"""

import argparse
import contextlib
import datetime
import importlib
import importlib.metadata
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from gpuhedge import __version__, backend
from gpuhedge import store as zstore
from gpuhedge.costs import Costs
from gpuhedge.engine import simulate
from gpuhedge.instruments import Book, EuropeanCall
from gpuhedge.models import BlackScholes
from gpuhedge.rules import DeltaHedge, NoHedge, StaticHedge

# the module (``gpuhedge.sweep`` the attribute is the function, exported by the package)
sweep_module = importlib.import_module("gpuhedge.sweep")

MARKET = BlackScholes(spot=100.0, vol=0.2, rate=0.02)
BOOK = Book.short(EuropeanCall(strike=100.0, maturity=1.0), 1000.0)
HEDGES = {"none": NoHedge(), "static": StaticHedge(vol=0.2),
          **{f"delta every {k}": DeltaHedge(vol=0.2, every=k) for k in (1, 2, 4, 13, 26)},
          "delta every 1 at 25%": DeltaHedge(vol=0.25, every=1)}
COSTS = {"10 bp + 1": Costs(proportional=1e-3, fixed=1.0)}
GRID = {"market.vol": [0.1, 0.15, 0.2, 0.3], "book.strike": [90.0, 110.0]}
N_STEPS = 52
SEED = 7
PATHS = {"cpu": 10**7, "cuda": 10**8}
TARGET = 0.10


class _Timer:
    """Thread-safe sums of the time spent in a few functions of ``sweep`` (monkeypatched)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.total = {}
        self.plan = None

    def wrap(self, name, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with self.lock:
                    self.total[name] = self.total.get(name, 0.0) + time.perf_counter() - t0
        return timed


@contextlib.contextmanager
def _instrumented(timer):
    saved = (sweep_module._simulate_block, zstore.write_block, zstore.mark_done,
             sweep_module._execute)

    def execute(job, todo, *, plan, **kwargs):
        # (dask threads, numba threads per task) of the local scheduler, and the work
        timer.plan, timer.job, timer.todo = plan, job, todo
        return saved[3](job, todo, plan=plan, **kwargs)

    sweep_module._simulate_block = timer.wrap("kernel in tasks", saved[0])
    zstore.write_block = timer.wrap("write in tasks", saved[1])
    zstore.mark_done = timer.wrap("mark in tasks", saved[2])
    sweep_module._execute = execute
    try:
        yield
    finally:
        (sweep_module._simulate_block, zstore.write_block, zstore.mark_done,
         sweep_module._execute) = saved


def _clock():
    return time.perf_counter(), time.process_time()


def _since(start):
    wall, cpu = _clock()
    return wall - start[0], cpu - start[1]


def kernel_in_sequence(device, n_paths, chunk_paths):
    """(wall, cpu) seconds of ``simulate`` over every block of every scenario, in turn."""
    _, items = sweep_module.expand(MARKET, BOOK, HEDGES, COSTS, N_STEPS, GRID)
    start = _clock()
    for sc in items:
        for first in range(0, n_paths, chunk_paths):
            simulate(sc.market, sc.book, sc.hedges, sc.costs, n_paths=min(chunk_paths,
                     n_paths - first), n_steps=sc.n_steps, seed=SEED, device=device,
                     first_path=first)
    return _since(start)


def kernel_as_scheduled(job, todo, plan):
    """(wall, cpu) seconds of the sweep's tasks and threads with tasks that only simulate."""
    saved = sweep_module.run_block
    sweep_module.run_block = lambda job, s, b: sweep_module._simulate_block(job, s, b).sizes[
        "path"]
    try:
        start = _clock()
        sweep_module._execute(job, todo, client=None, plan=plan, progress=False)
        return _since(start)
    finally:
        sweep_module.run_block = saved


def run(*, n_paths=None, device="auto", path=None, keep=False, chunk_paths=None,
        workers=None, compression="lz4"):
    """Time the kernel and the sweep; return the report (a dict)."""
    device = backend.resolve(device, "bench_sweep")
    n_paths = n_paths or PATHS[device]
    tmp = None
    if path is None:
        tmp = tempfile.mkdtemp(prefix="gpuhedge-bench-sweep-")
        path = os.path.join(tmp, "bench.zarr")
    kw = dict(n_steps=N_STEPS, seed=SEED, grid=GRID, device=device, compression=compression,
              workers=workers, progress=False)
    # warm-up: compile the kernels (and the CPU one the sweep's validation runs)
    sweep_module.sweep(MARKET, BOOK, HEDGES, COSTS, n_paths=2048, store=path + ".warm",
                       chunk_paths=1024, overwrite=True, **kw)
    shutil.rmtree(path + ".warm", ignore_errors=True)

    timer = _Timer()
    loads = {"before sweep": _load()}
    start = _clock()
    with _instrumented(timer):
        ds = sweep_module.sweep(MARKET, BOOK, HEDGES, COSTS, n_paths=n_paths, store=path,
                                chunk_paths=chunk_paths, overwrite=True, **kw)
    sweep_s, sweep_cpu = _since(start)
    chunk = int(ds.attrs["chunk_paths"])
    sizes = zstore.bytes_per_path(path)
    loads["before kernel as scheduled"] = _load()
    scheduled_s, scheduled_cpu = kernel_as_scheduled(timer.job, timer.todo, timer.plan)
    loads["before kernel in sequence"] = _load()
    kernel_s, kernel_cpu = kernel_in_sequence(device, n_paths, chunk)
    stored_bytes = sizes["stored"] * n_paths
    n_scen = int(np.prod([len(v) for v in GRID.values()]))
    plan = timer.plan
    report = {
        "machine": {
            "device": backend.device_name(device), "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "python": sys.version.split()[0],
            **{p: _version(p) for p in ("numpy", "numba", "xarray", "zarr", "dask")},
            "gpuhedge": __version__, "git_revision": zstore.git_revision(),
            "load_average": loads,
        },
        "settings": {"n_paths": n_paths, "n_steps": N_STEPS, "scenarios": n_scen,
                     "rules": len(HEDGES), "cost_levels": len(COSTS), "chunk_paths": chunk,
                     "tasks": n_scen * -(-n_paths // chunk), "compression": compression,
                     "storage": ds.attrs["storage"], "device": device,
                     "threads_plan": plan},
        "kernel_s": kernel_s, "kernel_cpu_s": kernel_cpu,
        "kernel_scheduled_s": scheduled_s, "kernel_scheduled_cpu_s": scheduled_cpu,
        "sweep_s": sweep_s, "sweep_cpu_s": sweep_cpu,
        "overhead_s": sweep_s - kernel_s,
        "overhead_fraction": (sweep_s - kernel_s) / kernel_s,
        "overhead_cpu_fraction": (sweep_cpu - kernel_cpu) / kernel_cpu,
        "storage_fraction": (sweep_s - scheduled_s) / kernel_s,
        "storage_cpu_fraction": (sweep_cpu - scheduled_cpu) / kernel_cpu,
        "target": TARGET, "in_tasks_s": timer.total,
        "bytes_per_path": sizes["stored"], "raw_bytes_per_path": sizes["raw"],
        "compression_ratio": sizes["stored"] / sizes["raw"],
        "stored_gb": stored_bytes / 1e9, "write_gb_per_s": stored_bytes / 1e9 / sweep_s,
        "path_steps_per_s_sweep": n_scen * n_paths * N_STEPS / sweep_s,
        "path_steps_per_s_kernel": n_scen * n_paths * N_STEPS / kernel_s,
    }
    if not keep:
        shutil.rmtree(path, ignore_errors=True)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return report


def _load():
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def markdown(r):
    """The report as a short Markdown page."""
    m, s = r["machine"], r["settings"]
    verdict = "met" if max(r["overhead_fraction"], r["overhead_cpu_fraction"]) <= r["target"] \
        else "missed"
    tasks = ", ".join(f"{k} {v:.1f} s" for k, v in r["in_tasks_s"].items())
    return "\n".join([
        f"# gpuhedge sweep benchmark, {datetime.date.today().isoformat()}",
        "",
        f"Device: {m['device']}; {m['cpu_count']} CPUs, {m['platform']}; Python {m['python']}, "
        f"NumPy {m['numpy']}, numba {m['numba']}, xarray {m['xarray']}, zarr {m['zarr']}, "
        f"dask {m['dask']}; gpuhedge {m['gpuhedge']} ({m['git_revision']}). Load averages: "
        f"{m['load_average']}.",
        "",
        f"Case: {s['n_paths']:,} paths x {s['n_steps']} steps x {s['scenarios']} scenarios x "
        f"{s['rules']} rules x {s['cost_levels']} cost level; {s['tasks']} tasks of "
        f"{s['chunk_paths']:,} paths; storage {s['storage']}, compression {s['compression']}; "
        f"local threads plan (dask threads, numba threads per task): {s['threads_plan']}.",
        "",
        "| | wall s | CPU s | path-steps/s (wall, per scenario) |",
        "|---|---:|---:|---:|",
        f"| kernel, in sequence (simulate only) | {r['kernel_s']:.1f} | {r['kernel_cpu_s']:.1f} "
        f"| {r['path_steps_per_s_kernel'] / 1e6:.2f} M |",
        f"| kernel, as scheduled (the sweep's tasks, no store) | {r['kernel_scheduled_s']:.1f} "
        f"| {r['kernel_scheduled_cpu_s']:.1f} | |",
        f"| sweep (kernel + storage + scheduling) | {r['sweep_s']:.1f} | {r['sweep_cpu_s']:.1f} "
        f"| {r['path_steps_per_s_sweep'] / 1e6:.2f} M |",
        "",
        f"Overhead (sweep - kernel in sequence): {r['overhead_s']:.1f} s wall = "
        f"{100 * r['overhead_fraction']:.1f} % of the kernel "
        f"({100 * r['overhead_cpu_fraction']:.1f} % in CPU time); target <= "
        f"{100 * r['target']:.0f} %: {verdict}. Storage alone "
        f"(sweep - kernel as scheduled): {100 * r['storage_fraction']:.1f} % wall, "
        f"{100 * r['storage_cpu_fraction']:.1f} % CPU.",
        "",
        f"Inside the sweep's tasks (summed over its threads): {tasks}.",
        "",
        f"Stored: {r['bytes_per_path']:.1f} bytes per path index over all {s['scenarios']} "
        f"scenarios, i.e. {r['bytes_per_path'] / s['scenarios']:.1f} per scenario path and "
        f"{r['bytes_per_path'] / s['scenarios'] / (s['rules'] * s['cost_levels']):.2f} per "
        f"cell path (the per-path variables of each cell, plus the terminal spot) (raw "
        f"{r['raw_bytes_per_path']:.1f}; ratio {r['compression_ratio']:.3f}); "
        f"{r['stored_gb']:.2f} GB written at {r['write_gb_per_s']:.3f} GB/s.",
        "",
    ])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python benchmarks/bench_sweep.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", type=int, help="paths per scenario (default 10^7 on a "
                        "CPU, 10^8 on a GPU)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--store", help="where to write the store (default: a temporary "
                        "directory)")
    parser.add_argument("--keep", action="store_true", help="keep the store")
    parser.add_argument("--chunk-paths", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--compression", default="lz4", choices=zstore.COMPRESSION)
    parser.add_argument("--out", default="results/bench", help="directory of the report")
    args = parser.parse_args(argv)
    report = run(n_paths=args.paths, device=args.device, path=args.store, keep=args.keep,
                 chunk_paths=args.chunk_paths, workers=args.workers,
                 compression=args.compression)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"cpu-{os.cpu_count()}core" if report["settings"]["device"] == "cpu" else "cuda"
    stem = f"sweep-{tag}-{datetime.date.today().isoformat()}"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (out / f"{stem}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
