"""The base of the hedging rules: ``Strategy`` (the traits, the kernel columns and the checks
every rule shares), the ``RowSetting`` a rule fills its kernel row from, the hedge-vol rules
(``HEDGE_VOL_RULES``) and ``ScheduleWarning``."""

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np

from .. import _validation as check
from ..kernels import tables

MAX_VOL = 10.0  # the largest hedge vol a rule takes
# hedge_vol rule name -> kernel code. "constant": the strategy's own implied vol ``vol`` (the
# practitioner's Black-Scholes delta); "instantaneous": sqrt(v_t) of a Heston-type market;
# "expected-average": sqrt(theta + (v_t - theta)(1 - e^{-kappa tau})/(kappa tau)), the root
# of the expected average Heston variance to each option's maturity; "min-variance": that
# delta plus rho xi / S * dC/dv (see ``_math.book_delta``); "model": the market's own delta
# (the Merton series delta; Black-Scholes at the market's vol), ``vol`` unused.
HEDGE_VOL_RULES = {"constant": tables.RULE_CONSTANT, "instantaneous": tables.RULE_INSTANTANEOUS,
                   "expected-average": tables.RULE_EXPECTED_AVERAGE,
                   "min-variance": tables.RULE_MIN_VARIANCE, "model": tables.RULE_MODEL}
# the hedge-vol rules under which a hedge option (or an insurer's put) is priced along the path
OPTION_RULES = ("constant", "instantaneous", "expected-average")


class ScheduleWarning(UserWarning):
    """A time schedule that cannot trade as its parameters suggest on the run's time grid."""


class Strategy:
    """Base of all strategies: ``vol`` is the hedge vol, also the vol at which the hedger buys or
    sells the book at t=0 (None: the market's reference vol); ``hedge_vol`` names the rule that
    turns the market state into the Black-Scholes vol of the hedge ratio (``HEDGE_VOL_RULES``;
    the premium at t=0 uses the same rule).

    The start: the rules that hedge in shares take ``initial_shares``, the shares held at t=0
    before the first hedge (default 0; valued at the first price, see ``gpuhedge.engine``).
    Their first hedge trades from that position to the target, except the band rules
    (``DeltaBand`` to the edge, ``WhalleyWilmott``, ``Zakamouline``), whose ``initial``
    chooses: ``"edge"`` applies the band at t=0 as at every later date (no trade inside the
    band, else to its nearest edge), ``"target"`` trades to the target at t=0.
    """

    vol: float | None
    hedge_vol: str = "constant"
    # The rule's traits, read by the engine and (from its row, ``trait_columns``) the kernel:
    # how it decides ("lanes": arithmetic on the book's delta and gamma, vectorised over a
    # block of paths; "lane": path by path, ``_math.hedge_lane``; "none": never trades),
    # whether it hedges the book's delta, reads its gamma, holds a hedge option, is a portfolio
    # insurer (holds no book) and depends on the proportional cost (one row per level).
    decides = "lanes"
    hedges_delta = True
    needs_gamma = False
    option_hedge = False
    insurer = False
    cost_dependent = False
    initial_shares = 0.0  # the classes that hedge in shares make these fields
    initial = "target"

    @property
    def cost_grouping(self) -> int:
        """How cost levels share kernel rows: 0 all levels with one execution lag (the rule
        ignores costs), 1 levels with one proportional cost and lag (``cost_dependent``),
        2 one row per level (decisions net of the costs paid so far)."""
        return 1 if self.cost_dependent else 0

    @property
    def rule(self) -> int:
        """Kernel code of the hedge-vol rule."""
        return HEDGE_VOL_RULES[self.hedge_vol]

    def __new__(cls, *args, **kwargs):
        if cls is Strategy:
            from . import RULES  # the registry imports this module

            names = [r.__name__ for r in RULES]
            raise ValueError("Strategy: is an abstract base and cannot be built; use "
                             f"{', '.join(names[:-1])} or {names[-1]}")
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

    def trait_columns(self):
        """The kernel columns {``tables.HEDGER_*``: value} of the rule's traits."""
        return {tables.HEDGER_DECIDES: tables.DECISIONS.index(self.decides),
                tables.HEDGER_DELTA: float(self.hedges_delta),
                tables.HEDGER_GAMMA: float(self.needs_gamma),
                tables.HEDGER_OPTION_HEDGE: float(self.option_hedge),
                tables.HEDGER_INSURER: float(self.insurer)}

    def columns(self, setting):
        """Further kernel columns {``tables.HEDGER_*``: value} of this rule's rows, given the
        ``RowSetting`` of the run (the start; the hedge option, the insurers' capital and
        floor)."""
        return {tables.HEDGER_INITIAL_SHARES: self.initial_shares,
                tables.HEDGER_START_EDGE: 1.0 if self.starts_at_edge else 0.0}

    @property
    def starts_at_edge(self) -> bool:
        """Whether the first hedge goes only to the band's edge (``initial="edge"``)."""
        return self.initial == "edge"

    def __repr__(self):
        # the start is shown only where it is not the rule's default: the repr names the
        # strategies of a run that gives them no names
        fields = dataclasses.fields(self) if dataclasses.is_dataclass(self) else ()
        shown = [f"{f.name}={getattr(self, f.name)!r}" for f in fields
                 if f.name not in ("initial", "initial_shares")
                 or getattr(self, f.name) != f.default]
        return f"{type(self).__name__}({', '.join(shown)})"

    def _check_start(self, band=False):
        """Check ``initial_shares`` (a finite number of shares) and, for a band rule,
        ``initial``."""
        self._check("initial_shares")
        if band:
            check.choice(type(self).__name__, "initial", self.initial, ("edge", "target"))

    def _check_vol(self, required):
        check.choice(type(self).__name__, "hedge_vol", self.hedge_vol, tuple(HEDGE_VOL_RULES))
        object.__setattr__(self, "vol", check.real(type(self).__name__, "vol", self.vol,
                                                   0.0, MAX_VOL, low_open=True,
                                                   none_ok=not required))

    def _check_every(self):
        object.__setattr__(self, "every",
                           check.integer(type(self).__name__, "every", self.every, low=1))

    def _every_schedule(self, times, only="trades only at t=0",
                        plainly="StaticHedge for one hedge"):
        """Every ``every``-th grid point from t_0 (the time schedules' table). A schedule that
        has no date after t_0 warns (``ScheduleWarning``): on a grid of ``n_steps`` steps,
        ``every >= n_steps`` hedges once, which ``StaticHedge`` says plainly (``only`` and
        ``plainly`` word the warning for other rules)."""
        n_steps = len(times) - 1
        if n_steps > 1 and self.every >= n_steps:
            warnings.warn(f"{self!r} {only}: 'every' = {self.every} >= n_steps = "
                          f"{n_steps} grid steps; choose 'every' < {n_steps}, or {plainly}",
                          ScheduleWarning, stacklevel=2)
        return np.arange(n_steps) % self.every == 0

    def _check(self, name, **allowed):
        value = check.real(type(self).__name__, name, getattr(self, name), **allowed)
        object.__setattr__(self, name, value)


@dataclass(frozen=True)
class RowSetting:
    """What a rule needs to know of a run to fill its kernel row: the spot at t=0, the grid
    ``times``, the rate and dividend, the book's horizon and whether the book is short gamma."""

    spot: float
    times: np.ndarray
    rate: float
    dividend: float
    short_gamma: bool

    @property
    def horizon(self):
        return float(self.times[-1])
