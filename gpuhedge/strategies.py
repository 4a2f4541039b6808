"""Hedging strategies. A strategy is data: the engine turns it into one row of the kernel's
hedger table (a kind code and a few parameters), so any mix of strategies shares one compiled
kernel and one pass over the paths."""

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
    the premium at t=0 uses the same rule)."""

    vol: float | None
    every: int = 0
    hedge_vol: str = "constant"

    @property
    def rule(self) -> int:
        """Kernel code of the hedge-vol rule."""
        return HEDGE_VOL_RULES[self.hedge_vol]

    def __new__(cls, *args, **kwargs):
        if cls is Strategy:
            raise ValueError("Strategy: is an abstract base and cannot be built; use NoHedge, "
                             "StaticHedge or DeltaHedge")
        return super().__new__(cls)

    def schedule(self, n_steps):
        """Boolean array: whether the rule may trade at grid points 0 .. n_steps - 1."""
        return np.zeros(n_steps, dtype=bool)

    def _check_vol(self, required):
        check.choice(type(self).__name__, "hedge_vol", self.hedge_vol, tuple(HEDGE_VOL_RULES))
        object.__setattr__(self, "vol", check.real(type(self).__name__, "vol", self.vol,
                                                   0.0, _MAX_VOL, low_open=True,
                                                   none_ok=not required))


@dataclass(frozen=True)
class NoHedge(Strategy):
    """Hold the book unhedged."""

    vol: float | None = None
    hedge_vol: str = "constant"

    kind = _math.KIND_NONE

    def __post_init__(self):
        self._check_vol(required=False)


@dataclass(frozen=True)
class StaticHedge(Strategy):
    """Hedge once at t=0 with the Black-Scholes delta at ``vol`` and hold to the horizon."""

    vol: float = 0.2
    hedge_vol: str = "constant"

    kind = _math.KIND_STATIC

    def __post_init__(self):
        self._check_vol(required=True)

    def schedule(self, n_steps):
        return np.arange(n_steps) == 0


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

    kind = _math.KIND_DELTA_EVERY

    def __post_init__(self):
        self._check_vol(required=True)
        object.__setattr__(self, "every",
                           check.integer(type(self).__name__, "every", self.every, low=1))

    def schedule(self, n_steps):
        return np.arange(n_steps) % self.every == 0
