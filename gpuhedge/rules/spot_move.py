"""``SpotMove``: hedge back to the delta when the spot has moved by a given fraction."""

from dataclasses import dataclass, field

from ..kernels import _math
from ._base import Strategy


@dataclass(frozen=True, repr=False)
class SpotMove(Strategy):
    """Trade back to the delta when the spot has moved more than ``pct`` (a fraction, e.g.
    0.01) since the last trade; checked at every grid point.

    Kernel decision: ``_math.rebalance_quantity``.
    """

    vol: float = 0.2
    pct: float = 0.01
    hedge_vol: str = "constant"
    initial_shares: float = field(default=0.0, kw_only=True)

    kind = _math.KIND_SPOT_MOVE

    def __post_init__(self):
        self._check_vol(required=True)
        self._check_start()
        self._check("pct", low=0.0, high=10.0)

    def row_params(self, book, costs, dt, short_gamma):
        return self.vol, self.pct, 0.0
