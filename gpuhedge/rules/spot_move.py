"""``SpotMove``: hedge back to the delta when the spot has moved by a given fraction."""

from dataclasses import dataclass, field

from numba.extending import register_jitable

from ..kernels import layout
from ..kernels._fastmath import fdiv
from ._base import Strategy
from .band import band_quantity

KIND_SPOT_MOVE = 4  # ``HEDGER_KIND``
# The per-path state of a spot-move row (``kernels/state.py``)
STATE = (layout.group("spot move (SpotMove)", ("STATE_LAST_SPOT", "spot at the last trade")),)


@dataclass(frozen=True, repr=False)
class SpotMove(Strategy):
    """Trade back to the delta when the spot has moved more than ``pct`` (a fraction, e.g.
    0.01) since the last trade; checked at every grid point.

    Kernel decision: ``rebalance_quantity``.
    """

    vol: float = 0.2
    pct: float = 0.01
    hedge_vol: str = "constant"
    initial_shares: float = field(default=0.0, kw_only=True)

    kind = KIND_SPOT_MOVE

    def __post_init__(self):
        self._check_vol(required=True)
        self._check_start()
        self._check("pct", low=0.0, high=10.0)

    def row_params(self, book, costs, dt, short_gamma):
        return self.vol, self.pct, 0.0


@register_jitable
def rebalance_quantity(kind, deviation, p1, width, spot, last_spot):
    """``band_quantity``, or for the spot-move rule the whole deviation when spot has moved by
    more than p1 since the last trade (at ``last_spot``), else 0 (a select, no branch)."""
    moved = deviation if abs(fdiv(spot, last_spot) - 1.0) > p1 else 0.0
    return moved if kind == KIND_SPOT_MOVE else band_quantity(kind, deviation, p1, width)
