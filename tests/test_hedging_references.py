"""Statistical checks of the engine against published references (Derman-Kamal, Hull).

Tolerances are those of the issue; each test also checks that the Monte Carlo standard error is
well inside the tolerance, so a pass is not luck.
"""

import numpy as np
import pytest

import gpuhedge as gh
from gpuhedge.pricing import bs_price, bs_vega

DK_MARKET = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.05)
DK_BOOK = gh.Book.short(gh.EuropeanCall(strike=100.0, maturity=1 / 12))


def _dk_std(n_rebalances, n_paths=100_000, seed=1):
    ds = gh.simulate(DK_MARKET, DK_BOOK, gh.DeltaHedge(vol=0.2, every=1), n_paths=n_paths,
                     n_steps=n_rebalances, seed=seed, device="cpu")
    return gh.summary(ds).squeeze()


def _dk_formula(n):
    vega = bs_vega(100.0, 100.0, 1 / 12, 0.2, 0.05, 0.0)
    return np.sqrt(np.pi / 4) * vega * 0.2 / np.sqrt(n)


@pytest.mark.parametrize("n, published", [(21, 0.443), (84, 0.222)])
def test_derman_kamal_std_and_mean(n, published):
    s = _dk_std(n)
    assert _dk_formula(n) == pytest.approx(published, abs=2e-3)
    assert float(s.se_std) < 0.01 * published  # the 5% tolerance is not Monte Carlo noise
    assert float(s["std"]) == pytest.approx(_dk_formula(n), rel=0.05)
    assert abs(float(s["mean"])) < 4 * float(s.se_mean)


def test_derman_kamal_slope():
    ns = np.array([8, 16, 32, 64, 128, 256])
    stds = [float(_dk_std(n, n_paths=20_000)["std"]) for n in ns]
    slope = np.polyfit(np.log(ns), np.log(stds), 1)[0]
    assert slope == pytest.approx(-0.5, abs=0.05)


def test_hull_performance_of_delta_hedging():
    """Hull's table: std of the PV cost of writing and hedging 100,000 calls over the BS price.

    An exact simulation (80 steps of a quarter week, real-world drift 13%) gives 0.416, 0.374,
    0.269, 0.191, 0.137, 0.098 for rebalancing every 5, 4, 2, 1, 0.5, 0.25 weeks.
    """
    market = gh.BlackScholes(spot=49.0, vol=0.2, rate=0.05, drift=0.13)
    book = gh.Book.short(gh.EuropeanCall(strike=50.0, maturity=20 / 52), 100_000)
    everies = (20, 16, 8, 4, 2, 1)
    hedges = {e: gh.DeltaHedge(vol=0.2, every=e) for e in everies}
    ds = gh.simulate(market, book, {f"every {e}": h for e, h in hedges.items()},
                     n_paths=50_000, n_steps=80, seed=5, device="cpu")
    s = gh.summary(ds).squeeze()
    price = 100_000 * bs_price(49.0, 50.0, 20 / 52, 0.2, 0.05, 0.0, True)
    assert price == pytest.approx(240_000, rel=0.001)
    ratio = s["std"].values / price
    assert np.all(s.se_std.values / price < 0.0025)
    np.testing.assert_allclose(ratio, [0.416, 0.374, 0.269, 0.191, 0.137, 0.098], atol=0.01)


def test_martingale_and_real_world_drift():
    for drift in (None, 0.13):
        market = gh.BlackScholes(spot=100.0, vol=0.3, rate=0.03, dividend=0.01, drift=drift)
        ds = gh.simulate(market, gh.Book.short(gh.EuropeanCall(100.0, 2.0)), gh.NoHedge(),
                         n_paths=100_000, n_steps=8, seed=3, device="cpu")
        growth = market.mu * 2.0
        x = ds.terminal_spot.values * np.exp(-growth)
        assert abs(x.mean() - 100.0) < 4 * x.std() / np.sqrt(x.size)


def test_mc_price_of_unhedged_book_matches_premium():
    """Unhedged, the risk-neutral mean P&L of a bought option is 0: E[e^{-rT} payoff] = price."""
    market = gh.BlackScholes(spot=100.0, vol=0.25, rate=0.04, dividend=0.02)
    book = gh.Book([gh.Position(gh.EuropeanCall(110.0, 1.0), 1.0),
                    gh.Position(gh.EuropeanPut(90.0, 0.5), 2.0)])
    ds = gh.simulate(market, book, gh.NoHedge(), n_paths=200_000, n_steps=4, seed=8,
                     device="cpu")
    s = gh.summary(ds).squeeze()
    assert abs(float(s["mean"])) < 4 * float(s.se_mean)
