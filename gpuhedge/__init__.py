"""gpuhedge: Monte Carlo hedging error of discretely hedged option books, on GPU and CPU."""

from ._version import __version__
from .costs import Costs  # noqa: E402
from .engine import hedge_paths, simulate  # noqa: E402
from .instruments import Book, EuropeanCall, EuropeanPut, Position  # noqa: E402
from .memory import MemoryBudgetError  # noqa: E402
from .metrics import summary  # noqa: E402
from .models import CEV, Bates, BlackScholes, FellerWarning, Heston, Kou, Merton  # noqa: E402
from .optimize import Optimum, optimize  # noqa: E402
from .pricing import greeks, price  # noqa: E402
from .risk import (  # noqa: E402
    CVaR, OCE, Entropic, ExpectedShortfall, MeanSquare, MeanVariance, RiskMeasure, SemiVariance,
    indifference_price, risk)
from . import plot  # noqa: E402
from .store import open_store  # noqa: E402
from .sweep import sweep  # noqa: E402
from .rules import (  # noqa: E402
    CPPI, DeltaBand, DeltaGammaHedge, DeltaHedge, DeltaVegaHedge, HedgeAt, Leland, NoHedge,
    ScheduleBand, ScheduleWarning, SpotMove, StaticHedge, Strategy, SyntheticPut, WhalleyWilmott,
    Zakamouline)

__all__ = [
    "Bates", "CEV", "FellerWarning", "Heston", "Kou", "Merton",
    "BlackScholes", "Book", "Costs", "DeltaHedge", "EuropeanCall", "EuropeanPut", "NoHedge",
    "Position", "StaticHedge", "Strategy", "DeltaBand", "HedgeAt", "Leland", "SpotMove",
    "WhalleyWilmott", "Zakamouline", "DeltaGammaHedge", "DeltaVegaHedge", "SyntheticPut", "CPPI",
    "ScheduleBand", "ScheduleWarning",
    "CVaR", "OCE", "Entropic", "ExpectedShortfall", "MeanSquare", "MeanVariance", "RiskMeasure",
    "SemiVariance", "indifference_price", "risk", "Optimum", "optimize",
    "greeks", "hedge_paths", "MemoryBudgetError", "open_store", "plot", "price", "simulate",
    "summary", "sweep", "__version__",
]
