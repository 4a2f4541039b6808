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


# --- the per-date record (record=True) ---------------------------------------------------------
def _daily_ledger(prices, every, proportional, dividend, borrow):
    """The writer's ledger date by date, in the currency of each date: cash compounded at
    e^{r dt}, dividends on the shares held over each step, delta trades every ``every``
    dates, the calls settled and the shares sold at the horizon; the ``borrow`` spread is
    paid over each step on the cash borrowed at its start before costs (the kernel's first
    order funding). Rows (shares, cash, book value, value, P&L to date discounted to t=0,
    costs to date discounted to t=0)."""
    n = len(prices) - 1
    premium = N_CALLS * bs_price(prices[0], K, T, VOL, R, dividend, True)
    held, cash, gross, cost = 0.0, premium, premium, 0.0
    rows = []
    for k, s in enumerate(prices):
        t = TIMES[k]
        if k > 0:
            dt = TIMES[k] - TIMES[k - 1]
            funding = borrow * max(-gross, 0.0) * dt
            cost += funding * np.exp(-R * t)
            gross = gross * np.exp(R * dt) + held * s * np.expm1(dividend * dt)
            cash = cash * np.exp(R * dt) + held * s * np.expm1(dividend * dt) - funding
        if k == n:
            cash -= N_CALLS * max(s - K, 0.0)
            gross -= N_CALLS * max(s - K, 0.0)
            target = 0.0
        elif k % every == 0:
            target = N_CALLS * bs_delta(s, K, T - t, VOL, R, dividend, True)
        else:
            target = held
        fee = proportional * abs(target - held) * s
        cash -= (target - held) * s + fee
        gross -= (target - held) * s
        cost += fee * np.exp(-R * t)
        held = target
        book = -N_CALLS * bs_price(s, K, T - t, VOL, R, dividend, True) if k < n else 0.0
        value = cash + held * s + book
        rows.append((held, cash, book, value, value * np.exp(-R * t), cost))
    return np.array(rows)


@pytest.mark.parametrize("every, proportional, dividend, borrow",
                         [(1, 0.0, 0.0, 0.0), (2, 2e-3, 0.03, 0.02)])
def test_record_follows_a_daily_ledger(every, proportional, dividend, borrow):
    """Hull's two paths: every recorded date against the ledger written out above; the last
    date is the per-path result to the bit."""
    paths = np.array([HULL_IN_THE_MONEY, HULL_OUT_OF_THE_MONEY])
    costs = gh.Costs(proportional=proportional, borrow_rate=R + borrow if borrow else None)
    ds = gh.hedge_paths(paths, TIMES, BOOK, {"delta": gh.DeltaHedge(vol=VOL, every=every)},
                        costs, rate=R, dividend=dividend, device="cpu", record=True)
    names = ("shares", "cash", "book_value", "value", "pnl_to_date", "cost_to_date")
    for p, prices in enumerate(paths):
        expected = _daily_ledger(prices, every, proportional, dividend, borrow)
        for i, name in enumerate(names):
            np.testing.assert_allclose(ds[name].values[:, 0, 0, p], expected[:, i], rtol=1e-10,
                                       atol=1e-6, err_msg=name)
    final = ds.isel(time=-1)
    np.testing.assert_array_equal(final.pnl_to_date, ds.pnl)
    np.testing.assert_array_equal(final.cost_to_date, ds.cost_paid)
    np.testing.assert_array_equal(final.trades_to_date, ds.trades)
    np.testing.assert_array_equal(ds.spot.values, paths.T)
    trades = ds.trades_to_date.values[:, 0, 0, 0]
    assert list(trades) == [min(k // every + 1, (20 + every - 1) // every) for k in range(20)] + [
        (20 + every - 1) // every + 1]
    assert "hedge_options" not in ds


def test_record_shares_are_the_deltas_filled_after_the_lag():
    """With an execution lag of one date, the shares held at t_k are the delta decided at
    t_{k-1} (the order fills at S_k); none are held at the horizon."""
    ds = gh.hedge_paths(HULL_IN_THE_MONEY, TIMES, BOOK, gh.DeltaHedge(vol=VOL, every=1),
                        gh.Costs(lag=1), rate=R, device="cpu", record=True)
    shares = ds.shares.values[:, 0, 0, 0]
    deltas = N_CALLS * bs_delta(np.array(HULL_IN_THE_MONEY[:-2]), K, T - TIMES[:-2], VOL, R,
                                0.0, True)
    assert shares[0] == 0.0 and shares[-1] == 0.0
    np.testing.assert_allclose(shares[1:-1], deltas, rtol=1e-12)


def test_record_ends_in_the_results_for_every_rule_and_cost():
    """Every rule and cost kind (lags, funding, impact, option hedges, insurers): the last
    date's P&L, costs and trades are the per-path results exactly, recording changes no
    result, the value adds up, and the P&L to date at t_0 is minus the first hedge's costs."""
    rate = 0.03
    book = gh.Book([gh.Position(gh.EuropeanCall(100.0, 0.5), -3.0),
                    gh.Position(gh.EuropeanPut(90.0, 0.25), 1.0)])
    hedges = {"every step": gh.DeltaHedge(vol=0.25, every=1),
              "every 3": gh.DeltaHedge(vol=0.2, every=3, initial_shares=-0.5),
              "none": gh.NoHedge(vol=0.25), "edge": gh.DeltaBand(vol=0.25, band=0.02, to="edge"),
              "ww": gh.WhalleyWilmott(vol=0.25, risk_aversion=0.1), "leland": gh.Leland(vol=0.25),
              "zak": gh.Zakamouline(vol=0.25, risk_aversion=0.1),
              "dg": gh.DeltaGammaHedge(vol=0.25, option=gh.EuropeanCall(105.0, 0.75), every=2),
              "dv roll": gh.DeltaVegaHedge(vol=0.25, option=gh.EuropeanPut(95.0, 0.125),
                                           roll=True),
              "put": gh.SyntheticPut(vol=0.25, floor=0.85), "cppi": gh.CPPI(multiplier=5.0)}
    costs = {"free": gh.Costs(), "middle": gh.Costs(proportional=2e-3, fixed=0.05, ends=False),
             "market": gh.Costs(proportional=1e-3, impact=0.3, adv=50.0, impact_vol=0.015,
                                borrow_rate=0.05, lend_rate=0.01, option_proportional=0.01),
             "lagged": gh.Costs(proportional=1e-3, lag=2)}
    rng = np.random.default_rng(0)
    steps = rng.normal(0, 0.02, (7, 21))
    steps[:, 0] = 0.0  # one first price for all paths: the insurers' units are set at t=0
    prices = 100.0 * np.exp(np.cumsum(steps, axis=1))
    times = np.linspace(0.0, 0.5, 21)
    kw = dict(rate=rate, dividend=0.01, device="cpu")
    ds = gh.hedge_paths(prices, times, book, hedges, costs, record=True, **kw)
    plain = gh.hedge_paths(prices, times, book, hedges, costs, **kw)
    for name in plain.data_vars:
        np.testing.assert_array_equal(ds[name].values, plain[name].values, err_msg=name)
    final = ds.isel(time=-1)
    np.testing.assert_array_equal(final.pnl_to_date.values, ds.pnl.values)
    np.testing.assert_array_equal(final.cost_to_date.values, ds.cost_paid.values)
    np.testing.assert_array_equal(final.trades_to_date.values, ds.trades.values)
    assert (final.shares == 0.0).all() and (final.hedge_options == 0.0).all()
    discount = np.exp(-rate * times)[:, None, None, None]
    np.testing.assert_allclose(ds.pnl_to_date, ds.value * discount, rtol=1e-9, atol=1e-9)
    stock_rules = [h for h in hedges if h not in ("dg", "dv roll")]
    held = ds.sel(strategy=stock_rules)
    np.testing.assert_allclose(held.value, held.cash + held.shares * ds.spot + held.book_value,
                               rtol=1e-9, atol=1e-9)
    assert (ds.hedge_options.sel(strategy=stock_rules) == 0.0).all()
    assert (ds.hedge_options.sel(strategy="dg").isel(time=0) != 0.0).all()
    books = ds.isel(time=0).drop_sel(strategy=["put", "cppi"])
    np.testing.assert_allclose(books.pnl_to_date, -books.cost_to_date, rtol=1e-9, atol=1e-9)
    # an insurer owes its floor at the horizon, the same on every path, valued at each date
    floor = ds.book_value.sel(strategy="put", cost="free").values
    assert (floor[-1] == floor[-1, 0]).all() and floor[-1, 0] < 0.0
    np.testing.assert_allclose(floor, floor[-1] * np.exp(-rate * (times[-1] - times))[:, None],
                               rtol=1e-12)


def test_record_labels_time_by_the_dates_given():
    import pandas as pd

    dates = pd.bdate_range("2024-01-02", periods=22)
    prices = 100.0 * np.exp(np.linspace(0.0, 0.05, 22))
    book = gh.Book.short(gh.EuropeanCall(100.0, 21 / 252))
    hedges = gh.DeltaHedge(vol=0.2, every=5)
    by_dates = gh.hedge_paths(prices, dates, book, hedges, rate=0.02, day_count="trading/252",
                              record=True)
    np.testing.assert_array_equal(by_dates.time.values, dates.to_numpy())
    np.testing.assert_allclose(by_dates.years, np.arange(22) / 252)
    by_years = gh.hedge_paths(prices, np.arange(22) / 252, book, hedges, rate=0.02,
                              record=True)
    np.testing.assert_allclose(by_years.time, np.arange(22) / 252)
    assert by_years.time.attrs["units"] == "years"
    np.testing.assert_array_equal(by_dates.pnl_to_date.values, by_years.pnl_to_date.values)
    assert by_dates.pnl_to_date.sel(time="2024-01-31").item() == by_dates.pnl.item()
    assert "time" not in gh.hedge_paths(prices, dates, book, hedges, rate=0.02,
                                        day_count="trading/252").dims
    with pytest.raises(ValueError, match=r"^hedge_paths: 'record' must be True or False; "
                                         r"got 1$"):
        gh.hedge_paths(prices, dates, book, hedges, rate=0.02, record=1)
