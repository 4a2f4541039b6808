"""Risk measures and indifference prices: equal to direct NumPy/SciPy computations, standard
errors that cover closed-form answers at the stated rate, lazy stores read cell by cell."""

import numpy as np
import pytest
import scipy.stats as st
from scipy.optimize import minimize_scalar

import gpuhedge as gh
from gpuhedge.sweep import sweep

pytestmark = pytest.mark.filterwarnings("error")

MARKET = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.03)
BOOK = gh.Book.short(gh.EuropeanCall(100.0, 0.25), 1.0)
HEDGES = {"daily": gh.DeltaHedge(vol=0.2, every=1), "none": gh.NoHedge()}
COSTS = {"free": gh.Costs(), "20bp": gh.Costs(proportional=2e-3)}


def oce_by_scipy(x, phi):
    """The OCE min_t t + E[phi(-x - t)] by a bounded scalar minimisation of the sample objective."""
    loss = -x
    res = minimize_scalar(lambda t: t + np.mean(phi(loss - t)), bounds=(loss.min(), loss.max()),
                          method="bounded", options={"xatol": 1e-12})
    return res.fun


@pytest.fixture(scope="module")
def sample():
    return np.random.default_rng(3).standard_t(df=6, size=20_000) * 0.7 + 0.1


def test_entropic_equals_log_mean_exp(sample):
    a = 1.7
    value, se = gh.Entropic(a).evaluate(sample)
    w = np.exp(-a * sample)
    assert value == pytest.approx(np.log(np.mean(w)) / a, rel=1e-12)
    assert se == pytest.approx(np.std(w, ddof=1) / (a * np.mean(w) * np.sqrt(len(w))), rel=1e-10)
    assert value == pytest.approx(oce_by_scipy(sample, gh.Entropic(a).phi), rel=1e-8)


def test_entropic_is_stable_for_large_losses():
    x = np.array([-2000.0, -1000.0, 0.0])
    value, se = gh.Entropic(1.0).evaluate(x)
    assert np.isfinite(value) and np.isfinite(se)
    assert value == pytest.approx(2000.0 - np.log(3.0), rel=1e-12)


@pytest.mark.parametrize("alpha", [0.9, 0.99])
def test_expected_shortfall_equals_tail_mean_and_oce(sample, alpha):
    value, se = gh.ExpectedShortfall(alpha).evaluate(sample)
    loss = -sample
    k = int(round(len(loss) * (1 - alpha)))
    assert value == pytest.approx(np.sort(loss)[-k:].mean(), rel=1e-12)
    assert value == pytest.approx(oce_by_scipy(sample, gh.ExpectedShortfall(alpha).phi), rel=1e-8)
    var = np.quantile(loss, alpha, method="inverted_cdf")
    tail = np.maximum(loss - var, 0.0)
    assert se == pytest.approx(np.std(tail, ddof=1) / ((1 - alpha) * np.sqrt(len(loss))),
                               rel=1e-12)


def test_mean_variance_semivariance_mean_square(sample):
    value, _ = gh.MeanVariance(0.8).evaluate(sample)
    assert value == pytest.approx(-sample.mean() + 0.8 * sample.var(), rel=1e-12)
    assert value == pytest.approx(oce_by_scipy(sample, gh.MeanVariance(0.8).phi), rel=1e-8)
    value, _ = gh.SemiVariance().evaluate(sample)
    assert value == pytest.approx(np.mean(np.minimum(sample - sample.mean(), 0.0) ** 2),
                                  rel=1e-12)
    value, _ = gh.MeanSquare().evaluate(sample)
    assert value == pytest.approx(np.mean(sample**2), rel=1e-12)


def test_generic_oce_recovers_the_closed_forms(sample):
    a = 0.9
    value, se = gh.OCE(lambda x: np.expm1(a * x) / a, name="entropic").evaluate(sample)
    ref, ref_se = gh.Entropic(a).evaluate(sample)
    assert value == pytest.approx(ref, rel=1e-7)
    assert se == pytest.approx(ref_se, rel=1e-5)


def normal_references(mu, s):
    z99 = st.norm.ppf(0.99)
    return {
        "entropic": (gh.Entropic(2.0), 2.0 * s**2 / 2 - mu),
        "cvar": (gh.ExpectedShortfall(0.99), -mu + s * st.norm.pdf(z99) / 0.01),
        "mean-variance": (gh.MeanVariance(3.0), -mu + 3.0 * s**2),
        "semi-variance": (gh.SemiVariance(), s**2 / 2),
        "mean square": (gh.MeanSquare(), mu**2 + s**2),
    }


@pytest.mark.parametrize("name", ["entropic", "cvar", "mean-variance", "semi-variance",
                                  "mean square"])
def test_standard_errors_cover_at_the_stated_rate(name):
    """400 samples of 4,000 normal P&Ls: |estimate - truth| < 1.96 se on 95% of them, within
    4 binomial standard errors (0.044)."""
    mu, s, reps, n = 0.3, 0.5, 400, 4000
    measure, truth = normal_references(mu, s)[name]
    x = np.random.default_rng(11).normal(mu, s, size=(reps, n))
    value, se = measure.evaluate(x)
    assert value.shape == (reps,)
    covered = np.mean(np.abs(value - truth) < 1.96 * se)
    assert abs(covered - 0.95) < 4 * np.sqrt(0.95 * 0.05 / reps), covered
    # the spread of the estimates matches the mean standard error
    assert np.std(value) == pytest.approx(np.mean(se), rel=0.15)


@pytest.fixture(scope="module")
def result():
    return gh.simulate(MARKET, BOOK, HEDGES, COSTS, n_paths=3000, n_steps=20, seed=5)


def test_risk_and_price_on_a_result_match_numpy(result):
    measure = gh.ExpectedShortfall(0.95)
    r = gh.risk(result, measure)
    assert r.value.dims == ("strategy", "cost")
    p = gh.indifference_price(result, measure, value=gh.price(MARKET, BOOK))
    for s in HEDGES:
        for c in COSTS:
            x = result.pnl.sel(strategy=s, cost=c).values
            prem = float(result.premium.sel(strategy=s, cost=c))
            assert float(r.value.sel(strategy=s, cost=c)) == pytest.approx(
                measure.evaluate(x)[0], rel=1e-12)
            assert float(p.price.sel(strategy=s, cost=c)) == pytest.approx(
                measure.evaluate(x + prem)[0], rel=1e-12)
    # cash invariance: the price is rho(pnl) plus the premium received
    assert np.allclose(p.price, r.value - result.premium, rtol=1e-10)
    # risk-neutral pricing (lambda = 0): a written call costs its Black-Scholes value, within
    # 4 standard errors, whatever the hedge; the CVaR price lies above it, more so with costs
    bs = -gh.price(MARKET, BOOK)
    neutral = gh.indifference_price(result.sel(cost=["free"]), gh.MeanVariance(0.0))
    assert np.all(np.abs(neutral.price - bs) < 4 * neutral.se)
    assert np.all(p.spread > 0)
    assert float(p.spread.sel(strategy="daily", cost="20bp")) > float(
        p.spread.sel(strategy="daily", cost="free"))


def test_lazy_store_equals_memory(tmp_path):
    ds = sweep(MARKET, BOOK, HEDGES, COSTS, n_paths=1024, n_steps=8, seed=2,
               store=tmp_path / "r.zarr", chunk_paths=256, grid={"market.vol": [0.15, 0.25]})
    assert ds.pnl.chunks is not None
    lazy = gh.indifference_price(ds, gh.Entropic(0.05))
    eager = gh.indifference_price(ds.load(), gh.Entropic(0.05))
    assert set(lazy.price.dims) == {"market.vol", "strategy", "cost"}
    assert np.allclose(lazy.price, eager.price, rtol=1e-12)
    assert np.allclose(lazy.se, eager.se, rtol=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match=r"Entropic: 'a' must be a finite number in \(0"):
        gh.Entropic(0.0)
    with pytest.raises(ValueError, match=r"ExpectedShortfall: 'alpha' must be"):
        gh.ExpectedShortfall(1.0)
    with pytest.raises(ValueError, match="cash-invariant"):
        gh.indifference_price(gh.simulate(MARKET, BOOK, gh.NoHedge(), n_paths=8, n_steps=2),
                              gh.MeanSquare())
    with pytest.raises(ValueError, match="NaN"):
        gh.Entropic(1.0).evaluate(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="risk: 'measure' must be"):
        gh.risk(np.zeros(3), "entropic")


def test_ask_above_bid_around_the_black_scholes_value():
    """Writing the call: ask = price; buying it: bid = -price. Under costs and risk aversion
    a hedger asks more and bids less than the Black-Scholes value, by more than 4 se."""
    costs = {"20bp": gh.Costs(proportional=2e-3)}
    hedge = {"daily": gh.DeltaHedge(vol=0.2, every=1)}
    kw = dict(n_paths=4000, n_steps=20, seed=9)
    measure = gh.Entropic(0.5)
    short = gh.indifference_price(gh.simulate(MARKET, BOOK, hedge, costs, **kw), measure)
    long_book = gh.Book.long(gh.EuropeanCall(100.0, 0.25), 1.0)
    long = gh.indifference_price(gh.simulate(MARKET, long_book, hedge, costs, **kw), measure,
                                 value=gh.price(MARKET, long_book))
    ask, bid = float(short.price.squeeze()), -float(long.price.squeeze())
    value = gh.price(MARKET, long_book)
    assert ask - value > 4 * float(short.se.squeeze())
    assert value - bid > 4 * float(long.se.squeeze())
    # the spread of the bought book is value - bid
    assert float(long.spread.squeeze()) == pytest.approx(value - bid, rel=1e-12)
