"""The CEV market (Cox 1975), absorbed at 0: Monte Carlo prices against Schroder's (1989)
formula, and the formula against its limits."""

import numpy as np
import pytest

import gpuhedge as gh
from gpuhedge.models.cev import schroder_price
from gpuhedge.pricing import bs_price

SPOT, RATE, DIVIDEND, MATURITY = 100.0, 0.05, 0.02, 0.5
STRIKES = (90.0, 100.0, 110.0)


def _market(beta, local_vol=0.25):
    """A CEV market whose local vol at S_0 is ``local_vol``."""
    return gh.CEV(spot=SPOT, sigma=local_vol * SPOT ** (1.0 - beta), beta=beta, rate=RATE,
                  dividend=DIVIDEND)


@pytest.mark.parametrize("beta", [0.5, 0.8])
def test_monte_carlo_calls_match_schroder(beta):
    # Euler's bias at 100 steps: within 0.005 of 25 and 400 steps on common paths (10^6 paths,
    # differences of 0.002-0.005 at each strike), a fifth of the standard error here (0.018 to
    # 0.032 at 200,000 paths); no path reaches 0 at this local vol
    market = _market(beta)
    ds = gh.simulate(market, gh.Book.long(gh.EuropeanCall(100.0, MATURITY)), gh.NoHedge(vol=0.25),
                     n_paths=200_000, n_steps=100, seed=17, device="cpu")
    spot = ds.terminal_spot.values
    for strike in STRIKES:
        payoff = np.exp(-RATE * MATURITY) * np.maximum(spot - strike, 0.0)
        se = payoff.std(ddof=1) / np.sqrt(payoff.size)
        reference = gh.price(market, gh.EuropeanCall(strike, MATURITY))
        assert abs(payoff.mean() - reference) < 4.0 * se, (strike, payoff.mean(), reference, se)


def test_absorbed_paths_and_prices_match_schroder_when_zero_is_reached():
    # local vol 1 at S_0: P(S_T = 0) = Q(b / 2, c / 2) (upper regularised gamma, Schroder's
    # b and c) is about 1.8 %; Euler's floor at 0 lifts E[S_T] by the overshoot of the steps
    # that cross 0, of the order of P(S_T = 0) sigma S^beta sqrt(dt): 400 steps keep it, and the
    # crossings the grid misses, within the standard error
    from scipy.special import gammaincc

    beta = 0.5
    market = _market(beta, local_vol=1.0)
    ds = gh.simulate(market, gh.Book.long(gh.EuropeanCall(100.0, MATURITY)), gh.NoHedge(vol=1.0),
                     n_paths=100_000, n_steps=400, seed=29, device="cpu")
    spot = ds.terminal_spot.values
    growth = 2.0 * (RATE - DIVIDEND) * (beta - 1.0)
    v = market.sigma**2 * np.expm1(growth * MATURITY) / growth
    c = SPOT ** (2.0 * (1.0 - beta)) / ((1.0 - beta) ** 2 * v)
    absorbed = gammaincc(0.5 / (1.0 - beta), 0.5 * c)
    assert 0.01 < absorbed < 0.03
    se = np.sqrt(absorbed * (1.0 - absorbed) / spot.size)
    assert abs((spot == 0.0).mean() - absorbed) < 4.0 * se
    for strike in (50.0, 100.0, 150.0):
        for option in (gh.EuropeanCall(strike, MATURITY), gh.EuropeanPut(strike, MATURITY)):
            payoff = np.exp(-RATE * MATURITY) * option.payoff(spot)
            se = payoff.std(ddof=1) / np.sqrt(payoff.size)
            assert abs(payoff.mean() - gh.price(market, option)) < 4.0 * se, (option, se)


def test_schroder_tends_to_black_scholes_and_keeps_put_call_parity():
    strikes = np.array(STRIKES)
    near_gbm = _market(0.999, local_vol=0.2)
    calls = gh.price(near_gbm, gh.EuropeanCall(100.0, MATURITY), spot=SPOT)
    assert calls == pytest.approx(bs_price(SPOT, 100.0, MATURITY, 0.2, RATE, DIVIDEND, True),
                                  abs=1e-3)
    market = _market(0.5)
    args = (SPOT, strikes, MATURITY, market.sigma, 0.5, RATE, DIVIDEND)
    parity = schroder_price(*args, True) - schroder_price(*args, False)
    np.testing.assert_allclose(
        parity, SPOT * np.exp(-DIVIDEND * MATURITY) - strikes * np.exp(-RATE * MATURITY),
        atol=1e-10)
    # r = q is the limit of the variance clock v (no division by r - q)
    close = (SPOT, 100.0, MATURITY, market.sigma, 0.5)
    assert schroder_price(*close, 0.03, 0.03, True) == pytest.approx(
        schroder_price(*close, 0.03 + 1e-9, 0.03, True), rel=1e-7)


def test_a_delta_hedged_cev_book_runs_with_the_model_premium():
    market = _market(0.5)
    book = gh.Book.short(gh.EuropeanCall(100.0, MATURITY))
    ds = gh.simulate(market, book, {"delta": gh.DeltaHedge(vol=0.25), "none": gh.NoHedge()},
                     n_paths=2_000, n_steps=50, seed=1, device="cpu", premium="model")
    assert float(ds.premium.sel(strategy="delta")[0]) == pytest.approx(
        -gh.price(market, gh.EuropeanCall(100.0, MATURITY)))
    assert ds.pnl.sel(strategy="delta").std() < 0.3 * ds.pnl.sel(strategy="none").std()


@pytest.mark.parametrize("kwargs, field", [(dict(beta=1.0), "beta"), (dict(beta=-0.1), "beta"),
                                           (dict(sigma=0.0), "sigma")])
def test_bad_parameters_are_refused(kwargs, field):
    with pytest.raises(ValueError, match=rf"CEV: '{field}' must be"):
        gh.CEV(**{**dict(spot=SPOT, sigma=2.0, beta=0.5, rate=RATE), **kwargs})
