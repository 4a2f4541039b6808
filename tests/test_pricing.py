"""Black-Scholes-Merton closed forms: against an independent scipy implementation, QuantLib,
put-call parity and finite differences."""

import numpy as np
import pytest
from scipy.stats import norm

import gpuhedge as gh
from gpuhedge.pricing import bs_delta, bs_gamma, bs_price, bs_vega

rng = np.random.default_rng(0)
N = 200
S = rng.uniform(50, 150, N)
K = rng.uniform(50, 150, N)
TAU = rng.uniform(0.01, 3.0, N)
VOL = rng.uniform(0.05, 0.8, N)
R = rng.uniform(-0.01, 0.08, N)
Q = rng.uniform(0.0, 0.05, N)


def _scipy_call(s, k, tau, vol, r, q):
    d1 = (np.log(s / k) + (r - q + vol**2 / 2) * tau) / (vol * np.sqrt(tau))
    d2 = d1 - vol * np.sqrt(tau)
    return s * np.exp(-q * tau) * norm.cdf(d1) - k * np.exp(-r * tau) * norm.cdf(d2)


def test_call_matches_independent_formula():
    np.testing.assert_allclose(bs_price(S, K, TAU, VOL, R, Q, True),
                               _scipy_call(S, K, TAU, VOL, R, Q), rtol=1e-12, atol=1e-12)


def test_put_call_parity():
    c = bs_price(S, K, TAU, VOL, R, Q, True)
    p = bs_price(S, K, TAU, VOL, R, Q, False)
    np.testing.assert_allclose(c - p, S * np.exp(-Q * TAU) - K * np.exp(-R * TAU),
                               rtol=1e-12, atol=1e-10)
    dc = bs_delta(S, K, TAU, VOL, R, Q, True)
    dp = bs_delta(S, K, TAU, VOL, R, Q, False)
    np.testing.assert_allclose(dc - dp, np.exp(-Q * TAU), rtol=1e-13)


@pytest.mark.parametrize("is_call", [True, False])
def test_greeks_match_finite_differences(is_call):
    h = 1e-4 * S
    up, mid, dn = (bs_price(S + d, K, TAU, VOL, R, Q, is_call) for d in (h, 0.0, -h))
    np.testing.assert_allclose(bs_delta(S, K, TAU, VOL, R, Q, is_call), (up - dn) / (2 * h),
                               rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(bs_gamma(S, K, TAU, VOL, R, Q), (up - 2 * mid + dn) / h**2,
                               rtol=1e-4, atol=1e-7)
    dv = 1e-5
    vega_fd = (bs_price(S, K, TAU, VOL + dv, R, Q, is_call)
               - bs_price(S, K, TAU, VOL - dv, R, Q, is_call)) / (2 * dv)
    np.testing.assert_allclose(bs_vega(S, K, TAU, VOL, R, Q), vega_fd, rtol=1e-6, atol=1e-8)


def test_degenerate_limits():
    # Expired or zero-vol options are worth their discounted forward intrinsic value.
    assert bs_price(110.0, 100.0, 0.0, 0.2, 0.05, 0.0, True) == 10.0
    assert bs_price(90.0, 100.0, 0.0, 0.2, 0.05, 0.0, True) == 0.0
    np.testing.assert_allclose(bs_price(100.0, 100.0, 1.0, 0.0, 0.05, 0.0, True),
                               100.0 - 100.0 * np.exp(-0.05))
    assert bs_delta(100.0, 100.0, 1.0, 0.0, 0.05, 0.0, True) == 1.0
    assert bs_delta(100.0, 100.0, 1.0, 0.0, 0.05, 0.0, False) == 0.0
    assert bs_gamma(100.0, 100.0, 0.0, 0.2, 0.05, 0.0) == 0.0


def test_against_quantlib():
    ql = pytest.importorskip("QuantLib")
    today = ql.Date(15, 1, 2025)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    for s, k, days, vol, r, q, kind in [(100, 95, 365, 0.25, 0.03, 0.01, ql.Option.Call),
                                        (80, 100, 730, 0.4, 0.05, 0.0, ql.Option.Put)]:
        process = ql.BlackScholesMertonProcess(
            ql.QuoteHandle(ql.SimpleQuote(s)),
            ql.YieldTermStructureHandle(ql.FlatForward(today, q, dc)),
            ql.YieldTermStructureHandle(ql.FlatForward(today, r, dc)),
            ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), vol, dc)))
        option = ql.EuropeanOption(ql.PlainVanillaPayoff(kind, k),
                                   ql.EuropeanExercise(today + days))
        option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
        args = (s, k, days / 365, vol, r, q)
        is_call = kind == ql.Option.Call
        assert bs_price(*args, is_call) == pytest.approx(option.NPV(), rel=1e-10)
        assert bs_delta(*args, is_call) == pytest.approx(option.delta(), rel=1e-8)
        assert bs_gamma(*args) == pytest.approx(option.gamma(), rel=1e-8)
        assert bs_vega(*args) == pytest.approx(option.vega(), rel=1e-8)


def test_price_and_greeks_of_market_objects():
    market = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.05, dividend=0.01)
    call = gh.EuropeanCall(strike=105.0, maturity=0.5)
    g = gh.greeks(market, call)
    assert gh.price(market, call) == g["price"] == bs_price(100.0, 105.0, 0.5, 0.2, 0.05, 0.01, True)
    assert g["delta"] == bs_delta(100.0, 105.0, 0.5, 0.2, 0.05, 0.01, True)
    assert gh.price(market, call, t=0.5) == 0.0


def test_price_and_greeks_of_a_position_and_a_book_are_netted():
    market = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.03)
    call, put = gh.EuropeanCall(105.0, 0.5), gh.EuropeanPut(95.0, 0.25)
    book = gh.Book([gh.Position(call, -3.0), gh.Position(put, 2.0)])
    expected = -3.0 * gh.price(market, call) + 2.0 * gh.price(market, put)
    assert gh.price(market, book) == pytest.approx(expected, rel=1e-14)
    assert gh.price(market, gh.Position(call, -3.0)) == pytest.approx(
        -3.0 * gh.price(market, call), rel=1e-14)
    g = gh.greeks(market, book, spot=101.0, t=0.1)
    for key in ("price", "delta", "gamma", "vega"):
        want = (-3.0 * gh.greeks(market, call, spot=101.0, t=0.1)[key]
                + 2.0 * gh.greeks(market, put, spot=101.0, t=0.1)[key])
        assert g[key] == pytest.approx(want, rel=1e-13)
    heston = gh.Heston(spot=100.0, rate=0.0, v0=0.04, kappa=1.5, theta=0.04, xi=0.3, rho=-0.7)
    assert gh.price(heston, gh.Book.short(call, 2.0)) == pytest.approx(
        -2.0 * gh.price(heston, call), rel=1e-12)
    with pytest.raises(ValueError, match="price: 'option' must be an EuropeanCall, "
                                         "EuropeanPut, Position or Book; got str"):
        gh.price(market, "call")
