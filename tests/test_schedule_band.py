"""ScheduleBand: to the target on a time schedule, and between its dates past a band. Its exact
limits (a band wider than any move, a schedule with no date after t=0), an independent replay of
its trades on supplied paths, its warning and its bad input."""

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

import gpuhedge as gh
from gpuhedge.cli import load_config

pytestmark = pytest.mark.filterwarnings("error")

MARKET = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.03, dividend=0.01)
BOOK = gh.Book([gh.Position(gh.EuropeanCall(100.0, 0.5), -10.0),
                gh.Position(gh.EuropeanPut(90.0, 0.25), 4.0)])
# a lagged level runs the kernel's other branch (orders in flight)
COSTS = {"free": gh.Costs(), "costly": gh.Costs(proportional=2e-3, fixed=0.1),
         "lagged": gh.Costs(proportional=1e-3, lag=1)}
KW = dict(n_paths=2000, n_steps=40, seed=5, device="cpu")
EXAMPLE = Path(__file__).resolve().parents[1] / "experiments" / "configs" / "example.toml"


def _same(ds, a, b):
    for v in ("pnl", "cost_paid", "trades", "turnover"):
        np.testing.assert_array_equal(ds[v].sel(strategy=a), ds[v].sel(strategy=b))


def test_a_band_wider_than_any_move_is_the_time_schedule():
    hedges = {f"sb {k}": gh.ScheduleBand(vol=0.2, every=k, band=1e6) for k in (1, 3, 7)}
    hedges.update({f"dh {k}": gh.DeltaHedge(vol=0.2, every=k) for k in (1, 3, 7)})
    hedges["sb 1 narrow"] = gh.ScheduleBand(vol=0.2, every=1, band=0.01, to="edge")
    ds = gh.simulate(MARKET, BOOK, hedges, COSTS, **KW)
    for k in (1, 3, 7):
        _same(ds, f"sb {k}", f"dh {k}")
    _same(ds, "sb 1 narrow", "dh 1")  # every grid point a date: the band never decides


def test_no_date_after_t0_is_the_delta_band():
    hedges = {"sb target": gh.ScheduleBand(vol=0.2, every=50, band=0.05),
              "db target": gh.DeltaBand(vol=0.2, band=0.05),
              "sb edge": gh.ScheduleBand(vol=0.2, every=40, band=0.05, to="edge"),
              "db edge": gh.DeltaBand(vol=0.2, band=0.05, to="edge", initial="target"),
              "sb edge start": gh.ScheduleBand(vol=0.2, every=40, band=0.05, to="edge",
                                               initial="edge", initial_shares=2.0),
              "db edge start": gh.DeltaBand(vol=0.2, band=0.05, to="edge",
                                            initial_shares=2.0)}
    with pytest.warns(gh.ScheduleWarning) as caught:
        ds = gh.simulate(MARKET, BOOK, hedges, COSTS, **KW)
    assert len(caught) == 3
    for a in ("target", "edge", "edge start"):
        _same(ds, f"sb {a}", f"db {a}")


def test_the_warning_names_the_rule_both_numbers_and_the_plain_rule():
    with pytest.warns(gh.ScheduleWarning, match=r"ScheduleBand\(vol=0.2, every=40, band=0.05, "
                      r"to='target', hedge_vol='constant'\) has no date after t=0: "
                      r"'every' = 40 >= n_steps = 40 grid steps; choose 'every' < 40, or "
                      r"DeltaBand for the band alone"):
        gh.simulate(MARKET, BOOK, gh.ScheduleBand(vol=0.2, every=40), n_paths=10, n_steps=40)
    gh.simulate(MARKET, BOOK, gh.ScheduleBand(vol=0.2, every=39), n_paths=10, n_steps=40)


def _replay(prices, times, strike, vol, every, band, to):
    """Trades and P&L of a written call hedged by the rule, replayed in NumPy (r = q = 0, no
    cost): on dates k % every == 0 to the delta, elsewhere only past the band."""
    tau = times[-1] - times[:-1]
    d1 = (np.log(prices[:, :-1] / strike) + 0.5 * vol**2 * tau) / (vol * np.sqrt(tau))
    target = norm.cdf(d1)  # the hedge of a written call: +Delta shares
    held = np.zeros(len(prices))
    trades = np.zeros(len(prices))
    cash = np.zeros(len(prices))
    for k in range(len(times) - 1):
        gap = target[:, k] - held
        if k % every == 0:
            qty = gap
        else:
            outside = np.abs(gap) > band
            edge = gap - np.sign(gap) * band if to == "edge" else gap
            qty = np.where(outside, edge, 0.0)
        trades += qty != 0.0
        cash -= qty * prices[:, k]
        held += qty
    trades += held != 0.0
    d1_0 = (np.log(prices[:, 0] / strike) + 0.5 * vol**2 * times[-1]) / (
        vol * np.sqrt(times[-1]))
    premium = prices[:, 0] * norm.cdf(d1_0) - strike * norm.cdf(d1_0 - vol * np.sqrt(times[-1]))
    pnl = premium + cash + held * prices[:, -1] - np.maximum(prices[:, -1] - strike, 0.0)
    return trades, pnl


@pytest.mark.parametrize("to", ["target", "edge"])
def test_trades_on_every_date_and_between_dates_only_past_the_band(to):
    rng = np.random.default_rng(11)
    n, vol, every, band = 6, 0.25, 4, 0.03
    times = np.linspace(0.0, 20 / 252, 21)
    steps = vol * np.sqrt(np.diff(times)) * rng.standard_normal((n, 20))
    prices = 100.0 * np.exp(np.concatenate([np.zeros((n, 1)), np.cumsum(steps, 1)], axis=1))
    book = gh.Book.short(gh.EuropeanCall(100.0, times[-1]), 1.0)
    ds = gh.hedge_paths(prices, times, book, {"r": gh.ScheduleBand(vol, every, band, to=to)},
                        rate=0.0, device="cpu")
    trades, pnl = _replay(prices, times, 100.0, vol, every, band, to)
    np.testing.assert_array_equal(ds.trades.isel(strategy=0, cost=0), trades)
    np.testing.assert_allclose(ds.pnl.isel(strategy=0, cost=0), pnl, rtol=0, atol=1e-12)
    # the paths exercise both halves of the rule: fewer trades than every step, more than
    # the dates alone (5 dates and the unwind)
    assert (trades < 21).any() and (trades > 6).any()


def test_a_sweep_configuration_names_the_rule(tmp_path):
    path = tmp_path / "close.toml"
    path.write_text(EXAMPLE.read_text() + '\n[hedges.close]\nrule = "ScheduleBand"\nvol = 0.2\n'
                    'every = 5\nband = 0.02\nto = "edge"\n')
    rule = load_config(path)["hedges"]["close"]
    assert rule == gh.ScheduleBand(vol=0.2, every=5, band=0.02, to="edge")


@pytest.mark.parametrize("kwargs, field, allowed", [
    ({"every": 0}, "every", r"an integer >= 1; got 0"),
    ({"every": 2.0}, "every", r"an integer >= 1; got 2.0"),
    ({"band": -0.1}, "band", r"a finite number in \[0, 1000000\]; got -0.1"),
    ({"vol": 0.0}, "vol", r"a finite number in \(0, 10\]; got 0.0"),
    ({"to": "middle"}, "to", r"one of 'target', 'edge'; got 'middle'"),
    ({"initial": "edge"}, "initial", r"'target' when to='target'"),
    ({"initial": "centre", "to": "edge"}, "initial", r"one of 'edge', 'target'"),
])
def test_bad_parameters_name_class_parameter_range_and_value(kwargs, field, allowed):
    with pytest.raises(ValueError, match=rf"^ScheduleBand: '{field}' must be {allowed}"):
        gh.ScheduleBand(**kwargs)
