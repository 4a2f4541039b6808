"""Fit market models to a history of daily log returns r_1 .. r_n (time step dt in years).

* ``fit_merton``: maximum likelihood for Merton's (1976) jump diffusion. Over one step the log
  return is a Poisson mixture of normals,

      f(r) = sum_{k >= 0} e^{-lam dt} (lam dt)^k / k! phi(r; m dt + k mu_j, vol^2 dt + k sigma_j^2),

  (``merton_log_density``, summed to ``n_jumps`` jumps per step), m the drift of ln S between
  jumps. ``jumps=False`` fixes lam = 0: the maximum-likelihood Black-Scholes fit, m = mean / dt
  and vol^2 = the mean squared deviation / dt. Standard errors: the square roots of the diagonal
  of the inverse of the numerical (central-difference) Hessian of the negative log-likelihood at
  the optimum, in the natural parameters.
* ``fit_heston_moments``: moment matching for Heston (1993). With one Euler step of the variance
  per day (x = r - mean r, v_t the variance at the start of the day, a = xi^2 / (2 kappa) the
  stationary variance of v over its mean theta):
  Var x = theta dt; kurtosis 3 (1 + a / theta); the autocorrelation of x^2 at lag j,
  (a / (2 theta + 3 a)) e^{-kappa j dt}; and the leverage E[x_t x_{t+j}^2] / (Var x)^{3/2} =
  rho xi sqrt(dt / theta) e^{-kappa (j - 1) dt}. The fit minimises the squared gaps to the
  sample moments, each divided by its moving-block bootstrap standard error; the parameters'
  standard errors are the standard deviations of the fits to the bootstrap samples.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

from . import _validation as check

ACF_LAGS = (1, 2, 5, 10, 20, 40)
LEVERAGE_LAGS = (1, 2, 5, 10)


@dataclass(frozen=True)
class Fit:
    """A fitted model: ``params`` and ``se`` by name, the objective at the optimum (the
    log-likelihood, or the weighted sum of squared moment gaps), the number of returns, and
    the method in words."""

    model: str
    params: dict
    se: dict
    objective: float
    n: int
    method: str
    extra: dict = field(default_factory=dict)


def _returns(owner, returns, dt, minimum):
    r = check.finite_array(owner, "returns", returns, 1)
    if r.size < minimum:
        raise ValueError(f"{owner}: 'returns' must hold at least {minimum} returns; got {r.size}")
    return r, check.real(owner, "dt", dt, 0.0, 1.0, low_open=True)


def merton_log_density(r, dt, m, vol, lam, mu_j, sigma_j, n_jumps=10):
    """ln f(r) of one step of Merton's model (module docstring), up to ``n_jumps`` jumps."""
    k = np.arange(n_jumps + 1)[:, None]
    var = vol**2 * dt + k * sigma_j**2
    if lam > 0:
        log_poisson = -lam * dt + k * math.log(lam * dt) - special.gammaln(k + 1)
    else:
        log_poisson = np.where(k == 0, 0.0, -np.inf)
    z = np.asarray(r, float)[None, :] - m * dt - k * mu_j
    return special.logsumexp(log_poisson - 0.5 * (np.log(2 * math.pi * var) + z * z / var),
                             axis=0)


def _hessian(f, x, rel=1e-4):
    """Central-difference Hessian of f at x (steps rel * max(|x_i|, 1e-3))."""
    x = np.asarray(x, float)
    h = rel * np.maximum(np.abs(x), 1e-3)
    n = x.size
    out = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.eye(n)[i] * h[i], np.eye(n)[j] * h[j]
            out[i, j] = out[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                                     + f(x - ei - ej)) / (4 * h[i] * h[j])
    return out


def fit_merton(returns, dt=1 / 252, jumps=True, n_jumps=10):
    """Maximum-likelihood fit of Merton's model (or Black-Scholes, ``jumps=False``).

    Returns
    -------
    Fit
        ``params`` m, vol (and lam, mu_j, sigma_j), all per year except the jump sizes (log
        of the jump factor), with standard errors from the inverse Hessian.
    """
    owner = "fit_merton"
    r, dt = _returns(owner, returns, dt, 30)
    mean, var = r.mean(), r.var()
    if not jumps:
        m, vol = mean / dt, math.sqrt(var / dt)
        names, x = ("m", "vol"), np.array([m, vol])

        def nll(p):
            return -float(merton_log_density(r, dt, p[0], p[1], 0.0, 0.0, 0.0, 0).sum())
    else:
        names = ("m", "vol", "lam", "mu_j", "sigma_j")

        def nll(p):
            if p[1] <= 0 or p[2] <= 0 or p[4] <= 0:
                return math.inf
            return -float(merton_log_density(r, dt, *p, n_jumps=n_jumps).sum())

        def transformed(y):
            return nll(np.array([y[0], math.exp(y[1]), math.exp(y[2]), y[3], math.exp(y[4])]))

        best = None
        sd = math.sqrt(var)
        for lam0, size in ((5.0, 2.0), (20.0, 1.0), (60.0, 0.5)):
            y0 = [mean / dt, math.log(0.7 * sd / math.sqrt(dt)), math.log(lam0), -size * sd,
                  math.log(size * sd)]
            res = optimize.minimize(transformed, y0, method="Nelder-Mead",
                                    options=dict(maxiter=4000, maxfev=8000, xatol=1e-7,
                                                 fatol=1e-9))
            if best is None or res.fun < best.fun:
                best = res
        y = best.x
        x = np.array([y[0], math.exp(y[1]), math.exp(y[2]), y[3], math.exp(y[4])])
    cov = np.linalg.inv(_hessian(nll, x))
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return Fit("Merton" if jumps else "Black-Scholes", dict(zip(names, map(float, x))),
               dict(zip(names, map(float, se))), -nll(x), r.size,
               "maximum likelihood (Poisson mixture of normals)" if jumps else
               "maximum likelihood (normal)")


def heston_moments(params, dt, lags=ACF_LAGS, leverage_lags=LEVERAGE_LAGS):
    """The daily-return moments of Heston's model (module docstring): variance, kurtosis,
    autocorrelations of x^2 at ``lags``, leverage at ``leverage_lags``."""
    kappa, theta, xi, rho = params
    a = xi**2 / (2 * kappa)
    acf = a / (2 * theta + 3 * a) * np.exp(-kappa * dt * np.asarray(lags, float))
    lev = rho * xi * math.sqrt(dt / theta) * np.exp(-kappa * dt * (np.asarray(leverage_lags,
                                                                               float) - 1))
    return np.concatenate([[theta * dt, 3 * (1 + a / theta)], acf, lev])


def sample_moments(r, lags=ACF_LAGS, leverage_lags=LEVERAGE_LAGS):
    """The sample counterparts of ``heston_moments``."""
    x = r - r.mean()
    v = np.mean(x * x)
    y = x * x - v
    acf = [np.mean(y[:-j] * y[j:]) / np.mean(y * y) for j in lags]
    lev = [np.mean(x[:-j] * x[j:] ** 2) / v**1.5 for j in leverage_lags]
    return np.concatenate([[v, np.mean(x**4) / v**2], acf, lev])


def _block_bootstrap(r, block, n_boot, rng):
    n = r.size
    starts = rng.integers(0, n - block + 1, size=(n_boot, -(-n // block)))
    idx = (starts[:, :, None] + np.arange(block)).reshape(n_boot, -1)[:, :n]
    return r[idx]


def _fit_moments(target, weight, dt, x0):
    lo, hi = np.array([0.05, 1e-4, 1e-3, -0.999]), np.array([200.0, 4.0, 20.0, 0.999])

    def gaps(p):
        return (heston_moments(p, dt) - target) * weight

    best = None
    for start in x0:
        res = optimize.least_squares(gaps, np.clip(start, lo * 1.01, hi * 0.99), bounds=(lo, hi),
                                     x_scale=np.array([1.0, 0.01, 0.1, 0.1]))
        if best is None or res.cost < best.cost:
            best = res
    return best


def fit_heston_moments(returns, dt=1 / 252, block=126, n_boot=200, seed=0):
    """Moment-matching fit of Heston's model to daily log returns (module docstring).

    Returns
    -------
    Fit
        ``params`` kappa, theta, xi, rho (per year), standard errors from ``n_boot`` moving
        blocks of ``block`` days (seeded); ``objective`` the weighted sum of squared gaps;
        ``extra`` the sample moments, their standard errors and the fitted moments.
    """
    owner = "fit_heston_moments"
    r, dt = _returns(owner, returns, dt, 4 * block)
    block = check.integer(owner, "block", block, 1, r.size)
    n_boot = check.integer(owner, "n_boot", n_boot, 10)
    rng = np.random.default_rng(seed)
    target = sample_moments(r)
    boots = np.array([sample_moments(b) for b in _block_bootstrap(r, block, n_boot, rng)])
    se_m = boots.std(axis=0, ddof=1)
    weight = 1.0 / se_m
    theta0 = target[0] / dt
    x0 = [(k, theta0, math.sqrt(2 * k * theta0 * max(target[1] / 3 - 1, 0.1)), -0.6)
          for k in (1.0, 5.0, 20.0)]
    best = _fit_moments(target, weight, dt, x0)
    fits = np.array([_fit_moments(m, weight, dt, [best.x]).x for m in boots])
    names = ("kappa", "theta", "xi", "rho")
    return Fit("Heston", dict(zip(names, map(float, best.x))),
               dict(zip(names, map(float, fits.std(axis=0, ddof=1)))), float(2 * best.cost),
               r.size, f"moment matching (variance, kurtosis, autocorrelation of squared "
                       f"returns at lags {', '.join(map(str, ACF_LAGS))}, leverage at lags "
                       f"{', '.join(map(str, LEVERAGE_LAGS))}; block bootstrap, {block}-day "
                       f"blocks, {n_boot} samples)",
               dict(sample=target, se=se_m, fitted=heston_moments(best.x, dt)))
