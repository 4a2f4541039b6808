"""``ScheduleBand``: to the delta on a time schedule and, between its dates, past a band."""

from dataclasses import dataclass, field

import numpy as np

from .. import _validation as check
from ..kernels import tables
from ._base import Strategy
from .band import KIND_BAND, DeltaBand


@dataclass(frozen=True, repr=False)
class ScheduleBand(Strategy):
    """Hedge to the delta on a time schedule and, between its dates, whenever the delta leaves
    a band around the shares held (the desk's "hedge at the close, and intraday past a limit").

    On the dates t_0, t_k, t_2k, ... (k = ``every`` grid steps) the rule trades to the target
    -Delta, as ``DeltaHedge(vol, every)``; at every other grid point it trades only when
    |-Delta - H| > b, with H the shares held and b = ``band`` * sum_i |q_i| (per unit of book
    notional, as ``DeltaBand``), back to the target (``to="target"``) or to the band's nearest
    edge (``to="edge"``). A band wider than any move is ``DeltaHedge(vol, every)``; with
    ``every >= n_steps`` t_0 is the only date and the rule is ``DeltaBand(vol, band, to,
    initial="target")`` (``ScheduleWarning``).

    ``initial``: ``"target"`` (the default) makes t_0 a date, hedged to the delta from the
    ``initial_shares`` held; ``"edge"`` (only with ``to="edge"``) applies the band at t_0
    instead, as ``DeltaBand(to="edge")`` does.

    Kernel decision: ``band.band_quantity``, as ``DeltaBand``; the dates are the schedule
    table's ``tables.SCHEDULE_TO_TARGET`` marks.
    """

    vol: float = 0.2
    every: int = 1
    band: float = 0.05
    to: str = "target"
    hedge_vol: str = "constant"
    initial: str = field(default="target", kw_only=True)
    initial_shares: float = field(default=0.0, kw_only=True)

    kind = KIND_BAND  # a band rule whose schedule table marks its dates

    def __post_init__(self):
        name = type(self).__name__
        self._check_vol(required=True)
        self._check_every()
        self._check("band", low=0.0, high=1e6)
        check.choice(name, "to", self.to, ("target", "edge"))
        self._check_start(band=True)
        if self.to == "target" and self.initial == "edge":
            check.fail(name, "initial", "'target' when to='target' (a band that trades to the "
                       "target has no edge to start at)", self.initial)

    def schedule(self, times):
        dates = self._every_schedule(times, only="has no date after t=0",
                                     plainly="DeltaBand for the band alone")
        if self.initial == "edge":
            dates[0] = False
        return np.where(dates, tables.SCHEDULE_TO_TARGET, 1).astype(np.uint8)

    row_params = DeltaBand.row_params
