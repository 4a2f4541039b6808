"""Constant elasticity of variance (Cox 1975): dS = (r - q) S dt + sigma S^beta dW, absorbed at 0.

The step is Euler's on the price with the exact drift factor, floored at 0, which absorbs (a
path at 0 stays there: sigma 0^beta = 0). The reference price is Schroder's (1989) formula in
non-central chi-square distribution functions.
"""

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba.extending import register_jitable

from ..kernels import _math
from ..kernels._fastmath import fpow
from ._base import COMMON, Market


@register_jitable
def cev_step(s, v, mp, paths, key0, key1, path, local, k, sign, draw):
    """Euler step of the price with absorption at 0: S' = max(S mp[0] + mp[1] S^mp[2] Z, 0).

    mp = (e^{mu dt}, sigma sqrt(dt), beta), mu the drift (real-world, or r - q); Z = ``draw``,
    the paired normal (as ``_math.gbm_step``). E[S' | S] = S e^{mu dt} up to the floor, whose
    part is of the order of the probability of reaching 0 within a step.
    """
    power = fpow(s, mp[2]) if s > 0.0 else 0.0
    return max(s * mp[0] + mp[1] * power * sign * draw, 0.0), v


@dataclass(frozen=True)
class CEV(Market):
    """Constant elasticity of variance market (Cox 1975), absorbed at 0.

    dS_t = mu S_t dt + sigma S_t^beta dW_t with 0 <= beta < 1, so that the local vol
    sigma S^(beta - 1) rises as the price falls (the leverage effect) and 0 is reached with
    positive probability, where the price stays. Simulated by an Euler scheme (``cev_step``):
    weak order 1 in the step, so its bias falls as 1/n_steps.

    Parameters
    ----------
    spot : float
        S_0 > 0.
    sigma : float
        Scale of the diffusion, > 0; the local vol at S_0 is sigma S_0^(beta - 1).
    beta : float
        Elasticity, 0 <= beta < 1 (beta = 1 is Black-Scholes).
    rate, dividend, drift : float
        As in ``BlackScholes``.
    """

    spot: float
    sigma: float
    beta: float
    rate: float
    dividend: float = 0.0
    drift: float | None = None

    _ranges: ClassVar[dict] = {**COMMON, "sigma": dict(low=0.0, high=1e4, low_open=True),
                               "beta": dict(low=0.0, high=1.0, high_open=True)}
    dynamics: ClassVar[_math.Dynamics] = _math.Dynamics(_math.given_start, cev_step,
                                                         paired=True)

    @property
    def reference_vol(self) -> float:
        """sigma S_0^(beta - 1), the local vol at S_0."""
        return self.sigma * self.spot ** (self.beta - 1.0)

    def kernel_params(self, dt: float) -> np.ndarray:
        """Parameters of ``cev_step`` for a step of length ``dt``."""
        return np.array([math.exp(self.mu * dt), self.sigma * math.sqrt(dt), self.beta])

    @staticmethod
    def pricer():
        """Schroder's (1989) formula (``values``)."""
        return values, "vol"


def schroder_price(spot, strike, tau, sigma, beta, rate, dividend, is_call):
    """Schroder's (1989) price of a European option under an absorbed CEV market, beta < 1.

    With v = sigma^2 (e^{2 (r - q) (beta - 1) tau} - 1) / (2 (r - q) (beta - 1)) (sigma^2 tau
    when r = q), a = (K e^{-(r - q) tau})^{2 (1 - beta)} / ((1 - beta)^2 v),
    b = 1 / (1 - beta), c = S^{2 (1 - beta)} / ((1 - beta)^2 v) and Q(x; k, l) the
    distribution function of the non-central chi-square law with k degrees of freedom and
    non-centrality l:

        call = S e^{-q tau} (1 - Q(a; b + 2, c)) - K e^{-r tau} Q(c; b, a),
        put = K e^{-r tau} (1 - Q(c; b, a)) - S e^{-q tau} Q(a; b + 2, c).

    Arrays broadcast; tau <= 0 gives the payoff.
    """
    from scipy.stats import ncx2

    spot, strike, tau = (np.asarray(x, dtype=float) for x in (spot, strike, tau))
    carry, one = rate - dividend, 1.0 - beta
    live = tau > 0.0
    t = np.where(live, tau, 1.0)
    growth = 2.0 * carry * (beta - 1.0)
    v = sigma**2 * (np.expm1(growth * t) / growth if growth != 0.0 else t)
    a = (strike * np.exp(-carry * t)) ** (2.0 * one) / (one**2 * v)
    b = 1.0 / one
    c = np.maximum(spot, 0.0) ** (2.0 * one) / (one**2 * v)
    share = spot * np.exp(-dividend * t)
    cash = strike * np.exp(-rate * t)
    below_strike = ncx2.cdf(c, b, a)  # Q(c; b, a)
    share_part = ncx2.cdf(a, b + 2.0, c)  # Q(a; b + 2, c)
    if is_call:
        value = share * (1.0 - share_part) - cash * below_strike
        payoff = np.maximum(spot - strike, 0.0)
    else:
        value = cash * (1.0 - below_strike) - share * share_part
        payoff = np.maximum(strike - spot, 0.0)
    out = np.where(live, value, payoff)
    return out if out.ndim else float(out)


def values(market, option, spot, tau, greeks, vol=None):
    """Price (and delta, by a central difference of the formula, if ``greeks``) of ``option``
    under a ``CEV`` market, ``tau`` before expiry; ``vol`` overrides its ``sigma``."""
    sigma = market.sigma if vol is None else vol

    def price(s):
        return schroder_price(s, option.strike, tau, sigma, market.beta, market.rate,
                              market.dividend, option.is_call)

    out = {"price": price(spot)}
    if greeks:
        h = 1e-4 * np.asarray(spot, dtype=float)
        out["delta"] = (price(spot + h) - price(spot - h)) / (2.0 * h)
    return out
