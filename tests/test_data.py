"""Real market history: the loaders (gpuhedge.data), the hedge vols read from it without
look-ahead (gpuhedge.hedge_vols), and E12's back-test against an independent ledger."""

import math
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("arch")

import gpuhedge as gh  # noqa: E402
from gpuhedge import attribution, data, hedge_vols  # noqa: E402
from gpuhedge.pricing import bs_delta, bs_price, bs_vega  # noqa: E402

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


@pytest.fixture(scope="module")
def sp500():
    return data.load("sp500")


@pytest.mark.parametrize("name", ["sp500", "nasdaq", "vix"])
def test_loaders_sorted_complete_and_labelled(name):
    ds = data.load(name)
    dates = ds["date"].values
    assert np.all(np.diff(dates) > np.timedelta64(0, "D"))          # sorted, no duplicates
    for var in ds.data_vars:
        assert np.isfinite(ds[var].values).all() and ds[var].attrs["units"]
    assert ds.attrs["source"].startswith(f"arch.data.{name}") and ds.attrs["units"]
    gaps = np.diff(dates).astype("timedelta64[D]").astype(int)
    # weekends and market holidays only: at most 4 calendar days (a long weekend) or 5
    # (a mid-week closure next to one), except the week of 11 September 2001
    long = dates[1:][gaps > 5].astype("datetime64[D]").astype(str).tolist()
    assert long == (["2001-09-17"] if name != "vix" else [])
    assert gaps.max() <= 7
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    full = [y for y in np.unique(years) if y not in (years[0], years[-1])] or []
    counts = [int((years == y).sum()) for y in full]
    assert all(248 <= c <= 253 for c in counts), counts  # NYSE: 252 +- holidays and closures
    if name == "vix":
        assert str(dates[0])[:10] == "2014-01-03" and float(ds.vix.min()) > 5
    else:
        assert str(dates[0])[:10] == "1999-01-04" and str(dates[-1])[:10] == "2018-12-31"
        assert (ds.low <= ds["close"]).all() and (ds["close"] <= ds.high).all()


def test_vix_trades_on_the_sp500_days(sp500):
    vix = data.load("vix")
    both = vix["date"].values[vix["date"].values <= sp500["date"].values[-1]]
    spx = sp500["date"].values[sp500["date"].values >= both[0]]
    np.testing.assert_array_equal(both, spx)


def test_load_errors(monkeypatch):
    with pytest.raises(ValueError, match=r"gpuhedge.data.load: 'name' must be one of 'sp500'"):
        data.load("ftse")
    monkeypatch.setitem(sys.modules, "arch", None)
    with pytest.raises(ImportError, match=r"install the 'data' extra"):
        data.load("sp500")
    with pytest.raises(ImportError, match=r"hedge_vols.garch needs the 'arch' package"):
        hedge_vols.garch(sp500_close_stub(), [300])


def sp500_close_stub():
    import xarray as xr

    return xr.DataArray(np.linspace(100, 110, 400), dims="date",
                        coords={"date": np.arange(400).astype("datetime64[D]")})


def _perturbed(close, after, seed=3):
    """The closes with every return after close ``after`` replaced (a different future)."""
    rng = np.random.default_rng(seed)
    out = close.copy()
    r = np.diff(np.log(close.values))
    r[after:] = rng.normal(0.0, 0.03, r.size - after)
    out.values = close.values[0] * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    return out


FORECASTERS = {
    "realised": lambda c: hedge_vols.realised(c, window=21),
    "ewma": lambda c: hedge_vols.ewma(c),
    "garch": lambda c: hedge_vols.garch(c, range(300, c.size, 21), "garch").vol,
    "gjr": lambda c: hedge_vols.garch(c, range(300, c.size, 21), "gjr").vol,
}


@pytest.mark.parametrize("name", list(FORECASTERS))
@pytest.mark.parametrize("after", [330, 342])  # between two refits; on a refit (300 + 2 x 21)
def test_no_look_ahead(sp500, name, after):
    """A forecast made at close t is the same whatever happens after t, and a forecast after t
    does see the new data (so the test is not vacuous)."""
    close = sp500["close"].isel(date=slice(0, 420))
    base = FORECASTERS[name](close).values
    other = FORECASTERS[name](_perturbed(close, after)).values
    np.testing.assert_array_equal(base[:after + 1], other[:after + 1])
    assert np.isfinite(base[after]).all()
    assert not np.allclose(base[after + 1:], other[after + 1:], equal_nan=True)


def test_implied_no_look_ahead_and_values(sp500):
    vix = data.load("vix").vix
    vol = hedge_vols.implied(vix, sp500["date"].values)
    assert np.isnan(vol.sel(date="2013-12-31")).all()
    assert float(vol.sel(date="2015-08-24", horizon=21)) == pytest.approx(
        float(vix.sel(date="2015-08-24")) / 100)
    changed = vix.copy()
    changed.loc["2016-01-01":] *= 2
    again = hedge_vols.implied(changed, sp500["date"].values)
    np.testing.assert_array_equal(vol.sel(date=slice(None, "2015-12-31")).values,
                                  again.sel(date=slice(None, "2015-12-31")).values)


def test_realised_and_ewma_by_hand(sp500):
    close = sp500["close"].values[:200]
    r = np.diff(np.log(close))
    da = sp500["close"].isel(date=slice(0, 200))
    t = 150  # close index: uses r[t-21 .. t-1]
    assert float(hedge_vols.realised(da).isel(date=t, horizon=0)) == pytest.approx(
        math.sqrt(252 * np.mean(r[t - 21:t] ** 2)), rel=1e-12)
    s2 = r[0] ** 2
    for x in r[1:t]:
        s2 = 0.94 * s2 + 0.06 * x * x
    assert float(hedge_vols.ewma(da).isel(date=t, horizon=5)) == pytest.approx(
        math.sqrt(252 * s2), rel=1e-12)


def test_garch_matches_a_fit_on_the_truncated_data(sp500):
    """At a refit date the forecast is arch's on a model that never saw later data; the
    h-day vol averages the daily variance forecasts."""
    from arch import arch_model

    close = sp500["close"].isel(date=slice(0, 500))
    d = 400
    ds = hedge_vols.garch(close, [d], "gjr", horizon=21)
    r = 100 * np.diff(np.log(close.values[:d + 1]))
    res = arch_model(r, mean="Zero", vol="GARCH", p=1, o=1, q=1, rescale=False).fit(disp="off")
    var = res.forecast(horizon=21, reindex=False).variance.values[-1]
    for h in (1, 5, 21):
        assert float(ds.vol.isel(date=d).sel(horizon=h)) == pytest.approx(
            math.sqrt(252 * var[:h].mean()) / 100, rel=1e-6)
    assert np.isnan(ds.vol.isel(date=d - 1)).all() and bool(ds.converged.all())
    np.testing.assert_allclose(ds.params.isel(fit_date=0).values,
                               res.params[["omega", "alpha[1]", "gamma[1]", "beta[1]"]].values,
                               rtol=1e-6)


def test_hedge_vol_errors(sp500):
    with pytest.raises(ValueError, match=r"hedge_vols.realised: 'close' must be an "
                                         r"xarray.DataArray over 'date'; got ndarray"):
        hedge_vols.realised(sp500["close"].values)
    with pytest.raises(ValueError, match=r"hedge_vols.ewma: 'lam' must be a finite number in "
                                         r"\(0, 1\); got 1.5"):
        hedge_vols.ewma(sp500["close"], lam=1.5)
    with pytest.raises(ValueError, match=r"hedge_vols.garch: 'kind' must be one of"):
        hedge_vols.garch(sp500["close"], [300], kind="egarch")


def _ledger(prices, vol, every, proportional):
    """The writer's cash, one flow at a time (rate 0): premium in, each trade and its cost,
    the unwind, the payoff."""
    n, strike, tau = len(prices) - 1, prices[0], (len(prices) - 1 - np.arange(len(prices))) / 252
    cash = float(bs_price(prices[0], strike, tau[0], vol, 0.0, 0.0, True))
    held = 0.0
    for k in range(n):
        if every and k % every == 0:
            target = float(bs_delta(prices[k], strike, tau[k], vol, 0.0, 0.0, True))
            cash -= (target - held) * prices[k] + proportional * abs(target - held) * prices[k]
            held = target
    cash += held * prices[-1] - proportional * abs(held) * prices[-1]
    return cash - max(prices[-1] - strike, 0.0)


@pytest.mark.parametrize("sold", ["2008-09-10", "2010-04-13", "2017-06-14"])
def test_e12_back_test_matches_a_ledger(sp500, sold):
    """E12's monthly errors (Lehman's month, the flash crash, a calm month) against the
    ledger, for the realised-vol and VIX sources."""
    e12 = runpy.run_path(str(EXPERIMENTS / "e12_sp500_history.py"))
    dates, closes = sp500["date"].values, sp500["close"].values
    start = int(np.searchsorted(dates, np.datetime64(sold)))
    assert (start - 21) % 21 == 0  # one of E12's sales
    vix = data.load("vix").vix
    vols, _ = e12["forecasts"](sp500["close"], vix, [start])
    res, check = e12["back_test"](dates, closes, vols, np.array([start]), "cpu")
    assert check["replay"] < 1e-9 and check["trades"] == 0
    prices = 100 * closes[start:start + 22] / closes[start]
    sources = ["realised"] + (["VIX"] if sold >= "2014" else [])
    for source in sources:
        vol = float(res.hedge_vol.sel(source=source, path=0))
        unit = float(bs_vega(100.0, 100.0, 21 / 252, vol, 0.0, 0.0)) / 100
        for rule, every in (("daily delta", 1), ("weekly delta", 5), ("no hedge", 0)):
            got = float(res.pnl.sel(source=source, strategy=rule, path=0)) * unit
            assert got == pytest.approx(_ledger(prices, vol, every, 2e-4), abs=1e-10), rule
    if sold == "2008-09-10":
        assert float(res.pnl.sel(source="realised", strategy="daily delta", path=0)) < -30


def test_attribution_rejects_other_rules():
    with pytest.raises(ValueError, match=r"daily_attribution: 'strategy' must be a NoHedge"):
        attribution.daily_attribution([100, 101], [0, 1 / 252], 100, -1,
                                      gh.SpotMove(vol=0.2), 0.0)
    with pytest.raises(ValueError, match=r"'marks' must have shape \(1,\) and start at"):
        attribution.daily_attribution([100, 101], [0, 1 / 252], 100, -1,
                                      gh.DeltaHedge(vol=0.2), 0.0, marks=[0.3])


def test_attribution_vega_part_is_the_repricing_at_the_new_mark():
    """A day with no price move and the mark raised from 20% to 22%: the vega part is the
    Black-Scholes vega at the day's start times the change, the repricing at the new vol to
    the volga term, and the buckets add up to the engine's P&L."""
    prices, times = np.array([100.0, 100.0, 103.0]), np.array([0.0, 1.0, 2.0]) / 252
    hedge = gh.DeltaHedge(vol=0.2, every=1)
    buckets, trades = attribution.daily_attribution(prices, times, 100.0, -1.0, hedge, 0.0,
                                                    marks=[0.2, 0.22])
    repriced = -(bs_price(100.0, 100.0, 2 / 252, 0.22, 0.0, 0.0, True)
                 - bs_price(100.0, 100.0, 2 / 252, 0.2, 0.0, 0.0, True))
    assert buckets["vega"][0] == pytest.approx(
        -float(bs_vega(100.0, 100.0, 2 / 252, 0.2, 0.0, 0.0)) * 0.02)
    assert buckets["vega"][0] == pytest.approx(repriced, rel=1e-3) and buckets["vega"][1] == 0
    assert buckets["gamma"][0] == 0.0 and trades == 3
    ds = gh.hedge_paths(prices, times, gh.Book.short(gh.EuropeanCall(100.0, 2 / 252), 1.0),
                        {"d": hedge}, rate=0.0, device="cpu")
    assert sum(b.sum() for b in buckets.values()) == pytest.approx(float(ds.pnl.squeeze()),
                                                                   abs=1e-12)
