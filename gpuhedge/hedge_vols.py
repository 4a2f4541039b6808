"""Hedge vols read from a price history, without look-ahead: the vol a hedger would have used at
the close of each day, for each horizon (days to the option's expiry).

Every function returns a ``DataArray`` over ``(date, horizon)``: the annualised vol
sqrt(252 * mean_{j=1..h} E_t[r_{t+j}^2]) of the average daily variance over the next ``h``
trading days, forecast at the close of ``date`` from the closes up to and including that date
only (r are daily log returns, 252 trading days a year). NaN where there is not enough history.

* ``realised``: trailing close-to-close realised vol over ``window`` days, flat in h;
* ``ewma``: RiskMetrics' exponentially weighted variance, s2_{t+1} = lam s2_t + (1 - lam) r_t^2,
  flat in h (J.P. Morgan/Reuters 1996, lam = 0.94);
* ``garch``: GARCH(1,1) (Bollerslev 1986) or GJR-GARCH(1,1,1) (Glosten, Jagannathan and Runkle
  1993) with zero mean and normal innovations, fitted by ``arch`` (maximum likelihood on returns
  in percent) on all returns up to each refit date (an expanding window), and its h-step
  forecasts on every day until the next refit with the parameters of the last fit; the
  variance forecast mean-reverts to the model's long-run variance;
* ``implied``: an implied-vol index such as the VIX (percent), flat in h.
"""

import numpy as np
import xarray as xr

from . import _validation as check
from .data import TRADING_DAYS, _require_arch


def _returns(owner, close):
    if not isinstance(close, xr.DataArray) or close.dims != ("date",):
        raise ValueError(f"{owner}: 'close' must be an xarray.DataArray over 'date'; got "
                         f"{type(close).__name__}")
    values = check.finite_array(owner, "close", close.values, 1)
    if values.size < 2 or np.any(values <= 0):
        raise ValueError(f"{owner}: 'close' must hold at least 2 positive prices; got "
                         f"{values.size} with min {values.min() if values.size else None}")
    return np.diff(np.log(values))


def _flat(close, vol, horizon, name, note):
    h = np.arange(1, horizon + 1)
    da = xr.DataArray(np.repeat(vol[:, None], horizon, axis=1), dims=("date", "horizon"),
                      coords={"date": close["date"].values, "horizon": h}, name=name)
    da.attrs.update(long_name=f"hedge vol ({name})", units="1 (annualised)", note=note)
    return da


def realised(close, window=21, horizon=21):
    """Trailing realised vol sqrt(252 / window * sum of the last ``window`` squared daily log
    returns) at each close (no mean removed), flat over ``horizon`` days."""
    owner = "hedge_vols.realised"
    r = _returns(owner, close)
    window = check.integer(owner, "window", window, 1, r.size)
    horizon = check.integer(owner, "horizon", horizon, 1)
    vol = np.full(r.size + 1, np.nan)
    sums = np.cumsum(np.concatenate([[0.0], r * r]))
    vol[window:] = np.sqrt(TRADING_DAYS * (sums[window:] - sums[:-window]) / window)
    return _flat(close, vol, horizon, "realised",
                 f"trailing {window}-day close-to-close realised vol")


def ewma(close, lam=0.94, warm_up=21, horizon=21):
    """RiskMetrics EWMA vol at each close: s2 starts at the first squared return and is updated
    with each later one; reported after ``warm_up`` returns; flat over ``horizon`` days."""
    owner = "hedge_vols.ewma"
    r = _returns(owner, close)
    lam = check.real(owner, "lam", lam, 0.0, 1.0, low_open=True, high_open=True)
    warm_up = check.integer(owner, "warm_up", warm_up, 1, r.size)
    horizon = check.integer(owner, "horizon", horizon, 1)
    s2 = np.empty(r.size)
    s2[0] = r[0] ** 2
    for k in range(1, r.size):
        s2[k] = lam * s2[k - 1] + (1.0 - lam) * r[k] ** 2
    vol = np.full(r.size + 1, np.nan)
    vol[warm_up:] = np.sqrt(TRADING_DAYS * s2[warm_up - 1:])
    return _flat(close, vol, horizon, "EWMA", f"RiskMetrics EWMA, lambda = {lam}")


def garch(close, refit, kind="garch", horizon=21, min_returns=252):
    """GARCH(1,1) or GJR-GARCH forecasts of the average variance to each horizon.

    Parameters
    ----------
    close : xarray.DataArray over ``date``
        Daily closes.
    refit : sequence of int
        Indices of the closes at which the model is refitted on all returns up to that close;
        refits with fewer than ``min_returns`` returns behind them are skipped.
    kind : {"garch", "gjr"}
        The variance equation: s2_{t+1} = omega + (alpha + gamma 1{r_t < 0}) r_t^2 + beta s2_t,
        gamma = 0 for "garch".
    horizon : int
        Largest horizon h in trading days.

    Returns
    -------
    xarray.Dataset
        ``vol`` (date, horizon) as the module describes, NaN before the first refit, and per
        refit (``fit_date``) the fitted ``params`` (omega, alpha, gamma, beta; returns in
        percent) and the optimiser's ``converged`` flag.
    """
    arch_model = _require_arch("hedge_vols.garch").arch_model
    owner = "hedge_vols.garch"
    r = 100.0 * _returns(owner, close)
    kind = check.choice(owner, "kind", kind, ("garch", "gjr"))
    horizon = check.integer(owner, "horizon", horizon, 1)
    min_returns = check.integer(owner, "min_returns", min_returns, 10)
    fits = sorted({int(check.integer(owner, "refit", d, 1, r.size)) for d in refit})
    fits = [d for d in fits if d >= min_returns]
    var = np.full((r.size + 1, horizon), np.nan)
    params = np.full((len(fits), 4), np.nan)
    converged = np.zeros(len(fits), dtype=bool)
    for i, d in enumerate(fits):
        # close d is the last the fit sees; the forecasts on closes d .. end use the returns
        # up to each of those closes (the model holds r[:end]) and the parameters fitted here
        end = fits[i + 1] - 1 if i + 1 < len(fits) else r.size
        model = arch_model(r[:end], mean="Zero", vol="GARCH", p=1, o=int(kind == "gjr"), q=1,
                           rescale=False)
        res = model.fit(last_obs=d, disp="off")
        f = res.forecast(start=d - 1, horizon=horizon, reindex=False).variance.to_numpy()
        var[d:end + 1] = f
        p = res.params
        params[i] = (p["omega"], p["alpha[1]"], p["gamma[1]"] if kind == "gjr" else 0.0,
                     p["beta[1]"])
        converged[i] = res.convergence_flag == 0
    average = np.cumsum(var, axis=1) / np.arange(1, horizon + 1)
    vol = np.sqrt(TRADING_DAYS * average) / 100.0
    name = "GJR-GARCH" if kind == "gjr" else "GARCH"
    dates = close["date"].values
    da = xr.DataArray(vol, dims=("date", "horizon"),
                      coords={"date": dates, "horizon": np.arange(1, horizon + 1)},
                      attrs=dict(long_name=f"hedge vol ({name})", units="1 (annualised)",
                                 note=f"{name}(1,1) by arch, expanding window, refitted at "
                                      f"{len(fits)} dates"))
    return xr.Dataset(
        {"vol": da,
         "params": (("fit_date", "param"), params),
         "converged": ("fit_date", converged)},
        coords={"fit_date": dates[fits], "param": ["omega", "alpha", "gamma", "beta"]},
        attrs={"model": name})


def implied(index, dates, horizon=21):
    """An implied-vol index in percent (e.g. the VIX, ``gpuhedge.data.load("vix").vix``) as a
    vol on ``dates``, flat over ``horizon`` days; NaN on dates it does not cover."""
    owner = "hedge_vols.implied"
    if not isinstance(index, xr.DataArray) or index.dims != ("date",):
        raise ValueError(f"{owner}: 'index' must be an xarray.DataArray over 'date'; got "
                         f"{type(index).__name__}")
    horizon = check.integer(owner, "horizon", horizon, 1)
    on = index.reindex(date=dates) / 100.0
    return _flat(on, on.values, horizon, str(index.name or "implied"),
                 "implied-vol index / 100 (30 calendar days)")
