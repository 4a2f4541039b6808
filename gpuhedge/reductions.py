"""Statistics of a simulation reduced where its paths are: ``simulate(..., keep="stats")``.

A run that keeps only statistics holds no per-path result on the host. Each launch's outputs
(CuPy arrays in device memory on a GPU, NumPy arrays of one launch on the CPU) are reduced to
a few numbers per strategy x cost cell before the next launch, by the block functions of
``gpuhedge.metrics`` (the one definition of each statistic), which run on either array
module. The result is ``gpuhedge.summary``'s Dataset of the per-path result on the same paths
(same variables, formulas and standard errors: equal to rounding, the order statistics
exactly), plus the P&L's ``min`` and ``max``.

Exact quantiles in bounded memory: two passes over the same paths
-----------------------------------------------------------------
Order statistics do not merge from per-launch summaries (a mergeable sketch such as KLL or
t-digest would give them with a rank error of its own). They are kept exact here by the
algorithm ``summary`` uses on stores larger than memory (``gpuhedge.metrics``): pass 1 takes
per launch the sums of the P&L, costs, trades and turnover, the minimum and maximum, and a few
quantiles of the launch that bracket each target order statistic; pass 2 takes the central
sums of d^k, d = x - mean, about the global mean (k = 2 .. 8, the moments and their standard
errors; the textbook two-pass algorithm, so no merging formula is needed), the cross moment of
the hedge effectiveness, and the values inside the brackets. Pass 2 reads the paths of pass 1
simulated again: Philox is counted by path, so a launch's paths are the same numbers in both
passes (chunking changes nothing, invariant 6). A run of one launch keeps its outputs between
the passes and simulates once; a run of several launches simulates twice, and rarely (a
bracket missed by more than five standard errors) a third time with safe brackets.

Memory beyond one launch's outputs and the passes' temporaries (``work_bytes``): per cell and
target probability p about 12 sqrt(n p (1 - p)) + 4 B + 8 values inside the brackets (B
launches) and 5 T block quantiles per launch (``held_bytes``): for 10^8 paths, 64 cells and
the default probabilities, about 15 million values (250 MB), whatever the launches.
"""

import math

import numpy as np
import xarray as xr

from . import backend, metrics
from .kernels import _math

KEEPS = ("paths", "stats")
# the variables averaged besides the P&L (``summary``'s names) and their kernel outputs
_MEANS = {"mean_cost": _math.OUT_COST, "mean_trades": _math.OUT_TRADES,
          "turnover": _math.OUT_TURNOVER}
# float64 temporaries per cell and path alive at once in pass 2: the sorted copy, the
# deviations, their powers, the squared deviations, a running sum and its padded copy (the
# traced peak of tests/test_memory.py)
_PASS_TEMPORARIES = 7


def work_bytes(cells, chunk):
    """Bytes of the passes' temporaries for one launch of ``chunk`` paths, where the paths are."""
    return 8 * _PASS_TEMPORARIES * cells * chunk


def held_bytes(n_paths, cells, n_launches, levels=metrics.LEVELS, quantiles=metrics.QUANTILES):
    """Host bytes a reduction holds across launches: the block quantiles of pass 1 and the
    run-length encoded values inside the brackets (value and count, 16 bytes), an upper
    bound of the tight brackets' width (``gpuhedge.metrics``)."""
    p = metrics._probabilities(levels, quantiles)
    inside = sum(12 * math.sqrt(n_paths * q * (1 - q)) + 4 * n_launches + 8 for q in p)
    return int(cells * (16 * inside + 8 * 5 * len(p) * n_launches))


def reduce(launches, sizes, like, unhedged, levels=metrics.LEVELS,
           quantiles=metrics.QUANTILES):
    """``summary``'s statistics of the launches' outputs, with ``min`` and ``max``.

    Parameters
    ----------
    launches : callable
        ``launches()`` yields each launch's outputs (``_math.OUT_*`` fields x strategy x cost
        x paths, NumPy or CuPy) in order, simulating them afresh at each call.
    sizes : sequence of int
        Paths per launch.
    like : xarray.DataArray
        Dims (strategy, cost, path) and the strategy and cost coordinates (no paths needed).
    unhedged : str or None
        The strategy of the hedge effectiveness (``metrics._unhedged``).
    """
    sizes = np.asarray(sizes)
    n = int(sizes.sum())
    lead_shape = like.shape[:-1]
    p = metrics._probabilities(levels, quantiles)
    block_probs = metrics._bracket_probabilities(p, n, sizes)
    if len(sizes) == 1:  # one launch: keep its outputs for the second pass
        kept = list(launches())

        def launches():
            return iter(kept)

    # ---- pass 1: sums, extremes and the launches' quantiles at the bracket probabilities
    sums = {name: np.zeros(lead_shape) for name in ("pnl", *_MEANS)}
    low, high = np.full(lead_shape, np.inf), np.full(lead_shape, -np.inf)
    block_q = []
    for out in launches():
        pnl = out[_math.OUT_PNL]
        sums["pnl"] += backend.to_numpy(pnl.sum(axis=-1))
        for name, field in _MEANS.items():
            sums[name] += backend.to_numpy(out[field].sum(axis=-1))
        low = np.minimum(low, backend.to_numpy(pnl.min(axis=-1)))
        high = np.maximum(high, backend.to_numpy(pnl.max(axis=-1)))
        block_q.append(metrics._block_quantiles(pnl, block_probs.ravel()))
    means = {name: total / n for name, total in sums.items()}
    mean = means.pop("pnl")
    block_q = np.concatenate(block_q, axis=-2)
    tight, safe = metrics._brackets(block_q.reshape(block_q.shape[:-1] + block_probs.shape),
                                    block_probs, p, n, sizes)

    # ---- pass 2: central sums about the global mean, cross moment, values in the brackets
    u = None if unhedged is None else [str(s) for s in like["strategy"].values].index(unhedged)
    bracket, widened = tight, False
    while True:
        powers, cross, squares, tails = _pass2(launches, bracket, mean, means, lead_shape, u)
        tail_out, missed = metrics._tail_statistics(tails, p, n, mean, like, levels, quantiles)
        if not missed.any():
            break
        if widened:
            raise RuntimeError("simulate: internal error: an order statistic outside its "
                               "safe bracket")
        bracket = tuple(np.where(missed, s_, t_) for s_, t_ in zip(safe, tight))
        widened = True

    coords = {d: like.coords[d] for d in like.dims[:-1] if d in like.coords}

    def array(values):
        return xr.DataArray(values, dims=like.dims[:-1], coords=coords)

    moments = {k: array(powers[..., k - 2] / n) for k in range(2, metrics._MAX_MOMENT + 1)}
    if u is not None:
        moments["cross"] = array(cross / n)
    result = metrics._assemble(array(mean), moments,
                               {name: array(v) for name, v in means.items()},
                               {name: array(v / n) for name, v in squares.items()},
                               tail_out, n, unhedged, like.dims[-1])
    result["min"], result["max"] = array(low), array(high)
    metrics._set_attrs(result)
    return result


def _pass2(launches, bracket, mean, means, lead_shape, u):
    """One pass 2 over the launches: the sums of d^k (k = 2 .. 8), of d^2 d_u^2 (``u``: the
    unhedged strategy's index, or None), of the other variables' squared deviations, and
    the tails as one ``metrics._block_pass2`` result merged over the launches."""
    powers = np.zeros(lead_shape + (metrics._MAX_MOMENT - 1,))
    cross = np.zeros(lead_shape)
    squares = {name: np.zeros(lead_shape) for name in means}
    below = [np.zeros(bracket[0].shape, dtype=np.int64), np.zeros(bracket[0].shape),
             np.zeros(bracket[0].shape)]
    inside = {}
    for out in launches():
        pnl = out[_math.OUT_PNL]
        xp = backend.namespace(pnl)
        _, block_powers, *block_below, block_inside = metrics._block_pass2(
            pnl, *bracket, mean, (0,) * len(lead_shape), lead_shape)
        powers += block_powers
        for total, part in zip(below, block_below):
            total += part
        for key, pair in block_inside.items():
            inside.setdefault(key, []).append(pair)
        if u is not None:
            cross += metrics._cross_sums(pnl, mean, 0, u)
        for name, field in _MEANS.items():
            d = out[field] - xp.asarray(means[name])[..., None]
            squares[name] += backend.to_numpy((d * d).sum(axis=-1))
    # the launches' bracket values, concatenated (``_tail_statistics`` sorts them)
    merged = {key: tuple(np.concatenate(part) for part in zip(*pairs))
              for key, pairs in inside.items()}
    tails = [((0,) * len(lead_shape), powers, *below, merged)]
    return powers, cross, squares, tails
