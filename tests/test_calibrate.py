"""Fits of market models to daily log returns (gpuhedge.calibrate) on returns simulated here
with NumPy (independently of the engine), with known parameters."""

import math

import numpy as np
import pytest
from scipy import stats

from gpuhedge import calibrate

DT = 1 / 252


def _merton_returns(n, m, vol, lam, mu_j, sigma_j, seed):
    rng = np.random.default_rng(seed)
    k = rng.poisson(lam * DT, n)
    return m * DT + vol * math.sqrt(DT) * rng.standard_normal(n) + k * mu_j + np.sqrt(
        k) * sigma_j * rng.standard_normal(n)


def _heston_returns(n_days, n_paths, kappa, theta, xi, rho, seed, sub=20):
    """Daily log returns of Heston paths, full-truncation Euler with ``sub`` steps a day,
    started from the stationary gamma law of the variance."""
    rng = np.random.default_rng(seed)
    v = rng.gamma(2 * kappa * theta / xi**2, xi**2 / (2 * kappa), n_paths)
    h = DT / sub
    out = np.empty((n_paths, n_days))
    for d in range(n_days):
        x = np.zeros(n_paths)
        for _ in range(sub):
            z1, z2 = rng.standard_normal((2, n_paths))
            vp = np.maximum(v, 0.0)
            x += -0.5 * vp * h + np.sqrt(vp * h) * z1
            v = v + kappa * (theta - vp) * h + xi * np.sqrt(vp * h) * (
                rho * z1 + math.sqrt(1 - rho**2) * z2)
        out[:, d] = x
    return out


def test_black_scholes_mle_is_the_sample_mean_and_variance():
    r = _merton_returns(3000, 0.05, 0.2, 0.0, 0.0, 0.0, seed=1)
    fit = calibrate.fit_merton(r, jumps=False)
    assert fit.params["m"] == pytest.approx(r.mean() / DT, rel=1e-9)
    assert fit.params["vol"] == pytest.approx(r.std() / math.sqrt(DT), rel=1e-9)
    # inverse Hessian: se(vol) = vol / sqrt(2 n), se(m) = vol / sqrt(n dt)
    assert fit.se["vol"] == pytest.approx(fit.params["vol"] / math.sqrt(2 * 3000), rel=1e-3)
    assert fit.se["m"] == pytest.approx(fit.params["vol"] / math.sqrt(3000 * DT), rel=1e-3)
    assert fit.objective == pytest.approx(stats.norm.logpdf(r, r.mean(), r.std()).sum())


def test_merton_density_integrates_to_one_and_matches_the_normal_without_jumps():
    x = np.linspace(-0.8, 0.8, 40001)
    f = np.exp(calibrate.merton_log_density(x, DT, 0.1, 0.15, 20.0, -0.04, 0.05))
    assert np.trapezoid(f, x) == pytest.approx(1.0, abs=1e-8)
    mean = np.trapezoid(x * f, x)
    assert mean == pytest.approx(0.1 * DT + 20 * DT * -0.04, rel=1e-6)
    np.testing.assert_allclose(
        calibrate.merton_log_density(x[::100], DT, 0.1, 0.15, 0.0, 0.0, 0.0),
        stats.norm.logpdf(x[::100], 0.1 * DT, 0.15 * math.sqrt(DT)), rtol=1e-12)


def test_merton_mle_recovers_the_parameters():
    truth = dict(m=0.05, vol=0.12, lam=12.0, mu_j=-0.03, sigma_j=0.03)
    fit = calibrate.fit_merton(_merton_returns(6000, *truth.values(), seed=5))
    for k, v in truth.items():
        assert abs(fit.params[k] - v) < 4 * fit.se[k], (k, fit.params[k], fit.se[k])
    assert fit.se["lam"] < 0.5 * truth["lam"] and fit.se["vol"] < 0.1 * truth["vol"]


def test_heston_moments_match_a_simulation():
    p = dict(kappa=3.0, theta=0.04, xi=0.4, rho=-0.7)
    r = _heston_returns(2000, 40, *p.values(), seed=11)
    per_path = np.array([calibrate.sample_moments(x) for x in r])
    model = calibrate.heston_moments(tuple(p.values()), DT)
    mean, se = per_path.mean(axis=0), per_path.std(axis=0, ddof=1) / math.sqrt(len(r))
    # variance, kurtosis, first autocorrelation of x^2 and first leverage (a few % bias of
    # the one-step-a-day moments is well inside)
    for i in (0, 1, 2, len(calibrate.ACF_LAGS) + 2):
        assert abs(mean[i] - model[i]) < 4 * se[i] + 0.03 * abs(model[i]), (i, mean[i], model[i])


def test_heston_moment_fit_recovers_the_parameters():
    p = dict(kappa=3.0, theta=0.04, xi=0.4, rho=-0.7)
    r = _heston_returns(6000, 1, *p.values(), seed=12)[0]
    fit = calibrate.fit_heston_moments(r, n_boot=60, seed=1)
    for k in ("theta", "rho"):
        assert abs(fit.params[k] - p[k]) < 4 * fit.se[k], (k, fit.params[k], fit.se[k])
    assert fit.se["theta"] < 0.5 * p["theta"]


def test_errors():
    with pytest.raises(ValueError, match=r"fit_merton: 'returns' must hold at least 30"):
        calibrate.fit_merton(np.zeros(5))
    with pytest.raises(ValueError, match=r"fit_heston_moments: 'dt' must be a finite number in "
                                         r"\(0, 1\]; got -1"):
        calibrate.fit_heston_moments(np.zeros(1000), dt=-1)
