"""Jump and stochastic-volatility markets: martingales, Monte Carlo prices against independent
references, what rebalancing cannot remove, and parameter checks."""

import dataclasses
import warnings

import numpy as np
import pytest

import gpuhedge as gh
from gpuhedge.pricing import bs_price

with warnings.catch_warnings():
    warnings.simplefilter("ignore", gh.FellerWarning)
    # Fang and Oosterlee (2008): the call at S = K = 100, T = 1 is worth 5.785155434.
    FO = dict(spot=100.0, rate=0.0, v0=0.0175, kappa=1.5768, theta=0.0398, xi=0.5751,
              rho=-0.5711)
    MODELS = {
        "merton": gh.Merton(spot=100.0, vol=0.2, rate=0.05, lam=1.0, mu_j=-0.1, sigma_j=0.15,
                            dividend=0.01),
        "kou": gh.Kou(spot=100.0, vol=0.16, rate=0.05, lam=1.0, p=0.4, eta1=10.0, eta2=5.0),
        "heston-qe": gh.Heston(**FO),
        "heston-euler": gh.Heston(**FO, scheme="euler"),
        "bates": gh.Bates(spot=100.0, rate=0.03, v0=0.04, kappa=2.0, theta=0.04, xi=0.3,
                          rho=-0.7, lam=0.5, mu_j=-0.1, sigma_j=0.1, dividend=0.01),
    }


def _terminal(market, maturity, n_steps, n_paths=100_000, seed=1):
    ds = gh.simulate(market, gh.Book.long(gh.EuropeanCall(100.0, maturity)), gh.NoHedge(vol=0.2),
                     n_paths=n_paths, n_steps=n_steps, seed=seed, device="cpu")
    return ds.terminal_spot.values


def _mean_within(x, target, n_se=4.0):
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert abs(x.mean() - target) < n_se * se, (x.mean(), target, se)


@pytest.mark.parametrize("name", list(MODELS))
def test_discounted_price_plus_dividends_is_a_martingale(name):
    market = MODELS[name]
    for maturity, n_steps in ((1.0, 50), (2.0, 4)):  # QE also at coarse steps
        s_t = _terminal(market, maturity, n_steps)
        _mean_within(s_t * np.exp(-(market.rate - market.dividend) * maturity), 100.0)


def test_real_world_drift_of_jump_and_sv_models():
    for market in (MODELS["merton"], MODELS["bates"]):
        real = dataclasses.replace(market, drift=0.12)
        _mean_within(_terminal(real, 1.0, 20) * np.exp(-0.12), 100.0)


def _ql_bates_call(strike, maturity, spot, rate, dividend, v0, kappa, theta, xi, rho, lam,
                   mu_j, sigma_j):
    """QuantLib's BatesEngine (AnalyticHestonEngine when lam = 0): independent transform
    pricers. QuantLib's jump parameters are (lambda, nu = mean log jump, delta = its std)."""
    ql = pytest.importorskip("QuantLib")
    today = ql.Date(2, 1, 2025)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    days = int(round(maturity * 365))
    curves = (ql.YieldTermStructureHandle(ql.FlatForward(today, rate, dc)),
              ql.YieldTermStructureHandle(ql.FlatForward(today, dividend, dc)),
              ql.QuoteHandle(ql.SimpleQuote(spot)), v0, kappa, theta, xi, rho)
    if lam > 0:
        engine = ql.BatesEngine(ql.BatesModel(ql.BatesProcess(*curves, lam, mu_j, sigma_j)))
    else:
        engine = ql.AnalyticHestonEngine(ql.HestonModel(ql.HestonProcess(*curves)))
    option = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call, strike),
                              ql.EuropeanExercise(today + days))
    option.setPricingEngine(engine)
    return option.NPV(), days / 365


def _mc_call(market, strike, maturity, n_steps, n_paths=200_000):
    s_t = _terminal(market, maturity, n_steps, n_paths=n_paths, seed=7)
    pay = np.maximum(s_t - strike, 0.0) * np.exp(-market.rate * maturity)
    return pay.mean(), pay.std(ddof=1) / np.sqrt(pay.size)


def test_heston_monte_carlo_matches_fang_oosterlee():
    for name in ("heston-qe", "heston-euler"):
        price, se = _mc_call(MODELS[name], 100.0, 1.0, 100)
        assert abs(price - 5.785155434) < 4 * se, (name, price, se)


@pytest.mark.parametrize("strike, maturity", [(90.0, 0.5), (100.0, 1.0), (115.0, 2.0)])
def test_bates_and_heston_monte_carlo_match_quantlib(strike, maturity):
    m = MODELS["bates"]
    for lam in (m.lam, 0.0):
        ref, t = _ql_bates_call(strike, maturity, m.spot, m.rate, m.dividend, m.v0, m.kappa,
                                m.theta, m.xi, m.rho, lam, m.mu_j, m.sigma_j)
        market = gh.Bates(**{**_fields(m), "lam": lam})
        price, se = _mc_call(market, strike, t, max(8, int(round(t * 50))))
        assert abs(price - ref) < 4 * se, (lam, price, ref, se)


def _fields(model):
    return {f.name: getattr(model, f.name) for f in dataclasses.fields(model)}


@pytest.mark.parametrize("strike, maturity", [(90.0, 0.25), (100.0, 1.0), (120.0, 2.0)])
def test_merton_monte_carlo_matches_quantlib(strike, maturity):
    """Merton = Bates with v0 = theta = vol^2 and a vanishing vol-of-vol."""
    m = MODELS["merton"]
    ref, t = _ql_bates_call(strike, maturity, m.spot, m.rate, m.dividend, m.vol**2, 1.0,
                            m.vol**2, 1e-4, 0.0, m.lam, m.mu_j, m.sigma_j)
    price, se = _mc_call(m, strike, t, 8)
    assert abs(price - ref) < 4 * se, (price, ref, se)


def test_kou_monte_carlo_matches_kou_2002():
    """Kou (2002), table 1: S=100, K=98, r=5%, T=0.5, sigma=0.16, lam=1, p=0.4, eta1=10,
    eta2=5 gives 9.14732."""
    price, se = _mc_call(MODELS["kou"], 98.0, 0.5, 10, n_paths=400_000)
    assert abs(price - 9.14732) < 4 * se, (price, se)


def _hedging_std(market, vol, hedge_vol="constant", n_paths=4000):
    """Std of the error of a written 3-month ATM call hedged 1000 and 4000 times (one run)."""
    book = gh.Book.short(gh.EuropeanCall(100.0, 0.25))
    hedges = {"4000": gh.DeltaHedge(vol=vol, every=1, hedge_vol=hedge_vol),
              "1000": gh.DeltaHedge(vol=vol, every=4, hedge_vol=hedge_vol)}
    ds = gh.simulate(market, book, hedges, n_paths=n_paths, n_steps=4000, seed=2, device="cpu")
    return gh.summary(ds).squeeze()


@pytest.mark.parametrize("market", [
    gh.Merton(spot=100.0, vol=0.15, rate=0.02, lam=1.0, mu_j=-0.05, sigma_j=0.1),
    gh.Kou(spot=100.0, vol=0.15, rate=0.02, lam=1.0, p=0.4, eta1=20.0, eta2=15.0)],
    ids=["merton", "kou"])
def test_jump_error_plateaus(market):
    """Rebalancing 4x more often leaves the std unchanged (within 10%), far above the
    Black-Scholes world of equal total variance, where it halves."""
    vol = market.reference_vol
    jumps = _hedging_std(market, vol)
    bs = _hedging_std(gh.BlackScholes(spot=100.0, vol=vol, rate=0.02), vol)
    std4000, std1000 = jumps["std"].values
    assert std4000 == pytest.approx(std1000, rel=0.10)
    assert bs["std"].values[0] == pytest.approx(bs["std"].values[1] / 2, rel=0.10)
    assert std4000 > 5 * bs["std"].values[1]


def test_heston_error_plateaus_and_min_variance_delta_lowers_it():
    """Under Heston (rho=-0.7, xi=0.5) the error of a constant-vol delta hedge plateaus near 1.0
    at N=1000 and N=4000; the minimum-variance delta (Black-Scholes delta at the expected
    average vol plus rho xi / S * dC/dv) lowers the plateau by about 5% (0.95 vs 1.00 at
    10,000 paths) on the same paths."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gh.FellerWarning)
        market = gh.Heston(spot=100.0, rate=0.02, v0=0.04, kappa=2.0, theta=0.04, xi=0.5,
                           rho=-0.7)
    constant = _hedging_std(market, 0.2)
    best = _hedging_std(market, 0.2, hedge_vol="min-variance")
    c4000, c1000 = constant["std"].values
    assert c4000 == pytest.approx(c1000, rel=0.10)
    bs = _hedging_std(gh.BlackScholes(spot=100.0, vol=0.2, rate=0.02), 0.2)
    assert c4000 > 5 * bs["std"].values[1]
    assert best["std"].values[0] < 0.97 * c4000
    assert best["std"].values[1] < 0.97 * c1000


def test_hedge_vol_rules_price_the_premium_at_their_vol():
    market = MODELS["bates"]
    book = gh.Book.short(gh.EuropeanCall(100.0, 1.0))
    hedges = {r: gh.DeltaHedge(vol=0.3, hedge_vol=r)
              for r in ("constant", "instantaneous", "expected-average")}
    ds = gh.simulate(market, book, hedges, n_paths=8, n_steps=4, device="cpu")
    expected = [0.3, 0.2, 0.2]  # v0 = theta = 0.04
    for name, vol in zip(hedges, expected):
        assert ds.premium.sel(strategy=name).item() == pytest.approx(
            -bs_price(100.0, 100.0, 1.0, vol, 0.03, 0.01, True), rel=1e-12)


def test_rules_need_a_stochastic_volatility_market():
    with pytest.raises(ValueError, match=r"^simulate: 'hedges\['x'\].hedge_vol' = "
                                         r"'instantaneous' needs a Heston market; got Merton"):
        gh.simulate(MODELS["merton"], gh.Book.short(gh.EuropeanCall(100.0, 1.0)),
                    {"x": gh.DeltaHedge(hedge_vol="instantaneous")}, n_paths=4, n_steps=2)
    with pytest.raises(ValueError, match=r"'model' needs a BlackScholes or Merton market; "
                                         r"got Kou"):
        gh.simulate(MODELS["kou"], gh.Book.short(gh.EuropeanCall(100.0, 1.0)),
                    {"x": gh.DeltaHedge(hedge_vol="model")}, n_paths=4, n_steps=2)


@pytest.mark.parametrize("cls, kwargs, field", [
    (gh.Heston, {**FO, "rho": 1.3}, "rho"), (gh.Heston, {**FO, "rho": -1.01}, "rho"),
    (gh.Heston, {**FO, "kappa": -1.0}, "kappa"), (gh.Heston, {**FO, "theta": -0.1}, "theta"),
    (gh.Heston, {**FO, "xi": -0.5}, "xi"), (gh.Heston, {**FO, "v0": -0.01}, "v0"),
    (gh.Heston, {**FO, "scheme": "milstein"}, "scheme"),
    (gh.Merton, dict(spot=100, vol=0.2, rate=0.0, lam=-1, mu_j=0, sigma_j=0.1), "lam"),
    (gh.Merton, dict(spot=100, vol=0.2, rate=0.0, lam=1, mu_j=0, sigma_j=-0.1), "sigma_j"),
    (gh.Kou, dict(spot=100, vol=0.2, rate=0.0, lam=1, p=1.2, eta1=10, eta2=5), "p"),
    (gh.Kou, dict(spot=100, vol=0.2, rate=0.0, lam=1, p=0.5, eta1=1.0, eta2=5), "eta1"),
    (gh.Kou, dict(spot=100, vol=0.2, rate=0.0, lam=1, p=0.5, eta1=10, eta2=0.0), "eta2"),
    (gh.Bates, {**FO, "lam": -0.5}, "lam"),
])
def test_bad_parameters_are_refused(cls, kwargs, field):
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: '{field}' must be .*; got "):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", gh.FellerWarning)
            cls(**kwargs)


def test_feller_violation_warns():
    with pytest.warns(gh.FellerWarning, match="Feller"):
        gh.Heston(**FO)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gh.Heston(**{**FO, "xi": 0.3})  # 2 kappa theta = 0.1255 >= 0.09: no warning


def test_too_many_jumps_per_step_is_refused():
    market = gh.Merton(spot=100.0, vol=0.2, rate=0.0, lam=100.0, mu_j=0.0, sigma_j=0.1)
    with pytest.raises(ValueError, match=r"^Merton: 'lam' \* dt must be <= 5"):
        gh.simulate(market, gh.Book.short(gh.EuropeanCall(100.0, 1.0)), gh.NoHedge(),
                    n_paths=4, n_steps=10)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("strike, maturity, n_steps", [(90.0, 0.5, 10), (110.0, 2.0, 8)])
def test_monte_carlo_price_matches_the_transform_price(name, strike, maturity, n_steps):
    """Unhedged, bought at the model price (premium="model"): the mean P&L is 0 within 4
    standard errors, i.e. the Monte Carlo price equals gh.price. Exact steps and QE on coarse
    grids (4 steps a year); full-truncation Euler has a discretisation bias there (+0.55 at 8
    steps over 2 years, 16 standard errors), so it gets 8 times more steps."""
    market = MODELS[name]
    if name == "heston-euler":
        n_steps *= 8
    book = gh.Book([gh.Position(gh.EuropeanCall(strike, maturity), 1.0)])
    ds = gh.simulate(market, book, gh.NoHedge(vol=0.2), n_paths=100_000, n_steps=n_steps,
                     seed=3, device="cpu", premium="model")
    s = gh.summary(ds).squeeze()
    assert ds.premium.item() == pytest.approx(float(gh.price(market, book.positions[0].option)))
    assert abs(float(s["mean"])) < 4 * float(s.se_mean)


def test_model_rule_is_the_black_scholes_delta_at_the_market_vol():
    market = gh.BlackScholes(spot=100.0, vol=0.25, rate=0.03, dividend=0.01)
    book = gh.Book([gh.Position(gh.EuropeanCall(105.0, 0.5), -2.0),
                    gh.Position(gh.EuropeanPut(95.0, 0.25), 1.0)])
    hedges = {"model": gh.DeltaHedge(every=2, hedge_vol="model"),
              "constant": gh.DeltaHedge(vol=0.25, every=2)}
    ds = gh.simulate(market, book, hedges, n_paths=500, n_steps=50, seed=4, device="cpu")
    np.testing.assert_allclose(ds.pnl.sel(strategy="model"), ds.pnl.sel(strategy="constant"),
                               rtol=1e-12, atol=1e-12)


def test_merton_model_delta_and_premium_use_the_series():
    market = MODELS["merton"]
    book = gh.Book.short(gh.EuropeanCall(100.0, 0.5))
    ds = gh.simulate(market, book, {"model": gh.DeltaHedge(every=1, hedge_vol="model")},
                     n_paths=50_000, n_steps=50, seed=6, device="cpu")
    assert ds.premium.item() == pytest.approx(-float(gh.price(market, book.positions[0].option)),
                                              rel=1e-12)
    s = gh.summary(ds).squeeze()
    assert abs(float(s["mean"])) < 4 * float(s.se_mean)  # sold at the model price


@pytest.mark.parametrize("name", list(MODELS))
def test_declared_jump_mean_is_the_steps_lam_dt(name):
    market, dt = MODELS[name], 1.0 / 252
    assert type(market) in gh.models.MODELS
    dynamics = type(market).dynamics
    if getattr(market, "lam", 0.0) > 0.0:
        assert market.kernel_params(dt)[dynamics.jump_mean] == pytest.approx(market.lam * dt)
    else:
        assert dynamics.jump_mean == -1


def test_a_model_without_a_pricer_simulates_with_the_hedge_premium():
    @dataclasses.dataclass(frozen=True)
    class Unpriced(gh.BlackScholes):
        @staticmethod
        def pricer():
            return None

    kw = dict(spot=100.0, vol=0.2, rate=0.05)
    book = gh.Book.short(gh.EuropeanCall(100.0, 1.0))
    run = dict(n_paths=256, n_steps=12, seed=3, device="cpu")
    ds = gh.simulate(Unpriced(**kw), book, gh.DeltaHedge(vol=0.2), **run)
    reference = gh.simulate(gh.BlackScholes(**kw), book, gh.DeltaHedge(vol=0.2), **run)
    np.testing.assert_array_equal(ds.pnl.values, reference.pnl.values)
    with pytest.raises(ValueError, match=r"price: 'market' must be one of BlackScholes, .*; got "
                                         r"Unpriced"):
        gh.simulate(Unpriced(**kw), book, gh.DeltaHedge(vol=0.2), premium="model", **run)
