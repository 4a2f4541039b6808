"""Hedging strategies. A strategy is data: the engine turns it into rows of the kernel's hedger
table (a kind code, a vol, a few parameters and a table of the grid points where it may trade),
so any mix of strategies shares one compiled kernel and one pass over the paths.

Rules that depend on the cost (Whalley-Wilmott, Leland) become one row per cost level; the
others trade once for all cost levels, which are then charged from the same trades.
"""

import math
from dataclasses import dataclass

import numpy as np

from . import _validation as check
from .kernels import _math

_MAX_VOL = 10.0
# hedge_vol rule name -> kernel code. "constant": the strategy's own implied vol ``vol`` (the
# practitioner's Black-Scholes delta); "instantaneous": sqrt(v_t) of a Heston-type market;
# "expected-average": sqrt(theta + (v_t - theta)(1 - e^{-kappa tau})/(kappa tau)), the root
# of the expected average Heston variance to each option's maturity; "min-variance": that
# delta plus rho xi / S * dC/dv (see ``_math.book_delta``); "model": the market's own delta
# (the Merton series delta; Black-Scholes at the market's vol), ``vol`` unused.
HEDGE_VOL_RULES = {"constant": _math.RULE_CONSTANT, "instantaneous": _math.RULE_INSTANTANEOUS,
                   "expected-average": _math.RULE_EXPECTED_AVERAGE,
                   "min-variance": _math.RULE_MIN_VARIANCE, "model": _math.RULE_MODEL}


class Strategy:
    """Base of all strategies: ``vol`` is the hedge vol, also the vol at which the hedger buys or
    sells the book at t=0 (None: the market's reference vol); ``hedge_vol`` names the rule that
    turns the market state into the Black-Scholes vol of the hedge ratio (``HEDGE_VOL_RULES``;
    the premium at t=0 uses the same rule). Every rule that hedges at all hedges to the target
    at t=0."""

    vol: float | None
    hedge_vol: str = "constant"
    cost_dependent = False

    @property
    def rule(self) -> int:
        """Kernel code of the hedge-vol rule."""
        return HEDGE_VOL_RULES[self.hedge_vol]

    def __new__(cls, *args, **kwargs):
        if cls is Strategy:
            raise ValueError("Strategy: is an abstract base and cannot be built; use NoHedge, "
                             "StaticHedge, DeltaHedge, HedgeAt, DeltaBand, SpotMove, "
                             "WhalleyWilmott or Leland")
        return super().__new__(cls)

    def schedule(self, times):
        """Boolean array over grid points t_0 .. t_{n-1} (``times`` holds t_0 .. t_n): where the
        rule may trade. Rules that watch the market check every point."""
        return np.ones(len(times) - 1, dtype=bool)

    def row_params(self, book, costs, dt, short_gamma):
        """(vol, p1, p2) of the kernel row for one cost level (``costs`` is None for rules
        that do not depend on the cost); ``dt`` is the grid step and ``short_gamma`` whether
        the book is short gamma at t=0."""
        return self.vol, 0.0, 0.0

    def _check_vol(self, required):
        check.choice(type(self).__name__, "hedge_vol", self.hedge_vol, tuple(HEDGE_VOL_RULES))
        object.__setattr__(self, "vol", check.real(type(self).__name__, "vol", self.vol,
                                                   0.0, _MAX_VOL, low_open=True,
                                                   none_ok=not required))

    def _check(self, name, **allowed):
        value = check.real(type(self).__name__, name, getattr(self, name), **allowed)
        object.__setattr__(self, name, value)


@dataclass(frozen=True)
class NoHedge(Strategy):
    """Hold the book unhedged."""

    vol: float | None = None
    hedge_vol: str = "constant"

    kind = _math.KIND_NONE

    def __post_init__(self):
        self._check_vol(required=False)

    def schedule(self, times):
        return np.zeros(len(times) - 1, dtype=bool)


@dataclass(frozen=True)
class StaticHedge(Strategy):
    """Hedge once at t=0 with the Black-Scholes delta at ``vol`` and hold to the horizon."""

    vol: float = 0.2
    hedge_vol: str = "constant"

    kind = _math.KIND_STATIC

    def __post_init__(self):
        self._check_vol(required=True)

    def schedule(self, times):
        return np.arange(len(times) - 1) == 0


@dataclass(frozen=True)
class DeltaHedge(Strategy):
    """Rebalance to the Black-Scholes delta at hedge vol ``vol`` every ``every`` simulation steps.

    ``every=1`` rebalances at each grid point t_0, t_1, ...; ``every=k`` at t_0, t_k, t_2k, ...
    (the hedge schedule is separate from the simulation grid). The hedge ratio of a book of
    options is sum_i q_i Delta_BS(S, K_i, T_i - t, vol); the hedger holds minus that in shares.
    """

    vol: float = 0.2
    every: int = 1
    hedge_vol: str = "constant"

    kind = _math.KIND_SCHEDULE

    def __post_init__(self):
        self._check_vol(required=True)
        object.__setattr__(self, "every",
                           check.integer(type(self).__name__, "every", self.every, low=1))

    def schedule(self, times):
        return np.arange(len(times) - 1) % self.every == 0


@dataclass(frozen=True)
class HedgeAt(Strategy):
    """Rebalance to the delta at hedge vol ``vol`` at the listed ``times`` (years, each a point
    of the simulation grid; t=0 is always a hedge time)."""

    vol: float = 0.2
    times: tuple = (0.0,)
    hedge_vol: str = "constant"

    kind = _math.KIND_SCHEDULE

    def __post_init__(self):
        self._check_vol(required=True)
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


@dataclass(frozen=True)
class DeltaBand(Strategy):
    """Trade when the delta has moved more than ``band`` away from the shares held.

    ``band`` is per unit of book notional: the band in shares is band * sum_i |q_i|. Checked
    at every grid point; ``to="target"`` trades back to the delta, ``to="edge"`` only to the
    nearest edge of the band. ``band=0`` is hedging at every grid point; a band wider than any
    possible move is the static hedge.
    """

    vol: float = 0.2
    band: float = 0.05
    to: str = "target"
    hedge_vol: str = "constant"

    kind = _math.KIND_BAND

    def __post_init__(self):
        self._check_vol(required=True)
        self._check("band", low=0.0, high=1e6)
        check.choice(type(self).__name__, "to", self.to, ("target", "edge"))

    def row_params(self, book, costs, dt, short_gamma):
        notional = sum(abs(p.quantity) for p in book.positions)
        return self.vol, self.band * notional, 1.0 if self.to == "edge" else 0.0


@dataclass(frozen=True)
class SpotMove(Strategy):
    """Trade back to the delta when the spot has moved more than ``pct`` (a fraction, e.g.
    0.01) since the last trade; checked at every grid point."""

    vol: float = 0.2
    pct: float = 0.01
    hedge_vol: str = "constant"

    kind = _math.KIND_SPOT_MOVE

    def __post_init__(self):
        self._check_vol(required=True)
        self._check("pct", low=0.0, high=10.0)

    def row_params(self, book, costs, dt, short_gamma):
        return self.vol, self.pct, 0.0


@dataclass(frozen=True)
class WhalleyWilmott(Strategy):
    """Whalley and Wilmott's (1997) asymptotically optimal no-trade band around the delta.

    H = (3/2 e^{-r (T - t)} lambda S Gamma^2 / gamma)^{1/3} shares, with lambda the cost
    level's proportional cost, Gamma the book's Black-Scholes gamma at ``vol`` and gamma =
    ``risk_aversion`` (exponential utility, in 1/currency). Trades to the band's edge, checked
    at every grid point; one kernel row per cost level. Scaling: Gamma grows with the position
    size N, so H grows like N^{2/3} at a fixed risk aversion; keeping the relative band fixed
    needs a risk aversion proportional to 1/N. With no proportional cost H = 0: hedging at every
    grid point.
    """

    vol: float = 0.2
    risk_aversion: float = 1.0
    hedge_vol: str = "constant"

    kind = _math.KIND_WHALLEY_WILMOTT
    cost_dependent = True

    def __post_init__(self):
        self._check_vol(required=True)
        self._check("risk_aversion", low=0.0, high=1e12, low_open=True)

    def row_params(self, book, costs, dt, short_gamma):
        return self.vol, costs.proportional, self.risk_aversion


@dataclass(frozen=True)
class Leland(DeltaHedge):
    """Leland's (1985) rule: rebalance every ``every`` steps to the delta at the adjusted vol

    sigma_L^2 = sigma^2 (1 + s sqrt(2/pi) k / (sigma sqrt(dt_h))),

    k = 2 * proportional the round-trip cost of the cost level, dt_h = every * dt the hedging
    interval, s = +1 for a book short gamma (it pays the costs, so it sells dearer) and -1 for
    a long-gamma book. The book changes hands at the Leland vol too. One kernel row per cost
    level; without costs it is ``DeltaHedge(vol, every)``.
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
