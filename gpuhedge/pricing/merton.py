"""Merton (1976) jump-diffusion prices and deltas as NumPy ufuncs.

The series is the kernels' own (``gpuhedge.kernels._math``, its Merton section gives the
formula), compiled here with ``numba.vectorize`` at first use: one definition for Python
users, tests and the per-step hedge ratios of the kernels.

References
----------
Merton, R. C. (1976), "Option pricing when underlying stock returns are discontinuous",
Journal of Financial Economics 3, 125-144.
"""

import math

from ..kernels import _math
from ..kernels._cache import LazyUfunc

_SIG = ["float64(float64, float64, float64, float64, float64, float64, float64, float64, "
        "float64, boolean, int64)"]

merton_price = LazyUfunc(_math.merton_price, _SIG, """merton_price(spot, strike, tau, vol, rate,
div, lam, mu_j, sigma_j, is_call, n_terms): Merton (1976) price, the first ``n_terms`` terms of
the Poisson-weighted series of Black-Scholes prices (``n_terms`` picks a safe count).
Broadcasts over arrays.""")
merton_delta = LazyUfunc(_math.merton_delta, _SIG, """merton_delta(spot, strike, tau, vol, rate,
div, lam, mu_j, sigma_j, is_call, n_terms): dV/dS of ``merton_price``.""")


def n_terms(lam, mu_j, sigma_j, tau):
    """Number of series terms that leaves a truncation error below double precision.

    Term n of the call series is w_n BS_n with w_n the Poisson(m) weights, m = lam' tau,
    lam' = lam (1 + k), and BS_n <= S e^{-q tau}; for a put, w_n BS_n <= K e^{-r tau} times
    the Poisson(lam tau) weight of n. So the relative error is at most the tail of a Poisson
    law of mean M = max(lam, lam') tau beyond the last term, and N = M + 8 sqrt(M) + 12
    terms put that tail below 1e-15 for any M (7.5e-21 at M = 1, 6e-16 as M grows).

    Parameters
    ----------
    lam, mu_j, sigma_j : float
        Jump intensity, mean and standard deviation of the log jump size.
    tau : float
        Time to expiry (<= 0: one term).
    """
    mean = lam * max(1.0, math.exp(mu_j + 0.5 * sigma_j**2)) * max(tau, 0.0)
    return math.ceil(mean + 8.0 * math.sqrt(mean) + 12.0)


def values(market, option, spot, tau, greeks, vol=None):
    """Price (and delta if ``greeks``) of ``option`` under a ``Merton`` market, ``tau``
    before expiry; ``vol`` overrides the diffusion vol."""
    vol = market.vol if vol is None else vol
    args = (spot, option.strike, tau, vol, market.rate, market.dividend, market.lam,
            market.mu_j, market.sigma_j, option.is_call,
            n_terms(market.lam, market.mu_j, market.sigma_j, tau))
    out = {"price": merton_price(*args)}
    if greeks:
        out["delta"] = merton_delta(*args)
    return out
