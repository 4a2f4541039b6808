"""Statistics of the hedging error over paths, with Monte Carlo standard errors.

Losses are positive numbers in VaR and CVaR: VaR_a = -q_{1-a}(pnl) and
CVaR_a = -E[pnl | pnl <= q_{1-a}(pnl)] (expected shortfall, Acerbi and Tasche 2002).
"""

import numpy as np
import xarray as xr

LEVELS = (0.95, 0.99)
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def summary(ds: xr.Dataset, dim: str = "path", levels=LEVELS, quantiles=QUANTILES) -> xr.Dataset:
    """Per-scenario statistics of ``ds.pnl`` over ``dim``.

    Returns a Dataset over the remaining dims with: mean, std (and their standard errors
    se_mean = s / sqrt(n), se_std = s sqrt((kurt - 1) / (4 n)) from the delta method), skew,
    excess kurtosis, var_XX and cvar_XX for each level, the quantiles q_XX, mean_cost and
    mean_trades.
    """
    pnl = ds["pnl"]
    n = pnl.sizes[dim]
    mean = pnl.mean(dim)
    dev = pnl - mean
    m2 = (dev**2).mean(dim)
    m3 = (dev**3).mean(dim)
    m4 = (dev**4).mean(dim)
    std = np.sqrt(m2 * n / max(n - 1, 1))
    kurt = m4 / m2**2
    out = {
        "mean": mean, "se_mean": std / np.sqrt(n), "std": std,
        "se_std": std * np.sqrt(np.maximum(kurt - 1.0, 0.0) / (4.0 * n)),
        "skew": m3 / m2**1.5, "excess_kurtosis": kurt - 3.0,
    }
    qs = pnl.quantile(sorted(set(quantiles) | {1.0 - a for a in levels}), dim=dim)
    for a in levels:
        q = qs.sel(quantile=1.0 - a, method="nearest").drop_vars("quantile")
        tail = pnl.where(pnl <= q)
        out[f"var_{round(a * 100)}"] = -q
        out[f"cvar_{round(a * 100)}"] = -tail.mean(dim)
    for p in quantiles:
        out[f"q_{round(p * 100):02d}"] = qs.sel(quantile=p, method="nearest").drop_vars("quantile")
    out["mean_cost"] = ds["cost_paid"].mean(dim)
    out["mean_trades"] = ds["trades"].mean(dim)
    result = xr.Dataset(out)
    result.attrs["n_paths"] = n
    return result
