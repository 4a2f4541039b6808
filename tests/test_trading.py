"""Hedge instruments, realistic costs and portfolio insurance.

An independent NumPy ledger checks the bookkeeping of every cost kind and of execution lag on
supplied paths; exact limits check the option hedges; Monte Carlo checks use fixed seeds and
standard-error tolerances.
"""

import math

import numpy as np
import pytest

import gpuhedge as gh
from gpuhedge.pricing import bs_delta, bs_price
from gpuhedge.rules.zakamouline import zakamouline_rule

MARKET = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.05)
DK_BOOK = gh.Book.short(gh.EuropeanCall(100.0, 1 / 12), 1.0)  # Derman-Kamal's 1-month ATM call
KW = dict(n_paths=4000, n_steps=21, seed=11, device="cpu")
COST_VARS = ("pnl", "cost_paid", "trades", "turnover")

# One supplied path, short 10 calls hedged every point.
PRICES = np.array([100.0, 101.3, 99.2, 97.5, 99.9, 103.1, 102.4, 104.0, 101.7])
TIMES = np.linspace(0.0, 0.25, len(PRICES))
STRIKE, VOL, RATE, CALLS = 100.0, 0.22, 0.04, 10.0


def _ledger(prices, *, proportional=0.0, fixed=0.0, impact=0.0, law="sqrt", borrow=RATE,
            lend=RATE, lag=0):
    """Step-by-step NumPy ledger of the writer of ``CALLS`` calls, delta hedged at every point.

    Cash flows are discounted to t=0; an order decided at point k fills at point k + lag;
    orders in flight at the horizon are cancelled. Impact per trade: impact * S * |q|^{3/2}
    (square root) or impact * S * q^2 (linear); funding spreads accrue on the cash balance over
    each step.
    """
    n = len(prices) - 1
    disc = np.exp(-RATE * TIMES)
    flow = CALLS * bs_price(prices[0], STRIKE, TIMES[-1], VOL, RATE, 0.0, True)
    held = ordered = 0.0
    spread = fee = cost_impact = turnover = borrowed = lent = 0.0
    trades = 0
    pending = {}

    def fill(q, k):
        nonlocal held, flow, spread, fee, cost_impact, turnover, trades
        s, d = prices[k], disc[k]
        held += q
        flow -= q * s * d
        spread += proportional * abs(q) * s * d
        fee += fixed * d
        cost_impact += impact * s * (abs(q) ** 1.5 if law == "sqrt" else q * q) * d
        turnover += abs(q) * s * d
        trades += 1

    for k in range(n):
        if k in pending:
            fill(pending.pop(k), k)
        target = CALLS * bs_delta(prices[k], STRIKE, TIMES[-1] - TIMES[k], VOL, RATE, 0.0, True)
        q = target - ordered
        ordered = target
        if lag == 0:
            fill(q, k)
        else:
            pending[k + lag] = q
        factor = (TIMES[k + 1] - TIMES[k]) * disc[k + 1] / disc[k]
        borrowed += max(-flow, 0.0) * factor
        lent += max(flow, 0.0) * factor
    settled = -CALLS * max(prices[n] - STRIKE, 0.0) * disc[n]
    fill(-held, n)
    funding = (borrow - RATE) * borrowed + (RATE - lend) * lent
    cost = spread + fee + cost_impact + funding
    return dict(pnl=flow + settled - cost, cost_spread=spread, cost_fee=fee,
                cost_impact=cost_impact, cost_funding=funding, trades=trades, turnover=turnover)


@pytest.mark.parametrize("costs, ledger", [
    (gh.Costs(proportional=2e-3, fixed=0.5), dict(proportional=2e-3, fixed=0.5)),
    (gh.Costs(impact=0.4, adv=200.0, impact_vol=0.015), dict(impact=0.4 * 0.015 / 200 ** 0.5)),
    (gh.Costs(impact=0.4, adv=200.0, impact_vol=0.015, impact_law="linear"),
     dict(impact=0.4 * 0.015 / 200, law="linear")),
    (gh.Costs(borrow_rate=0.07, lend_rate=0.01), dict(borrow=0.07, lend=0.01)),
    (gh.Costs(proportional=1e-3, lag=1), dict(proportional=1e-3, lag=1)),
    (gh.Costs(proportional=1e-3, fixed=0.2, lag=3), dict(proportional=1e-3, fixed=0.2, lag=3)),
])
def test_every_cost_kind_matches_an_independent_ledger(costs, ledger):
    ds = gh.hedge_paths(PRICES, TIMES, gh.Book.short(gh.EuropeanCall(STRIKE, TIMES[-1]), CALLS),
                        gh.DeltaHedge(vol=VOL), costs, rate=RATE, device="cpu")
    expected = _ledger(PRICES, **ledger)
    for name, value in expected.items():
        got = ds[name].item() if name in ds else 0.0
        assert got == pytest.approx(value, rel=1e-10, abs=1e-10), name
    assert ds.cost_paid.item() == pytest.approx(sum(
        expected[k] for k in ("cost_spread", "cost_fee", "cost_impact", "cost_funding")),
        rel=1e-12, abs=1e-12)


def test_neutral_cost_settings_reproduce_the_free_results_exactly():
    costs = {"free": gh.Costs(), "neutral": gh.Costs(impact=0.0, lag=0, borrow_rate=0.05,
                                                     lend_rate=0.05, option_proportional=0.0)}
    hedges = {"delta": gh.DeltaHedge(vol=0.2), "dg": gh.DeltaGammaHedge(
        vol=0.2, option=gh.EuropeanCall(105.0, 0.25)), "cppi": gh.CPPI()}
    ds = gh.simulate(MARKET, DK_BOOK, hedges, costs, **KW)
    for v in COST_VARS:
        np.testing.assert_array_equal(ds[v].sel(cost="free"), ds[v].sel(cost="neutral"))
    assert (ds.cost_paid == 0).all()


def test_each_level_of_a_mix_reports_what_it_reports_alone():
    """The kernel writes a cost field only at the levels that charge its kind (the result
    starts at zero): in a mix of levels, each charging one kind, every level's variables equal
    those of the level simulated alone, and the kinds it does not charge are exactly 0."""
    costs = {"spread": gh.Costs(proportional=1e-3), "fee": gh.Costs(fixed=0.5),
             "impact": gh.Costs(impact=0.4, adv=200.0, impact_vol=0.015),
             "funding": gh.Costs(borrow_rate=0.07, lend_rate=0.01), "free": gh.Costs()}
    hedges = {"delta": gh.DeltaHedge(vol=0.2, every=2), "band": gh.DeltaBand(vol=0.2, band=0.05)}
    mix = gh.simulate(MARKET, DK_BOOK, hedges, costs, **KW)
    kinds = ("cost_spread", "cost_fee", "cost_impact", "cost_funding")
    assert set(kinds) <= set(mix.data_vars)
    for name, level in costs.items():
        alone = gh.simulate(MARKET, DK_BOOK, hedges, {name: level}, **KW)
        for v in (*COST_VARS, *kinds):
            got = mix[v].sel(cost=name).values
            if v in alone:
                np.testing.assert_array_equal(got, alone[v].sel(cost=name).values, err_msg=v)
            else:
                assert (got == 0.0).all(), (name, v)
        assert (alone.cost_paid > 0).all() != (name == "free")


def test_a_fixed_fee_adds_fee_times_trades_and_lag_zero_is_no_lag():
    market = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.0)  # undiscounted fees
    costs = {"free": gh.Costs(), "fee": gh.Costs(fixed=2.5), "lag 0": gh.Costs(lag=0)}
    hedges = {"every": gh.DeltaHedge(vol=0.2), "band": gh.DeltaBand(vol=0.2, band=0.05)}
    ds = gh.simulate(market, DK_BOOK, hedges, costs, **KW)
    fee = ds.sel(cost="fee")
    np.testing.assert_allclose(fee.cost_fee, 2.5 * fee.trades, rtol=1e-14)
    np.testing.assert_allclose(fee.pnl, ds.pnl.sel(cost="free") - 2.5 * fee.trades, rtol=1e-12,
                               atol=1e-12)
    for v in COST_VARS:
        np.testing.assert_array_equal(ds[v].sel(cost="free"), ds[v].sel(cost="lag 0"))


def test_execution_lag_adds_slippage_risk_but_no_bias():
    """Filling a day late leaves the risk-neutral mean P&L unbiased (within 4 se) and raises
    its spread: the hedge lags the delta by one step."""
    costs = {"now": gh.Costs(), "lag 1": gh.Costs(lag=1), "lag 3": gh.Costs(lag=3)}
    ds = gh.simulate(MARKET, DK_BOOK, gh.DeltaHedge(vol=0.2), costs, **{**KW, "n_paths": 20000})
    s = gh.summary(ds).squeeze("strategy")
    assert float(s["std"].sel(cost="now")) < float(s["std"].sel(cost="lag 1")) < float(
        s["std"].sel(cost="lag 3"))
    for c in ("now", "lag 1", "lag 3"):
        assert abs(float(s["mean"].sel(cost=c))) < 4 * float(s.se_mean.sel(cost=c))


def test_delta_gamma_with_the_book_option_is_a_perfect_hedge():
    """Hedging with the very option written: n = 1 option bought at its own price, which
    settles the book's payoff: zero P&L on every path (delta-vega too)."""
    option = DK_BOOK.positions[0].option
    hedges = {"dg": gh.DeltaGammaHedge(vol=0.2, option=option),
              "dv": gh.DeltaVegaHedge(vol=0.2, option=option)}
    ds = gh.simulate(MARKET, DK_BOOK, hedges, **KW)
    np.testing.assert_allclose(ds.pnl, 0.0, atol=1e-10)


def test_delta_gamma_removes_most_of_the_discrete_hedging_error():
    """Derman-Kamal's case at N=21: the delta hedge's std is 0.425; hedging the gamma too with a
    3-month ATM call leaves 0.093, a ratio of 0.22 (the error falls like N^-1 instead of
    N^-1/2). Under Merton jumps the delta-gamma hedge also cuts the jump-driven error (it
    does not against rare large crashes, where the two options' gammas differ)."""
    hedges = {"delta": gh.DeltaHedge(vol=0.2),
              "dg": gh.DeltaGammaHedge(vol=0.2, option=gh.EuropeanCall(100.0, 0.25)),
              "dv": gh.DeltaVegaHedge(vol=0.2, option=gh.EuropeanCall(100.0, 0.25))}
    std = gh.summary(gh.simulate(MARKET, DK_BOOK, hedges, **KW))["std"].squeeze("cost")
    ratio = float(std.sel(strategy="dg") / std.sel(strategy="delta"))
    assert 0.15 < ratio < 0.3
    assert float(std.sel(strategy="dv")) < float(std.sel(strategy="delta"))
    # frequent small jumps (10 a year, 5% each), hedged at the total vol: 1.31 -> 0.67
    merton = gh.Merton(spot=100.0, vol=0.15, rate=0.05, lam=10.0, mu_j=0.0, sigma_j=0.05)
    vol = merton.reference_vol
    hedges = {"delta": gh.DeltaHedge(vol=vol),
              "dg": gh.DeltaGammaHedge(vol=vol, option=gh.EuropeanCall(100.0, 0.25))}
    jumpy = gh.summary(gh.simulate(merton, DK_BOOK, hedges, **{**KW, "n_steps": 84}))["std"]
    jumpy = jumpy.squeeze("cost")
    assert float(jumpy.sel(strategy="dg")) < 0.6 * float(jumpy.sel(strategy="delta"))


def test_a_rolling_hedge_option_rolls_and_an_expiring_one_is_refused():
    book = gh.Book.short(gh.EuropeanCall(100.0, 0.25), 1.0)
    month = gh.EuropeanCall(100.0, 0.25 / 3)
    roll = gh.DeltaGammaHedge(vol=0.2, option=month, roll=True)
    ds = gh.simulate(MARKET, book, {"roll": roll, "delta": gh.DeltaHedge(vol=0.2)},
                     {"free": gh.Costs(), "1%": gh.Costs(option_proportional=0.01)},
                     **{**KW, "n_steps": 63})
    # option trades are charged (each roll sells one option and buys a fresh one) ...
    assert (ds.cost_spread.sel(strategy="roll", cost="1%") > 0).all()
    assert (ds.cost_spread.sel(strategy="delta", cost="1%") == 0).all()
    # ... and the hedge works: measured std 0.087 against 0.436 for the delta hedge
    std = ds.pnl.sel(cost="free").std("path")
    assert float(std.sel(strategy="roll")) < 0.3 * float(std.sel(strategy="delta"))
    with pytest.raises(ValueError, match=r"^simulate: hedges\['held'\]: DeltaGammaHedge: "
                                         r"'option.maturity' must be >= the book's horizon"):
        gh.simulate(MARKET, book, {"held": gh.DeltaGammaHedge(vol=0.2, option=month)}, **KW)
    with pytest.raises(ValueError, match=r"'option.maturity' must be a multiple of the grid"):
        gh.simulate(MARKET, book, gh.DeltaGammaHedge(vol=0.2, option=gh.EuropeanCall(
            100.0, 0.1), roll=True), **KW)


def test_zakamouline_band_and_vol_follow_the_published_formulas():
    """H0 = lambda / (gamma S sigma^2 tau), H1 = 1.12 lambda^0.31 tau^0.05 (D/sigma)^0.25
    (|Gamma|/gamma)^0.5, sigma_m^2 = sigma^2 (1 - K) for a short-gamma book, with
    K = -4.76 lambda^0.78 tau^-0.02 (D/sigma)^0.25 (gamma S^2 |Gamma|)^0.15."""
    lam, gamma, s, sigma, tau, big_gamma = 5e-4, 1.0, 5000.0, 0.2, 0.25, 0.02
    vol_m, width = zakamouline_rule(big_gamma, s, sigma, lam, gamma, tau, 1.0, True)
    h0 = 1e-5
    h1 = 1.12 * 0.0005**0.31 * 0.25**0.05 * 5**0.25 * 0.02**0.5  # 0.0209440
    assert width == pytest.approx(h0 + h1, rel=1e-12)
    assert h1 == pytest.approx(0.020944, abs=1e-6)
    k = -4.76 * lam**0.78 * tau**-0.02 * (1 / sigma)**0.25 * (gamma * s * s * big_gamma)**0.15
    assert vol_m == pytest.approx(sigma * math.sqrt(1 - k), rel=1e-12) and vol_m > sigma
    long_vol, _ = zakamouline_rule(big_gamma, s, sigma, lam, gamma, tau, 1.0, False)
    assert long_vol < sigma
    assert zakamouline_rule(big_gamma, s, sigma, 0.0, gamma, tau, 1.0, True) == (sigma, 0.0)


def test_zakamouline_without_cost_is_the_every_step_hedge_and_with_cost_saves():
    hedges = {"zak": gh.Zakamouline(vol=0.2, risk_aversion=1.0), "every": gh.DeltaHedge(vol=0.2)}
    costs = {"free": gh.Costs(), "1%": gh.Costs(proportional=0.01)}
    ds = gh.simulate(MARKET, DK_BOOK, hedges, costs, **KW)
    for v in COST_VARS:
        np.testing.assert_array_equal(ds[v].sel(strategy="zak", cost="free"),
                                      ds[v].sel(strategy="every", cost="free"))
    cost = ds.cost_paid.sel(cost="1%").mean("path")
    trades = ds.trades.sel(cost="1%").mean("path")
    assert float(cost.sel(strategy="zak")) < 0.8 * float(cost.sel(strategy="every"))
    assert float(trades.sel(strategy="zak")) < float(trades.sel(strategy="every"))


def test_synthetic_put_delivers_the_protective_put_and_jumps_breach_the_floor():
    """Black-Scholes, rebalanced every day: the portfolio ends at n max(S_T, K) up to the
    replication error, so the floor holds. With crash jumps the floor is breached."""
    put = gh.SyntheticPut(vol=0.2, floor=0.9)
    n, strike = put.units(100.0, 0.05, 0.0, 1.0)
    assert n * (100.0 + float(bs_price(100.0, strike, 1.0, 0.2, 0.05, 0.0, False))) == \
        pytest.approx(100.0, rel=1e-12)
    assert n * strike == pytest.approx(90.0, rel=1e-12)
    book = gh.Book.short(gh.EuropeanCall(100.0, 1.0), 1.0)  # sets the one-year horizon
    kw = dict(n_paths=4000, n_steps=252, seed=2, device="cpu")
    ds = gh.simulate(MARKET, book, {"put": put, "cppi": gh.CPPI(floor=0.9, multiplier=4.0)},
                     **kw)
    pnl = ds.pnl.sel(strategy="put").squeeze("cost")
    target = np.exp(-0.05) * (n * np.maximum(ds.terminal_spot, strike) - 90.0)
    error = pnl - target
    assert abs(float(error.mean())) < 4 * float(error.std()) / math.sqrt(4000) + 0.02
    assert float(error.std()) < 0.05 * float(pnl.std())
    # Daily rebalancing: the synthetic put misses the floor only by its replication error
    # near the strike (measured: P(miss > 1% of the capital) = 0.3%); CPPI (m = 4) would need
    # a 25% daily fall.
    breach = (ds.pnl < -1.0).mean("path").squeeze("cost")
    assert float(breach.sel(strategy="put")) < 0.01
    assert float((ds.pnl.sel(strategy="cppi") < 0).mean()) == 0.0
    crash = gh.Merton(spot=100.0, vol=0.15, rate=0.05, lam=1.0, mu_j=-0.35, sigma_j=0.05)
    gap = gh.simulate(crash, book, {"put": put, "cppi": gh.CPPI(floor=0.9, multiplier=4.0)},
                      **kw)
    breach = (gap.pnl < -1.0).mean("path").squeeze("cost")  # measured: 0.44 for both
    assert float(breach.sel(strategy="cppi")) > 0.3
    assert float(breach.sel(strategy="put")) > 0.3


def test_cppi_holds_m_times_the_cushion():
    """On a supplied path, CPPI's first trade buys m * (capital - PV floor) / S shares, capped
    at the capital: check the turnover of the first trade against the formula."""
    prices = np.array([100.0, 100.0])
    times = np.array([0.0, 0.5])
    book = gh.Book.short(gh.EuropeanCall(100.0, 0.5), 1.0)
    for m, cap in ((2.0, 1.0), (4.0, 1.0), (20.0, 1.0), (20.0, 3.0)):
        ds = gh.hedge_paths(prices, times, book, gh.CPPI(floor=0.8, multiplier=m,
                                                         max_leverage=cap), rate=0.02)
        cushion = 100.0 - 80.0 * math.exp(-0.02 * 0.5)
        exposure = min(m * cushion, cap * 100.0)
        turnover = exposure + exposure * math.exp(-0.02 * 0.5)  # buy, then sell at the horizon
        assert ds.turnover.item() == pytest.approx(turnover, rel=1e-12)
        assert ds.pnl.item() == pytest.approx(
            cushion - exposure * (1 - math.exp(-0.02 * 0.5)), rel=1e-12)


@pytest.mark.parametrize("make, match", [
    (lambda: gh.Costs(lag=-1), r"^Costs: 'lag' must be"),
    (lambda: gh.Costs(adv=0.0), r"^Costs: 'adv' must be > 0"),
    (lambda: gh.Costs(impact=0.5), r"^Costs: 'adv' must be > 0 and finite when impact > 0"),
    (lambda: gh.Costs(impact=-0.5), r"^Costs: 'impact' must be"),
    (lambda: gh.Costs(impact_law="cubic"), r"^Costs: 'impact_law' must be"),
    (lambda: gh.Costs(borrow_rate=0.01, lend_rate=0.02), r"^Costs: 'lend_rate' must be <= "),
    (lambda: gh.Costs(option_proportional=1.0), r"^Costs: 'option_proportional' must be"),
    (lambda: gh.Zakamouline(risk_aversion=0.0), r"^Zakamouline: 'risk_aversion' must be"),
    (lambda: gh.DeltaGammaHedge(vol=0.2), r"^DeltaGammaHedge: 'option' must be"),
    (lambda: gh.DeltaVegaHedge(option=gh.EuropeanCall(100.0, 1.0), hedge_vol="model"),
     r"^DeltaVegaHedge: 'hedge_vol' must be"),
    (lambda: gh.CPPI(multiplier=0.0), r"^CPPI: 'multiplier' must be"),
    (lambda: gh.CPPI(floor=-0.1), r"^CPPI: 'floor' must be"),
    (lambda: gh.SyntheticPut(capital=0.0), r"^SyntheticPut: 'capital' must be"),
])
def test_bad_trading_inputs_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_a_floor_above_the_capital_and_impact_without_a_vol_are_refused():
    with pytest.raises(ValueError, match=r"^simulate: hedges\['cppi'\]: CPPI: 'floor' must be"):
        gh.simulate(MARKET, DK_BOOK, {"cppi": gh.CPPI(floor=1.1)}, **KW)
    with pytest.raises(ValueError, match=r"^hedge_paths: Costs: 'impact_vol' must be"):
        gh.hedge_paths(PRICES, TIMES, gh.Book.short(gh.EuropeanCall(STRIKE, TIMES[-1]), 1.0),
                       gh.DeltaHedge(vol=VOL), gh.Costs(impact=0.1, adv=100.0), rate=RATE)


def test_cost_levels_a_rule_trades_alike_share_one_kernel_row():
    """Whalley-Wilmott's band depends on the proportional cost only: levels that differ only in
    the fee (or the funding) share one row and its trades; a lag splits every rule's rows."""
    from gpuhedge import engine

    costs = {"a": gh.Costs(proportional=1e-3), "b": gh.Costs(proportional=1e-3, fixed=1.0),
             "c": gh.Costs(proportional=2e-3), "d": gh.Costs(proportional=1e-3, lag=1)}
    groups = engine._cost_groups(costs)
    assert [len(groups[by_cost]) for by_cost in (True, False)] == [3, 2]
    hedges = {"ww": gh.WhalleyWilmott(vol=0.2, risk_aversion=1.0), "delta": gh.DeltaHedge()}
    ds = gh.simulate(MARKET, DK_BOOK, hedges, costs, **KW)
    ww = ds.sel(strategy="ww")
    np.testing.assert_array_equal(ww.trades.sel(cost="a"), ww.trades.sel(cost="b"))
    np.testing.assert_allclose(ww.pnl.sel(cost="a") - ww.pnl.sel(cost="b"),
                               ww.cost_fee.sel(cost="b"), rtol=1e-9, atol=1e-12)
    assert (ww.trades.sel(cost="a") != ww.trades.sel(cost="c")).any()
    delta = ds.sel(strategy="delta")
    np.testing.assert_array_equal(delta.turnover.sel(cost="a"), delta.turnover.sel(cost="c"))
    assert (delta.turnover.sel(cost="a") != delta.turnover.sel(cost="d")).any()
    assert (ds.premium.sel(strategy="ww", cost="a") == ds.premium.sel(strategy="ww", cost="b"))


def test_cppi_pays_its_costs_from_its_cushion():
    """A steadily falling market: without costs CPPI (m = 10) keeps its floor; with a spread it
    still does, because it de-levers on its cushion net of the costs paid so far. (A fixed fee
    per rebalance can still eat through the floor: each ever smaller trade pays it.)"""
    n = 60
    times = np.arange(n + 1) / 252
    prices = 100 * 0.99 ** np.arange(n + 1)
    book = gh.Book.short(gh.EuropeanCall(100.0, times[-1]), 1.0)
    costs = {"free": gh.Costs(), "10bp": gh.Costs(proportional=1e-3)}
    ds = gh.hedge_paths(prices, times, book, {"cppi": gh.CPPI(floor=0.9, multiplier=10.0)},
                        costs, rate=0.0)
    pnl = ds.pnl.squeeze("strategy")
    assert (pnl >= 0).all(), pnl.values  # charged at the end instead: -0.17 at 10 bp
    # the costs change the trades (one row per level): the levels trade differently
    assert ds.turnover.sel(cost="10bp").item() != ds.turnover.sel(cost="free").item()
