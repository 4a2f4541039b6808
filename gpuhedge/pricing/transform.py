"""Characteristic-function prices of the Kou, Heston and Bates models (Lewis 2001).

Method
------
Let X = ln(S_tau / S) - (r - q) tau be the log return over the option's remaining life tau
net of the carry, so that E[e^X] = 1, and phi(w) = E[e^{i w X}] its characteristic function
(closed forms below). Lewis (2001) moves the Fourier inversion of the call payoff to the line
Im w = -1/2, which gives one real integral per strike:

    C = S e^{-q tau} - sqrt(S K) e^{-(r + q) tau / 2} / pi * I,
    I = int_0^inf Re[e^{i u k} phi(u - i/2)] / (u^2 + 1/4) du,   k = ln(S / K) + (r - q) tau.

The line lies inside the strip of analyticity of phi for every model here (|phi(u - i/2)| <=
E[e^{X/2}] <= 1 by Jensen), so the integrand is smooth and bounded by 1 / (u^2 + 1/4).
Puts follow by put-call parity, P = C - S e^{-q tau} + K e^{-r tau}. The Greeks differentiate
under the integral (S enters through sqrt(S) and k):

    delta = dC/dS = e^{-q tau} - sqrt(K / S) e^{-(r + q) tau / 2} / pi
                    * int_0^inf Re[e^{i u k} phi(u - i/2) / (1/2 - i u)] du,
    dC/dv = -sqrt(S K) e^{-(r + q) tau / 2} / pi
                    * int_0^inf Re[e^{i u k} B(u - i/2) phi(u - i/2)] / (u^2 + 1/4) du,

where, for Heston and Bates, ln phi = A + B v is affine in the current variance v. A put's
delta is the call's minus e^{-q tau}; its dv is the call's. The two give Heston's
minimum-variance delta, delta + rho xi / S * dC/dv.

Integration and accuracy: ``scipy.integrate.quad_vec`` (adaptive 21-point Gauss-Kronrod on
(0, inf), mapped to a finite interval) integrates all strikes (or spots) and all Greeks at once
as one vector integrand, no truncation of the range needed, to an absolute error estimate of
``EPSABS`` = 1e-12 on each integral (realised errors are nearer 1e-14), i.e. about
1e-12 sqrt(S K) / pi in price; an error estimate above ``MAX_ERROR`` = 1e-9 raises. Measured
(``tests/test_transform_pricing.py``): Fang and Oosterlee's (2008) Heston values at T = 1 and
T = 10 within 4e-10 (they give 9 decimals); Alan Lewis' 15-digit Heston values within 1e-13;
QuantLib's AnalyticHestonEngine and BatesEngine within 3e-11 on random parameters; Kou (2002)
9.14732 to the five published decimals. With vol = 0, Kou's delta integrand decays only like
1/u (the price has a kink in S) and may fail to converge.

Characteristic functions, with w complex and tau the time to expiry:

* Heston (1993), in the "little Heston trap" form of Albrecher et al. (2007), which never
  crosses the branch cut of the complex logarithm, so it is stable at long maturities::

      beta = kappa - i rho xi w,   d = sqrt(beta^2 + xi^2 (i w + w^2)),
      g = (beta - d) / (beta + d),
      B = (beta - d) / xi^2 * (1 - e^{-d tau}) / (1 - g e^{-d tau}),
      A = kappa theta / xi^2 * [(beta - d) tau - 2 ln((1 - g e^{-d tau}) / (1 - g))].

  Here beta - d is computed as -xi^2 (i w + w^2) / (beta + d) and the logarithm as an
  accurate log1p, so there is no cancellation as xi -> 0. (beta + d = 0 would need
  i w + w^2 = 0, i.e. w = 0 or w = -i, which the integration line avoids.)
* Bates (1996): Heston times the compensated Merton jumps,
  ln phi_J = tau lam (e^{i w mu_j - w^2 sigma_j^2 / 2} - 1) - i w tau lam k,
  k = e^{mu_j + sigma_j^2 / 2} - 1.
* Kou (2002): ln phi = tau [-vol^2 / 2 (i w + w^2) + lam (p eta1 / (eta1 - i w)
  + (1 - p) eta2 / (eta2 + i w) - 1) - i w lam zeta],
  zeta = p eta1 / (eta1 - 1) + (1 - p) eta2 / (eta2 + 1) - 1.

References
----------
Lewis, A. L. (2001), "A simple option formula for general jump-diffusion and other exponential
Levy processes", OptionCity.net.
Heston, S. L. (1993), "A closed-form solution for options with stochastic volatility with
applications to bond and currency options", Review of Financial Studies 6, 327-343.
Albrecher, H., Mayer, P., Schoutens, W. and Tistaert, J. (2007), "The little Heston trap",
Wilmott Magazine, January, 83-92.
Bates, D. S. (1996), "Jumps and stochastic volatility: exchange rate processes implicit in
Deutsche Mark options", Review of Financial Studies 9, 69-107.
Kou, S. G. (2002), "A jump-diffusion model for option pricing", Management Science 48,
1086-1101.
Fang, F. and Oosterlee, C. W. (2008), "A novel pricing method for European options based on
Fourier-cosine series expansions", SIAM Journal on Scientific Computing 31, 826-848
(the Heston reference values).
"""

import math

import numpy as np
from scipy.integrate import quad_vec

from ..models import Bates
from .black_scholes import bs_delta, bs_price

EPSABS = 1e-12
MAX_ERROR = 1e-9


def _log1p(z):
    """ln(1 + z) for complex z, accurate also for tiny |z| (numpy's complex log1p is not)."""
    x, y = z.real, z.imag
    return 0.5 * np.log1p(x * (2.0 + x) + y * y) + 1j * np.arctan2(y, 1.0 + x)


def heston_exponents(w, tau, kappa, theta, xi, rho):
    """(A, B) with ln phi(w) = A + B v for the Heston log return (little-trap form).

    Parameters
    ----------
    w : complex or ndarray of complex
        Argument of the characteristic function (Im w in [-1, 0] for the pricing integrals).
    tau : float
        Time to expiry.
    kappa, theta, xi, rho : float
        Mean-reversion speed, long-run variance, vol of variance, correlation.
    """
    quad = 1j * w + w * w
    beta = kappa - 1j * rho * xi * w
    d = np.sqrt(beta * beta + xi * xi * quad)
    slope = -quad / (beta + d)  # (beta - d) / xi^2
    g = xi * xi * slope / (beta + d)  # (beta - d) / (beta + d)
    decay = np.exp(-d * tau)
    b = slope * (1.0 - decay) / (1.0 - g * decay)
    # ln((1 - g e) / (1 - g)) = ln(1 + g (1 - e) / (1 - g)), O(xi^2): divide it by xi^2 exactly.
    a = kappa * theta * (slope * tau - 2.0 * _log1p(g * (1.0 - decay) / (1.0 - g)) / (xi * xi))
    return a, b


def merton_jump_exponent(w, tau, lam, mu_j, sigma_j):
    """ln of the characteristic function of the compensated log-normal jumps over tau."""
    k = math.expm1(mu_j + 0.5 * sigma_j**2)
    return tau * lam * (np.exp(1j * w * mu_j - 0.5 * w * w * sigma_j**2) - 1.0 - 1j * w * k)


def kou_exponent(w, tau, vol, lam, p, eta1, eta2):
    """ln phi(w) of the Kou (2002) log return net of carry (see the module docstring)."""
    zeta = p * eta1 / (eta1 - 1.0) + (1.0 - p) * eta2 / (eta2 + 1.0) - 1.0
    jumps = p * eta1 / (eta1 - 1j * w) + (1.0 - p) * eta2 / (eta2 + 1j * w) - 1.0
    return tau * (-0.5 * vol**2 * (1j * w + w * w) + lam * (jumps - 1j * w * zeta))


def lewis(log_cf, spot, strike, tau, rate, div, is_call, greeks=()):
    """Price (and Greeks) of European options by Lewis' (2001) single integral.

    Parameters
    ----------
    log_cf : callable
        ``log_cf(w) -> (ln phi(w), B(w))`` for complex ``w``, with B = d ln phi / dv for a
        stochastic-variance model (None otherwise; it is used only for ``"dv"``).
    spot, strike : float or ndarray
        Broadcast against each other; one integration serves them all.
    tau, rate, div : float
        Time to expiry, risk-free rate r, dividend yield q.
    is_call : bool
        Call, or put by put-call parity.
    greeks : tuple of str
        Greeks to return besides the price: ``"delta"`` (dPrice / dS) and ``"dv"``
        (dPrice / dv, stochastic-variance models only).

    Returns
    -------
    dict of ndarray
        ``price`` and the requested Greeks, shaped like ``spot`` and ``strike`` broadcast.
        At tau <= 0: the payoff, its step delta (as ``bs_delta``) and dv = 0.
    """
    spot, strike = np.broadcast_arrays(np.asarray(spot, dtype=float),
                                       np.asarray(strike, dtype=float))
    if tau <= 0.0:
        return _expired(spot, strike, rate, div, is_call, greeks)
    k = (np.log(spot / strike) + (rate - div) * tau).ravel()

    def integrand(u):
        log_phi, slope = log_cf(u - 0.5j)
        f = np.exp(1j * u * k + log_phi)  # e^{iuk} phi(u - i/2)
        parts = [f / (u * u + 0.25)]
        if "delta" in greeks:
            parts.append(f / (0.5 - 1j * u))
        if "dv" in greeks:
            parts.append(slope * f / (u * u + 0.25))
        return np.concatenate(parts).real

    integrals, error = quad_vec(integrand, 0.0, np.inf, epsabs=EPSABS, epsrel=0.0, norm="max")
    if not error <= MAX_ERROR:
        raise ArithmeticError(f"lewis: the pricing integral did not converge (error estimate "
                              f"{error:.3g} > {MAX_ERROR:g}) at tau = {tau!r}")
    integrals = iter(integrals.reshape(-1, *spot.shape))
    scale = np.sqrt(spot * strike) * math.exp(-0.5 * (rate + div) * tau) / math.pi
    div_discount = math.exp(-div * tau)
    forward_part = spot * div_discount if is_call else strike * math.exp(-rate * tau)
    out = {"price": forward_part - scale * next(integrals)}
    if "delta" in greeks:
        out["delta"] = (div_discount if is_call else 0.0) - scale / spot * next(integrals)
    if "dv" in greeks:
        out["dv"] = -scale * next(integrals)
    return out


def _expired(spot, strike, rate, div, is_call, greeks):
    """Values at expiry: the payoff, its step delta, and no dependence on the variance."""
    out = {"price": bs_price(spot, strike, 0.0, 0.0, rate, div, is_call)}
    if "delta" in greeks:
        out["delta"] = bs_delta(spot, strike, 0.0, 0.0, rate, div, is_call)
    if "dv" in greeks:
        out["dv"] = np.zeros_like(spot)
    return out


def kou_log_cf(market, tau, vol=None):
    """``log_cf`` of ``lewis`` for a ``Kou`` market over ``tau`` (``vol`` overrides its vol)."""
    vol = market.vol if vol is None else vol

    def log_cf(w):
        return kou_exponent(w, tau, vol, market.lam, market.p, market.eta1, market.eta2), None

    return log_cf


def heston_log_cf(market, tau, v=None):
    """``log_cf`` of ``lewis`` for a ``Heston`` or ``Bates`` market over ``tau``, from the
    current variance ``v`` (default: the market's v0); Bates adds its jumps to ln phi."""
    v = market.v0 if v is None else v
    jumps = isinstance(market, Bates)

    def log_cf(w):
        a, b = heston_exponents(w, tau, market.kappa, market.theta, market.xi, market.rho)
        if jumps:
            a = a + merton_jump_exponent(w, tau, market.lam, market.mu_j, market.sigma_j)
        return a + b * v, b

    return log_cf


def kou_values(market, option, spot, tau, greeks, vol=None):
    """Price (and delta if ``greeks``) of ``option`` under a ``Kou`` market."""
    return lewis(kou_log_cf(market, tau, vol), spot, option.strike, tau, market.rate,
                 market.dividend, option.is_call, ("delta",) if greeks else ())


def heston_values(market, option, spot, tau, greeks, v=None):
    """Price (and delta and dv if ``greeks``) of ``option`` under a ``Heston`` or ``Bates``
    market."""
    return lewis(heston_log_cf(market, tau, v), spot, option.strike, tau, market.rate,
                 market.dividend, option.is_call, ("delta", "dv") if greeks else ())
