"""Merton (1976) jump-diffusion price and delta as scalar series, for the kernels and NumPy.

Plain Python on scalars (``math`` and the Black-Scholes functions of ``gpuhedge.kernels._math``
only), marked ``register_jitable`` like ``_math.py``: the same definition compiles under
``numba.njit``, ``numba.cuda.jit(device=True)`` and, through ``numba.vectorize``, into the
ufuncs of ``gpuhedge.pricing.merton``.

The model: d ln S = (r - q - lam k - vol^2/2) dt + vol dW + dJ, jumps at rate ``lam`` with
ln(1 + jump) ~ N(mu_j, sigma_j^2), k = E[jump] = exp(mu_j + sigma_j^2/2) - 1. Conditioning on
the number n of jumps before expiry gives a Black-Scholes price, so (Merton 1976)

    V = sum_{n >= 0} e^{-lam' tau} (lam' tau)^n / n! * BS(S, K, tau, vol_n, r_n, q),
    lam' = lam (1 + k),  vol_n^2 = vol^2 + n sigma_j^2 / tau,
    r_n = r - lam k + n ln(1 + k) / tau,  ln(1 + k) = mu_j + sigma_j^2 / 2,

and the delta is the same sum of Black-Scholes deltas (the weights do not depend on S).
The series is cut after ``n_terms`` terms (the caller picks it: ``merton.n_terms``); the
Poisson weights are carried in logs, so a large lam' tau does not underflow e^{-lam' tau}.

References
----------
Merton, R. C. (1976), "Option pricing when underlying stock returns are discontinuous",
Journal of Financial Economics 3, 125-144.
"""

import math

from numba.extending import register_jitable

from ..kernels._math import bs_delta, bs_price


@register_jitable
def merton_series(spot, strike, tau, vol, rate, div, lam, mu_j, sigma_j, is_call, n_terms,
                  delta):
    """Sum of the first ``n_terms`` terms of the series: prices, or deltas if ``delta``.

    The weights e^{-m} m^n / n!, m = lam' tau, are carried in logs (ln w_n = ln w_{n-1}
    + ln m - ln n), so that they neither underflow nor overflow for large m. At tau <= 0, or
    without jumps (lam = 0), the series is its first term: the Black-Scholes value.
    """
    if tau <= 0.0 or lam <= 0.0:
        if delta:
            return bs_delta(spot, strike, tau, vol, rate, div, is_call)
        return bs_price(spot, strike, tau, vol, rate, div, is_call)
    log_growth = mu_j + 0.5 * sigma_j * sigma_j  # ln(1 + k)
    drift_rate = rate - lam * math.expm1(log_growth)  # r - lam k
    mean = lam * math.exp(log_growth) * tau  # lam' tau
    log_mean = math.log(mean)
    log_weight = -mean
    total = 0.0
    for n in range(n_terms):
        if n > 0:
            log_weight += log_mean - math.log(n)
        vol_n = math.sqrt(vol * vol + n * sigma_j * sigma_j / tau)
        rate_n = drift_rate + n * log_growth / tau
        if delta:
            value = bs_delta(spot, strike, tau, vol_n, rate_n, div, is_call)
        else:
            value = bs_price(spot, strike, tau, vol_n, rate_n, div, is_call)
        total += math.exp(log_weight) * value
    return total


@register_jitable
def merton_price(spot, strike, tau, vol, rate, div, lam, mu_j, sigma_j, is_call, n_terms):
    """Merton (1976) price of a European call (is_call=1) or put (is_call=0): the first
    ``n_terms`` (an int) terms of the series in the module docstring."""
    return merton_series(spot, strike, tau, vol, rate, div, lam, mu_j, sigma_j, is_call,
                         n_terms, False)


@register_jitable
def merton_delta(spot, strike, tau, vol, rate, div, lam, mu_j, sigma_j, is_call, n_terms):
    """dV/dS of ``merton_price``: the same Poisson weights times Black-Scholes deltas."""
    return merton_series(spot, strike, tau, vol, rate, div, lam, mu_j, sigma_j, is_call,
                         n_terms, True)
