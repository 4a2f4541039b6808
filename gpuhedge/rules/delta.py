"""Delta hedges on a time schedule: every ``every`` grid steps (``DeltaHedge``) or at listed
times (``HedgeAt``)."""

import math
from dataclasses import dataclass, field

import numpy as np

from .. import _validation as check
from ._base import Strategy

KIND_SCHEDULE = 2  # a time schedule (``HEDGER_KIND``)


@dataclass(frozen=True, repr=False)
class DeltaHedge(Strategy):
    """Rebalance to the Black-Scholes delta at hedge vol ``vol`` every ``every`` simulation steps.

    ``every=1`` rebalances at each grid point t_0, t_1, ...; ``every=k`` at t_0, t_k, t_2k, ...
    (the hedge schedule is separate from the simulation grid). The hedge ratio of a book of
    options is sum_i q_i Delta_BS(S, K_i, T_i - t, vol); the hedger holds minus that in shares.

    Kernel decision: ``band.band_quantity`` (a time schedule trades the whole deviation to the
    target) on the dates of its schedule.
    """

    vol: float = 0.2
    every: int = 1
    hedge_vol: str = "constant"
    initial_shares: float = field(default=0.0, kw_only=True)

    kind = KIND_SCHEDULE

    def __post_init__(self):
        self._check_vol(required=True)
        self._check_every()
        self._check_start()

    def schedule(self, times):
        return self._every_schedule(times)


@dataclass(frozen=True, repr=False)
class HedgeAt(Strategy):
    """Rebalance to the delta at hedge vol ``vol`` at the listed ``times`` (years, each a point
    of the simulation grid; t=0 is always a hedge time).

    Kernel decision: ``band.band_quantity``, as ``DeltaHedge``, on the listed dates.
    """

    vol: float = 0.2
    times: tuple = (0.0,)
    hedge_vol: str = "constant"
    initial_shares: float = field(default=0.0, kw_only=True)

    kind = KIND_SCHEDULE

    def __post_init__(self):
        self._check_vol(required=True)
        self._check_start()
        name = type(self).__name__
        times = tuple(float(t) for t in check.finite_array(name, "times", self.times, 1))
        if any(t < 0 for t in times) or list(times) != sorted(set(times)):
            check.fail(name, "times", "increasing distinct times >= 0", self.times)
        object.__setattr__(self, "times", times)

    def schedule(self, times):
        grid = np.asarray(times)
        marks = np.zeros(len(grid) - 1, dtype=bool)
        marks[0] = True
        for t in self.times:
            k = int(np.argmin(np.abs(grid - t)))
            if not math.isclose(grid[k], t, rel_tol=1e-9, abs_tol=1e-12):
                check.fail(type(self).__name__, "times", "points of the simulation grid "
                           f"(multiples of {grid[1] - grid[0]:.6g})", t)
            if k < len(marks):
                marks[k] = True
        return marks
