"""``Zakamouline``: Zakamouline's (2006) approximation of the utility-based hedge with
proportional costs."""

from dataclasses import dataclass

from .. import _validation as check
from ..kernels import _math
from .whalley_wilmott import WhalleyWilmott


@dataclass(frozen=True, repr=False)
class Zakamouline(WhalleyWilmott):
    """Zakamouline's (2006) approximation of the utility-based hedge with proportional costs.

    Trades to the edge of a band of half-width H0 + H1 around the Black-Scholes delta at a
    modified vol sigma_m (``_math.zakamouline_rule`` has the formulas): with exponential
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

    Kernel decision: ``_math.zakamouline_rule``, called lane by lane from ``_math.hedge_lane``.
    """

    kind = _math.KIND_ZAKAMOULINE
    decides = "lane"

    def __post_init__(self):
        super().__post_init__()
        if self.hedge_vol != "constant":
            check.fail(type(self).__name__, "hedge_vol", "'constant' (the rule modifies a "
                       "constant vol)", self.hedge_vol)

    def columns(self, setting):
        return {**super().columns(setting), _math.HEDGER_P3: 1.0 if setting.short_gamma else 0.0}
