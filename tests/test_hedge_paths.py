"""Back-testing on supplied paths: Hull's two weekly delta-hedging tables as an exact
bookkeeping check, and an independent NumPy ledger."""

import numpy as np
import pytest

import gpuhedge as gh
from gpuhedge.pricing import bs_delta, bs_price

# Hull, "Options, Futures, and Other Derivatives", delta-hedging simulations: 100,000 calls
# written, S0=49, K=50, r=5%, sigma=20%, 20 weeks, rebalanced weekly.
HULL_IN_THE_MONEY = [49.00, 48.12, 47.37, 50.25, 51.75, 53.12, 53.00, 51.87, 51.38, 53.00, 49.88,
                     48.50, 49.88, 50.37, 52.13, 51.88, 52.87, 54.87, 54.62, 55.87, 57.25]
HULL_OUT_OF_THE_MONEY = [49.00, 49.75, 52.00, 50.00, 48.38, 48.25, 48.75, 49.63, 48.25, 48.25,
                         51.12, 51.50, 49.88, 49.88, 48.75, 47.50, 48.00, 46.25, 48.13, 46.63,
                         48.12]
N_CALLS, K, R, VOL, T = 100_000, 50.0, 0.05, 0.2, 20 / 52
TIMES = np.arange(21) / 52
BOOK = gh.Book.short(gh.EuropeanCall(K, T), N_CALLS)


def _numpy_ledger(prices, proportional=0.0):
    """Week-by-week ledger of the writer: cash account compounded weekly at e^{r/52}."""
    held, cash = 0.0, N_CALLS * bs_price(prices[0], K, T, VOL, R, 0.0, True)
    for k, s in enumerate(prices[:-1]):
        target = N_CALLS * bs_delta(s, K, T - TIMES[k], VOL, R, 0.0, True)
        cash -= (target - held) * s + proportional * abs(target - held) * s
        held = target
        cash *= np.exp(R / 52)
    s_t = prices[-1]
    cash += held * s_t - proportional * held * s_t - N_CALLS * max(s_t - K, 0.0)
    return cash * np.exp(-R * T)


def test_hull_tables_final_costs():
    """Hull's final cumulative costs: 5,263.3 (exercised: 5,000 received) and 256.6 thousand.

    Hull rounds deltas to three decimals and prints thousands to one decimal; the exact ledger
    (263.24 and 256.54) agrees with his totals to 0.1 thousand dollars on a 5 million cost.
    """
    ds = gh.hedge_paths([HULL_IN_THE_MONEY, HULL_OUT_OF_THE_MONEY], TIMES, BOOK,
                        {"weekly": gh.DeltaHedge(vol=VOL, every=1)}, rate=R, device="cpu")
    premium = N_CALLS * bs_price(49.0, K, T, VOL, R, 0.0, True)
    net_cost = (premium - ds.pnl.sel(strategy="weekly").values[0]) * np.exp(R * T) / 1000
    assert net_cost[0] + 5000.0 == pytest.approx(5263.3, abs=0.1)
    assert net_cost[1] == pytest.approx(256.6, abs=0.1)
    assert list(ds.trades.values[0, 0]) == [21, 21]
    np.testing.assert_array_equal(ds.terminal_spot, [57.25, 48.12])


@pytest.mark.parametrize("proportional", [0.0, 2e-3])
def test_hedge_paths_matches_numpy_ledger(proportional):
    ds = gh.hedge_paths(np.array([HULL_IN_THE_MONEY, HULL_OUT_OF_THE_MONEY]), TIMES, BOOK,
                        gh.DeltaHedge(vol=VOL, every=1), gh.Costs(proportional=proportional),
                        rate=R, device="cpu")
    expected = [_numpy_ledger(p, proportional) for p in (HULL_IN_THE_MONEY, HULL_OUT_OF_THE_MONEY)]
    np.testing.assert_allclose(ds.pnl.values[0, 0], expected, rtol=1e-10)


def test_hedge_paths_reproduces_simulate_on_its_own_paths():
    """Feeding simulated paths back through hedge_paths gives the same P&L."""
    market = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.03, dividend=0.01)
    book = gh.Book.short(gh.EuropeanCall(100.0, 0.25))
    hedges = {"d": gh.DeltaHedge(vol=0.2, every=1), "w": gh.DeltaHedge(vol=0.2, every=3),
              "s": gh.StaticHedge(vol=0.25)}
    costs = gh.Costs(proportional=1e-3, fixed=0.01)
    n_steps = 6
    sim = gh.simulate(market, book, hedges, costs, n_paths=50, n_steps=n_steps, seed=9,
                      device="cpu")
    # the spot at step n is the terminal spot of the run with n steps of the same dt
    times = 0.25 * np.arange(n_steps + 1) / n_steps
    paths = np.column_stack([np.full(50, 100.0)] + [
        gh.simulate(market, gh.Book.short(gh.EuropeanCall(100.0, t)), gh.NoHedge(), n_paths=50,
                    n_steps=n, seed=9, device="cpu").terminal_spot.values
        for n, t in zip(range(1, n_steps + 1), times[1:])])
    replay = gh.hedge_paths(paths, times, book, hedges, costs, rate=0.03, dividend=0.01,
                            device="cpu")
    np.testing.assert_allclose(replay.pnl, sim.pnl, rtol=1e-12, atol=1e-12)


def test_dates_as_times_and_no_seed_recorded():
    import pandas as pd

    dates = pd.bdate_range("2024-01-02", periods=22)
    rng = np.random.default_rng(3)
    prices = 100.0 * np.exp(np.cumsum(np.r_[0.0, 0.01 * rng.standard_normal(21)]))
    hedges = {"daily": gh.DeltaHedge(vol=0.2, every=1), "weekly": gh.DeltaHedge(vol=0.2, every=5)}
    years = (dates - dates[0]).days.to_numpy() / 365.0
    book = gh.Book.short(gh.EuropeanCall(100.0, years[-1]))
    by_years = gh.hedge_paths(prices, years, book, hedges, rate=0.02)
    for given in (dates, dates.to_numpy(), list(dates.date)):
        by_dates = gh.hedge_paths(prices, given, book, hedges, rate=0.02)
        np.testing.assert_array_equal(by_dates.pnl.values, by_years.pnl.values)
    assert (by_dates.attrs["first_date"], by_dates.attrs["last_date"],
            by_dates.attrs["day_count"]) == ("2024-01-02", "2024-01-31", "ACT/365")
    assert "seed" not in by_dates.attrs and "stream" not in by_dates.attrs
    assert "seed" not in by_years.attrs and "first_date" not in by_years.attrs
    trading = gh.hedge_paths(prices, dates, gh.Book.short(gh.EuropeanCall(100.0, 21 / 252)),
                             hedges, rate=0.02, day_count="trading/252")
    same = gh.hedge_paths(prices, np.arange(22) / 252, gh.Book.short(
        gh.EuropeanCall(100.0, 21 / 252)), hedges, rate=0.02)
    np.testing.assert_array_equal(trading.pnl.values, same.pnl.values)
    with pytest.raises(ValueError, match="hedge_paths: 'day_count' must be one of 'ACT/365', "
                                         "'trading/252'; got '30/360'"):
        gh.hedge_paths(prices, dates, book, hedges, rate=0.02, day_count="30/360")
