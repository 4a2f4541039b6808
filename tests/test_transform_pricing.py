"""Merton series and Lewis-transform prices of Kou, Heston and Bates: published reference values,
QuantLib, reductions to Black-Scholes and Merton, put-call parity and finite differences."""

import math
import warnings

import numba
import numpy as np
import pytest

import gpuhedge as gh
from gpuhedge.pricing import bs_price, merton, merton_delta, merton_price, transform
from gpuhedge.kernels._math import merton_delta as merton_delta_scalar


def heston(**kw):
    """A Heston (or Bates, given jumps) market, quiet about the Feller condition."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gh.FellerWarning)
        return (gh.Bates if "lam" in kw else gh.Heston)(**kw)


# Fang and Oosterlee (2008), section 5.2: the parameters fail the Feller condition.
FANG_OOSTERLEE = dict(spot=100.0, rate=0.0, v0=0.0175, kappa=1.5768, theta=0.0398, xi=0.5751,
                      rho=-0.5711)


def test_heston_fang_oosterlee():
    with pytest.warns(gh.FellerWarning):
        market = gh.Heston(**FANG_OOSTERLEE)
    assert gh.price(market, gh.EuropeanCall(100.0, 1.0)) == pytest.approx(5.785155434, abs=1e-9)
    assert gh.price(market, gh.EuropeanCall(100.0, 10.0)) == pytest.approx(22.318945791,
                                                                         abs=1e-9)


def test_heston_lewis_reference_values_across_strikes():
    """Alan Lewis' 15-digit values; all five strikes from one (vectorised) integration."""
    market = heston(spot=100.0, rate=0.01, dividend=0.02, v0=0.04, kappa=4.0, theta=0.25,
                    xi=1.0, rho=-0.5)
    strikes = np.array([80.0, 90.0, 100.0, 110.0, 120.0])
    calls = transform.lewis(transform.heston_log_cf(market, 1.0), 100.0, strikes, 1.0, 0.01,
                            0.02, True)["price"]
    expected = [26.774758743998854, 20.933349000596710, 16.070154917028834,
                12.132211516709844, 9.024913483457835]
    np.testing.assert_allclose(calls, expected, rtol=0, atol=1e-11)
    for strike, value in zip(strikes, expected):
        assert gh.price(market, gh.EuropeanCall(strike, 1.0)) == pytest.approx(value, abs=1e-11)


# Haug (1998), p. 9, as corrected in QuantLib's test-suite/jumpdiffusion.cpp (tolerance 1e-2):
# S = 100, q = 0, r = 0.08, total vol v = 0.25. Rows: (gamma, strike); columns: lam = 1, 5, 10,
# each at T = 0.10, 0.25, 0.50.
HAUG = {
    (0.25, 80): [20.67, 21.74, 23.63, 20.65, 21.70, 23.61, 20.64, 21.70, 23.61],
    (0.25, 90): [11.00, 12.74, 15.40, 10.98, 12.75, 15.42, 10.98, 12.75, 15.42],
    (0.25, 100): [3.42, 5.88, 8.95, 3.51, 5.96, 9.02, 3.53, 5.97, 9.03],
    (0.25, 110): [0.55, 2.11, 4.67, 0.56, 2.16, 4.73, 0.56, 2.17, 4.74],
    (0.25, 120): [0.10, 0.64, 2.23, 0.06, 0.63, 2.25, 0.05, 0.62, 2.25],
    (0.50, 80): [20.72, 21.83, 23.71, 20.66, 21.73, 23.63, 20.65, 21.71, 23.61],
    (0.50, 90): [11.04, 12.72, 15.34, 11.02, 12.76, 15.41, 11.00, 12.75, 15.41],
    (0.50, 100): [3.14, 5.58, 8.71, 3.39, 5.87, 8.96, 3.46, 5.93, 9.00],
    (0.50, 110): [0.53, 1.93, 4.42, 0.58, 2.11, 4.67, 0.57, 2.14, 4.71],
    (0.50, 120): [0.19, 0.71, 2.15, 0.10, 0.66, 2.23, 0.07, 0.64, 2.24],
    (0.75, 80): [20.79, 21.96, 23.86, 20.68, 21.78, 23.67, 20.66, 21.74, 23.64],
    (0.75, 90): [11.11, 12.75, 15.30, 11.09, 12.78, 15.39, 11.04, 12.76, 15.40],
    (0.75, 100): [2.70, 5.08, 8.24, 3.16, 5.71, 8.85, 3.33, 5.85, 8.95],
    (0.75, 110): [0.54, 1.69, 3.99, 0.62, 2.05, 4.57, 0.60, 2.11, 4.66],
    (0.75, 120): [0.29, 0.84, 2.09, 0.15, 0.71, 2.21, 0.11, 0.67, 2.23],
}


@pytest.mark.parametrize(("gamma", "strike"), list(HAUG))
def test_merton_haug_grid(gamma, strike):
    """Haug's gamma is the jump share of the total variance v^2 and his jumps have mean 0:
    sigma_j = v sqrt(gamma / lam), vol = v sqrt(1 - gamma), mu_j = -sigma_j^2 / 2."""
    total = 0.25
    cells = [(lam, t) for lam in (1.0, 5.0, 10.0) for t in (0.10, 0.25, 0.50)]
    for (lam, t), expected in zip(cells, HAUG[gamma, strike]):
        sigma_j = total * math.sqrt(gamma / lam)
        market = gh.Merton(spot=100.0, vol=total * math.sqrt(1.0 - gamma), rate=0.08, lam=lam,
                           mu_j=-0.5 * sigma_j**2, sigma_j=sigma_j)
        assert gh.price(market, gh.EuropeanCall(strike, t)) == pytest.approx(expected, abs=1e-2)


def test_kou_2002():
    market = gh.Kou(spot=100.0, vol=0.16, rate=0.05, lam=1.0, p=0.4, eta1=10.0, eta2=5.0)
    assert gh.price(market, gh.EuropeanCall(98.0, 0.5)) == pytest.approx(9.14732, abs=5e-6)


def test_bates_reduces_to_black_scholes_and_merton():
    # Tiny vol of variance with v0 = theta: the variance stays at vol^2 (rho = 0: no O(xi) term).
    vol, rate, div = 0.3, 0.03, 0.01
    sv = dict(spot=100.0, rate=rate, dividend=div, v0=vol**2, kappa=1.0, theta=vol**2,
              xi=1e-4, rho=0.0)
    for strike, maturity in [(80.0, 0.25), (100.0, 1.0), (130.0, 5.0)]:
        call = gh.EuropeanCall(strike, maturity)
        bates = heston(**sv, lam=0.0, mu_j=0.0, sigma_j=0.0)
        assert gh.price(bates, call) == pytest.approx(
            bs_price(100.0, strike, maturity, vol, rate, div, True), abs=1e-6)
        jumps = dict(lam=0.7, mu_j=-0.15, sigma_j=0.2)
        assert gh.price(heston(**sv, **jumps), call) == pytest.approx(
            gh.price(gh.Merton(spot=100.0, vol=vol, rate=rate, dividend=div, **jumps), call),
            abs=1e-6)


def _quantlib_price(ql, market, option, days):
    """QuantLib's AnalyticHestonEngine or BatesEngine price; ``days`` to expiry (Act/365).
    The adaptive (Gauss-Lobatto) integration: the default Gauss-Laguerre one is off by up to
    whole units at long maturities with large jumps."""
    today = ql.Date(15, 1, 2025)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    curve = [ql.YieldTermStructureHandle(ql.FlatForward(today, x, dc))
             for x in (market.rate, market.dividend)]
    sv = (ql.QuoteHandle(ql.SimpleQuote(market.spot)), market.v0, market.kappa, market.theta,
          market.xi, market.rho)
    if isinstance(market, gh.Bates):
        process = ql.BatesProcess(*curve, *sv, market.lam, market.mu_j, market.sigma_j)
        engine = ql.BatesEngine(ql.BatesModel(process), 1e-12, 100_000)
    else:
        engine = ql.AnalyticHestonEngine(ql.HestonModel(ql.HestonProcess(*curve, *sv)), 1e-12,
                                         100_000)
    kind = ql.Option.Call if option.is_call else ql.Option.Put
    instrument = ql.EuropeanOption(ql.PlainVanillaPayoff(kind, option.strike),
                                   ql.EuropeanExercise(today + days))
    instrument.setPricingEngine(engine)
    return instrument.NPV()


def _random_case(rng, jumps):
    days = int(rng.integers(30, 3650))
    params = dict(spot=100.0, rate=rng.uniform(-0.01, 0.06), dividend=rng.uniform(0.0, 0.04),
                  v0=rng.uniform(0.01, 0.2), kappa=rng.uniform(0.3, 5.0),
                  theta=rng.uniform(0.01, 0.2), xi=rng.uniform(0.1, 1.0),
                  rho=rng.uniform(-0.9, 0.5))
    if jumps:
        params.update(lam=rng.uniform(0.0, 2.0), mu_j=rng.uniform(-0.3, 0.1),
                      sigma_j=rng.uniform(0.01, 0.3))
    kind = gh.EuropeanCall if rng.integers(2) else gh.EuropeanPut
    return heston(**params), kind(rng.uniform(70.0, 130.0), days / 365), days


@pytest.mark.parametrize("case", range(20))
def test_heston_and_bates_against_quantlib(case):
    ql = pytest.importorskip("QuantLib")
    market, option, days = _random_case(np.random.default_rng(case), jumps=case % 2 == 1)
    assert gh.price(market, option) == pytest.approx(_quantlib_price(ql, market, option, days),
                                                     abs=1e-9)


@pytest.mark.parametrize("strike", [70.0, 100.0, 140.0])
def test_merton_against_quantlib_bates(strike):
    """QuantLib's Python package has no JumpDiffusionEngine: Bates with a tiny vol of
    variance and v0 = theta = vol^2 stands in for Merton."""
    ql = pytest.importorskip("QuantLib")
    jumps = dict(lam=1.5, mu_j=-0.2, sigma_j=0.15)
    market = gh.Merton(spot=100.0, vol=0.2, rate=0.04, dividend=0.01, **jumps)
    bates = heston(spot=100.0, rate=0.04, dividend=0.01, v0=0.04, kappa=1.0, theta=0.04,
                   xi=1e-4, rho=0.0, **jumps)
    for kind in (gh.EuropeanCall, gh.EuropeanPut):
        option = kind(strike, 730 / 365)
        assert gh.price(market, option) == pytest.approx(
            _quantlib_price(ql, bates, option, 730), abs=1e-6)


MODELS = {
    "black-scholes": gh.BlackScholes(spot=100.0, vol=0.25, rate=0.03, dividend=0.01),
    "merton": gh.Merton(spot=100.0, vol=0.2, rate=0.03, dividend=0.01, lam=0.8, mu_j=-0.1,
                        sigma_j=0.25),
    "kou": gh.Kou(spot=100.0, vol=0.2, rate=0.03, dividend=0.01, lam=0.8, p=0.35, eta1=12.0,
                  eta2=6.0),
    "heston": heston(**FANG_OOSTERLEE, dividend=0.02),
    "bates": heston(spot=100.0, rate=0.03, dividend=0.01, v0=0.05, kappa=2.0, theta=0.04,
                    xi=0.4, rho=-0.7, lam=0.5, mu_j=-0.1, sigma_j=0.2),
}
SPOTS = np.array([60.0, 85.0, 100.0, 120.0, 170.0])


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("maturity", [0.1, 2.0])
def test_put_call_parity(name, maturity):
    market = MODELS[name]
    call, put = (gh.greeks(market, kind(100.0, maturity), spot=SPOTS)
                 for kind in (gh.EuropeanCall, gh.EuropeanPut))
    forward = SPOTS * np.exp(-market.dividend * maturity)
    np.testing.assert_allclose(call["price"] - put["price"],
                               forward - 100.0 * np.exp(-market.rate * maturity), atol=1e-10)
    np.testing.assert_allclose(call["delta"] - put["delta"], forward / SPOTS, atol=1e-10)
    if "dv" in call:
        np.testing.assert_allclose(call["dv"], put["dv"], atol=1e-9)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("kind", [gh.EuropeanCall, gh.EuropeanPut])
def test_delta_matches_finite_differences(name, kind):
    market, option = MODELS[name], kind(105.0, 0.75)
    h = 1e-4 * SPOTS  # central difference: error ~ h^2 S'''(S) / 6, far below the tolerance
    up, down = (gh.price(market, option, spot=SPOTS + d) for d in (h, -h))
    np.testing.assert_allclose(gh.greeks(market, option, spot=SPOTS)["delta"],
                               (up - down) / (2 * h), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["heston", "bates"])
def test_variance_sensitivity_matches_finite_differences(name):
    market, option = MODELS[name], gh.EuropeanPut(95.0, 1.5)
    dv = 1e-5
    up, down = (gh.price(market, option, spot=SPOTS, v=market.v0 + d) for d in (dv, -dv))
    np.testing.assert_allclose(gh.greeks(market, option, spot=SPOTS)["dv"],
                               (up - down) / (2 * dv), rtol=1e-6, atol=1e-7)


def test_merton_scalar_series_and_its_delta():
    """The kernels' scalar functions: njit-callable, equal to the ufuncs, delta = dPrice/dS."""

    @numba.njit
    def kernel_delta(spot, n_terms):
        return merton_delta_scalar(spot, 95.0, 0.4, 0.2, 0.03, 0.01, 3.0, -0.05, 0.1, True,
                                   n_terms)

    n = merton.n_terms(3.0, -0.05, 0.1, 0.4)
    args = (95.0, 0.4, 0.2, 0.03, 0.01, 3.0, -0.05, 0.1, True, n)
    for spot in SPOTS:
        h = 1e-4 * spot
        fd = (merton_price(spot + h, *args) - merton_price(spot - h, *args)) / (2 * h)
        assert merton_delta(spot, *args) == pytest.approx(fd, rel=1e-6, abs=1e-9)
        assert kernel_delta(spot, n) == merton_delta(spot, *args)
    # Enough terms: one more changes nothing; far too few is visibly wrong.
    assert merton_price(100.0, *args[:-1], n + 1) == merton_price(100.0, *args)
    assert abs(merton_price(100.0, *args[:-1], 2) - merton_price(100.0, *args)) > 1e-3


def test_merton_series_survives_a_large_jump_count():
    """lam' tau = 1000: e^{-1000} underflows, the log-space weights do not."""
    market = gh.Merton(spot=100.0, vol=0.1, rate=0.02, lam=1000.0, mu_j=0.0, sigma_j=0.01)
    call = gh.EuropeanCall(100.0, 1.0)
    # Many tiny jumps act like extra diffusion: total vol^2 = 0.01 + 1000 * 1e-4 = 0.11.
    assert gh.price(market, call) == pytest.approx(
        bs_price(100.0, 100.0, 1.0, math.sqrt(0.11), 0.02, 0.0, True), rel=1e-3)


@pytest.mark.parametrize("name", list(MODELS))
def test_expired_options_are_worth_their_payoff(name):
    market = MODELS[name]
    g = gh.greeks(market, gh.EuropeanPut(101.0, 1.0), spot=SPOTS, t=1.0)
    np.testing.assert_array_equal(g["price"], np.maximum(101.0 - SPOTS, 0.0))
    np.testing.assert_array_equal(g["delta"], np.where(SPOTS < 101.0, -1.0, 0.0))


def test_state_overrides_and_their_errors():
    call = gh.EuropeanCall(100.0, 1.0)
    merton_market = MODELS["merton"]
    assert gh.price(merton_market, call, vol=0.3) == gh.price(
        gh.Merton(spot=100.0, vol=0.3, rate=0.03, dividend=0.01, lam=0.8, mu_j=-0.1,
                  sigma_j=0.25), call)
    with pytest.raises(ValueError, match=r"price: 'v' must be None for a Merton market"):
        gh.price(merton_market, call, v=0.04)
    with pytest.raises(ValueError, match=r"greeks: 'vol' must be None for a Bates market"):
        gh.greeks(MODELS["bates"], call, vol=0.2)
    with pytest.raises(ValueError, match=r"'market' must be one of BlackScholes, Merton"):
        gh.price(object(), call)
