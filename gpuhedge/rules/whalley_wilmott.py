"""``WhalleyWilmott``: the asymptotically optimal no-trade band of Whalley and Wilmott (1997)."""

import math
from dataclasses import dataclass, field

from numba.extending import register_jitable

from ..kernels._fastmath import cbrt, fdiv, fexp, flog
from ..kernels.black_scholes import d1_from
from ._base import Strategy

KIND_WHALLEY_WILMOTT = 5  # ``HEDGER_KIND``


@dataclass(frozen=True, repr=False)
class WhalleyWilmott(Strategy):
    """Whalley and Wilmott's (1997) asymptotically optimal no-trade band around the delta.

    H = (3/2 e^{-r (T - t)} lambda S Gamma^2 / gamma)^{1/3} shares, with lambda the cost
    level's proportional cost, Gamma the book's Black-Scholes gamma at ``vol`` and gamma =
    ``risk_aversion`` (exponential utility, in 1/currency). Trades to the band's edge, checked
    at every grid point; one kernel row per proportional cost. Scaling: Gamma grows with the
    position size N, so H grows like N^{2/3} at a fixed risk aversion; keeping the relative band
    fixed needs a risk aversion proportional to 1/N. With no proportional cost H = 0: hedging at
    every grid point.

    ``initial="edge"`` (the default) starts as the theory does: from the ``initial_shares``
    held (default none), the first trade goes only to the nearest edge of the band at t=0
    (max(Delta - H, 0) shares from none for a target Delta > 0), as at every later date; the
    band is the optimal policy from any position, the start included, when the start pays
    the cost. ``"target"`` hedges to the full delta at t=0 and applies the band afterwards:
    the natural start when the set-up is free (``Costs(ends=False)``), where the best
    position to set up costs nothing to reach.

    Kernel decision: ``band.band_quantity`` with the half-width ``whalley_wilmott_band``
    (through ``band.plain_width``; the lane loops take its path part once per greeks row,
    ``whalley_wilmott_path_part``).
    """

    vol: float = 0.2
    risk_aversion: float = 1.0
    hedge_vol: str = "constant"
    initial: str = field(default="edge", kw_only=True)
    initial_shares: float = field(default=0.0, kw_only=True)

    kind = KIND_WHALLEY_WILMOTT
    needs_gamma = True
    cost_dependent = True

    def __post_init__(self):
        self._check_vol(required=True)
        self._check("risk_aversion", low=0.0, high=1e12, low_open=True)
        self._check_start(band=True)

    def row_params(self, book, costs, dt, short_gamma):
        return self.vol, costs.proportional, self.risk_aversion


@register_jitable
def whalley_wilmott_path_part(gamma, spot, discount):
    """(3/2 e^{-r (T - t)} S Gamma^2)^{1/3}: the factor of the Whalley-Wilmott band that
    depends on the path, the same for every rule on one greeks row (``whalley_wilmott_band``)."""
    return cbrt(1.5 * discount * spot * gamma * gamma)


@register_jitable
def whalley_wilmott_path_part_one(log_moneyness, log_spot, sqrt_tau, vol, rate, div,
                                  log_scale):
    """``whalley_wilmott_path_part`` for a book of one live option, from d1 alone. With
    Gamma = Q e^{-q tau} n(d1) / (S vol sqrt(tau)) (Q the option's quantity),

        ln(3/2 D S Gamma^2) = ln(3 D Q^2 e^{-2 q tau} / (4 pi vol^2 tau)) - d1^2 - ln S,

    whose first term, ``log_scale`` (``whalley_wilmott_log_scale``), is the same for every path
    at a grid point: one exp per path instead of the gamma's exp and division and the cube
    root's log and exp. tau, vol > 0 and Q != 0 (callers select 0 otherwise)."""
    d1 = d1_from(log_moneyness, sqrt_tau, vol, rate, div)
    return fexp((log_scale - d1 * d1 - log_spot) * (1.0 / 3.0))


@register_jitable
def whalley_wilmott_log_scale(quantity, sqrt_tau, div_discount, vol, discount):
    """ln(3 D Q^2 e^{-2 q tau} / (4 pi vol^2 tau)) of ``whalley_wilmott_path_part_one``; 0
    where the band is 0 (tau = 0, vol = 0 or Q = 0)."""
    if sqrt_tau <= 0.0 or vol <= 0.0 or quantity == 0.0:
        return 0.0
    ratio = fdiv(quantity * div_discount, vol * sqrt_tau)
    return flog(0.75 / math.pi * discount * ratio * ratio)


@register_jitable
def whalley_wilmott_band(gamma, spot, cost, risk_aversion, discount):
    """Half-width of the Whalley-Wilmott (1997) no-trade band around the delta, in shares:
    H = (3/2 e^{-r (T - t)} lambda S Gamma^2 / gamma)^{1/3}, with lambda the proportional
    cost, Gamma the book's gamma and gamma the risk aversion (1/currency). Computed as
    ``whalley_wilmott_path_part`` times (lambda / gamma)^{1/3}, so that the rules of a sweep
    over lambda and gamma share the first factor's cube root."""
    return whalley_wilmott_path_part(gamma, spot, discount) * cbrt(fdiv(cost, risk_aversion))
