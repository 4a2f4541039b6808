"""One-command GPU check: ``python benchmarks/gpucheck.py`` on a machine with a CUDA GPU.

In one run (a few minutes on an H100, most of it compiling), it

1. prints the device, the driver and CUDA runtime versions and the libraries' versions;
2. runs the CPU against the GPU on every market family (the models of ``gpuhedge.models`` and
   supplied prices) with one strategy of every rule class and its model-specific hedge vols,
   under four cost levels, and reports per case the largest difference relative to
   max(|CPU|, 1e-3) over every per-path result, passing at rtol 1e-12 (``PARITY_RTOL``);
3. times the kernel alone (its launches, each synchronised) and ``simulate`` end to end for
   1M paths x 252 steps of one delta hedger (float64 and float32) and of 16 hedgers x 4 cost
   levels (64 cells, float64); best of ``--repeat`` after one run that compiles;
4. prints the registers per thread of the GBM kernels as the driver loaded them, and the
   registers, spills and PTX instruction mix of the same kernels compiled for sm_90
   (``benchmarks/ptx_figures.py``);
5. writes all of it to ``results/bench/gpu-<device>-<date>.md`` (``--out-dir`` to change).

It exits with 1 when a parity case fails. ``--tiny`` runs the same steps at a size that
numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) finishes in seconds, on the GBM family and
supplied prices, so that CI runs this script and it cannot rot; the register figures need the
real compiler and are left out under the simulator.
"""

import argparse
import datetime
import importlib.metadata
import multiprocessing
import os
import platform
import re
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

import gpuhedge as gh
from gpuhedge import backend
from gpuhedge.kernels import cuda as target
from gpuhedge.rules import HEDGE_VOL_RULES

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import bench, ptx_figures  # noqa: E402  (run as a script from anywhere)

PARITY_RTOL = 1e-12
OUT_DIR = Path(__file__).resolve().parent.parent / "results" / "bench"
BOOK = gh.Book([gh.Position(gh.EuropeanCall(100.0, 0.5), -3.0),
                gh.Position(gh.EuropeanPut(90.0, 0.25), 1.0)])
COSTS = {"free": gh.Costs(), "costly": gh.Costs(proportional=1e-3, fixed=0.05),
         "market": gh.Costs(proportional=1e-3, impact=0.3, adv=50.0, impact_vol=0.015,
                            borrow_rate=0.05, lend_rate=0.01, option_proportional=0.01),
         "lagged": gh.Costs(proportional=1e-3, impact=0.2, adv=80.0, impact_vol=0.02, lag=2)}
SV = dict(spot=100.0, rate=0.03, v0=0.04, kappa=2.0, theta=0.04, xi=0.35, rho=-0.7)


def markets(tiny):
    """One market of every family (GBM only with ``tiny``)."""
    if tiny:
        return [gh.BlackScholes(spot=100.0, vol=0.25, rate=0.03, dividend=0.01)]
    return [gh.BlackScholes(spot=100.0, vol=0.25, rate=0.03, dividend=0.01),
            gh.Merton(spot=100.0, vol=0.2, rate=0.03, lam=3.0, mu_j=-0.1, sigma_j=0.2),
            gh.Kou(spot=100.0, vol=0.2, rate=0.03, lam=3.0, p=0.4, eta1=8.0, eta2=6.0),
            gh.Heston(**SV), gh.Heston(**SV, scheme="euler"),
            gh.Bates(**SV, lam=3.0, mu_j=-0.1, sigma_j=0.2),
            gh.CEV(spot=100.0, sigma=2.5, beta=0.5, rate=0.03)]


def rules(market=None):
    """One strategy of every rule class, and a delta hedger per hedge-vol rule of ``market``."""
    found = {"delta": gh.DeltaHedge(vol=0.25, every=1),
             "delta every 3": gh.DeltaHedge(vol=0.2, every=3, initial_shares=-0.5),
             "static": gh.StaticHedge(vol=0.3), "none": gh.NoHedge(vol=0.25),
             "at": gh.HedgeAt(vol=0.25, times=(0.25,)),  # a grid point at 6 and 64 steps
             "band": gh.DeltaBand(vol=0.25, band=0.02),
             "band edge": gh.DeltaBand(vol=0.25, band=0.02, to="edge"),
             "spot": gh.SpotMove(vol=0.25, pct=0.01),
             "ww": gh.WhalleyWilmott(vol=0.25, risk_aversion=0.1), "leland": gh.Leland(vol=0.25),
             "zak": gh.Zakamouline(vol=0.25, risk_aversion=0.1, initial_shares=0.8),
             "dg": gh.DeltaGammaHedge(vol=0.25, option=gh.EuropeanCall(105.0, 0.75), every=2),
             "dv roll": gh.DeltaVegaHedge(vol=0.25, option=gh.EuropeanPut(95.0, 0.25),
                                          roll=True),
             "put": gh.SyntheticPut(vol=0.25, floor=0.85), "cppi": gh.CPPI(multiplier=5.0)}
    own = getattr(type(market), "hedge_rules", ())
    found |= {f"delta {name}": gh.DeltaHedge(vol=0.2, every=2, hedge_vol=name)
              for name, code in HEDGE_VOL_RULES.items() if code in own}
    return found


def parity_cases(tiny):
    """Names of the parity cases: "<market index> <dtype>" per family, and supplied prices."""
    cases = [f"{i} {dtype}" for i, market in enumerate(markets(tiny))
             for dtype in (("float64", "float32") if isinstance(market, gh.BlackScholes)
                           else ("float64",))]
    return cases + ["supplied float64"]


def run_case(case, n_paths, n_steps, tiny, device):
    """(label, {per-path result: values}) of parity ``case`` on ``device``."""
    which, dtype = case.split()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gh.FellerWarning)
        if which == "supplied":
            steps = np.random.default_rng(0).normal(0.0, 0.02, (n_paths, n_steps + 1))
            steps[:, 0] = 0.0  # one first price: the insurers' units are set at t = 0
            prices = 100.0 * np.exp(np.cumsum(steps, axis=1))
            times = np.linspace(0.0, 0.5, n_steps + 1)
            label = "supplied prices"
            ds = gh.hedge_paths(prices, times, BOOK, rules(), COSTS, rate=0.03, dividend=0.01,
                                device=device)
        else:
            market = markets(tiny)[int(which)]
            label = bench.market_label(market)
            ds = gh.simulate(market, BOOK, rules(market), COSTS, n_paths=n_paths,
                             n_steps=n_steps, seed=5, dtype=dtype, device=device)
    return f"{label} {dtype}", {name: np.asarray(value.values, float)
                                for name, value in ds.data_vars.items()
                                if "path" in value.dims
                                and np.issubdtype(value.dtype, np.number)}


def difference(gpu, cpu):
    """(largest |GPU - CPU| / max(|CPU|, 1e-3) over the per-path results, whether every
    result agrees to rtol ``PARITY_RTOL``, atol ``PARITY_RTOL`` * 1e-3)."""
    worst, same = 0.0, True
    for name, b in cpu.items():
        a = gpu[name]
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-3),
                                        initial=0.0)))
        same &= bool(np.allclose(a, b, rtol=PARITY_RTOL, atol=PARITY_RTOL * 1e-3))
    return worst, same


def parity(n_paths, n_steps, tiny):
    """[(case, largest relative difference, passed)] of CPU against GPU. The CPU side runs in
    worker processes (one per case, up to the CPU count) while the GPU side runs here: each
    market family compiles its own CPU kernel, which takes 35-75 s when not cached on disk."""
    cases = parity_cases(tiny)
    rows = []
    spawn = multiprocessing.get_context("spawn")  # no CUDA state is inherited
    with ProcessPoolExecutor(min(len(cases), os.cpu_count() or 1), mp_context=spawn) as pool:
        cpu = [pool.submit(run_case, case, n_paths, n_steps, tiny, "cpu") for case in cases]
        for case, reference in zip(cases, cpu):
            label, gpu = run_case(case, n_paths, n_steps, tiny, "cuda")
            worst, same = difference(gpu, reference.result()[1])
            rows.append((label, worst, same))
            print(f"  parity {label}: max rel. diff {worst:.2e} {'ok' if same else 'FAILED'}",
                  flush=True)
    return rows


def timings(n_paths, n_steps, repeat):
    """[(case, dtype, kernel seconds, simulate seconds)], best of ``repeat``."""
    launch, spent = target.launch, []

    def timed(*args, **kw):
        started = time.perf_counter()
        launch(*args, **kw)  # enqueues the kernel on the current stream: wait for it
        backend.wait(backend.mark("cuda"))
        spent.append(time.perf_counter() - started)

    book = gh.Book([gh.Position(bench.OPTION, bench.QUANTITY)])
    rows = []
    target.launch = timed
    try:
        for case, dtype in (("1 hedger", "float64"), ("1 hedger", "float32"),
                            ("16 x 4", "float64")):
            hedges, costs = bench.case_inputs(case, n_steps)
            best = (np.inf, np.inf)
            for attempt in range(repeat + 1):  # the first compiles
                spent.clear()
                started = time.perf_counter()
                gh.simulate(bench.MARKET, book, hedges, costs, n_paths=n_paths,
                            n_steps=n_steps, seed=bench.SEED, dtype=dtype, device="cuda")
                total = time.perf_counter() - started
                if attempt:
                    best = min(best, (sum(spent), total), key=lambda pair: pair[1])
            rows.append((case, dtype) + best)
            print(f"  {case} {dtype}: kernel {best[0]:.3f} s, simulate {best[1]:.3f} s "
                  f"({n_paths * n_steps / best[1]:.3g} path-steps/s end to end)", flush=True)
    finally:
        target.launch = launch
    return rows


def versions():
    """{what: version} of the device, the driver and the libraries."""
    found = {"device": backend.device_name("cuda"), "python": platform.python_version(),
             "platform": platform.platform()}
    if backend.gpu_available():
        import cupy

        found["driver (CUDA)"] = cupy.cuda.runtime.driverGetVersion()
        found["runtime (CUDA)"] = cupy.cuda.runtime.runtimeGetVersion()
    for package in ("gpuhedge", "numpy", "numba", "numba-cuda", "cupy-cuda13x",
                    "nvidia-cuda-nvcc"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    found["gpuhedge"] = gh.__version__
    return found


def registers():
    """Static figures of the GBM kernels for sm_90, or why there are none."""
    if target.simulator_enabled():
        return None, "not read under the CUDA simulator (it has no compiler)"
    try:
        return ptx_figures.kernel_figures(), None
    except (FileNotFoundError, RuntimeError) as error:
        return None, f"not read: {error}"


def device_registers():
    """{dtype: registers per thread} of the GBM kernels as the driver loaded them for this
    device (the specialisations ``timings`` ran); {} under the simulator."""
    if target.simulator_enabled():
        return {}
    found = {}
    for (dynamics, dtype, *_), run in target.BUILT.items():
        if dynamics == gh.BlackScholes.dynamics:
            found.setdefault(dtype, set()).update(run.get_regs_per_thread().values())
    return {dtype: sorted(registers) for dtype, registers in found.items()}


def markdown(report):
    """The report as a Markdown page."""
    lines = [f"# GPU check: {report['versions']['device']}, {report['date']}", "",
             f"Command: `{report['command']}`; {report['seconds']:.0f} s in all.", "",
             "| what | version |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in report["versions"].items()]
    n_paths, n_steps = report["parity_size"]
    lines += ["", f"## Parity, CPU against GPU ({n_paths} paths x {n_steps} steps, "
              f"rtol {PARITY_RTOL:g})", "", "| case | max rel. diff | result |",
              "| --- | --- | --- |"]
    lines += [f"| {name} | {worst:.2e} | {'ok' if same else 'FAILED'} |"
              for name, worst, same in report["parity"]]
    n_paths, n_steps = report["timing_size"]
    lines += ["", f"## Timings ({n_paths} paths x {n_steps} steps, best of {report['repeat']})",
              "", "| case | dtype | kernel (s) | simulate (s) | path-steps/s, kernel | "
              "path-steps/s, simulate |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {case} | {dtype} | {kernel:.4f} | {total:.4f} | "
              f"{n_paths * n_steps / kernel:.3g} | {n_paths * n_steps / total:.3g} |"
              for case, dtype, kernel, total in report["timings"]]
    lines += ["", "## Registers", ""]
    lines += [f"GBM kernel, {dtype}, as loaded on the device: {regs} registers per thread."
              for dtype, regs in report["device_registers"].items()]
    lines += ["", "Compiled for sm_90 and read by ptxas:", ""]
    figures, why = report["registers"]
    lines += [ptx_figures.markdown(figures) if figures else f"Registers {why}."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true",
                        help="simulator size: GBM and supplied prices, a few paths and steps")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR,
                        help="folder of the report (default: results/bench)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if not (backend.gpu_available() or target.simulator_enabled()):
        print(f"gpucheck: no CUDA device ({backend.cuda_status()[1]})", file=sys.stderr)
        return 2
    report = {"date": datetime.date.today().isoformat(),
              "command": "python benchmarks/gpucheck.py" + " --tiny" * args.tiny,
              "versions": versions(), "repeat": args.repeat,
              "parity_size": (8, 6) if args.tiny else (4096, 64),
              "timing_size": (16, 20) if args.tiny else (bench.GPU_PATHS, 252)}
    for key, value in report["versions"].items():
        print(f"{key}: {value}")
    print("parity:", flush=True)
    report["parity"] = parity(*report["parity_size"], args.tiny)
    print("timings:", flush=True)
    report["timings"] = timings(*report["timing_size"], args.repeat)
    report["device_registers"] = device_registers()
    for dtype, regs in report["device_registers"].items():
        print(f"GBM kernel {dtype} on the device: {regs} registers per thread")
    report["registers"] = registers()
    figures, why = report["registers"]
    print(ptx_figures.markdown(figures) if figures else f"registers {why}")
    report["seconds"] = time.perf_counter() - started
    slug = re.sub(r"[^a-z0-9]+", "-", report["versions"]["device"].lower()).strip("-")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"gpu-{slug}-{report['date']}.md"
    out.write_text(markdown(report))
    print(f"wrote {out}")
    return 0 if all(same for _, _, same in report["parity"]) else 1


if __name__ == "__main__":
    sys.exit(main())
