"""Rebalancing rules: exact limits, Whalley-Wilmott's band, Leland's vol, gamma P&L; the
registry of rules and their pickling."""

import importlib
import itertools
import math
import pickle
import re
import sys
import types
import warnings

import numpy as np
import pytest
from scipy import integrate, stats

import gpuhedge as gh
from gpuhedge.kernels import _math, black_scholes
from gpuhedge.pricing import bs_gamma
from gpuhedge.rules import RULES

MARKET = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.05, dividend=0.01)
BOOK = gh.Book([gh.Position(gh.EuropeanCall(100.0, 0.5), -10.0),
                gh.Position(gh.EuropeanPut(90.0, 0.25), 4.0)])
COSTS = {"free": gh.Costs(), "costly": gh.Costs(proportional=2e-3, fixed=0.1)}
KW = dict(n_paths=2000, n_steps=40, seed=3, device="cpu")


def _same(ds, a, b):
    for v in ("pnl", "cost_paid", "trades"):
        np.testing.assert_array_equal(ds[v].sel(strategy=a), ds[v].sel(strategy=b))


def test_band_limits_are_every_step_and_static():
    hedges = {"every": gh.DeltaHedge(vol=0.2), "band 0": gh.DeltaBand(vol=0.2, band=0.0),
              "band 0 edge": gh.DeltaBand(vol=0.2, band=0.0, to="edge"),
              "static": gh.StaticHedge(vol=0.2), "wide": gh.DeltaBand(vol=0.2, band=1e3),
              "spot 0": gh.SpotMove(vol=0.2, pct=0.0), "spot wide": gh.SpotMove(vol=0.2, pct=9.0)}
    ds = gh.simulate(MARKET, BOOK, hedges, COSTS, **KW)
    for a, b in (("band 0", "every"), ("band 0 edge", "every"), ("spot 0", "every"),
                 ("wide", "static"), ("spot wide", "static")):
        _same(ds, a, b)


def test_bands_trade_less_and_to_the_edge_trades_least():
    hedges = {"every": gh.DeltaHedge(vol=0.2), "target": gh.DeltaBand(vol=0.2, band=0.05),
              "edge": gh.DeltaBand(vol=0.2, band=0.05, to="edge"),
              "spot": gh.SpotMove(vol=0.2, pct=0.01)}
    ds = gh.simulate(MARKET, BOOK, hedges, COSTS, **KW)
    cost = ds.cost_paid.sel(cost="costly").mean("path")
    assert cost.sel(strategy="edge") < cost.sel(strategy="target") < cost.sel(strategy="every")
    assert cost.sel(strategy="spot") < cost.sel(strategy="every")


def test_explicit_hedge_times_equal_the_matching_schedule():
    times = tuple(0.5 * k / 40 for k in range(0, 40, 5))
    hedges = {"at": gh.HedgeAt(vol=0.2, times=times), "every 5": gh.DeltaHedge(vol=0.2, every=5)}
    _same(gh.simulate(MARKET, BOOK, hedges, COSTS, **KW), "at", "every 5")
    with pytest.raises(ValueError, match=r"^HedgeAt: 'times' must be points of the simulation"):
        gh.simulate(MARKET, BOOK, gh.HedgeAt(vol=0.2, times=(0.0, 0.01)), **KW)


def test_whalley_wilmott_band_collapses_without_costs():
    """No cost: H = 0, exactly the every-step hedge. As the cost falls the band shrinks like
    lambda^{1/3} and so does the gap to the every-step hedge's error."""
    hedges = {"ww": gh.WhalleyWilmott(vol=0.2, risk_aversion=0.5), "every": gh.DeltaHedge(vol=0.2)}
    levels = (1e-3, 1e-5, 1e-7, 1e-9)
    costs = {"free": gh.Costs(), **{f"{c:g}": gh.Costs(proportional=c) for c in levels}}
    ds = gh.simulate(MARKET, BOOK, hedges, costs, **KW)
    _same(ds.sel(cost=["free"]), "ww", "every")
    gap = [float((ds.pnl.sel(strategy="ww", cost=f"{c:g}")
                  - ds.pnl.sel(strategy="every", cost="free")).std()) for c in levels]
    assert gap == sorted(gap, reverse=True)
    assert gap[-1] < 0.02 * float(ds.pnl.sel(strategy="every", cost="free").std())


def test_whalley_wilmott_band_of_one_option_from_d1_equals_the_gamma_form():
    """For a book of one option the kernel takes the band's path factor from d1 alone (one
    exp); it equals the general (3/2 D S Gamma^2)^{1/3} from the book's gamma, long or short,
    deep in or out of the money, near expiry or far, with or without dividends."""
    strike, rate, discount = 100.0, 0.05, 0.9
    for spot, tau, vol, div, quantity in itertools.product(
            (60.0, 95.0, 100.0, 150.0), (1e-3, 0.25, 2.0), (0.05, 0.3, 1.0), (0.0, 0.03),
            (-10.0, 3.0)):
        gamma = quantity * black_scholes.bs_gamma(spot, strike, tau, vol, rate, div)
        expected = _math.whalley_wilmott_path_part(gamma, spot, discount)
        log_scale = _math.whalley_wilmott_log_scale(quantity, math.sqrt(tau),
                                                    math.exp(-div * tau), vol, discount)
        got = _math.whalley_wilmott_path_part_one(math.log(spot / strike), math.log(spot),
                                                  math.sqrt(tau), vol, rate, div, log_scale)
        # abs: below 1e-300 the general form's cube root gives 0 (a band of 1e-100 shares here)
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-90), (spot, tau, vol, div)
    assert _math.whalley_wilmott_log_scale(-10.0, 0.0, 1.0, 0.2, discount) == 0.0


def test_one_option_whalley_wilmott_trades_like_the_general_band():
    """The same book as one position (band from d1) and as two halves (band from the book's
    gamma): the same trades, and P&L to rounding, with and without execution lag (lagged rows
    take the gamma form) and next to a Zakamouline rule on the same greeks."""
    call = gh.EuropeanCall(100.0, 0.5)
    books = [gh.Book([gh.Position(call, -10.0)]),
             gh.Book([gh.Position(call, -5.0), gh.Position(call, -5.0)])]
    hedges = {"ww": gh.WhalleyWilmott(vol=0.2, risk_aversion=0.5),
              "ww 2": gh.WhalleyWilmott(vol=0.25, risk_aversion=5.0),
              "zak": gh.Zakamouline(vol=0.2, risk_aversion=0.5)}
    costs = {"costly": gh.Costs(proportional=2e-3), "lagged": gh.Costs(proportional=2e-3, lag=1)}
    one, halves = (gh.simulate(MARKET, book, hedges, costs, **KW) for book in books)
    np.testing.assert_array_equal(one.trades, halves.trades)
    np.testing.assert_allclose(one.pnl, halves.pnl, rtol=1e-10, atol=1e-9)
    assert float(one.trades.sel(strategy="ww", cost="costly").mean()) < 0.9 * KW["n_steps"]


def test_whalley_wilmott_beats_every_time_schedule():
    """Standard case: short 100 three-month ATM calls (S=K=100, r=5%, vol 20%), 1% proportional
    cost, 64 steps. The objective std + mean cost is lower for the best Whalley-Wilmott band
    (risk aversion 0.01-0.1: about 295 at 10,000 paths) than for the best schedule of every
    1, 2, 4, 8, 16 or 32 steps (about 330, every 8)."""
    market = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.05)
    book = gh.Book.short(gh.EuropeanCall(100.0, 0.25), 100)
    schedules = {f"every {k}": gh.DeltaHedge(vol=0.2, every=k) for k in (1, 2, 4, 8, 16, 32)}
    bands = {f"ww {g}": gh.WhalleyWilmott(vol=0.2, risk_aversion=g) for g in (0.01, 0.03, 0.1)}
    ds = gh.simulate(market, book, {**schedules, **bands}, gh.Costs(proportional=0.01),
                     n_paths=10_000, n_steps=64, seed=1, device="cpu")
    s = gh.summary(ds).squeeze()
    objective = s["std"] + s["mean_cost"]
    best_schedule = float(objective.sel(strategy=list(schedules)).min())
    best_band = float(objective.sel(strategy=list(bands)).min())
    assert best_band < best_schedule - 20.0  # standard errors are about 1-2


def test_leland_vol_makes_the_mean_error_vanish():
    """Short 100 three-month ATM calls, 1% proportional cost on rebalancing (ends=False, as in
    Leland's analysis), 64 steps. Sold and hedged at Leland's vol the mean P&L is 0 within 4
    standard errors when hedging every step; every 4 steps Leland's first-order vol leaves a
    small positive bias (+3.4 on a cost of 106 at 20,000 paths), allowed here as 5. At the
    Black-Scholes vol the mean is about -250 (every step) and -120 (every 4 steps)."""
    market = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.05)
    book = gh.Book.short(gh.EuropeanCall(100.0, 0.25), 100)
    hedges = {"leland 1": gh.Leland(vol=0.2), "leland 4": gh.Leland(vol=0.2, every=4),
              "bs 1": gh.DeltaHedge(vol=0.2), "bs 4": gh.DeltaHedge(vol=0.2, every=4)}
    ds = gh.simulate(market, book, hedges, gh.Costs(proportional=0.01, ends=False),
                     n_paths=10_000, n_steps=64, seed=1, device="cpu")
    s = gh.summary(ds).squeeze()
    mean, se = s["mean"], s.se_mean
    assert abs(float(mean.sel(strategy="leland 1"))) < 4 * float(se.sel(strategy="leland 1"))
    assert abs(float(mean.sel(strategy="leland 4"))) < 4 * float(se.sel(strategy="leland 4")) + 5
    for name in ("bs 1", "bs 4"):
        assert float(mean.sel(strategy=name)) < -50 * float(se.sel(strategy=name))
    # sold at Leland's vol: the premium is the Black-Scholes price at that vol
    vol = gh.Leland(vol=0.2).leland_vol(0.01, 0.25 / 64, short_gamma=True)
    assert ds.premium.sel(strategy="leland 1").item() == pytest.approx(
        -100 * float(gh.price(market, book.positions[0].option, vol=vol)))


def test_costs_outside_the_ends_are_charged_once():
    hedges = {"every": gh.DeltaHedge(vol=0.2), "static": gh.StaticHedge(vol=0.2)}
    costs = {"all": gh.Costs(proportional=1e-3, fixed=1.0),
             "middle": gh.Costs(proportional=1e-3, fixed=1.0, ends=False)}
    ds = gh.simulate(MARKET, BOOK, hedges, costs, **KW)
    assert (ds.cost_paid.sel(strategy="static", cost="middle") == 0).all()
    assert (ds.cost_paid.sel(cost="middle") < ds.cost_paid.sel(cost="all")).all()


S0, K, T, R, SIGMA, IMPLIED, MU = 100.0, 100.0, 0.5, 0.03, 0.3, 0.2, 0.08


def _ahmad_wilmott():
    """Expected P&L of a long call bought and delta-hedged at the implied vol s_i while the
    spot follows GBM(mu, sigma): 1/2 (sigma^2 - s_i^2) int_0^T e^{-rt} E[S_t^2 Gamma_i] dt
    (Ahmad and Wilmott 2005), by quadrature over t and the log-normal law of S_t."""
    def inner(t):
        mean, sd = np.log(S0) + (MU - 0.5 * SIGMA**2) * t, SIGMA * np.sqrt(t)

        def f(z):
            s = np.exp(mean + sd * z)
            return s * s * bs_gamma(s, K, T - t, IMPLIED, R, 0.0) * stats.norm.pdf(z)

        return np.exp(-R * t) * integrate.quad(f, -12, 12, limit=200)[0]

    return 0.5 * (SIGMA**2 - IMPLIED**2) * integrate.quad(inner, 0, T, limit=200)[0]


def test_gamma_pnl_at_implied_and_true_vol():
    """Long call, realised vol 30%, implied 20%, real-world drift 8%, hedged every step.

    At the implied vol the mean P&L is Ahmad and Wilmott's integral (2.774). Hedged (and, by
    the engine's convention, bought) at the true vol the P&L vanishes path by path as N grows,
    so bought at the implied vol it is BS(sigma) - BS(s_i) on every path.
    """
    market = gh.BlackScholes(spot=S0, vol=SIGMA, rate=R, drift=MU)
    book = gh.Book.long(gh.EuropeanCall(K, T))
    hedges = {"implied": gh.DeltaHedge(vol=IMPLIED), "true": gh.DeltaHedge(vol=SIGMA)}
    spread = []
    for n_steps in (64, 1024):
        ds = gh.simulate(market, book, hedges, n_paths=10_000, n_steps=n_steps, seed=1,
                         device="cpu")
        spread.append(float(ds.pnl.sel(strategy="true").std()))
    s = gh.summary(ds).squeeze().sel(strategy="implied")
    assert abs(float(s["mean"]) - _ahmad_wilmott()) < 4 * float(s.se_mean)
    assert spread[1] == pytest.approx(spread[0] / 4, rel=0.15)  # N^-1/2: 16x the steps
    assert spread[1] < 0.25


@pytest.mark.parametrize("cls, kwargs, field", [
    (gh.DeltaBand, {"band": -0.1}, "band"), (gh.DeltaBand, {"to": "middle"}, "to"),
    (gh.SpotMove, {"pct": -0.01}, "pct"), (gh.WhalleyWilmott, {"risk_aversion": 0.0},
                                           "risk_aversion"),
    (gh.WhalleyWilmott, {"risk_aversion": -1.0}, "risk_aversion"),
    (gh.HedgeAt, {"times": (0.5, 0.25)}, "times"), (gh.Leland, {"every": 0}, "every"),
])
def test_bad_rule_parameters_are_refused(cls, kwargs, field):
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: '{field}' must be"):
        cls(**kwargs)


def test_leland_is_undefined_for_a_long_gamma_book_with_large_costs():
    with pytest.raises(ValueError, match=r"^Leland: 'vol' must be such that the Leland number"):
        gh.simulate(MARKET, gh.Book.long(gh.EuropeanCall(100.0, 0.5)), gh.Leland(vol=0.05),
                    gh.Costs(proportional=0.05), **KW)


def test_a_schedule_that_never_trades_after_t0_warns_naming_both_numbers():
    market = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.0)
    book = gh.Book.short(gh.EuropeanCall(100.0, 1 / 12))
    with pytest.warns(gh.ScheduleWarning, match=r"DeltaHedge\(vol=0.2, every=50, "
                                                r"hedge_vol='constant'\) trades only at t=0: "
                                                r"'every' = 50 >= n_steps = 21"):
        ds = gh.simulate(market, book, gh.DeltaHedge(vol=0.2, every=50), n_paths=10,
                         n_steps=21, seed=1)
    assert (ds.trades == 2).all()  # the hedge at t=0 and the unwind
    with pytest.warns(gh.ScheduleWarning, match="'every' = 21 >= n_steps = 21"):
        gh.hedge_paths(np.full(22, 100.0), np.linspace(0, 1 / 12, 22), book,
                       gh.Leland(vol=0.2, every=21), rate=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gh.simulate(market, book, gh.DeltaHedge(vol=0.2, every=20), n_paths=10, n_steps=21)


# one of every registered rule, with fields off their defaults
EVERY_RULE = [
    gh.NoHedge(vol=0.25), gh.StaticHedge(0.21, initial_shares=1.5), gh.DeltaHedge(0.22, 3),
    gh.HedgeAt(0.2, (0.0, 0.125)), gh.DeltaBand(0.2, 0.1, "edge", initial="target"),
    gh.ScheduleBand(0.2, 4, 0.02, "edge", initial="edge"), gh.SpotMove(0.2, 0.02),
    gh.WhalleyWilmott(0.2, 2.0, initial="target"), gh.Leland(0.2, 2), gh.Zakamouline(0.2, 0.5),
    gh.DeltaGammaHedge(0.2, 2, option=gh.EuropeanCall(100.0, 1.0), roll=True),
    gh.DeltaVegaHedge(0.2, option=gh.EuropeanPut(95.0, 1.0), option_vol=0.25),
    gh.SyntheticPut(0.2, floor=0.85, every=2, capital=50.0), gh.CPPI(0.8, 3.0, max_leverage=1.5)]


def test_the_registry_holds_every_exported_rule_and_the_base_names_them():
    exported = {c for c in vars(gh).values()
                if isinstance(c, type) and issubclass(c, gh.Strategy) and c is not gh.Strategy}
    assert len(set(RULES)) == len(RULES)
    assert set(RULES) == exported == {type(r) for r in EVERY_RULE}
    with pytest.raises(ValueError) as excinfo:
        gh.Strategy()
    assert re.findall(r"\b[A-Z]\w+", str(excinfo.value).split("; use ")[1]) == [
        r.__name__ for r in RULES]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_each_rule_names_an_existing_kernel_decision(rule):
    # ``name``: a function of the rule's own module; ``band.name``: of another rule module;
    # ``_math.name``: of the kernel
    doc = rule.__doc__
    assert "Kernel decision:" in doc
    cited = re.findall(r"``(?:([a-z_]\w*)\.)?([a-z_]\w*)``", doc.split("Kernel decision:")[1])
    assert cited or rule is gh.NoHedge
    for module, name in cited:
        home = (sys.modules[rule.__module__] if not module else _math if module == "_math"
                else importlib.import_module(f"gpuhedge.rules.{module}"))
        assert isinstance(getattr(home, name, None), types.FunctionType), (module, name)


def test_the_rules_declare_their_kinds_once():
    # each rule module declares the kind codes of its rules; the kernel compares them
    kinds = {name: value for module in {sys.modules[r.__module__] for r in RULES}
             for name, value in vars(module).items() if name.startswith("KIND_")}
    assert len(set(kinds.values())) == len(kinds) == 11
    assert {r.kind for r in RULES} == set(kinds.values())
    assert all(getattr(_math, name, value) == value for name, value in kinds.items())


@pytest.mark.parametrize("rule", EVERY_RULE, ids=lambda r: type(r).__name__)
def test_rules_survive_pickling(rule):
    # dask pickles the rules of a sweep's tasks
    copy = pickle.loads(pickle.dumps(rule))
    assert type(copy) is type(rule) and copy == rule and repr(copy) == repr(rule)
