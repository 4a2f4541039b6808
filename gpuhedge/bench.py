"""Throughput benchmark: ``gpuhedge.simulate`` against a NumPy implementation of the same work.

Run as ``python -m gpuhedge.bench``. Two cases hedge a short ATM call (S = K = 100, r = 0.05,
vol 0.2, one year) along Black-Scholes paths:

* ``1 hedger``: one delta hedger rebalancing every step, one cost level;
* ``16 x 4``: 16 delta hedgers (rebalancing every 1, 2, ..., 16 steps, hedge vol 0.2) times
  4 cost levels, all on the same paths.

Speed is reported in path-steps per second, ``n_paths * n_steps / seconds`` (not multiplied by
the number of hedgers or cost levels), for gpuhedge and for ``numpy_hedge``, a straightforward
vectorised NumPy program (arrays over paths, a Python loop over steps) measured in the same
process. Both follow the P&L convention of ``gpuhedge.engine``; the report also gives the
largest z-score of the differences of the P&L means and standard deviations between the two,
which shows that the baseline does the same work (different random numbers, so |z| is of
order 1). Results go to ``results/bench/<device>-<date>.json`` and ``.md``.
"""

import argparse
import datetime
import importlib.metadata
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
from scipy.special import ndtr

from . import __version__, backend
from .costs import Costs
from .engine import simulate
from .instruments import Book, EuropeanCall
from .models import BlackScholes
from .strategies import DeltaHedge

MARKET = BlackScholes(spot=100.0, vol=0.2, rate=0.05)
OPTION = EuropeanCall(strike=100.0, maturity=1.0)
QUANTITY = -1.0  # short one call
HEDGE_VOL = 0.2
SEED = 2026
CPU_PATHS = 100_000
GPU_PATHS = 1_000_000
GPU_NUMPY_PATHS = 100_000  # on a GPU the NumPy baseline runs at this size; its rate is scaled
CASES = {
    "1 hedger": {"every": (1,), "costs": ((0.001, 0.01),), "target": 2.0},
    "16 x 4": {"every": tuple(range(1, 17)),
               "costs": ((0.0, 0.0), (0.001, 0.0), (0.0, 0.01), (0.001, 0.01)),
               "target": 5.0},
}


def case_inputs(name):
    """The hedgers and cost levels of a benchmark case, as named dicts for ``simulate``.

    Parameters
    ----------
    name : str
        A key of ``CASES``.

    Returns
    -------
    hedges : dict of str -> DeltaHedge
    costs : dict of str -> Costs
    """
    case = CASES[name]
    hedges = {f"delta every {e}": DeltaHedge(vol=HEDGE_VOL, every=e) for e in case["every"]}
    costs = {f"prop {p:g} fixed {f:g}": Costs(proportional=p, fixed=f) for p, f in case["costs"]}
    return hedges, costs


def numpy_hedge(market, option, quantity, hedges, costs, *, n_paths, n_steps, seed,
                dtype="float64"):
    """Hedge ``quantity`` calls with delta hedgers along GBM paths, in plain vectorised NumPy.

    The reference for the benchmark: the same work as ``gpuhedge.simulate`` with the same P&L
    convention (see ``gpuhedge.engine``), written the obvious way. Arrays run over paths and a
    Python loop over steps draws ``default_rng(seed).standard_normal(n_paths)`` per step, moves
    the spot by the exact log-normal step, computes the Black-Scholes delta once per step (with
    ``scipy.special.ndtr``) and lets every hedger that rebalances at that step trade to it.
    Costs are linear in two sums per hedger, the present values of the traded notional and of
    the trade count, so every cost level is priced once from them at the end (as the kernel
    does; accumulating each cost level at each trade would make the baseline slower). At
    maturity the call is cash settled and the shares are unwound.

    Parameters
    ----------
    market : BlackScholes
        Market without dividends.
    option : EuropeanCall
        The option (a call); its maturity is the horizon.
    quantity : float
        Calls held (negative: written).
    hedges : sequence of DeltaHedge
        Hedgers, all with the same hedge vol.
    costs : sequence of Costs
        Cost levels.
    n_paths, n_steps : int
        Paths and steps to maturity.
    seed : int
        Seed of ``numpy.random.default_rng``.
    dtype : {"float64", "float32"}
        Precision of the normals and of the simulated spot; as in the kernel, the delta, the
        cash flows and the costs are computed in float64 (a float32 delta would stop changing
        deep in the money, so fewer trades would pay the fixed cost).

    Returns
    -------
    dict
        ``pnl`` and ``cost_paid`` of shape (hedgers, costs, paths), ``trades`` of shape
        (hedgers, paths) and ``terminal_spot`` of shape (paths,).
    """
    vols = {h.vol for h in hedges}
    if market.dividend != 0.0 or not option.is_call or len(vols) != 1:
        raise ValueError("numpy_hedge: needs a market without dividends, a call and one hedge "
                         f"vol; got dividend {market.dividend}, {option!r}, vols {sorted(vols)}")
    dtype = np.dtype(dtype)
    vol = vols.pop()
    rate, strike, horizon = market.rate, option.strike, option.maturity
    dt = horizon / n_steps
    drift = (market.mu - 0.5 * market.vol**2) * dt
    diffusion = market.vol * math.sqrt(dt)
    every = np.array([h.every for h in hedges])
    proportional = np.array([c.proportional for c in costs])[:, None]  # (costs, 1)
    fixed = np.array([c.fixed for c in costs])[:, None]

    d1 = (math.log(market.spot / strike) + (rate + 0.5 * vol**2) * horizon) / (
        vol * math.sqrt(horizon))
    premium = quantity * (market.spot * ndtr(d1) - strike * math.exp(-rate * horizon) * ndtr(
        d1 - vol * math.sqrt(horizon)))

    rng = np.random.default_rng(seed)
    spot = np.full(n_paths, market.spot, dtype=dtype)
    position = np.zeros((len(hedges), n_paths))
    cash = np.full((len(hedges), n_paths), -premium)  # present values of the cash flows
    turnover = np.zeros((len(hedges), n_paths))  # present value of |shares traded| * spot
    tickets = np.zeros((len(hedges), n_paths))  # present value of 1 per trade
    trades = np.zeros((len(hedges), n_paths), dtype=np.int32)

    def trade(h, qty, disc):
        traded = qty != 0.0
        position[h] += qty
        cash[h] -= qty * spot * disc
        turnover[h] += np.abs(qty) * spot * disc
        tickets[h] += traded * disc
        trades[h] += traded

    for k in range(n_steps):
        if k > 0:
            spot *= np.exp(drift + diffusion * rng.standard_normal(n_paths, dtype=dtype))
        rebalancing = np.flatnonzero(k % every == 0)
        if rebalancing.size == 0:
            continue
        tau = horizon - k * dt
        log_moneyness = np.log(spot, dtype=np.float64) - math.log(strike)
        d1 = (log_moneyness + (rate + 0.5 * vol**2) * tau) / (vol * math.sqrt(tau))
        target = -quantity * ndtr(d1)  # shares held: minus the book's delta
        for h in rebalancing:
            trade(h, target - position[h], math.exp(-rate * k * dt))

    spot *= np.exp(drift + diffusion * rng.standard_normal(n_paths, dtype=dtype))
    disc = math.exp(-rate * horizon)
    for h in range(len(hedges)):
        trade(h, -position[h], disc)  # unwind at maturity
    settled = quantity * np.maximum(spot - strike, 0.0) * disc
    cost = proportional * turnover[:, None, :] + fixed * tickets[:, None, :]
    return {"pnl": (cash + settled)[:, None, :] - cost, "cost_paid": cost, "trades": trades,
            "terminal_spot": spot}


def agreement(pnl_a, pnl_b):
    """Largest |z| of the differences of P&L mean and std between two independent samples.

    Parameters
    ----------
    pnl_a, pnl_b : ndarray of shape (..., paths)
        P&L samples of the same scenarios (leading axes), from independent random numbers.

    Returns
    -------
    z_mean, z_std : float
        max over scenarios of |m_a - m_b| / sqrt(se_a^2 + se_b^2), with se(mean) = s / sqrt(n)
        and se(std) = s sqrt((kurtosis - 1) / (4 n)) (delta method), and the same for the stds.
    """
    def moments(pnl):
        n = pnl.shape[-1]
        mean = pnl.mean(axis=-1)
        m2 = ((pnl - mean[..., None]) ** 2).mean(axis=-1)
        m4 = ((pnl - mean[..., None]) ** 4).mean(axis=-1)
        std = np.sqrt(m2)
        return mean, std, std / math.sqrt(n), std * np.sqrt((m4 / m2**2 - 1.0) / (4.0 * n))

    mean_a, std_a, se_mean_a, se_std_a = moments(pnl_a)
    mean_b, std_b, se_mean_b, se_std_b = moments(pnl_b)
    z_mean = np.abs(mean_a - mean_b) / np.hypot(se_mean_a, se_mean_b)
    z_std = np.abs(std_a - std_b) / np.hypot(se_std_a, se_std_b)
    return float(z_mean.max()), float(z_std.max())


def best_time(run, repeat):
    """Best wall time of ``repeat`` calls of ``run()`` (``time.perf_counter``) and the last result.

    Parameters
    ----------
    run : callable
        Called with no arguments.
    repeat : int
        Number of timed calls (>= 1).

    Returns
    -------
    seconds : float
    result : object
        What the last call returned.
    """
    if repeat < 1:
        raise ValueError(f"bench: 'repeat' must be >= 1; got {repeat}")
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def run_case(name, *, n_paths, n_steps, device, dtype="float64", repeat=3, numpy_paths=None):
    """Time one case with gpuhedge and with the NumPy baseline.

    The kernel is compiled first by a tiny ``simulate`` of the same case, so no timing includes
    compilation.

    Parameters
    ----------
    name : str
        A key of ``CASES``.
    n_paths, n_steps : int
        Size of the gpuhedge run.
    device : {"cpu", "cuda"}
        Resolved device.
    dtype : {"float64", "float32"}
        Precision of the simulated spot (both programs).
    repeat : int
        Timed repetitions; the best is kept.
    numpy_paths : int, optional
        Paths of the NumPy run (default ``n_paths``); when smaller, its path-steps/s is taken to
        hold at ``n_paths``.

    Returns
    -------
    dict
        The case's row of the report: sizes, seconds, path-steps/s of both, speed-up and its
        target, and the agreement z-scores.
    """
    numpy_paths = n_paths if numpy_paths is None else numpy_paths
    hedges, costs = case_inputs(name)
    book = Book.short(OPTION, -QUANTITY)

    def run_gpuhedge(paths):
        return simulate(MARKET, book, hedges, costs, n_paths=paths, n_steps=n_steps, seed=SEED,
                        device=device, dtype=dtype)

    def run_numpy():
        return numpy_hedge(MARKET, OPTION, QUANTITY, list(hedges.values()), list(costs.values()),
                           n_paths=numpy_paths, n_steps=n_steps, seed=SEED, dtype=dtype)

    run_gpuhedge(256)  # compile the kernel (cached per process) outside the timings
    gh_seconds, ds = best_time(lambda: run_gpuhedge(n_paths), repeat)
    np_seconds, ref = best_time(run_numpy, repeat)
    gh_rate = n_paths * n_steps / gh_seconds
    np_rate = numpy_paths * n_steps / np_seconds
    z_mean, z_std = agreement(ds["pnl"].values, ref["pnl"])
    return {
        "case": name, "device": backend.device_name(device), "precision": np.dtype(dtype).name,
        "n_paths": n_paths, "n_steps": n_steps, "hedgers": len(hedges), "costs": len(costs),
        "gpuhedge_seconds": gh_seconds, "gpuhedge_path_steps_per_s": gh_rate,
        "numpy_paths": numpy_paths, "numpy_seconds": np_seconds,
        "numpy_path_steps_per_s": np_rate, "numpy_scaled": numpy_paths != n_paths,
        "speedup": gh_rate / np_rate, "target_speedup": CASES[name]["target"],
        "z_mean": z_mean, "z_std": z_std,
    }


def source_version():
    """Git commit of the package source and whether ``gpuhedge/`` differs from it.

    This module itself is left out of the comparison: it only holds the NumPy baseline and the
    report, so a committed result file can say whether the code it timed was committed.

    Returns
    -------
    commit : str or None
        None outside a git checkout.
    dirty : bool or None
    """
    root = Path(__file__).resolve().parent.parent

    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        changed = git("status", "--porcelain", "--", "gpuhedge", ":!gpuhedge/bench.py")
        return git("rev-parse", "HEAD"), bool(changed)
    except (OSError, subprocess.CalledProcessError):
        return None, None


def machine_info(device):
    """Description of the machine, the libraries and the source that ran the benchmark."""
    commit, dirty = source_version()
    info = {
        "device": backend.device_name(device), "cpu_count": os.cpu_count(),
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0], "numpy": np.__version__, "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        # the layer is known once a parallel CPU kernel has run
        "numba_threading_layer": numba.threading_layer() if device == "cpu" else None,
        "scipy": importlib.metadata.version("scipy"), "gpuhedge": __version__,
        "git_commit": commit, "git_dirty": dirty,
    }
    if device == "cuda":
        for package in ("numba-cuda", "cupy-cuda13x", "cupy-cuda12x"):
            try:
                info[package] = importlib.metadata.version(package)
            except importlib.metadata.PackageNotFoundError:
                pass
    return info


def device_kind(device):
    """Short file-name tag of the device: ``cpu-2core`` or the slugged GPU name."""
    if device == "cpu":
        return f"cpu-{os.cpu_count()}core"
    return "cuda-" + re.sub(r"[^a-z0-9]+", "-", backend.device_name(device).lower()).strip("-")


def markdown(report):
    """The report as a Markdown page: machine, settings and one table row per case."""
    m, s = report["machine"], report["settings"]
    dirty = ", with uncommitted changes" if m["git_dirty"] else ""
    lines = [
        f"# gpuhedge benchmark, {report['date']}", "",
        f"Device: {m['device']}; {m['cpu_count']} CPUs, {m['platform']}; Python {m['python']}, "
        f"NumPy {m['numpy']}, numba {m['numba']} ({m['numba_threads']} CPU threads, "
        f"threading layer {m['numba_threading_layer']}), SciPy {m['scipy']}, "
        f"gpuhedge {m['gpuhedge']} (commit {m['git_commit']}{dirty}). "
        f"Load average before the run: {m['load_average_before']:.2f}.",
        "",
        f"Short 1 ATM call (S = K = 100, r = 0.05, vol 0.2, T = 1), GBM paths, delta hedges at "
        f"vol {HEDGE_VOL}; {s['precision']}, best of {s['repeat']}, seed {s['seed']}. "
        "Path-steps/s = n_paths * n_steps / seconds (not multiplied by hedgers x costs). "
        "gpuhedge is timed through `gpuhedge.simulate` (results back on the host as an xarray "
        "Dataset), the kernel compiled beforehand; NumPy is `gpuhedge.bench.numpy_hedge`, one "
        "thread, in the same process. z: largest |difference| / standard error of the P&L mean "
        "and std between the two, over all hedger x cost scenarios.", "",
        "| case | hedgers x costs | n_paths | n_steps | gpuhedge s | gpuhedge path-steps/s "
        "| NumPy paths | NumPy s | NumPy path-steps/s | speed-up | target | z mean | z std |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in report["cases"]:
        met = "met" if c["speedup"] >= c["target_speedup"] else "missed"
        lines.append(
            f"| {c['case']} | {c['hedgers']} x {c['costs']} | {c['n_paths']:,} | "
            f"{c['n_steps']} | {c['gpuhedge_seconds']:.3f} | "
            f"{c['gpuhedge_path_steps_per_s'] / 1e6:.3g} M | {c['numpy_paths']:,} | "
            f"{c['numpy_seconds']:.3f} | {c['numpy_path_steps_per_s'] / 1e6:.3g} M | "
            f"{c['speedup']:.2f}x | >= {c['target_speedup']:g}x ({met}) | {c['z_mean']:.2f} | "
            f"{c['z_std']:.2f} |")
    if any(c["numpy_scaled"] for c in report["cases"]):
        lines += ["", "NumPy ran at fewer paths than gpuhedge; its path-steps/s (which does not "
                  "depend on the path count at these sizes) is compared as if it held at the "
                  "gpuhedge size."]
    return "\n".join(lines) + "\n"


def write_report(report, out):
    """Write ``report`` as ``<device kind>-<date>[-float32].json`` and ``.md`` under ``out``.

    Returns
    -------
    json_path, md_path : Path
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    precision = report["settings"]["precision"]
    stem = f"{report['device_kind']}-{report['date']}" + (
        "" if precision == "float64" else f"-{precision}")
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path


def benchmark(*, n_paths=None, n_steps=252, device="auto", dtype="float64", repeat=3,
              numpy_paths=None):
    """Run every case of ``CASES`` and return the report.

    Parameters
    ----------
    n_paths : int, optional
        Paths of the gpuhedge runs (default 100,000 on CPU, 1,000,000 on a GPU).
    n_steps : int
        Steps over the year.
    device : {"auto", "cpu", "cuda"}
    dtype : {"float64", "float32"}
    repeat : int
        Timed repetitions per measurement; the best is kept.
    numpy_paths : int, optional
        Paths of the NumPy runs (default: ``n_paths`` on CPU, at most 100,000 on a GPU).

    Returns
    -------
    dict
        ``date``, ``device_kind``, ``machine``, ``settings`` and ``cases`` (see ``run_case``);
        ``machine`` includes the 1-minute load average before the run, since other processes
        on the machine slow the timings down.
    """
    load = os.getloadavg()[0]
    device = backend.resolve(device)
    if n_paths is None:
        n_paths = GPU_PATHS if device == "cuda" else CPU_PATHS
    if numpy_paths is None:
        numpy_paths = min(n_paths, GPU_NUMPY_PATHS) if device == "cuda" else n_paths
    cases = [run_case(name, n_paths=n_paths, n_steps=n_steps, device=device, dtype=dtype,
                      repeat=repeat, numpy_paths=numpy_paths) for name in CASES]
    return {
        "benchmark": "gpuhedge.bench", "date": datetime.date.today().isoformat(),
        "device_kind": device_kind(device),
        "machine": {**machine_info(device), "load_average_before": load},
        "settings": {"device": device, "precision": np.dtype(dtype).name, "n_paths": n_paths,
                     "n_steps": n_steps, "numpy_paths": numpy_paths, "repeat": repeat,
                     "seed": SEED},
        "cases": cases,
    }


def main(argv=None):
    """Command line: run the benchmark, print the Markdown table and write the result files."""
    parser = argparse.ArgumentParser(prog="python -m gpuhedge.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", type=int, default=None,
                        help=f"paths (default {CPU_PATHS:_} on CPU, {GPU_PATHS:_} on a GPU)")
    parser.add_argument("--steps", type=int, default=252, help="steps over the year (252)")
    parser.add_argument("--device", choices=backend.DEVICES, default="auto")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs, best kept (3)")
    parser.add_argument("--numpy-paths", type=int, default=None,
                        help=f"paths of the NumPy baseline (default: --paths on CPU, at most "
                             f"{GPU_NUMPY_PATHS:_} on a GPU)")
    parser.add_argument("--out", default="results/bench", help="output folder (results/bench)")
    args = parser.parse_args(argv)
    report = benchmark(n_paths=args.paths, n_steps=args.steps, device=args.device,
                       dtype=args.dtype, repeat=args.repeat, numpy_paths=args.numpy_paths)
    print(markdown(report))
    for path in write_report(report, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
