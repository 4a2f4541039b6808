"""``Leland``: the delta hedge at Leland's (1985) cost-adjusted vol."""

import math
from dataclasses import dataclass

from .. import _validation as check
from .delta import DeltaHedge


@dataclass(frozen=True, repr=False)
class Leland(DeltaHedge):
    """Leland's (1985) rule: rebalance every ``every`` steps to the delta at the adjusted vol

    sigma_L^2 = sigma^2 (1 + s sqrt(2/pi) k / (sigma sqrt(dt_h))),

    k = 2 * proportional the round-trip cost of the cost level, dt_h = every * dt the hedging
    interval, s = +1 for a book short gamma (it pays the costs, so it sells dearer) and -1 for
    a long-gamma book. The book changes hands at the Leland vol too. One kernel row per
    proportional cost; without costs it is ``DeltaHedge(vol, every)``.

    Kernel decision: ``band.band_quantity``, as ``DeltaHedge``; the Leland vol is the row's vol
    (``Leland.leland_vol``).
    """

    cost_dependent = True

    def __post_init__(self):
        super().__post_init__()
        if self.hedge_vol != "constant":
            check.fail(type(self).__name__, "hedge_vol", "'constant' (Leland adjusts a constant "
                       "vol)", self.hedge_vol)

    def leland_vol(self, proportional, dt, short_gamma):
        """sigma_L for a one-way proportional cost and a grid step ``dt``."""
        number = math.sqrt(2.0 / math.pi) * 2.0 * proportional / (
            self.vol * math.sqrt(self.every * dt))
        factor = 1.0 + (number if short_gamma else -number)
        if factor <= 0.0:
            check.fail(type(self).__name__, "vol", "such that the Leland number "
                       "sqrt(2/pi) k / (vol sqrt(dt)) < 1 for a long-gamma book",
                       f"{self.vol} (Leland number {number:.3g})")
        return self.vol * math.sqrt(factor)

    def row_params(self, book, costs, dt, short_gamma):
        return self.leland_vol(costs.proportional, dt, short_gamma), 0.0, 0.0
