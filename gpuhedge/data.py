"""Real market history for back-tests: the daily index closes and the VIX that ship inside the
``arch`` package, as xarray objects with dates, units and a note of their source.

``arch`` (Kevin Sheppard's library of ARCH/GARCH models) is an optional dependency, the
``data`` extra (``pip install "gpuhedge[data]"``); nothing here touches the network, the series
are read from the files ``arch`` installs.

Series (``arch.data``, downloaded by ``arch``'s authors from Yahoo! Finance):

* ``"sp500"``: S&P 500 price index (no dividends reinvested), 1999-01-04 .. 2018-12-31;
* ``"nasdaq"``: NASDAQ Composite price index, same dates;
* ``"vix"``: CBOE VIX, 2014-01-03 .. 2019-01-03, in percent (annualised 30-calendar-day implied
  vol of S&P 500 options); its file lists every weekday, with no value on market holidays,
  whose rows are dropped here.
"""

import importlib

import numpy as np
import xarray as xr

SOURCES = {
    "sp500": ("arch.data.sp500", "S&P 500 index", "index points"),
    "nasdaq": ("arch.data.nasdaq", "NASDAQ Composite index", "index points"),
    "vix": ("arch.data.vix", "CBOE VIX", "percent (annualised)"),
}
TRADING_DAYS = 252


def _require_arch(owner):
    """The ``arch`` module, or an ImportError naming the extra that installs it."""
    try:
        import arch
    except ImportError:
        raise ImportError(f"{owner} needs the 'arch' package: install the 'data' extra, "
                          "pip install \"gpuhedge[data]\" (or pip install \"arch>=7\")"
                          ) from None
    return arch


def load(name):
    """One series of daily history as an ``xarray.Dataset`` over ``date``.

    Parameters
    ----------
    name : {"sp500", "nasdaq", "vix"}
        The series (module docstring).

    Returns
    -------
    xarray.Dataset
        ``"sp500"``, ``"nasdaq"``: ``open``, ``high``, ``low``, ``close`` (index points) and
        ``volume`` (shares), read as ``ds["close"]`` (``ds.close`` is the Dataset's method);
        ``"vix"``: ``vix`` (percent). ``date`` is sorted, one row per
        trading day, with no missing values; attributes ``title``, ``source``, ``units``.

    Raises
    ------
    ValueError
        For an unknown ``name``.
    ImportError
        Without ``arch`` (the ``data`` extra), naming the extra.
    """
    if name not in SOURCES:
        raise ValueError(f"gpuhedge.data.load: 'name' must be one of "
                         f"{', '.join(repr(s) for s in SOURCES)}; got {name!r}")
    module, title, units = SOURCES[name]
    _require_arch("gpuhedge.data.load")
    frame = importlib.import_module(module).load().dropna().sort_index()
    dates = frame.index.values.astype("datetime64[ns]")
    if name == "vix":
        columns = {"vix": ("vix", units)}
    else:
        columns = {c.lower(): (c, units) for c in ("Open", "High", "Low", "Close")}
        columns["volume"] = ("Volume", "shares")
    ds = xr.Dataset({k: ("date", frame[c].to_numpy(float), {"units": u})
                     for k, (c, u) in columns.items()}, coords={"date": dates})
    ds.attrs.update(title=title, units=units,
                    source=f"{module} (shipped with the 'arch' package; Yahoo! Finance daily "
                           f"data); rows without a value dropped")
    return ds


def log_returns(close):
    """Daily log returns ln(S_k / S_{k-1}) of a ``close`` DataArray over ``date``, dated by
    the later close (one fewer than the closes)."""
    r = np.log(close).diff("date")
    r.attrs = {"long_name": "daily log return", "units": "1"}
    return r


def year_fractions(n_days):
    """Times 0, 1/252, ..., n_days/252: a trading-day count over 252 trading days a year,
    the clock the back-tests give ``gh.hedge_paths``."""
    return np.arange(n_days + 1) / TRADING_DAYS
