"""``Zakamouline``: Zakamouline's (2006) approximation of the utility-based hedge with
proportional costs."""

from dataclasses import dataclass

from numba.extending import register_jitable

from .. import _validation as check
from ..kernels import tables
from ..kernels._fastmath import fdiv, fpow, fsqrt
from .whalley_wilmott import WhalleyWilmott

KIND_ZAKAMOULINE = 6  # ``HEDGER_KIND``


@dataclass(frozen=True, repr=False)
class Zakamouline(WhalleyWilmott):
    """Zakamouline's (2006) approximation of the utility-based hedge with proportional costs.

    Trades to the edge of a band of half-width H0 + H1 around the Black-Scholes delta at a
    modified vol sigma_m (``zakamouline_rule`` has the formulas): with exponential
    utility of risk aversion gamma = ``risk_aversion`` (1/currency) and lambda the cost
    level's proportional cost. The hedger shifts its vol up when the book is short gamma (at
    t=0), down when long. Checked at every grid point; one kernel row per proportional cost. The
    fitted exponents came from single options; applied here to the book's net gamma, with the
    same scaling in position size as ``WhalleyWilmott``. No cost: hedging at every grid point.
    ``initial`` as for ``WhalleyWilmott`` (default ``"edge"``: the band applies at t=0, as in
    the utility-based strategy the approximation fits).

    Reference: V. I. Zakamouline (2006), "Efficient analytic approximation of the optimal
    hedging strategy for a European call option with transaction costs", Quantitative
    Finance 6(5), 435-445.

    Kernel decision: ``zakamouline_rule``, called lane by lane from ``_math.hedge_lane``.
    """

    kind = KIND_ZAKAMOULINE
    decides = "lane"

    def __post_init__(self):
        super().__post_init__()
        if self.hedge_vol != "constant":
            check.fail(type(self).__name__, "hedge_vol", "'constant' (the rule modifies a "
                       "constant vol)", self.hedge_vol)

    def columns(self, setting):
        return {**super().columns(setting), tables.HEDGER_P3: 1.0 if setting.short_gamma else 0.0}


@register_jitable
def zakamouline_rule(gamma, spot, vol, cost, risk_aversion, tau, discount, short_gamma):
    """Zakamouline's (2006) approximation of the utility-based hedge with proportional costs.

    Returns (modified vol, band half-width in shares). With lambda the proportional cost,
    gamma the risk aversion, Gamma the book's Black-Scholes gamma at ``vol``, tau the time to
    the horizon and D = e^{-r tau}:

    * sigma_m^2 = sigma^2 (1 - s K), K = -4.76 lambda^0.78 tau^-0.02 (D / sigma)^0.25
      (gamma S^2 |Gamma|)^0.15, s = +1 for a book short gamma (it hedges at a higher vol),
      -1 for a long-gamma book (floored at a tenth of sigma^2);
    * H = H0 + H1, H0 = lambda / (gamma S sigma^2 tau), H1 = 1.12 lambda^0.31 tau^0.05
      (D / sigma)^0.25 (|Gamma| / gamma)^0.5.
    """
    if cost <= 0.0 or tau <= 0.0:
        return vol, 0.0
    scale = fpow(fdiv(discount, vol), 0.25)
    big_k = -4.76 * fpow(cost, 0.78) * fpow(tau, -0.02) * scale * fpow(
        risk_aversion * spot * spot * abs(gamma), 0.15)
    factor = 1.0 - big_k if short_gamma else 1.0 + big_k
    vol_m = vol * fsqrt(max(factor, 0.1))
    h0 = fdiv(cost, risk_aversion * spot * vol * vol * tau)
    h1 = 1.12 * fpow(cost, 0.31) * fpow(tau, 0.05) * scale * fsqrt(
        fdiv(abs(gamma), risk_aversion))
    return vol_m, h0 + h1
