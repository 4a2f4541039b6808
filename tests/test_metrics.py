"""Summary statistics: equal to NumPy/SciPy on the loaded arrays, lazy on stores, and standard
errors that cover the true value at the stated rate."""

import json

import numpy as np
import pytest
import scipy.stats as st
import xarray as xr

import gpuhedge as gh
from gpuhedge.metrics import summary
from gpuhedge.sweep import sweep

pytestmark = pytest.mark.filterwarnings("error")

MARKET = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.03)
BOOK = gh.Book.short(gh.EuropeanCall(100.0, 0.5), 1.0)
HEDGES = {"daily": gh.DeltaHedge(vol=0.2, every=1), "none": gh.NoHedge(),
          "every 4": gh.DeltaHedge(vol=0.25, every=4)}
COSTS = {"free": gh.Costs(), "20bp": gh.Costs(proportional=2e-3), "$1": gh.Costs(fixed=1.0)}
LEVELS = (0.95, 0.99, 0.975)
QUANTILES = (0.0, 0.01, 0.1, 0.5, 0.9, 1.0)


@pytest.fixture(scope="module")
def lazy(tmp_path_factory):
    path = tmp_path_factory.mktemp("metrics") / "m.zarr"
    return sweep(MARKET, BOOK, HEDGES, COSTS, n_paths=2500, n_steps=16, seed=4, store=path,
                 chunk_paths=512, grid={"market.vol": [0.15, 0.25]})


def check_against_numpy(s, ds, cell):
    x = ds.pnl.sel(cell).values.astype(np.float64)
    u = ds.pnl.sel({**cell, "strategy": "none"}).values.astype(np.float64)
    row = s.sel(cell)

    def close(name, value):
        assert float(row[name]) == pytest.approx(value, rel=1e-12, abs=1e-12), name

    close("mean", x.mean())
    close("std", x.std(ddof=1))
    close("skew", st.skew(x))
    close("excess_kurtosis", st.kurtosis(x))
    for a in LEVELS:
        q = np.quantile(x, 1 - a)
        close(f"var_{a * 100:g}" if a == 0.975 else f"var_{round(a * 100)}", -q)
        close(f"cvar_{a * 100:g}" if a == 0.975 else f"cvar_{round(a * 100)}", -x[x <= q].mean())
    for p in QUANTILES:
        close(f"q_{round(p * 100):02d}", np.quantile(x, p))
    close("hedge_effectiveness", 1 - x.var() / u.var())
    cost = ds.cost_paid.sel(cell).values.astype(np.float64)
    close("mean_cost", cost.mean())
    close("se_mean_cost", cost.std(ddof=1) / np.sqrt(cost.size))
    close("mean_trades", ds.trades.sel(cell).values.mean())
    close("se_mean", x.std(ddof=1) / np.sqrt(x.size))
    m2, m4 = ((x - x.mean()) ** 2).mean(), ((x - x.mean()) ** 4).mean()
    close("se_std", np.sqrt((m4 - m2**2) / (4 * m2) / x.size))


def test_in_memory_summary_equals_numpy_and_scipy():
    ds = gh.simulate(MARKET, BOOK, HEDGES, COSTS, n_paths=3001, n_steps=16, seed=4)
    s = summary(ds, levels=LEVELS, quantiles=QUANTILES)
    assert s.attrs["unhedged"] == "none" and s.attrs["n_paths"] == 3001
    for strategy in ("daily", "every 4"):
        for cost in COSTS:
            check_against_numpy(s, ds, {"strategy": strategy, "cost": cost})
    assert (s.hedge_effectiveness.sel(strategy="none") == 0).all()
    assert (s.se_hedge_effectiveness.sel(strategy="none") == 0).all()
    # turnover: the engine's output, the same at every cost level (the rule ignores costs),
    # and cost / rate where the level is purely proportional
    turnover = s.turnover.sel(strategy="daily")
    assert float(turnover.sel(cost="20bp")) == pytest.approx(
        float(s.mean_cost.sel(strategy="daily", cost="20bp")) / 2e-3, rel=1e-12)
    np.testing.assert_array_equal(turnover, turnover.sel(cost="free"))
    # a store written without the output (older versions) falls back on cost / rate
    old = summary(ds.drop_vars("turnover"), levels=LEVELS, quantiles=QUANTILES)
    assert float(old.turnover.sel(strategy="daily", cost="20bp")) == pytest.approx(
        float(turnover.sel(cost="20bp")), rel=1e-12)
    assert np.isnan(old.turnover.sel(strategy="daily", cost="$1"))
    for name, var in s.data_vars.items():
        assert {"long_name", "units"} <= set(var.attrs), name


def test_lazy_store_summary_equals_numpy(lazy):
    assert lazy.pnl.chunks is not None and len(lazy.pnl.chunks[-1]) == 5
    s = summary(lazy, levels=LEVELS, quantiles=QUANTILES)
    assert s["mean"].dims == ("market.vol", "strategy", "cost")
    loaded = lazy.load()
    for vol in (0.15, 0.25):
        for cost in COSTS:
            check_against_numpy(s, loaded, {"market.vol": vol, "strategy": "every 4",
                                            "cost": cost})
    # many small blocks give the same numbers as one
    rechunked = summary(lazy.chunk({"path": 128, "strategy": -1}), levels=LEVELS,
                        quantiles=QUANTILES)
    xr.testing.assert_allclose(rechunked, s, rtol=1e-12, atol=1e-12)


def test_summary_refuses_nan_and_bad_arguments(lazy):
    with pytest.raises(ValueError, match="summary: 'pnl' holds NaN"):
        summary(lazy.where(lazy.path < 2000))
    with pytest.raises(ValueError, match="summary: 'unhedged' must be one of the strategies"):
        summary(lazy, unhedged="static")
    with pytest.raises(ValueError, match=r"summary: 'levels' must be numbers in \(0, 1\)"):
        summary(lazy, levels=(95,))
    with pytest.raises(ValueError, match="summary: 'dim' must be a dimension of 'pnl'"):
        summary(lazy, dim="paths")


def gamma_case(replicates, n, k=8.0, noise=2.0, seed=1):
    """H = k - Gamma(k): skewed to the loss side, with closed-form moments, quantiles and
    tail means; the unhedged U = H + N(0, noise^2) gives effectiveness 1 - k / (k + noise^2)."""
    rng = np.random.default_rng(seed)
    h = k - rng.gamma(k, size=(replicates, n))
    u = h + noise * rng.standard_normal((replicates, n))
    ds = xr.Dataset({"pnl": (("replicate", "strategy", "path"), np.stack([h, u], axis=1))},
                    coords={"strategy": np.array(["hedge", "none"], dtype=object)},
                    attrs={"config": json.dumps({"hedges": {"hedge": {"type": "DeltaHedge"},
                                                            "none": {"type": "NoHedge"}}})})

    def q(p):
        return k - st.gamma.ppf(1 - p, k)

    def cvar(a):
        g = st.gamma.ppf(a, k)
        return -(k - k * st.gamma.sf(g, k + 1) / st.gamma.sf(g, k))

    truth = {"mean": 0.0, "std": np.sqrt(k), "skew": -2 / np.sqrt(k),
             "excess_kurtosis": 6 / k, "hedge_effectiveness": 1 - k / (k + noise**2),
             "var_95": -q(0.05), "var_99": -q(0.01), "cvar_95": cvar(0.95),
             "cvar_99": cvar(0.99)}
    truth.update({f"q_{round(p * 100):02d}": q(p) for p in (0.01, 0.05, 0.25, 0.5, 0.75,
                                                             0.95, 0.99)})
    return ds, truth


def test_standard_errors_cover_at_the_stated_rate():
    """400 replicates of 4000 paths: |estimate - truth| <= 1.96 se on 95% of them.

    Three binomial standard deviations (0.011 each) are allowed; the excess kurtosis, whose
    delta-method error needs the 8th moment, is a slower large-n approximation: at n = 4000 it
    covers about 89% here (its estimator is biased low at this n), so it gets a wider margin.
    """
    ds, truth = gamma_case(400, 4000)
    s = summary(ds).sel(strategy="hedge")
    for name, value in truth.items():
        z = (s[name].values - value) / s[f"se_{name}"].values
        cover = np.mean(np.abs(z) <= 1.96)
        low = 0.85 if name == "excess_kurtosis" else 0.917
        assert low <= cover <= 0.983, (name, cover)
        assert 0.85 <= z.std() <= 1.25, (name, z.std())


def test_atoms_and_a_missed_bracket_still_give_exact_quantiles(monkeypatch):
    """An unhedged short OTM call has an atom (every path where it expires worthless); and if
    the tight bracket of pass 1 misses, pass 2 is run again with the safe one."""
    from gpuhedge import metrics

    ds = gh.simulate(MARKET, gh.Book.short(gh.EuropeanCall(115.0, 0.25)), HEDGES, COSTS,
                     n_paths=4000, n_steps=8, seed=9).chunk({"path": 1000})
    x = ds.pnl.sel(strategy="none", cost="free").values
    assert np.mean(x == x.max()) > 0.5  # the atom
    expected = {p: np.quantile(x, p) for p in (0.3, 0.5, 0.75, 0.99)}
    calls = []
    real_pass2, real_brackets = metrics._pass2, metrics._brackets
    monkeypatch.setattr(metrics, "_pass2", lambda *a: calls.append(1) or real_pass2(*a))
    s = summary(ds, quantiles=tuple(expected))
    assert len(calls) == 1  # the tight brackets held, atom included
    for p, value in expected.items():
        assert float(s[f"q_{round(p * 100):02d}"].sel(strategy="none", cost="free")) == value

    def off_target(*args):
        tight, safe = real_brackets(*args)
        return (tight[1] + 1.0, tight[1] + 2.0), safe  # misses every order statistic

    monkeypatch.setattr(metrics, "_brackets", off_target)
    calls.clear()
    again = summary(ds, quantiles=tuple(expected))
    assert len(calls) == 2
    xr.testing.assert_allclose(again, s, rtol=1e-12, atol=1e-12)


def test_pass2_returns_few_values_per_block():
    """The values kept for the exact quantiles grow like sqrt(n), not like n."""
    from gpuhedge import metrics

    rng = np.random.default_rng(3)
    for n in (2**16, 2**20):
        arr = xr.DataArray(rng.standard_normal((1, n)), dims=("cell", "path")).chunk(
            {"path": 2**14}).data
        p = np.array([0.01, 0.5])
        sizes = np.array(arr.chunks[-1])
        probs = metrics._bracket_probabilities(p, n, sizes)
        block_q = arr.map_blocks(metrics._block_quantiles, probs.ravel(), new_axis=2,
                                 chunks=arr.chunks[:-1] + ((1,) * len(sizes), (probs.size,)))
        block_q = block_q.compute().reshape((1, len(sizes)) + probs.shape)
        tight, _ = metrics._brackets(block_q, probs, p, n, sizes)
        tails = metrics._pass2(arr, tight, np.zeros(1)).compute().ravel()
        for j, pj in enumerate(p):
            kept = sum(len(t[5][0, j][0]) for t in tails if (0, j) in t[5])
            # the tight bracket: +-6 standard errors of the rank, plus 2 per block
            assert kept < 14 * np.sqrt(n * pj * (1 - pj)) + 4 * len(sizes) + 20, (n, pj, kept)
