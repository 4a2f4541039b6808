"""The optimiser on common random numbers: it finds the known optimum of a case built to have
one, batches candidates into kernel passes, and reports the out-of-sample value apart."""

import numpy as np
import pytest
from scipy.stats import norm

import gpuhedge as gh

pytestmark = pytest.mark.filterwarnings("error")

T = 0.25
MARKET = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.0)
BOOK = gh.Book.short(gh.EuropeanCall(100.0, T), 1.0)
LAM = 0.05


def vol_for(h):
    """The hedge vol whose at-the-money delta (r = 0) is h: N(vol sqrt(T) / 2) = h."""
    return 2.0 * norm.ppf(h) / np.sqrt(T)


def one_step(h):
    return gh.DeltaHedge(vol=vol_for(h), every=1)


@pytest.mark.parametrize("refine", ["scipy", "zoom"])
def test_finds_the_least_squares_hedge_of_one_step(refine):
    """Hedged once at t=0 and held to maturity, X0 = h (S_T - S_0) - (S_T - K)^+, and
    -E[X0] + lam Var(X0) is a parabola in h whose minimiser on the sample is
    (Cov(payoff, S_T) + mean(S_T - S_0) / (2 lam)) / Var(S_T) (divisor n)."""
    n = 20_000
    opt = gh.optimize(MARKET, BOOK, one_step, {"h": (0.51, 0.7)}, measure=gh.MeanVariance(LAM),
                      n_paths=n, n_steps=1, seed=3, refine=refine)
    s = gh.simulate(MARKET, BOOK, gh.NoHedge(), n_paths=n, n_steps=1, seed=3).terminal_spot
    s = s.values
    payoff = np.maximum(s - 100.0, 0.0)
    ds = s - 100.0
    h_star = (np.mean((payoff - payoff.mean()) * (s - s.mean())) + ds.mean() / (2 * LAM)) / \
        np.var(s)
    assert opt.params["h"] == pytest.approx(h_star, abs=2e-4)
    # the landscape is the coarse grid, one pass; refinement and the test add passes
    assert opt.landscape.value.dims == ("h",) and opt.landscape.sizes["h"] == 9
    assert opt.value <= float(opt.landscape.value.min())
    assert opt.passes >= 3 and opt.evaluations >= 10
    # out of sample: another stream, a different number with the same mean
    assert opt.test_value != opt.value
    assert abs(opt.test_value - opt.value) < 4 * np.hypot(opt.se, opt.test_se)
    direct = gh.simulate(MARKET, BOOK, one_step(opt.params["h"]), n_paths=n, n_steps=1, seed=3,
                         stream=1)
    value, _ = gh.MeanVariance(LAM).evaluate((direct.pnl + direct.premium).values.ravel())
    assert opt.test_value == pytest.approx(value, rel=1e-12)


def test_integer_interval_and_batches():
    """Without costs hedging every step is best; the 8 intervals run as rows of one pass."""
    opt = gh.optimize(MARKET, BOOK, gh.DeltaHedge, {"every": (1, 8)}, integer=("every",),
                      fixed={"vol": 0.2}, measure=gh.MeanVariance(1.0), n_paths=4000,
                      n_steps=16, seed=1)
    assert opt.params == {"every": 1}
    assert list(opt.landscape["every"].values) == list(range(1, 9))
    assert opt.passes == 2  # the grid, then out of sample
    assert np.all(np.diff(opt.landscape.value.values) > 0)


def test_two_parameters_and_max_rows():
    costs = gh.Costs(proportional=2e-3)
    opt = gh.optimize(MARKET, BOOK, gh.DeltaBand, {"band": (0.01, 0.5), "vol": (0.15, 0.3)},
                      costs, fixed={"to": "edge"}, measure=gh.ExpectedShortfall(0.9),
                      n_paths=2000, n_steps=10, grid=3, max_rows=4, refine=None)
    assert opt.landscape.value.shape == (3, 3)
    assert opt.passes == 3 + 1  # 9 candidates in passes of 4, then out of sample
    assert opt.value == float(opt.landscape.value.min())
    assert isinstance(opt.strategy, gh.DeltaBand) and opt.strategy.to == "edge"


def test_schedule_band_tunes_its_interval_and_its_band():
    """The schedule-or-band rule's two parameters, an integer and a real: without costs a date
    at every step is best, and there the band never decides (the landscape is flat in it)."""
    opt = gh.optimize(MARKET, BOOK, gh.ScheduleBand, {"every": (1, 4), "band": (0.05, 0.5)},
                      integer=("every",), fixed={"vol": 0.2}, measure=gh.MeanVariance(1.0),
                      n_paths=2000, n_steps=16, seed=1, grid=3, rounds=1)
    value = opt.landscape.value
    assert value.dims == ("every", "band") and list(value["every"].values) == [1, 2, 3, 4]
    assert isinstance(opt.strategy, gh.ScheduleBand) and opt.strategy.every == 1
    assert type(opt.params["every"]) is int
    assert np.ptp(value.sel(every=1).values) == 0.0
    assert opt.value == float(value.sel(every=1)[0]) < float(value.sel(every=[2, 3, 4]).min())


def test_bad_input():
    kw = dict(measure=gh.Entropic(1.0), n_paths=10, n_steps=2)
    with pytest.raises(ValueError, match=r"optimize: 'bounds\['band'\] high' must be"):
        gh.optimize(MARKET, BOOK, gh.DeltaBand, {"band": (0.2, 0.1)}, **kw)
    with pytest.raises(ValueError, match="optimize: 'refine' must be one of"):
        gh.optimize(MARKET, BOOK, gh.DeltaBand, {"band": (0.1, 0.2)}, refine="newton", **kw)
    with pytest.raises(ValueError, match="optimize: 'integer' must be"):
        gh.optimize(MARKET, BOOK, gh.DeltaBand, {"band": (0.1, 0.2)}, integer=("every",), **kw)
    with pytest.raises(ValueError, match="'family' must return a Strategy"):
        gh.optimize(MARKET, BOOK, lambda band: band, {"band": (0.1, 0.2)}, **kw)
    with pytest.raises(ValueError, match="test_stream"):
        gh.optimize(MARKET, BOOK, gh.DeltaBand, {"band": (0.1, 0.2)}, test_stream=0, **kw)
