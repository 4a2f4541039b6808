"""Statistics of the hedging error over paths, with Monte Carlo standard errors.

``summary`` works on in-memory Datasets and, lazily, on Zarr stores larger than memory: it
reads the data twice, block by block (Dask), and holds only per-block partial results and a
thin slice of the sorted P&L around each quantile. Per-path values stored as float32 are
converted to float64 before anything is summed.

Conventions
-----------
X is the hedger's P&L on a path (``pnl``), n the number of paths, mu_k = E[(X - E X)^k] the
central moments (estimated with divisor n) and s the standard deviation (divisor n - 1).

* ``skew`` = mu_3 / mu_2^{3/2} and ``excess_kurtosis`` = mu_4 / mu_2^2 - 3 (the moment
  estimators of ``scipy.stats.skew`` and ``scipy.stats.kurtosis``).
* Quantiles q_p are NumPy's default ("linear") sample quantiles.
* Losses are positive numbers: VaR_a = -q_{1-a}(X) and CVaR_a = -E[X | X <= q_{1-a}(X)]
  (expected shortfall; Acerbi and Tasche 2002), e.g. ``var_99`` is the loss exceeded on 1 %
  of the paths.
* ``hedge_effectiveness`` = 1 - Var(X_strategy) / Var(X_unhedged), per cost level, where the
  unhedged strategy is the grid's ``NoHedge`` (the first one; or ``unhedged=``). It is the
  fraction of the unhedged variance that the hedge removes (Ederington 1979).
* ``mean_cost``, ``mean_trades``: means of ``cost_paid`` and ``trades``; ``turnover`` is the
  mean present value of the traded notional, sum_k e^{-r t_k} |q_k| S_k: the engine's
  ``turnover`` output when it has one, else ``cost_paid / proportional`` for cost levels with a
  proportional rate and no fixed fee (NaN for other cost levels).

Standard errors (``se_<name>``)
-------------------------------
Every statistic here has an asymptotic (analytic) standard error, so none needs a bootstrap:

* means: s / sqrt(n);
* std, skew, excess kurtosis, hedge effectiveness: the delta method, se^2 = E[IF(X)^2] / n
  with IF the statistic's influence function, a polynomial in X - E X whose square has an
  expectation given by the central moments up to mu_4 (std), mu_6 (skew) and mu_8 (kurtosis),
  and for the effectiveness the cross moment E[(X_h - E X_h)^2 (X_u - E X_u)^2] of the hedged
  and unhedged P&L on the same paths (common random numbers make them strongly dependent);
* quantiles and VaR: distribution-free, from the order statistics at the ranks
  h -+ sqrt(n p (1 - p)) around the quantile's rank h = (n - 1) p: se = (x_(hi) - x_(lo)) / 2,
  the one-sigma binomial interval of the quantile (Conover 1999, section 3.2); asymptotically
  sqrt(p (1 - p) / n) / f(q_p) without estimating the density f;
* CVaR with tail probability b = 1 - a: se^2 = [Var(X | X <= q) + (1 - b) (E[X | X <= q] -
  q)^2] / (n b) (Manistre and Hancock 2005).

These are large-n approximations: with heavy tails (jumps) and few paths the higher-moment
errors are themselves noisy. ``tests/test_metrics.py`` checks their coverage on a skewed
distribution with known answers.

How the exact quantiles are found without loading the data
---------------------------------------------------------
Pass 1 computes the means and, per block of paths, a few quantiles of the block. They give
each target order statistic (the ranks next to h and h -+ sqrt(n p (1 - p))) a *tight*
bracket: the size-weighted mean of the block quantiles at p, -+ 6 sqrt(p (1 - p) / n) + (2 B
+ 4) / n in probability (B blocks) converted to values by the blocks' own slope of the
quantile function; and a *safe* one, [lowest block quantile at p - dp, highest at p + dp]
with n dp = 3 sqrt(n p (1 - p)) + 2 B + 4, which always holds the targets because a block
quantile at p' has at most p' (m - 1) + 1 of the block's m values below it. Pass 2 (the
central moments too) counts and sums, per block, the values below each bracket and returns
the values inside it, run-length encoded so that an atom (many paths with the same P&L, e.g.
an option expiring worthless unhedged) costs one entry; the order statistics are then exact.
The tight bracket holds about 12 sqrt(n p (1 - p)) values; in the rare case that it misses a
target (the estimate is off by more than 5 standard errors, or an atom sits at its edge),
pass 2 is run again with the safe bracket for that cell. Memory: a few blocks per thread,
plus the brackets. A last pass pairs each strategy with the unhedged one for the
effectiveness's cross moment.
"""

import json
import math

import numpy as np
import xarray as xr

from . import backend

LEVELS = (0.95, 0.99)
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_MAX_MOMENT = 8
_BLOCK = 2**20  # paths per block when an in-memory Dataset is summarised


def _label(p):
    """01 for 0.01, 5 for ... as 05; a non-integer percentage keeps its decimals (97.5)."""
    pct = 100 * p
    return f"{round(pct):02d}" if math.isclose(pct, round(pct), abs_tol=1e-9) else f"{pct:g}"


def _lerp(a, b, t):
    """NumPy's interpolation between neighbouring order statistics (``numpy.lib._function_base
    ._lerp``), so that the quantiles equal ``numpy.quantile`` to the last bit or two."""
    diff = b - a
    out = a + diff * t
    return np.where(t >= 0.5, b - diff * (1 - t), out)


def _virtual_index(n, p):
    """NumPy's rank of the linear quantile: (n - 1) p, written as NumPy computes it."""
    return n * p + (1 + p * (1 - 1 - 1)) - 1


# ----------------------------------------------------------------------------- blocks
# The block functions take NumPy or CuPy blocks (``backend.namespace``): the same code reduces
# a block where it is, and returns host (NumPy) results.
def _block_quantiles(block, probs):
    """(..., 1, P): the block's quantiles at the probabilities ``probs``."""
    xp = backend.namespace(block)
    q = xp.quantile(block, xp.asarray(probs), axis=-1)  # (P, ...)
    return backend.to_numpy(xp.moveaxis(q, 0, -1)[..., None, :])


def _run_lengths(values):
    """Sorted values (not empty) as (distinct values, counts)."""
    xp = backend.namespace(values)
    starts = xp.flatnonzero(xp.concatenate([xp.ones(1, dtype=bool), values[1:] != values[:-1]]))
    return values[starts], xp.diff(xp.concatenate([starts, xp.asarray([values.size])]))


def _block_pass2(block, lo, hi, mean, offset, lead_shape):
    """Pass 2 on one block of paths (leading dims: cells), sorting each cell's values once.

    Returns the block's ``offset`` in the leading dims; the sums of d^k, d = x - mean, for
    k = 2 .. 8 (..., 7); per target j the count and the sums of d and d^2 of the values below
    lo_j (..., T); and, by (flat cell, j), the values in [lo_j, hi_j] as (values, counts).
    """
    xp = backend.namespace(block)
    srt = xp.sort(block, axis=-1)
    d = srt - xp.asarray(mean)[..., None]
    powers = xp.empty(block.shape[:-1] + (_MAX_MOMENT - 1,))
    term = d * d
    powers[..., 0] = term.sum(axis=-1)
    for k in range(3, _MAX_MOMENT + 1):
        term *= d
        powers[..., k - 2] = term.sum(axis=-1)
    # running sums with a leading 0: the sum of the first i sorted values is c[i]
    zero = xp.zeros(block.shape[:-1] + (1,))
    c1 = xp.concatenate([zero, xp.cumsum(d, axis=-1)], axis=-1)
    c2 = xp.concatenate([zero, xp.cumsum(d * d, axis=-1)], axis=-1)
    lo, hi = xp.asarray(lo), xp.asarray(hi)
    below_n = np.empty(lo.shape, dtype=np.int64)
    below_1 = np.empty(lo.shape)
    below_2 = np.empty(lo.shape)
    inside = {}
    for cell in np.ndindex(block.shape[:-1]):
        row = srt[cell]
        first = xp.searchsorted(row, lo[cell], side="left")    # values < lo_j
        last = xp.searchsorted(row, hi[cell], side="right")    # values <= hi_j
        below_n[cell] = backend.to_numpy(first)
        below_1[cell] = backend.to_numpy(c1[cell][first])
        below_2[cell] = backend.to_numpy(c2[cell][first])
        flat = int(np.ravel_multi_index(tuple(c + o for c, o in zip(cell, offset)),
                                        lead_shape)) if lead_shape else 0
        for j, (a, b) in enumerate(zip(backend.to_numpy(first), backend.to_numpy(last))):
            if b > a:  # new arrays: a view would keep the whole block alive
                inside[flat, j] = tuple(backend.to_numpy(x) for x in _run_lengths(row[a:b]))
    return offset, backend.to_numpy(powers), below_n, below_1, below_2, inside


def _cross_sums(block, mean, axis, u):
    """Per cell of a block holding every strategy along ``axis``: sum_paths d^2 d_u^2, with
    d_u the unhedged strategy's (index ``u``) deviation on the same paths (host array)."""
    xp = backend.namespace(block)
    mean = xp.asarray(mean)

    def strategy(s):
        return (slice(None),) * axis + (slice(s, s + 1),)

    du2 = (block[strategy(u)].astype(xp.float64) - mean[strategy(u)][..., None]) ** 2
    out = xp.empty(block.shape[:-1])
    for s in range(block.shape[axis]):
        d = block[strategy(s)].astype(xp.float64) - mean[strategy(s)][..., None]
        out[strategy(s)] = (d * d * du2).sum(axis=-1)
    return backend.to_numpy(out)


def _cross_task(block, mean, axis, u, block_info=None):
    """``_cross_sums`` for ``dask.array.map_blocks``, with a trailing axis of one."""
    where = block_info[0]["array-location"][:-1]
    mean = mean[tuple(slice(start, stop) for start, stop in where)]
    return _cross_sums(block, mean, axis, u)[..., None]


def _pass2_task(block, lo, hi, mean, lead_shape, block_info=None):
    """``_block_pass2`` for ``dask.array.map_blocks``: the block's place comes from
    ``block_info``; the result is returned inside a one-element object array."""
    where = block_info[0]["array-location"][:-1]
    sl = tuple(slice(start, stop) for start, stop in where)
    offset = tuple(start for start, _ in where)
    out = np.empty((1,) * block.ndim, dtype=object)
    out[(0,) * block.ndim] = _block_pass2(block, lo[sl], hi[sl], mean[sl], offset, lead_shape)
    return out


# ----------------------------------------------------------------------------- helpers
def _probabilities(levels, quantiles):
    """The sorted distinct probabilities of the order statistics needed: the quantiles' p and
    the VaR levels' 1 - a."""
    return np.array(sorted({round(float(p), 12) for p in quantiles}
                           | {round(1.0 - float(a), 12) for a in levels}))


def _bracket_probabilities(p, n, sizes):
    """(5, T) probabilities of the block quantiles of pass 1, per target p_j: p - delta, p,
    p + delta (the block's local slope of the quantile function; delta = 3 standard errors
    of a block quantile) and p -+ dp (the safe bracket, see the module docstring)."""
    m = sizes.max()
    delta = 3.0 * np.sqrt(p * (1 - p) / m) + 1.0 / m
    dp = (3.0 * np.sqrt(n * p * (1 - p)) + 2 * len(sizes) + 4) / n
    return np.clip(np.stack([p - delta, p, p + delta, p - dp, p + dp]), 0.0, 1.0)


def _brackets(block_q, block_probs, p, n, sizes):
    """Tight and safe brackets ((lo, hi) arrays of shape (*cells, T)) from the per-block
    quantiles ``block_q`` (*cells, B, 5, T)."""
    w = (sizes / sizes.sum())[:, None, None]
    centre = (block_q[..., :, 1, :] * w[..., 0, :]).sum(axis=-2)
    run = block_probs[2] - block_probs[0]
    slope = ((block_q[..., :, 2, :] - block_q[..., :, 0, :]) * w[..., 0, :]).sum(axis=-2) \
        / np.where(run > 0, run, 1.0)
    half = (6.0 * np.sqrt(p * (1 - p) / n) + (2 * len(sizes) + 4) / n) * slope
    # a few ulps more: in an atom (slope 0) the weighted mean of equal block quantiles can
    # differ from the atom's value in the last bit
    half = half + 4 * np.spacing(np.abs(centre))
    safe = (block_q[..., :, 3, :].min(axis=-2), block_q[..., :, 4, :].max(axis=-2))
    tight = (np.maximum(centre - half, safe[0]), np.minimum(centre + half, safe[1]))
    return tight, safe


def _pass2(arr, bracket, mean):
    """Lazy pass 2: one object per block; Dask fuses each block's read, conversion and this
    work into one task, so memory holds a few blocks whatever the size of the store."""
    lo, hi = bracket
    return arr.map_blocks(_pass2_task, lo, hi, mean, arr.shape[:-1], dtype=object,
                          chunks=tuple((1,) * len(c) for c in arr.chunks))


def _unhedged(ds, unhedged):
    """The name of the unhedged strategy (None when there is none)."""
    if "strategy" not in ds.dims:
        return None
    names = [str(s) for s in ds["strategy"].values]
    if unhedged is not None:
        if unhedged not in names:
            raise ValueError(f"summary: 'unhedged' must be one of the strategies {names}; "
                             f"got {unhedged!r}")
        return unhedged
    try:
        hedges = json.loads(ds.attrs["config"])["hedges"]
    except (KeyError, TypeError, ValueError):
        return None
    for name in names:
        if hedges.get(name, {}).get("type") == "NoHedge":
            return name
    return None


def _turnover(ds):
    """Per-path PV of traded notional: the engine's ``turnover``, else cost / proportional
    for cost levels with a proportional rate and no fixed fee, else None."""
    if "turnover" in ds:
        return ds["turnover"].astype(np.float64)
    if "cost_paid" not in ds or "cost" not in ds.dims:
        return None
    try:
        costs = json.loads(ds.attrs["config"])["costs"]
        rates = [costs[str(c)] for c in ds["cost"].values]
    except (KeyError, TypeError, ValueError):
        return None
    scale = np.array([1.0 / c["proportional"] if c.get("proportional", 0) > 0
                      and c.get("fixed", 0) == 0 else np.nan for c in rates])
    if np.isnan(scale).all():
        return None
    return ds["cost_paid"].astype(np.float64) * xr.DataArray(scale, dims="cost")


def _expect_square(coeffs, mu):
    """E[(sum_k c_k d^k)^2] = sum_{j,k} c_j c_k mu_{j+k} (mu_0 = 1, mu_1 = 0)."""
    total = 0.0
    for j, cj in enumerate(coeffs):
        for k, ck in enumerate(coeffs):
            if cj is not None and ck is not None:
                total = total + cj * ck * mu[j + k]
    return total


def _attrs(long_name, units):
    return {"long_name": long_name, "units": units}


# ----------------------------------------------------------------------------- summary
def summary(ds: xr.Dataset, dim: str = "path", levels=LEVELS, quantiles=QUANTILES,
            unhedged=None) -> xr.Dataset:
    """Per-scenario statistics of ``ds.pnl`` over ``dim``, each with its standard error.

    Parameters
    ----------
    ds : xarray.Dataset
        ``gpuhedge.simulate``'s result or a sweep's store (lazy, any size): ``pnl`` and
        optionally ``cost_paid``, ``trades``, ``turnover``.
    dim : str
        The dimension to reduce (the paths).
    levels : sequence of float
        Confidence levels a of VaR_a and CVaR_a, in (0, 1).
    quantiles : sequence of float
        Probabilities p of the reported quantiles q_p, in [0, 1].
    unhedged : str, optional
        The strategy whose variance ``hedge_effectiveness`` compares with (default: the
        first ``NoHedge`` in the configuration; no effectiveness without one).

    Returns
    -------
    xarray.Dataset
        Over the remaining dims: ``mean``, ``std``, ``skew``, ``excess_kurtosis``,
        ``var_XX`` and ``cvar_XX`` per level (losses positive), ``q_XX`` per quantile,
        ``hedge_effectiveness``, ``mean_cost``, ``mean_trades``, ``turnover``, and
        ``se_<name>`` for each. The module docstring gives the definitions and the standard
        errors. Attributes: ``n_paths`` and the unhedged strategy.
    """
    import dask

    owner = "summary"
    if not isinstance(ds, xr.Dataset) or "pnl" not in ds:
        raise ValueError(f"{owner}: 'ds' must be an xarray.Dataset with a 'pnl' variable; got "
                         f"{type(ds).__name__}")
    if dim not in ds["pnl"].dims:
        raise ValueError(f"{owner}: 'dim' must be a dimension of 'pnl' {ds['pnl'].dims}; got "
                         f"{dim!r}")
    for name, values, low, high in (("levels", levels, 0.0, 1.0),
                                    ("quantiles", quantiles, 0.0, 1.0)):
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high
                   and (name == "quantiles" or low < v < high) for v in values):
            raise ValueError(f"{owner}: '{name}' must be numbers in "
                             f"{'[0, 1]' if name == 'quantiles' else '(0, 1)'}; got {values!r}")
    unhedged = _unhedged(ds, unhedged)
    n = ds.sizes[dim]

    stored = ds["pnl"].transpose(*[d for d in ds["pnl"].dims if d != dim], dim)
    if stored.chunks is None:
        stored = stored.chunk({dim: _BLOCK})
    pnl = stored.astype(np.float64)  # sums in float64 whatever the storage precision
    lead_dims = pnl.dims[:-1]
    lead_shape = pnl.shape[:-1]
    arr = pnl.data
    n_blocks = len(arr.chunks[-1])

    p = _probabilities(levels, quantiles)
    sizes = np.array(arr.chunks[-1])

    # ---- pass 1: means, and per block the quantiles that bracket the order statistics
    block_probs = _bracket_probabilities(p, n, sizes)
    block_q = arr.map_blocks(
        _block_quantiles, block_probs.ravel(), dtype=np.float64, new_axis=arr.ndim,
        chunks=arr.chunks[:-1] + ((1,) * n_blocks, (block_probs.size,)))
    first = {"mean": pnl.mean(dim, skipna=False)}
    others = {"cost_paid": "mean_cost", "trades": "mean_trades"}
    extra = {new: ds[old].astype(np.float64) for old, new in others.items() if old in ds}
    turnover = _turnover(ds)
    if turnover is not None:
        extra["turnover"] = turnover
    for name, var in extra.items():
        first[name] = var.mean(dim, skipna=False)
    mean, block_q, *rest = dask.compute(first["mean"], block_q, *[first[k] for k in extra])
    means = dict(zip(extra, rest))
    if np.isnan(mean.values).any():
        raise ValueError(f"{owner}: 'pnl' holds NaN (a sweep whose store is not complete yet? "
                         f"run the same sweep again to finish it)")
    tight, safe = _brackets(block_q.reshape(block_q.shape[:-1] + block_probs.shape),
                            block_probs, p, n, sizes)

    # ---- pass 2: central moments, tails and the values inside the brackets
    moments = {}
    for name, var in extra.items():
        moments[f"var_{name}"] = ((var - means[name]) ** 2).mean(dim)
    mean_np = mean.values
    keys = list(moments)
    computed = dask.compute(*[moments[k] for k in keys], _pass2(arr, tight, mean_np))
    moments = dict(zip(keys, computed[:-1]))
    tails = computed[-1].ravel()
    tail_out, missed = _tail_statistics(tails, p, n, mean_np, pnl, levels, quantiles)
    if missed.any():  # rare: widen to the safe bracket where the tight one missed
        wider = tuple(np.where(missed, s_, t_) for s_, t_ in zip(safe, tight))
        again = _pass2(arr, wider, mean_np).compute().ravel()
        tail_out, missed = _tail_statistics(again, p, n, mean_np, pnl, levels, quantiles)
        if missed.any():
            raise RuntimeError(f"{owner}: internal error: an order statistic outside its "
                               f"safe bracket")
    if unhedged is not None:
        # The one statistic that pairs two cells, in a pass of its own: each task takes one
        # block of paths of every strategy. (Computed with the pass above, the per-cell blocks
        # would be shared by both and Dask would keep many of them in memory.)
        axis = lead_dims.index("strategy")
        u = [str(v) for v in pnl["strategy"].values].index(unhedged)
        whole = stored.data.rechunk({axis: -1})  # converted to float64 inside the task
        cross = whole.map_blocks(_cross_task, mean_np, axis, u, dtype=np.float64,
                                 chunks=whole.chunks[:-1] + ((1,) * n_blocks,))
        moments["cross"] = xr.DataArray(cross.sum(axis=-1).compute() / n, dims=lead_dims,
                                        coords={c: mean.coords[c] for c in mean.coords})
    powers = np.zeros(lead_shape + (_MAX_MOMENT - 1,))
    for offset, block_powers, *_ in tails:
        powers[tuple(slice(o, o + s) for o, s in zip(offset, block_powers.shape[:-1]))] += \
            block_powers
    for k in range(2, _MAX_MOMENT + 1):
        moments[k] = xr.DataArray(powers[..., k - 2] / n, dims=lead_dims,
                                  coords={c: mean.coords[c] for c in mean.coords})

    variances = {name: moments.pop(f"var_{name}") for name in means}
    return _assemble(mean, moments, means, variances, tail_out, n, unhedged, dim)


def _assemble(mean, moments, means, variances, tail_out, n, unhedged, dim):
    """The summary Dataset from its parts: the P&L's ``mean`` and central ``moments``
    ({k: mu_k}, and ``"cross"`` with an unhedged strategy), the other variables' ``means``
    and ``variances`` (divisor n), the tail statistics (``_tail_statistics``)."""
    out = _moment_statistics(mean, moments, n, unhedged, dim)
    for name, var in means.items():
        out[name] = var
        out[f"se_{name}"] = np.sqrt(variances[name] * n / max(n - 1, 1) / n)
    out.update(tail_out)
    result = xr.Dataset(out)
    _set_attrs(result)
    result.attrs["n_paths"] = n
    result.attrs["conventions"] = ("losses positive: var_XX = -q_{1-a}(pnl), cvar_XX = "
                                   "-E[pnl | pnl <= q_{1-a}]; se_* are standard errors "
                                   "(gpuhedge.metrics)")
    if unhedged is not None:
        result.attrs["unhedged"] = unhedged
    return result


def _moment_statistics(mean, m, n, unhedged, dim):
    """Mean, std, skew, excess kurtosis, hedge effectiveness and their standard errors."""
    mu = [1.0, 0.0] + [m[k] for k in range(2, _MAX_MOMENT + 1)]
    m2, m3, m4 = mu[2], mu[3], mu[4]
    std = np.sqrt(m2 * n / max(n - 1, 1))
    root = np.sqrt(m2)
    # influence functions as polynomials in d = X - E X (coefficients of d^0, d^1, ...)
    if_std = [-m2 / (2 * root), None, 1 / (2 * root)]
    if_skew = [0.5 * m3 / m2**1.5, -3 / root, -1.5 * m3 / m2**2.5, 1 / m2**1.5]
    if_kurt = [m4 / m2**2, -4 * m3 / m2**2, -2 * m4 / m2**3, None, 1 / m2**2]
    out = {"mean": mean, "se_mean": std / np.sqrt(n), "std": std,
           "se_std": np.sqrt(np.maximum(_expect_square(if_std, mu), 0.0) / n),
           "skew": m3 / m2**1.5,
           "se_skew": np.sqrt(np.maximum(_expect_square(if_skew, mu), 0.0) / n),
           "excess_kurtosis": m4 / m2**2 - 3.0,
           "se_excess_kurtosis": np.sqrt(np.maximum(_expect_square(if_kurt, mu), 0.0) / n)}
    if unhedged is not None:
        vu, m4u = m2.sel(strategy=unhedged), m4.sel(strategy=unhedged)
        ratio = m2 / vu
        var_if = ((m4 - m2**2) - 2 * ratio * (m["cross"] - m2 * vu)
                  + ratio**2 * (m4u - vu**2)) / vu**2
        out["hedge_effectiveness"] = 1.0 - ratio
        se = np.sqrt(np.maximum(var_if, 0.0) / n)
        # exactly 0 for the unhedged strategy itself (its ratio is 1 on every sample)
        out["se_hedge_effectiveness"] = se.where(se["strategy"] != unhedged, 0.0)
    return out


def _tail_statistics(tails, p, n, mean, like, levels, quantiles):
    """Quantiles, VaR and CVaR (with standard errors) from the per-block results of pass 2,
    and a (cells, T) mask of the targets whose bracket missed an order statistic needed."""
    lead_dims, lead_shape = like.dims[:-1], like.shape[:-1]
    n_cells = int(np.prod(lead_shape, dtype=np.int64))
    T = len(p)
    below_n = np.zeros(lead_shape + (T,), dtype=np.int64)
    below_1 = np.zeros(lead_shape + (T,))
    below_2 = np.zeros(lead_shape + (T,))
    pieces = {}
    for offset, _, bn, b1, b2, inside in tails:
        sl = tuple(slice(o, o + s) for o, s in zip(offset, bn.shape[:-1]))
        below_n[sl] += bn
        below_1[sl] += b1
        below_2[sl] += b2
        for key, v in inside.items():
            pieces.setdefault(key, []).append(v)
    below_n = below_n.reshape(n_cells, T)
    below_1 = below_1.reshape(n_cells, T)
    below_2 = below_2.reshape(n_cells, T)
    mean = mean.reshape(n_cells)

    q, se_q, tail_mean, se_tail = (np.full((n_cells, T), np.nan) for _ in range(4))
    missed = np.zeros((n_cells, T), dtype=bool)
    for j, pj in enumerate(p):
        h = _virtual_index(n, pj)
        k0 = int(np.clip(np.floor(h), 0, n - 1))
        k1 = min(k0 + 1, n - 1)
        gamma = h - np.floor(h)
        spread = math.sqrt(n * pj * (1 - pj))
        klo = int(np.clip(math.floor(h - spread), 0, n - 1))
        khi = int(np.clip(math.ceil(h + spread), 0, n - 1))
        for cell in range(n_cells):
            parts = pieces.get((cell, j), [])
            values = np.concatenate([v for v, _ in parts]) if parts else np.zeros(0)
            counts = np.concatenate([c for _, c in parts]) if parts else np.zeros(0, int)
            order = np.argsort(values, kind="stable")
            values, counts = values[order], counts[order]
            ends = np.cumsum(counts)  # values[i] holds the ranks base + [ends[i-1], ends[i])
            base = below_n[cell, j]
            if klo < base or khi >= base + (ends[-1] if len(ends) else 0):
                missed[cell, j] = True
                continue

            def order_stat(k):
                return values[np.searchsorted(ends, k - base, side="right")]

            qj = float(_lerp(order_stat(k0), order_stat(k1), gamma))
            q[cell, j] = qj
            se_q[cell, j] = 0.5 * (order_stat(khi) - order_stat(klo))
            # the tail X <= q: everything below the bracket and the bracket's values <= q
            keep = values <= qj
            d, c = values[keep] - mean[cell], counts[keep]
            count = base + c.sum()
            s1 = below_1[cell, j] + (d * c).sum()
            s2 = below_2[cell, j] + (d * d * c).sum()
            tail_d = s1 / count
            tail_mean[cell, j] = mean[cell] + tail_d
            b = count / n
            var_tail = max(s2 / count - tail_d**2, 0.0)
            se_tail[cell, j] = math.sqrt(
                (var_tail + (1 - b) * (tail_mean[cell, j] - qj) ** 2) / (n * b))

    coords = {d: like.coords[d] for d in lead_dims if d in like.coords}

    def array(values):
        return xr.DataArray(values.reshape(lead_shape), dims=lead_dims, coords=coords)

    out = {}
    index = {round(float(pj), 12): j for j, pj in enumerate(p)}
    for a in levels:
        j = index[round(1.0 - float(a), 12)]
        name = _label(a)
        out[f"var_{name}"] = array(-q[:, j])
        out[f"se_var_{name}"] = array(se_q[:, j])
        out[f"cvar_{name}"] = array(-tail_mean[:, j])
        out[f"se_cvar_{name}"] = array(se_tail[:, j])
    for pq in quantiles:
        j = index[round(float(pq), 12)]
        out[f"q_{_label(pq)}"] = array(q[:, j])
        out[f"se_q_{_label(pq)}"] = array(se_q[:, j])
    return out, missed.reshape(lead_shape + (T,))


_DESCRIPTIONS = {
    "mean": ("mean P&L", "currency"), "std": ("standard deviation of the P&L", "currency"),
    "skew": ("skewness of the P&L", "1"),
    "excess_kurtosis": ("excess kurtosis of the P&L", "1"),
    "hedge_effectiveness": ("1 - var(P&L) / var(unhedged P&L)", "1"),
    "mean_cost": ("mean transaction costs paid (present value)", "currency"),
    "mean_trades": ("mean number of share trades", "1"),
    "turnover": ("mean traded notional, present value", "currency"),
    "min": ("smallest P&L", "currency"), "max": ("largest P&L", "currency"),
}


def _set_attrs(result):
    for name, var in result.data_vars.items():
        base = name[3:] if name.startswith("se_") else name
        if base in _DESCRIPTIONS:
            long_name, units = _DESCRIPTIONS[base]
        elif base.startswith("cvar_"):
            long_name, units = f"CVaR (expected shortfall) at {base[5:]}%, loss > 0", "currency"
        elif base.startswith("var_"):
            long_name, units = f"value at risk at {base[4:]}%, loss > 0", "currency"
        else:
            long_name, units = f"{base[2:]}% quantile of the P&L", "currency"
        if name.startswith("se_"):
            long_name = f"standard error of the {long_name}"
        var.attrs.update(_attrs(long_name, units))
