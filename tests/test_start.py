"""The start of a hedge: the shares held at t=0 and the band rules' first trade.

References are independent of the kernel: scipy's normal distribution for the greeks and a
NumPy replay of the clamp-into-the-band recursion of Whalley and Wilmott (1997).
"""

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

import gpuhedge as gh

MARKET = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.05, dividend=0.01)
BOOK = gh.Book([gh.Position(gh.EuropeanCall(100.0, 0.5), -10.0),
                gh.Position(gh.EuropeanPut(90.0, 0.25), 4.0)])
KW = dict(n_paths=2000, n_steps=40, seed=3, device="cpu")


def _same(ds, a, b):
    for v in ("pnl", "cost_paid", "trades", "turnover"):
        np.testing.assert_array_equal(ds[v].sel(strategy=a), ds[v].sel(strategy=b))


def _d1(spot, strike, tau, vol, rate, div):
    return (math.log(spot / strike) + (rate - div + 0.5 * vol * vol) * tau) / (vol * math.sqrt(tau))


def _call_delta(spot, strike, tau, vol, rate, div=0.0):
    return math.exp(-div * tau) * stats.norm.cdf(_d1(spot, strike, tau, vol, rate, div))


def test_edge_start_with_no_band_is_hedging_every_step():
    """Band 0 (DeltaBand), no proportional cost (Whalley-Wilmott, Zakamouline: H = 0): the
    edge is the target at t=0 as later, from none or from a held position, with and without
    execution lag."""
    for held in (0.0, 3.0):
        hedges = {"every": gh.DeltaHedge(vol=0.2, initial_shares=held),
                  "band": gh.DeltaBand(vol=0.2, band=0.0, to="edge", initial_shares=held),
                  "ww": gh.WhalleyWilmott(vol=0.2, risk_aversion=0.5, initial_shares=held),
                  "zak": gh.Zakamouline(vol=0.2, risk_aversion=0.5, initial_shares=held)}
        costs = {"fee": gh.Costs(fixed=0.1), "lagged": gh.Costs(fixed=0.1, lag=2)}
        ds = gh.simulate(MARKET, BOOK, hedges, costs, **KW)
        assert hedges["band"].starts_at_edge and hedges["ww"].starts_at_edge
        for rule in ("band", "ww", "zak"):
            _same(ds, rule, "every")


def _first_trade(ds, strategy, cost, spot0):
    """Shares bought at t=0 by a rule that trades only there and at the unwind, with r = 0:
    turnover = |q| (S_0 + S_T)."""
    turnover = ds.turnover.sel(strategy=strategy, cost=cost).values
    return turnover / (spot0 + ds.terminal_spot.values)


@pytest.mark.parametrize("quantity", [-1.0, 1.0])
def test_first_band_trade_from_no_shares_goes_to_the_nearest_edge(quantity):
    """Short (long) call, no shares held: the hedge target is +q Delta (-q Delta) and the first
    trade is max(|target| - H, 0) towards it, H the band's half-width at t=0; with
    ``initial="target"`` it is the whole target. One grid step, so that the only other trade
    is the unwind (r = 0: turnover = |q0| (S_0 + S_T))."""
    spot, vol, tau, cost, gamma_ra = 1.0, 0.2, 20 / 252, 1e-3, 1.0
    market = gh.BlackScholes(spot=spot, vol=vol, rate=0.0)
    book = gh.Book([gh.Position(gh.EuropeanCall(1.0, tau), quantity)])
    delta = _call_delta(spot, 1.0, tau, vol, 0.0)
    gamma = stats.norm.pdf(_d1(spot, 1.0, tau, vol, 0.0, 0.0)) / (spot * vol * math.sqrt(tau))
    ww = (1.5 * cost * spot * gamma ** 2 / gamma_ra) ** (1 / 3)
    hedges = {"ww": gh.WhalleyWilmott(vol=vol, risk_aversion=gamma_ra),
              "ww target": gh.WhalleyWilmott(vol=vol, risk_aversion=gamma_ra, initial="target"),
              "narrow": gh.DeltaBand(vol=vol, band=0.1, to="edge"),
              "wide": gh.DeltaBand(vol=vol, band=0.6, to="edge")}
    ds = gh.simulate(market, book, hedges, gh.Costs(proportional=cost), n_paths=64, n_steps=1,
                     seed=5, device="cpu")
    assert 0.0 < ww < delta
    expected = {"ww": delta - ww, "ww target": delta, "narrow": delta - 0.1, "wide": 0.0}
    for name, shares in expected.items():
        np.testing.assert_allclose(_first_trade(ds, name, ds.cost.values[0], spot), shares,
                                   rtol=1e-12, atol=1e-15)
    assert float(ds.trades.sel(strategy="wide").max()) == 0.0


def test_held_shares_start_inside_or_outside_the_band():
    """From a held position the first trade of an edge start clamps into the band (none
    inside it); a target start trades the difference to the delta."""
    spot, vol, tau, band = 1.0, 0.2, 20 / 252, 0.1
    market = gh.BlackScholes(spot=spot, vol=vol, rate=0.0)
    book = gh.Book([gh.Position(gh.EuropeanCall(1.0, tau), -1.0)])
    delta = _call_delta(spot, 1.0, tau, vol, 0.0)
    hedges = {f"{held} {start}": gh.DeltaBand(vol=vol, band=band, to="edge", initial=start,
                                              initial_shares=held)
              for held in (0.2, 0.5, 0.8) for start in ("edge", "target")}
    ds = gh.simulate(market, book, hedges, n_paths=64, n_steps=1, seed=5, device="cpu")
    terminal = ds.terminal_spot.values
    for held in (0.2, 0.5, 0.8):
        for start, position in (("edge", min(max(held, delta - band), delta + band)),
                                ("target", delta)):
            # turnover = |q0| S_0 + |held + q0| S_T (the unwind sells what is held then)
            turnover = ds.turnover.sel(strategy=f"{held} {start}").isel(cost=0).values
            np.testing.assert_allclose(
                turnover, abs(position - held) * spot + position * terminal, rtol=1e-12)
    assert float(ds.trades.sel(strategy="0.5 edge").max()) == 1.0  # the unwind only


def test_held_shares_are_valued_at_the_first_price():
    """Shares held at t=0 are part of the initial value at S_0: without costs the P&L does not
    depend on them for a rule that trades to the delta at t=0 (the start only shifts cash);
    with a proportional cost the difference is that cost on the smaller first trade."""
    held, cost = 2.0, 2e-3
    hedges = {"none held": gh.DeltaHedge(vol=0.2, every=4),
              "held": gh.DeltaHedge(vol=0.2, every=4, initial_shares=held)}
    costs = {"free": gh.Costs(), "costly": gh.Costs(proportional=cost)}
    ds = gh.simulate(MARKET, BOOK, hedges, costs, **KW)
    free = ds.pnl.sel(cost="free")
    np.testing.assert_allclose(free.sel(strategy="held"), free.sel(strategy="none held"),
                               rtol=0, atol=1e-12)
    s0, r, q = MARKET.spot, MARKET.rate, MARKET.dividend
    target = 10.0 * _call_delta(s0, 100.0, 0.5, 0.2, r, q) - 4.0 * (
        _call_delta(s0, 90.0, 0.25, 0.2, r, q) - math.exp(-q * 0.25))
    saved = cost * s0 * (abs(target) - abs(target - held))
    gap = ds.cost_paid.sel(strategy="none held", cost="costly") - \
        ds.cost_paid.sel(strategy="held", cost="costly")
    np.testing.assert_allclose(gap, saved, rtol=1e-10)


def _replay_whalley_wilmott(prices, times, positions, vol, rate, cost, risk_aversion, held):
    """Whalley and Wilmott's strategy on the given price paths, step by step in NumPy: from
    ``held`` shares, at every t_k clamp the position into [Delta - H, Delta + H] with
    Delta = -sum q_i Delta_i and H = (3/2 e^{-r (T - t_k)} lambda S Gamma^2 / gamma)^{1/3},
    Gamma = sum q_i Gamma_i (Black-Scholes at ``vol``); sell everything at T. Returns the
    positions after each trade, the PV of the costs and the P&L (book bought at its value at
    S_0, held shares at S_0, every cash flow discounted at ``rate``)."""
    n_paths, n_times = prices.shape
    horizon = times[-1]
    pos = np.full(n_paths, held)
    flow = -held * prices[:, 0]
    paid = np.zeros(n_paths)
    path = np.empty((n_times - 1, n_paths))
    for k in range(n_times - 1):
        s, tau = prices[:, k], horizon - times[k]
        sd = vol * math.sqrt(tau)
        delta = gamma = value = 0.0
        for strike, quantity in positions:
            d1 = (np.log(s / strike) + (rate + 0.5 * vol * vol) * tau) / sd
            delta = delta + quantity * stats.norm.cdf(d1)
            gamma = gamma + quantity * stats.norm.pdf(d1) / (s * sd)
            value = value + quantity * (s * stats.norm.cdf(d1) - strike * math.exp(-rate * tau)
                                        * stats.norm.cdf(d1 - sd))
        if k == 0:
            flow -= value
        band = np.cbrt(1.5 * math.exp(-rate * tau) * cost * s * gamma ** 2 / risk_aversion)
        new = np.clip(pos, -delta - band, -delta + band)
        disc = math.exp(-rate * times[k])
        flow -= (new - pos) * s * disc
        paid += cost * np.abs(new - pos) * s * disc
        pos = new
        path[k] = pos
    s, disc = prices[:, -1], math.exp(-rate * horizon)
    flow += pos * s * disc
    paid += cost * np.abs(pos) * s * disc
    flow += disc * sum(q * np.maximum(s - strike, 0.0) for strike, q in positions)
    return path, paid, flow - paid


@pytest.mark.parametrize("positions, held", [(((1.0, -1.0),), 0.0),
                                             (((1.0, -1.0), (1.1, -0.5)), 0.3)])
def test_whalley_wilmott_edge_start_matches_an_independent_replay(positions, held):
    """Short 20-day calls on S_0 = 1, vol 0.2, daily steps, cost 1e-3, risk aversion 1, r = 2%
    (one option: the kernel's band from d1; two: from the book's gamma): positions (through
    the turnover and trade counts), costs and P&L of 300 paths equal the replay to 1e-12."""
    vol, rate, cost, risk_aversion, n = 0.2, 0.02, 1e-3, 1.0, 20
    times = np.arange(n + 1) / 252
    rng = np.random.default_rng(11)
    z = rng.standard_normal((300, n))
    log_steps = (rate - 0.5 * vol * vol) / 252 + vol * math.sqrt(1 / 252) * z
    prices = np.exp(np.concatenate([np.zeros((300, 1)), np.cumsum(log_steps, axis=1)], axis=1))
    book = gh.Book([gh.Position(gh.EuropeanCall(strike, n / 252), q) for strike, q in positions])
    ds = gh.hedge_paths(prices, times, book,
                        {"ww": gh.WhalleyWilmott(vol=vol, risk_aversion=risk_aversion,
                                                 initial_shares=held)},
                        gh.Costs(proportional=cost), rate=rate, device="cpu")
    path, paid, pnl = _replay_whalley_wilmott(prices, times, positions, vol, rate, cost,
                                              risk_aversion, held)
    held_before = np.vstack([np.full(300, held), path])
    moves = np.diff(np.vstack([held_before, np.zeros(300)]), axis=0)
    disc = np.exp(-rate * times)[:, None]
    got = ds.isel(strategy=0, cost=0)
    np.testing.assert_array_equal(got.trades, (moves != 0.0).sum(axis=0))
    np.testing.assert_allclose(got.turnover, (np.abs(moves) * prices.T * disc).sum(axis=0),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.cost_paid, paid, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.pnl, pnl, rtol=0, atol=1e-12)
    assert 0 < float(got.trades.mean()) < n  # the band binds on some dates, not all


@pytest.mark.parametrize("cls, kwargs, field", [
    (gh.WhalleyWilmott, {"initial": "middle"}, "initial"),
    (gh.Zakamouline, {"initial": None}, "initial"),
    (gh.DeltaBand, {"to": "edge", "initial": "centre"}, "initial"),
    (gh.DeltaBand, {"initial": "edge"}, "initial"),  # to="target" has no edge
    (gh.DeltaHedge, {"initial_shares": math.nan}, "initial_shares"),
    (gh.WhalleyWilmott, {"initial_shares": "1"}, "initial_shares"),
    (gh.DeltaGammaHedge, {"option": gh.EuropeanCall(100.0, 1.0), "initial_shares": math.inf},
     "initial_shares"),
])
def test_bad_start_parameters_are_refused(cls, kwargs, field):
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: '{field}' must be"):
        cls(**kwargs)


def test_defaults_follow_the_theory_for_band_rules():
    assert gh.WhalleyWilmott().initial == gh.Zakamouline().initial == "edge"
    assert gh.DeltaBand(to="edge").starts_at_edge and not gh.DeltaBand().starts_at_edge
    assert not gh.DeltaBand(to="edge", initial="target").starts_at_edge
    assert not any(rule.starts_at_edge for rule in (
        gh.DeltaHedge(), gh.StaticHedge(), gh.SpotMove(), gh.Leland(), gh.NoHedge(),
        gh.WhalleyWilmott(initial="target"), gh.CPPI()))
    # a sweep over ``to`` keeps the default start following it
    band = dataclasses.replace(gh.DeltaBand(to="edge", initial_shares=1.0), to="target")
    assert not band.starts_at_edge and band.initial_shares == 1.0
