"""The rules that trade at most once: ``NoHedge`` (never) and ``StaticHedge`` (at t=0)."""

from dataclasses import dataclass, field

import numpy as np

from ._base import Strategy

# the rules' kinds (``HEDGER_KIND``)
KIND_NONE = 0
KIND_STATIC = 1


@dataclass(frozen=True, repr=False)
class NoHedge(Strategy):
    """Hold the book unhedged.

    Kernel decision: none (``decides = "none"``; its schedule marks no date).
    """

    vol: float | None = None
    hedge_vol: str = "constant"

    kind = KIND_NONE
    decides = "none"
    hedges_delta = False

    def __post_init__(self):
        self._check_vol(required=False)

    def schedule(self, times):
        return np.zeros(len(times) - 1, dtype=bool)


@dataclass(frozen=True, repr=False)
class StaticHedge(Strategy):
    """Hedge once at t=0 with the Black-Scholes delta at ``vol`` and hold to the horizon.

    Kernel decision: ``band.band_quantity`` (a time schedule trades the whole deviation to the
    target), at t_0 only.
    """

    vol: float = 0.2
    hedge_vol: str = "constant"
    initial_shares: float = field(default=0.0, kw_only=True)

    kind = KIND_STATIC

    def __post_init__(self):
        self._check_vol(required=True)
        self._check_start()

    def schedule(self, times):
        return np.arange(len(times) - 1) == 0
