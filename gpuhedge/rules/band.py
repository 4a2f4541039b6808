"""``DeltaBand``: a delta band of a fixed width, checked at every grid point, and the decision of
every band rule (``band_quantity``)."""

import math
from dataclasses import dataclass, field

from numba.extending import register_jitable

from .. import _validation as check
from ._base import Strategy
from .whalley_wilmott import KIND_WHALLEY_WILMOTT, whalley_wilmott_band
from .zakamouline import KIND_ZAKAMOULINE

KIND_BAND = 3  # ``HEDGER_KIND``


@dataclass(frozen=True, repr=False)
class DeltaBand(Strategy):
    """Trade when the delta has moved more than ``band`` away from the shares held.

    ``band`` is per unit of book notional: the band in shares is band * sum_i |q_i|. Checked
    at every grid point; ``to="target"`` trades back to the delta, ``to="edge"`` only to the
    nearest edge of the band. ``band=0`` is hedging at every grid point; a band wider than any
    possible move is the static hedge.

    ``initial``: how the first hedge trades from the ``initial_shares`` held. ``"edge"``
    (only with ``to="edge"``) applies the band at t=0 too, the rule its name says on every
    date; ``"target"`` hedges to the delta at t=0 (and to the edge afterwards); None (the
    default) is ``to``.

    Kernel decision: ``band_quantity`` (the edge's half-width from ``plain_width``).
    """

    vol: float = 0.2
    band: float = 0.05
    to: str = "target"
    hedge_vol: str = "constant"
    initial: str | None = field(default=None, kw_only=True)
    initial_shares: float = field(default=0.0, kw_only=True)

    kind = KIND_BAND

    def __post_init__(self):
        name = type(self).__name__
        self._check_vol(required=True)
        self._check("band", low=0.0, high=1e6)
        check.choice(name, "to", self.to, ("target", "edge"))
        self._check("initial_shares")
        check.choice(name, "initial", self.initial, (None, "edge", "target"))
        if self.to == "target" and self.initial == "edge":
            check.fail(name, "initial", "None or 'target' when to='target' (a band that trades "
                       "to the target has no edge to start at)", self.initial)

    @property
    def starts_at_edge(self) -> bool:
        return (self.to if self.initial is None else self.initial) == "edge"

    def row_params(self, book, costs, dt, short_gamma):
        notional = sum(abs(p.quantity) for p in book.positions)
        return self.vol, self.band * notional, 1.0 if self.to == "edge" else 0.0


@register_jitable
def band_quantity(kind, deviation, p1, width):
    """Shares a rule other than the spot move trades at a grid point where it may trade, given
    the deviation target - held (0: no trade). ``width`` is the band's half-width for the band
    rules that trade to the edge (DeltaBand to the edge, Whalley-Wilmott, Zakamouline), else
    negative. Time schedules always trade to the target. Every case is computed and one
    selected (no branch: loops over paths vectorise)."""
    banded = kind == KIND_BAND or kind == KIND_WHALLEY_WILMOTT or kind == KIND_ZAKAMOULINE
    band = p1 if kind == KIND_BAND else width
    to_edge = deviation - math.copysign(band, deviation) if width >= 0.0 else deviation
    in_band = 0.0 if abs(deviation) <= band else to_edge
    return in_band if banded else deviation


@register_jitable
def plain_width(kind, p1, p2, gamma, spot, discount):
    """Half-width of a plain rule's band in shares when it trades to the band's edge (p1 for a
    DeltaBand to the edge, the Whalley-Wilmott band), else -1."""
    if kind == KIND_WHALLEY_WILMOTT:
        return whalley_wilmott_band(gamma, spot, p1, p2, discount)
    return p1 if kind == KIND_BAND and p2 > 0.5 else -1.0
