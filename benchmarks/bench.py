"""Throughput benchmark: ``gpuhedge.simulate`` against NumPy implementations of the same work.

Run as ``python benchmarks/bench.py`` (``--case NAME`` picks cases). Every case hedges a short
ATM call (K = 100, T = 1 year, r = 0.05, S_0 = 100) with Black-Scholes deltas at hedge vol 0.2:

* ``1 hedger``: Black-Scholes market (vol 0.2), one delta hedger rebalancing every step, one
  cost level;
* ``16 x 4``: Black-Scholes market, 16 delta hedgers (every 1, 2, ..., 16 steps) times 4 cost
  levels, all on the same paths;
* ``Merton``, ``Heston QE``, ``Bates QE``: one delta hedger every step, one cost level, along
  paths of a Merton jump diffusion, a Heston model (Andersen's QE scheme with martingale
  correction) and a Bates model (the two together);
* ``rule zoo``: Black-Scholes market, 32 rules of every kind (``rule_zoo``) at the ``1
  hedger`` case's cost level on the same paths (32 hedgers), timed against the ``1 hedger`` case
  in the same process, both at a quarter of the paths (no NumPy baseline: the issue asks how
  the cost grows with the number of rules; it must stay within 6x);
* ``rule zoo x 4 costs``: the same 32 rules times 4 cost levels (128 strategy-cost results;
  the rules that depend on the proportional cost take a kernel row per level), timed likewise
  and reported without a ceiling.

Speed is in path-steps per second, ``n_paths * n_steps / seconds`` (not multiplied by the
number of hedgers or cost levels). The NumPy cases time gpuhedge against ``numpy_hedge``, a
straightforward vectorised NumPy program (arrays over paths, a Python loop over steps, one
``numpy_*_step`` function per market) measured in the same process, the two timings
interleaved; both follow the P&L convention of ``gpuhedge.engine``. The report gives the
largest z-score of the differences of the P&L means and standard deviations between the two,
which shows that the baseline does the same work (different random numbers, so |z| is of
order 1). Results go to ``results/bench/<device>-<date>[-float32][-<tag>].json`` and ``.md``.
"""


import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
from scipy.special import ndtr

from gpuhedge import __version__, backend, experiment
from gpuhedge.costs import Costs
from gpuhedge.engine import kernel_rows, simulate
from gpuhedge.instruments import Book, EuropeanCall
from gpuhedge.models import Bates, BlackScholes, Heston, Merton
from gpuhedge.rules import DeltaBand, DeltaHedge, HedgeAt, Leland, SpotMove, WhalleyWilmott

MARKET = BlackScholes(spot=100.0, vol=0.2, rate=0.05)
MERTON = Merton(spot=100.0, vol=0.2, rate=0.05, lam=0.5, mu_j=-0.1, sigma_j=0.15)
# 2 kappa theta = 0.16 >= xi^2 = 0.1225: the Feller condition holds (no FellerWarning).
_HESTON = dict(spot=100.0, rate=0.05, v0=0.04, kappa=2.0, theta=0.04, xi=0.35, rho=-0.7)
HESTON = Heston(**_HESTON)
BATES = Bates(**_HESTON, lam=0.5, mu_j=-0.1, sigma_j=0.15)
OPTION = EuropeanCall(strike=100.0, maturity=1.0)
QUANTITY = -1.0  # short one call
HEDGE_VOL = 0.2
SEED = 2026
CPU_PATHS = 100_000
GPU_PATHS = 1_000_000
GPU_NUMPY_PATHS = 100_000  # on a GPU the NumPy baseline runs at this size; its rate is scaled
ONE_COST = ((0.001, 0.01),)  # (proportional, fixed)
FOUR_COSTS = ((0.0, 0.0), (0.001, 0.0), (0.0, 0.01), (0.001, 0.01))
ZOO_COSTS = ((0.0005, 0.0), (0.001, 0.01), (0.002, 0.0), (0.005, 0.01))
# A case either times gpuhedge against numpy_hedge ("target": the speed-up it should reach) or,
# with "reference", against another case's gpuhedge run ("max_ratio": the most the time may
# grow; without one the ratio is only reported). "every": delta hedgers by rebalancing
# interval; "rules": a function of n_steps giving named strategies; "paths_fraction": the case
# (and its reference run) uses this fraction of the benchmark's paths, to keep the default run
# short (a ratio does not depend on the count).
CASES = {
    "1 hedger": {"market": MARKET, "every": (1,), "costs": ONE_COST, "target": 2.0},
    "16 x 4": {"market": MARKET, "every": tuple(range(1, 17)), "costs": FOUR_COSTS,
               "target": 5.0},
    "Merton": {"market": MERTON, "every": (1,), "costs": ONE_COST, "target": 2.0},
    "Heston QE": {"market": HESTON, "every": (1,), "costs": ONE_COST, "target": 2.0},
    "Bates QE": {"market": BATES, "every": (1,), "costs": ONE_COST, "target": 2.0},
    "rule zoo": {"market": MARKET, "rules": "rule_zoo", "costs": ONE_COST,
                 "reference": "1 hedger", "max_ratio": 6.0, "paths_fraction": 0.25},
    "rule zoo x 4 costs": {"market": MARKET, "rules": "rule_zoo", "costs": ZOO_COSTS,
                           "reference": "1 hedger", "paths_fraction": 0.25},
}


def rule_zoo(n_steps):
    """32 hedging rules of every kind at hedge vol 0.2, for a grid of ``n_steps`` steps.

    Delta hedges every 1, 2, 3, 5, 10 and 21 steps, and every step at hedge vols 0.15 and 0.25
    (8); ``HedgeAt`` on 4, 12 and 52 equally spaced dates and on the dates
    t = 1 - 2^-j, j = 0..7, which crowd towards maturity (4); ``DeltaBand`` of half-width
    0.02, 0.05, 0.1 and 0.2 shares, back to the target and to the band's edge (8); ``SpotMove``
    at 0.5, 1, 2 and 5 % (4); ``WhalleyWilmott`` at risk aversions 0.1, 1, 10 and 100 (4);
    ``Leland`` every 1, 2, 5 and 10 steps (4). Dates are rounded to grid points (duplicates
    dropped), so the rules exist at any ``n_steps``.

    Parameters
    ----------
    n_steps : int
        Steps to maturity.

    Returns
    -------
    dict of str -> Strategy
    """
    vol, horizon = HEDGE_VOL, OPTION.maturity

    def dates(fractions):
        steps = sorted({round(f * n_steps) for f in fractions})
        return tuple(horizon * k / n_steps for k in steps)  # as the engine's grid computes t_k

    rules = {f"delta every {e}": DeltaHedge(vol=vol, every=e) for e in (1, 2, 3, 5, 10, 21)}
    rules |= {f"delta vol {v:g}": DeltaHedge(vol=v, every=1) for v in (0.15, 0.25)}
    rules |= {f"at {n} dates": HedgeAt(vol=vol, times=dates(np.arange(n) / n))
              for n in (4, 12, 52)}
    rules["at 1 - 2^-j"] = HedgeAt(vol=vol, times=dates(1.0 - 0.5 ** np.arange(8)))
    rules |= {f"band {b:g} to {to}": DeltaBand(vol=vol, band=b, to=to)
              for b in (0.02, 0.05, 0.1, 0.2) for to in ("target", "edge")}
    rules |= {f"spot move {p:g}": SpotMove(vol=vol, pct=p) for p in (0.005, 0.01, 0.02, 0.05)}
    rules |= {f"Whalley-Wilmott {g:g}": WhalleyWilmott(vol=vol, risk_aversion=g)
              for g in (0.1, 1.0, 10.0, 100.0)}
    rules |= {f"Leland every {e}": Leland(vol=vol, every=e) for e in (1, 2, 5, 10)}
    return rules


def case_inputs(name, n_steps):
    """The hedgers and cost levels of a benchmark case, as named dicts for ``simulate``.

    Parameters
    ----------
    name : str
        A key of ``CASES``.
    n_steps : int
        Steps to maturity (the dates of ``HedgeAt`` rules are grid points).

    Returns
    -------
    hedges : dict of str -> Strategy
    costs : dict of str -> Costs
    """
    case = CASES[name]
    if "rules" in case:
        hedges = globals()[case["rules"]](n_steps)
    else:
        hedges = {f"delta every {e}": DeltaHedge(vol=HEDGE_VOL, every=e) for e in case["every"]}
    costs = {f"prop {p:g} fixed {f:g}": Costs(proportional=p, fixed=f) for p, f in case["costs"]}
    return hedges, costs


def market_label(market):
    """Short description of a market: its type and the parameters beyond spot, rate, dividend
    and drift, e.g. ``Merton(vol=0.2, lam=0.5, mu_j=-0.1, sigma_j=0.15)``."""
    common = {"spot", "rate", "dividend", "drift"}
    params = ", ".join(f"{f.name}={getattr(market, f.name)}" for f in dataclasses.fields(market)
                       if f.name not in common)
    return f"{type(market).__name__}({params})"


# ---------------------------------------------------------------------------------------------
# NumPy baseline. One step function per market, all with the signature
#   step(spot, var, mp, rng) -> (spot, var)
# for the move from one grid point to the next: ``spot`` (float64 or float32) and ``var``
# (float64, the Heston variance; unused by the other markets) are arrays over paths, updated in
# place; ``mp`` is the list of the market's step constants ``market.kernel_params(dt)`` (the
# package's one definition of them, as Python floats) and ``rng`` a numpy Generator.
# ---------------------------------------------------------------------------------------------
def numpy_gbm_step(spot, var, mp, rng):
    """Exact log-normal step S' = S exp(mp[0] + mp[1] Z), Z ~ N(0, 1) drawn in spot's dtype.

    mp[0] = (mu - vol^2/2) dt, mp[1] = vol sqrt(dt). With a float32 spot the whole step is in
    float32 (the normals too), as the kernel's float32 mode rounds the spot.
    """
    spot *= np.exp(mp[0] + mp[1] * rng.standard_normal(spot.size, dtype=spot.dtype))
    return spot, var


def add_lognormal_jumps(x, rng, lam_dt, mu_j, sigma_j):
    """Add the summed log sizes of one step's Merton jumps to the log increments ``x``.

    The number of jumps on a path is N ~ Poisson(lam dt) (``rng.poisson``); given N, the sum of
    N independent N(mu_j, sigma_j^2) log sizes is exactly N mu_j + sqrt(N) sigma_j Z with one
    Z ~ N(0, 1), drawn only for the paths with N > 0 (as the kernel does).
    """
    count = rng.poisson(lam_dt, x.size)
    hit = np.flatnonzero(count)
    n = count[hit]
    x[hit] += n * mu_j + np.sqrt(n) * sigma_j * rng.standard_normal(hit.size)
    return x


def numpy_merton_step(spot, var, mp, rng):
    """Exact Merton step: ln S' = ln S + mp[0] + mp[1] Z + jumps (``add_lognormal_jumps``).

    mp = ((mu - lam k - vol^2/2) dt, vol sqrt(dt), lam dt, mu_j, sigma_j), with the exact jump
    compensator k = exp(mu_j + sigma_j^2/2) - 1.
    """
    x = mp[0] + mp[1] * rng.standard_normal(spot.size)
    spot *= np.exp(add_lognormal_jumps(x, rng, mp[2], mp[3], mp[4]))
    return spot, var


def numpy_heston_increment(var, mp, rng):
    """One QE step of Andersen (2008) for (ln S, v), vectorised with ``np.where``.

    Both branches are computed for every path and the right one picked per path. With
    m = theta + (v - theta) e^{-kappa dt}, s^2 = v mp[8] + mp[9] and psi = s^2 / m^2:

    * psi <= 1.5 (quadratic): b^2 = 2/psi - 1 + sqrt(2/psi) sqrt(2/psi - 1), a = m / (1 + b^2),
      v' = a (b + Z_v)^2, and the martingale correction K0* = -A b^2 a / (1 - 2 A a)
      + ln(1 - 2 A a) / 2 - (K1 + K3/2) v when A < 1 / (2a);
    * psi > 1.5 (exponential): p = (psi - 1) / (psi + 1), beta = (1 - p) / m and, with the
      uniform U = Phi(Z_v), v' = 0 if U <= p, else ln((1 - p) / (1 - U)) / beta (1 - U is
      computed as Phi(-Z_v)); K0* = -ln(p + beta (1 - p) / (beta - A)) - (K1 + K3/2) v when
      A < beta;

    where A = K2 + K3/2; without a correction (A too large) K0 is used. Then
    ln S' - ln S = mu dt + K0* + K1 v + K2 v' + sqrt(K3 (v + v')) Z_s, so that
    E[S' | S, v] = S e^{mu dt}. Z_v, Z_s are independent N(0, 1).

    Parameters
    ----------
    var : ndarray
        Variance v at the start of the step (float64), theta > 0 so that m > 0.
    mp : list of float
        ``Heston.kernel_params(dt)``: 0 mu dt, 2 theta, 7 e^{-kappa dt}, 8-9 the coefficients
        of s^2, 10-13 K0, K1, K2, K3.
    rng : numpy.random.Generator

    Returns
    -------
    x, var_next : ndarray
        Increment of ln S and the next variance.
    """
    z_v, z_s = rng.standard_normal((2, var.size))
    theta, k0_plain, k1, k2, k3 = mp[2], mp[10], mp[11], mp[12], mp[13]
    big_a = k2 + 0.5 * k3
    drift_v = (k1 + 0.5 * k3) * var
    m = theta + (var - theta) * mp[7]
    psi = (var * mp[8] + mp[9]) / (m * m)
    quadratic = psi <= 1.5

    t = 2.0 / np.minimum(psi, 1.5)
    b2 = t - 1.0 + np.sqrt(t) * np.sqrt(t - 1.0)
    a = m / (1.0 + b2)
    v_quad = a * (np.sqrt(b2) + z_v) ** 2
    ok = big_a < 0.5 / a
    room = np.where(ok, 1.0 - 2.0 * big_a * a, 1.0)
    k0_quad = np.where(ok, -big_a * b2 * a / room + 0.5 * np.log(room) - drift_v, k0_plain)

    psi_exp = np.maximum(psi, 1.5)
    p = (psi_exp - 1.0) / (psi_exp + 1.0)
    beta = (1.0 - p) / m
    tail = ndtr(-z_v)  # 1 - U
    v_exp = np.where(tail >= 1.0 - p, 0.0, np.log((1.0 - p) / tail) / beta)
    ok = big_a < beta
    k0_exp = np.where(ok, -np.log(p + beta * (1.0 - p) / np.where(ok, beta - big_a, 1.0))
                      - drift_v, k0_plain)

    var_next = np.where(quadratic, v_quad, v_exp)
    k0 = np.where(quadratic, k0_quad, k0_exp)
    x = mp[0] + k0 + k1 * var + k2 * var_next + np.sqrt(k3 * (var + var_next)) * z_s
    return x, var_next


def numpy_heston_step(spot, var, mp, rng):
    """Heston QE step: S' = S exp(x) with x from ``numpy_heston_increment``."""
    x, var = numpy_heston_increment(var, mp, rng)
    spot *= np.exp(x)
    return spot, var


def numpy_bates_step(spot, var, mp, rng):
    """Bates step: the Heston QE increment plus Merton jumps (mp[14:17] = lam dt, mu_j,
    sigma_j; the compensator is in mp[0])."""
    x, var = numpy_heston_increment(var, mp, rng)
    spot *= np.exp(add_lognormal_jumps(x, rng, mp[14], mp[15], mp[16]))
    return spot, var


NUMPY_STEPS = {BlackScholes: numpy_gbm_step, Merton: numpy_merton_step,
               Heston: numpy_heston_step, Bates: numpy_bates_step}


def numpy_hedge(market, option, quantity, hedges, costs, *, n_paths, n_steps, seed,
                dtype="float64"):
    """Hedge ``quantity`` calls with delta hedgers along simulated paths, in plain vectorised NumPy.

    The reference for the benchmark: the same work as ``gpuhedge.simulate`` with the same P&L
    convention (see ``gpuhedge.engine``), written the obvious way. Arrays run over paths and a
    Python loop over steps draws from ``default_rng(seed)``, moves the market with the step
    function of its type (``NUMPY_STEPS``), computes the Black-Scholes delta once per step
    (with ``scipy.special.ndtr``) and lets every hedger that rebalances at that step trade to
    it. Costs are linear in two sums per hedger, the present values of the traded notional and
    of the trade count, so every cost level is priced once from them at the end (as the kernel
    does; accumulating each cost level at each trade would make the baseline slower). At
    maturity the call is cash settled and the shares are unwound.

    Parameters
    ----------
    market : BlackScholes, Merton, Heston or Bates
        Market without dividends (Heston and Bates with the QE scheme and theta > 0).
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
        Precision of the simulated spot (and of the Black-Scholes normals); as in the kernel,
        the delta, the cash flows and the costs are computed in float64 (a float32 delta would
        stop changing deep in the money, so fewer trades would pay the fixed cost).

    Returns
    -------
    dict
        ``pnl`` and ``cost_paid`` of shape (hedgers, costs, paths), ``trades`` of shape
        (hedgers, paths) and ``terminal_spot`` of shape (paths,).
    """
    vols = {h.vol for h in hedges}
    step = NUMPY_STEPS.get(type(market))
    if (step is None or market.dividend != 0.0 or not option.is_call or len(vols) != 1
            or any(type(h) is not DeltaHedge for h in hedges)
            or getattr(market, "scheme", "qe") != "qe" or getattr(market, "theta", 1.0) <= 0.0):
        raise ValueError(
            "numpy_hedge: needs a BlackScholes, Merton, Heston or Bates market without dividends "
            "(Heston-type: QE scheme, theta > 0), a call and DeltaHedge hedgers with one hedge "
            f"vol; got {market!r}, {option!r}, {[type(h).__name__ for h in hedges]}, vols "
            f"{sorted(vols)}")
    dtype = np.dtype(dtype)
    vol = vols.pop()
    rate, strike, horizon = market.rate, option.strike, option.maturity
    dt = horizon / n_steps
    mp = market.kernel_params(dt).tolist()  # Python floats: a float32 spot stays float32
    every = np.array([h.every for h in hedges])
    proportional = np.array([c.proportional for c in costs])[:, None]  # (costs, 1)
    fixed = np.array([c.fixed for c in costs])[:, None]

    spot0, var0 = market.initial_state()
    d1 = (math.log(spot0 / strike) + (rate + 0.5 * vol**2) * horizon) / (
        vol * math.sqrt(horizon))
    premium = quantity * (spot0 * ndtr(d1) - strike * math.exp(-rate * horizon) * ndtr(
        d1 - vol * math.sqrt(horizon)))

    rng = np.random.default_rng(seed)
    spot = np.full(n_paths, spot0, dtype=dtype)
    var = np.full(n_paths, var0)
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
            spot, var = step(spot, var, mp, rng)
        rebalancing = np.flatnonzero(k % every == 0)
        if rebalancing.size == 0:
            continue
        tau = horizon - k * dt
        log_moneyness = np.log(spot, dtype=np.float64) - math.log(strike)
        d1 = (log_moneyness + (rate + 0.5 * vol**2) * tau) / (vol * math.sqrt(tau))
        target = -quantity * ndtr(d1)  # shares held: minus the book's delta
        for h in rebalancing:
            trade(h, target - position[h], math.exp(-rate * k * dt))

    spot, var = step(spot, var, mp, rng)
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


def interleaved_times(runs, repeat):
    """Wall and CPU times of ``repeat`` rounds that call each run once.

    The runs alternate within a round, in reverse order every other round, so that a change in
    the machine's load (other processes) hits all of them alike. Wall time is
    ``time.perf_counter``; CPU time is ``time.process_time``, summed over the process's threads
    (numba's included), which other processes on the machine change much less.

    Parameters
    ----------
    runs : dict of str -> callable
        Called with no arguments.
    repeat : int
        Number of rounds (>= 1).

    Returns
    -------
    seconds, cpu_seconds : dict of str -> list of float
        The wall and CPU times of each run, in round order.
    results : dict of str -> object
        What each run's last call returned.
    """
    if repeat < 1:
        raise ValueError(f"bench: 'repeat' must be >= 1; got {repeat}")
    seconds = {name: [] for name in runs}
    cpu_seconds = {name: [] for name in runs}
    results = {}
    names = list(runs)
    for r in range(repeat):
        for name in names if r % 2 == 0 else names[::-1]:
            wall, cpu = time.perf_counter(), time.process_time()
            results[name] = runs[name]()
            seconds[name].append(time.perf_counter() - wall)
            cpu_seconds[name].append(time.process_time() - cpu)
    return seconds, cpu_seconds, results


def run_case(name, *, n_paths, n_steps, device, dtype="float64", repeat=3, numpy_paths=None):
    """Time one case: gpuhedge against the NumPy baseline or against a reference case.

    No timing includes compilation. The two runs of a case are timed in interleaved rounds
    (``interleaved_times``); the best wall time of each gives the rates and the ratios, the
    medians a second, noisier, view, and the best CPU times (all threads) a third that other
    processes on the machine disturb less: a ratio of work per CPU-second.

    Parameters
    ----------
    name : str
        A key of ``CASES``.
    n_paths, n_steps : int
        Size of the gpuhedge runs (times the case's ``paths_fraction``, if it has one).
    device : {"cpu", "cuda"}
        Resolved device.
    dtype : {"float64", "float32"}
        Precision of the simulated spot (both programs).
    repeat : int
        Timed rounds.
    numpy_paths : int, optional
        Paths of the NumPy run (default ``n_paths``); when smaller, its path-steps/s is taken to
        hold at ``n_paths``.

    Returns
    -------
    dict
        The case's row of the report: market, sizes, all wall and CPU times, best and median
        seconds, path-steps/s, and either the speed-up over NumPy (wall, median, per CPU
        second) with its target and the agreement z-scores, or the time ratio to the reference
        case (wall, median, CPU) with its ceiling.
    """
    case = CASES[name]
    numpy_paths = n_paths if numpy_paths is None else numpy_paths
    n_paths = max(1, round(n_paths * case.get("paths_fraction", 1.0)))
    book = Book.short(OPTION, -QUANTITY)
    hedges, costs = case_inputs(name, n_steps)

    def gpuhedge_run(case_name, paths):
        market = CASES[case_name]["market"]
        hedges, costs = case_inputs(case_name, n_steps)
        return lambda: simulate(market, book, hedges, costs, n_paths=paths, n_steps=n_steps,
                                seed=SEED, device=device, dtype=dtype)

    # The kernels are compiled (and cached per process) by tiny runs outside the timings.
    gpuhedge_run(name, 256)()
    runs = {"gpuhedge": gpuhedge_run(name, n_paths)}
    if "reference" in case:
        gpuhedge_run(case["reference"], 256)()
        runs["reference"] = gpuhedge_run(case["reference"], n_paths)
    else:
        market = case["market"]
        runs["numpy"] = lambda: numpy_hedge(
            market, OPTION, QUANTITY, list(hedges.values()), list(costs.values()),
            n_paths=numpy_paths, n_steps=n_steps, seed=SEED, dtype=dtype)
    load = os.getloadavg()[0]
    seconds, cpu_seconds, results = interleaved_times(runs, repeat)
    best = {k: min(v) for k, v in seconds.items()}
    median = {k: statistics.median(v) for k, v in seconds.items()}
    cpu = {k: min(v) for k, v in cpu_seconds.items()}
    row = {
        "case": name, "market": market_label(case["market"]),
        "device": backend.device_name(device), "precision": np.dtype(dtype).name,
        "n_paths": n_paths, "n_steps": n_steps, "hedgers": len(hedges), "costs": len(costs),
        "kernel_rows": kernel_rows(hedges, costs),
        "load_average": load, "gpuhedge_all_seconds": seconds["gpuhedge"],
        "gpuhedge_seconds": best["gpuhedge"], "gpuhedge_median_seconds": median["gpuhedge"],
        "gpuhedge_path_steps_per_s": n_paths * n_steps / best["gpuhedge"],
        "gpuhedge_all_cpu_seconds": cpu_seconds["gpuhedge"],
        "gpuhedge_cpu_seconds": cpu["gpuhedge"],
    }
    if "reference" in case:
        row |= {
            "reference_case": case["reference"], "reference_all_seconds": seconds["reference"],
            "reference_seconds": best["reference"],
            "reference_median_seconds": median["reference"],
            "reference_path_steps_per_s": n_paths * n_steps / best["reference"],
            "time_ratio": best["gpuhedge"] / best["reference"],
            "time_ratio_median": median["gpuhedge"] / median["reference"],
            "reference_all_cpu_seconds": cpu_seconds["reference"],
            "reference_cpu_seconds": cpu["reference"],
            "cpu_time_ratio": cpu["gpuhedge"] / cpu["reference"],
            "max_time_ratio": case.get("max_ratio"),
        }
        return row
    numpy_rate = numpy_paths * n_steps / best["numpy"]
    z_mean, z_std = agreement(results["gpuhedge"]["pnl"].values, results["numpy"]["pnl"])
    row |= {
        "numpy_paths": numpy_paths, "numpy_all_seconds": seconds["numpy"],
        "numpy_seconds": best["numpy"], "numpy_median_seconds": median["numpy"],
        "numpy_path_steps_per_s": numpy_rate, "numpy_scaled": numpy_paths != n_paths,
        "speedup": row["gpuhedge_path_steps_per_s"] / numpy_rate,
        "speedup_median": (n_paths / median["gpuhedge"]) / (numpy_paths / median["numpy"]),
        "numpy_all_cpu_seconds": cpu_seconds["numpy"], "numpy_cpu_seconds": cpu["numpy"],
        "cpu_speedup": (n_paths / cpu["gpuhedge"]) / (numpy_paths / cpu["numpy"]),
        "target_speedup": case["target"], "z_mean": z_mean, "z_std": z_std,
    }
    return row


def source_version():
    """Git commit of the package source and whether ``gpuhedge/`` differs from it.

    The benchmarks (outside the package) are left out of the comparison: they only hold the
    NumPy baseline and the report, so a committed result file can say whether the code it timed
    was committed.

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
        changed = git("status", "--porcelain", "--", "gpuhedge")
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


def _met(ok):
    return "met" if ok else "missed"


def markdown(report):
    """The report as a Markdown page: machine, settings and one table per kind of case."""
    m, s = report["machine"], report["settings"]
    dirty = ", with uncommitted changes" if m["git_dirty"] else ""
    start = m.get("git_commit_at_start", m["git_commit"])
    started = "" if start == m["git_commit"] else f"; {start} when the run started"
    cases = report["cases"]
    loads = ", ".join(f"{c['case']} {c['load_average']:.2f}" for c in cases)
    lines = [
        f"# gpuhedge benchmark, {report['date']}", "",
        f"Device: {m['device']}; {m['cpu_count']} CPUs, {m['platform']}; Python {m['python']}, "
        f"NumPy {m['numpy']}, numba {m['numba']} ({m['numba_threads']} CPU threads, "
        f"threading layer {m['numba_threading_layer']}), SciPy {m['scipy']}, "
        f"gpuhedge {m['gpuhedge']} (commit {m['git_commit']}{dirty}{started}). "
        f"Load average (1 min) before the run: {m['load_average_before']:.2f}; at the start of "
        f"each case's timings: {loads}; after the run: {m['load_average_after']:.2f}.",
        "",
        f"Short 1 ATM call (S = K = 100, r = 0.05, T = 1), delta hedges at vol {HEDGE_VOL} "
        f"(Black-Scholes delta); {s['precision']}, {s['repeat']} timed rounds per case with the "
        f"two runs of a case interleaved, best wall time kept (medians in the 'median' "
        f"columns, every time in the JSON), seed {s['seed']}. Path-steps/s = n_paths * n_steps / "
        "seconds (not multiplied by hedgers x costs). gpuhedge is timed through "
        "`gpuhedge.simulate` (results back on the host as an xarray Dataset), the kernel "
        "compiled beforehand. The targets are judged on the best wall times; the CPU columns "
        "compare best process CPU times (all threads), which other processes on the machine "
        "disturb less: gpuhedge runs numba's threads, NumPy one.",
    ]
    against_numpy = [c for c in cases if "speedup" in c]
    if against_numpy:
        lines += [
            "", "## gpuhedge against NumPy", "",
            "NumPy is `benchmarks/bench.py`'s `numpy_hedge` (one thread, in the same process; one "
            "`numpy_*_step` function per market). z: largest |difference| / standard error of "
            "the P&L mean and std between the two, over all hedger x cost scenarios.", "",
        ]
        lines.append(experiment.table(
            ["case", "market", "hedgers x costs", "n_paths", "n_steps", "gpuhedge s",
             "gpuhedge path-steps/s", "NumPy paths", "NumPy s", "NumPy path-steps/s",
             "speed-up", "speed-up (median)", "speed-up per CPU s", "target", "z mean",
             "z std"],
            [[c["case"], c["market"], f"{c['hedgers']} x {c['costs']}", f"{c['n_paths']:,}",
              f"{c['n_steps']}", f"{c['gpuhedge_seconds']:.3f}",
              f"{c['gpuhedge_path_steps_per_s'] / 1e6:.3g} M", f"{c['numpy_paths']:,}",
              f"{c['numpy_seconds']:.3f}", f"{c['numpy_path_steps_per_s'] / 1e6:.3g} M",
              f"{c['speedup']:.2f}x", f"{c['speedup_median']:.2f}x",
              f"{c['cpu_speedup']:.2f}x",
              f">= {c['target_speedup']:g}x ({_met(c['speedup'] >= c['target_speedup'])})",
              f"{c['z_mean']:.2f}", f"{c['z_std']:.2f}"] for c in against_numpy], text=3))
        if any(c["numpy_scaled"] for c in against_numpy):
            lines += ["", "NumPy ran at fewer paths than gpuhedge; its path-steps/s (which does "
                      "not depend on the path count at these sizes) is compared as if it held "
                      "at the gpuhedge size."]
    relative = [c for c in cases if "time_ratio" in c]
    if relative:
        lines += [
            "", "## Many rules against one", "",
            "Time of the case's run over the time of its reference case's run (both "
            "gpuhedge, same paths and process, interleaved). No NumPy baseline. Kernel rows: "
            "the rules that depend on the proportional cost (Whalley-Wilmott, Zakamouline, "
            "Leland) are one row per proportional cost level.", "",
        ]
        lines.append(experiment.table(
            ["case", "market", "rules x costs", "kernel rows", "n_paths", "n_steps",
             "gpuhedge s", "gpuhedge path-steps/s", "reference", "reference s",
             "reference path-steps/s", "time ratio", "time ratio (median)", "CPU time ratio",
             "target"],
            [[c["case"], c["market"], f"{c['hedgers']} x {c['costs']}", f"{c['kernel_rows']}",
              f"{c['n_paths']:,}", f"{c['n_steps']}", f"{c['gpuhedge_seconds']:.3f}",
              f"{c['gpuhedge_path_steps_per_s'] / 1e6:.3g} M", c["reference_case"],
              f"{c['reference_seconds']:.3f}",
              f"{c['reference_path_steps_per_s'] / 1e6:.3g} M", f"{c['time_ratio']:.2f}x",
              f"{c['time_ratio_median']:.2f}x", f"{c['cpu_time_ratio']:.2f}x",
              "reported" if c["max_time_ratio"] is None else
              f"<= {c['max_time_ratio']:g}x ({_met(c['time_ratio'] <= c['max_time_ratio'])})"]
             for c in relative], text=(0, 1, 2, 8)))
        zoos = [c for c in relative if CASES[c["case"]].get("rules") == "rule_zoo"]
        if zoos:
            lines += ["", "Rules of the zoo: " + ", ".join(rule_zoo(zoos[0]["n_steps"])) + "."]
            for c in zoos:
                lines.append(f"Costs of `{c['case']}` (proportional, fixed): " + ", ".join(
                    f"({p:g}, {f:g})" for p, f in CASES[c["case"]]["costs"]) + ".")
    return "\n".join(lines) + "\n"


def write_report(report, out):
    """Write ``report`` as ``<device kind>-<date>[-float32][-<tag>].json`` and ``.md`` under
    ``out`` (the tag is ``report["settings"]["tag"]``, none when empty).

    Returns
    -------
    json_path, md_path : Path
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = report["settings"]
    stem = f"{report['device_kind']}-{report['date']}"
    if settings["precision"] != "float64":
        stem += f"-{settings['precision']}"
    if settings["tag"]:
        stem += f"-{settings['tag']}"
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path


def benchmark(*, n_paths=None, n_steps=252, device="auto", dtype="float64", repeat=5,
              numpy_paths=None, cases=None, tag="models"):
    """Run the cases of ``CASES`` (all by default) and return the report.

    Parameters
    ----------
    n_paths : int, optional
        Paths of the gpuhedge runs (default 100,000 on CPU, 1,000,000 on a GPU).
    n_steps : int
        Steps over the year.
    device : {"auto", "cpu", "cuda"}
    dtype : {"float64", "float32"}
    repeat : int
        Timed rounds per case; the best time of each run is kept.
    numpy_paths : int, optional
        Paths of the NumPy runs (default: ``n_paths`` on CPU, at most 100,000 on a GPU).
    cases : sequence of str, optional
        Keys of ``CASES`` to run, in that order (default: all).
    tag : str
        Suffix of the report's file names (``write_report``); empty for none.

    Returns
    -------
    dict
        ``date``, ``device_kind``, ``machine``, ``settings`` and ``cases`` (see ``run_case``);
        ``machine`` includes the 1-minute load averages before and after the run (each case
        row has its own), since other processes on the machine slow the timings down, and the
        source's git commit at the start and at the end of the run (others may commit meanwhile).
    """
    cases = list(CASES) if cases is None else list(cases)
    unknown = [c for c in cases if c not in CASES]
    if unknown or not cases:
        raise ValueError(f"bench: 'cases' must be keys of CASES {list(CASES)}; got {cases}")
    load = os.getloadavg()[0]
    commit, dirty = source_version()
    device = backend.resolve(device)
    if n_paths is None:
        n_paths = GPU_PATHS if device == "cuda" else CPU_PATHS
    if numpy_paths is None:
        numpy_paths = min(n_paths, GPU_NUMPY_PATHS) if device == "cuda" else n_paths
    rows = [run_case(name, n_paths=n_paths, n_steps=n_steps, device=device, dtype=dtype,
                     repeat=repeat, numpy_paths=numpy_paths) for name in cases]
    return {
        "benchmark": "benchmarks/bench.py", "date": datetime.date.today().isoformat(),
        "device_kind": device_kind(device),
        "machine": {**machine_info(device), "git_commit_at_start": commit,
                    "git_dirty_at_start": dirty, "load_average_before": load,
                    "load_average_after": os.getloadavg()[0]},
        "settings": {"device": device, "precision": np.dtype(dtype).name, "n_paths": n_paths,
                     "n_steps": n_steps, "numpy_paths": numpy_paths, "repeat": repeat,
                     "seed": SEED, "tag": tag},
        "cases": rows,
    }


def main(argv=None):
    """Command line: run the benchmark, print the Markdown tables and write the result files."""
    parser = argparse.ArgumentParser(prog="python benchmarks/bench.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", type=int, default=None,
                        help=f"paths (default {CPU_PATHS:_} on CPU, {GPU_PATHS:_} on a GPU)")
    parser.add_argument("--steps", type=int, default=252, help="steps over the year (252)")
    parser.add_argument("--device", choices=backend.DEVICES, default="auto")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed rounds per case, best kept (5)")
    parser.add_argument("--numpy-paths", type=int, default=None,
                        help=f"paths of the NumPy baseline (default: --paths on CPU, at most "
                             f"{GPU_NUMPY_PATHS:_} on a GPU)")
    parser.add_argument("--case", action="append", choices=list(CASES), dest="cases",
                        metavar="NAME", help="run this case (repeatable; default: all of "
                                             f"{', '.join(map(repr, CASES))})")
    parser.add_argument("--threads", type=int, default=None,
                        help="numba CPU threads (default: numba's, one per core)")
    parser.add_argument("--tag", default="models",
                        help="suffix of the result files' names ('models'; '' for none)")
    parser.add_argument("--out", default="results/bench", help="output folder (results/bench)")
    args = parser.parse_args(argv)
    threads = numba.get_num_threads()
    try:
        if args.threads is not None:
            numba.set_num_threads(args.threads)
        report = benchmark(n_paths=args.paths, n_steps=args.steps, device=args.device,
                           dtype=args.dtype, repeat=args.repeat, numpy_paths=args.numpy_paths,
                           cases=args.cases, tag=args.tag)
    finally:
        numba.set_num_threads(threads)
    print(markdown(report))
    for path in write_report(report, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
