"""Hedging rules. A rule is data: the engine turns it into rows of the kernel's hedger table (a
kind code, a vol, a few parameters and a table of the grid points where it may trade), so any
mix of rules shares one compiled kernel and one pass over the paths.

One module per rule, or per pair of close rules (the two option hedges, the two insurers, ...),
holds each rule's frozen dataclass (its parameters as named fields, checked on construction),
its declared traits (class attributes of ``Strategy``: how it decides, whether it hedges the
delta, reads the gamma, holds a hedge option, is an insurer, depends on the cost), its kind
code (``KIND_*``), what it puts in its kernel row, its decision, a jitable function that the
kernel (``gpuhedge.kernels._math``) imports and compiles in, and the rows of per-path state it
keeps, if any (``STATE``, which ``kernels.state`` assembles); each rule's docstring names the
function that holds its decision. The rule modules import only the kernel tables' columns and
codes (``kernels.tables``, ``kernels.layout``) and formulas (``kernels.black_scholes``,
``kernels._fastmath``), never the kernel. ``_base`` holds the base class ``Strategy``, the
``RowSetting`` of a run and the hedge-vol rules. ``RULES`` registers the rules.

Rules that depend on the cost (Whalley-Wilmott, Zakamouline, Leland) become one row per cost
level; the others trade once for all cost levels, which are then charged from the same trades.

Three families: share hedges of the book (``DeltaHedge`` and its schedules and bands), hedges
with a second option (``DeltaGammaHedge``, ``DeltaVegaHedge``), and portfolio insurers
(``SyntheticPut``, ``CPPI``), which run on their own capital beside the book's hedgers and
owe a floor at the horizon instead of the book's payoff.
"""

from ._base import HEDGE_VOL_RULES, RowSetting, ScheduleWarning, Strategy
from .band import DeltaBand
from .delta import DeltaHedge, HedgeAt
from .insurers import CPPI, SyntheticPut
from .leland import Leland
from .option_hedges import DeltaGammaHedge, DeltaVegaHedge
from .schedule_band import ScheduleBand
from .spot_move import SpotMove
from .static import NoHedge, StaticHedge
from .whalley_wilmott import WhalleyWilmott
from .zakamouline import Zakamouline

__all__ = ["CPPI", "DeltaBand", "DeltaGammaHedge", "DeltaHedge", "DeltaVegaHedge",
           "HEDGE_VOL_RULES", "HedgeAt", "Leland", "NoHedge", "RULES", "RowSetting",
           "ScheduleBand", "ScheduleWarning", "SpotMove", "StaticHedge", "Strategy",
           "SyntheticPut", "WhalleyWilmott", "Zakamouline"]

# The registry: a new rule is its module and its entry here.
RULES = (NoHedge, StaticHedge, DeltaHedge, HedgeAt, DeltaBand, ScheduleBand, SpotMove,
         WhalleyWilmott, Leland, Zakamouline, DeltaGammaHedge, DeltaVegaHedge, SyntheticPut, CPPI)
