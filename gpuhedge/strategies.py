"""Hedging strategies. A strategy is data: the engine turns it into rows of the kernel's hedger
table (a kind code, a vol, a few parameters and a table of the grid points where it may trade),
so any mix of strategies shares one compiled kernel and one pass over the paths.

Rules that depend on the cost (Whalley-Wilmott, Zakamouline, Leland) become one row per cost
level; the others trade once for all cost levels, which are then charged from the same trades.

Three families: share hedges of the book (``DeltaHedge`` and its schedules and bands), hedges
with a second option (``DeltaGammaHedge``, ``DeltaVegaHedge``), and portfolio insurers
(``SyntheticPut``, ``CPPI``), which run on their own capital beside the book's hedgers and
owe a floor at the horizon instead of the book's payoff.
"""

import dataclasses
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from . import _validation as check
from .instruments import EuropeanCall
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
            raise ValueError("Strategy: is an abstract base and cannot be built; use NoHedge, "
                             "StaticHedge, DeltaHedge, HedgeAt, DeltaBand, ScheduleBand, "
                             "SpotMove, WhalleyWilmott, Zakamouline, Leland, DeltaGammaHedge, "
                             "DeltaVegaHedge, SyntheticPut or CPPI")
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
        """The kernel columns {``_math.HEDGER_*``: value} of the rule's traits."""
        return {_math.HEDGER_DECIDES: _math.DECISIONS.index(self.decides),
                _math.HEDGER_DELTA: float(self.hedges_delta),
                _math.HEDGER_GAMMA: float(self.needs_gamma),
                _math.HEDGER_OPTION_HEDGE: float(self.option_hedge),
                _math.HEDGER_INSURER: float(self.insurer)}

    def columns(self, setting):
        """Further kernel columns {``_math.HEDGER_*``: value} of this rule's rows, given the
        ``RowSetting`` of the run (the start; the hedge option, the insurers' capital and
        floor)."""
        return {_math.HEDGER_INITIAL_SHARES: self.initial_shares,
                _math.HEDGER_START_EDGE: 1.0 if self.starts_at_edge else 0.0}

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
                                                   0.0, _MAX_VOL, low_open=True,
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


@dataclass(frozen=True, repr=False)
class NoHedge(Strategy):
    """Hold the book unhedged."""

    vol: float | None = None
    hedge_vol: str = "constant"

    kind = _math.KIND_NONE
    decides = "none"
    hedges_delta = False

    def __post_init__(self):
        self._check_vol(required=False)

    def schedule(self, times):
        return np.zeros(len(times) - 1, dtype=bool)


@dataclass(frozen=True, repr=False)
class StaticHedge(Strategy):
    """Hedge once at t=0 with the Black-Scholes delta at ``vol`` and hold to the horizon."""

    vol: float = 0.2
    hedge_vol: str = "constant"
    initial_shares: float = field(default=0.0, kw_only=True)

    kind = _math.KIND_STATIC

    def __post_init__(self):
        self._check_vol(required=True)
        self._check_start()

    def schedule(self, times):
        return np.arange(len(times) - 1) == 0


@dataclass(frozen=True, repr=False)
class DeltaHedge(Strategy):
    """Rebalance to the Black-Scholes delta at hedge vol ``vol`` every ``every`` simulation steps.

    ``every=1`` rebalances at each grid point t_0, t_1, ...; ``every=k`` at t_0, t_k, t_2k, ...
    (the hedge schedule is separate from the simulation grid). The hedge ratio of a book of
    options is sum_i q_i Delta_BS(S, K_i, T_i - t, vol); the hedger holds minus that in shares.
    """

    vol: float = 0.2
    every: int = 1
    hedge_vol: str = "constant"
    initial_shares: float = field(default=0.0, kw_only=True)

    kind = _math.KIND_SCHEDULE

    def __post_init__(self):
        self._check_vol(required=True)
        self._check_every()
        self._check_start()

    def schedule(self, times):
        return self._every_schedule(times)


@dataclass(frozen=True, repr=False)
class HedgeAt(Strategy):
    """Rebalance to the delta at hedge vol ``vol`` at the listed ``times`` (years, each a point
    of the simulation grid; t=0 is always a hedge time)."""

    vol: float = 0.2
    times: tuple = (0.0,)
    hedge_vol: str = "constant"
    initial_shares: float = field(default=0.0, kw_only=True)

    kind = _math.KIND_SCHEDULE

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
    """

    vol: float = 0.2
    band: float = 0.05
    to: str = "target"
    hedge_vol: str = "constant"
    initial: str | None = field(default=None, kw_only=True)
    initial_shares: float = field(default=0.0, kw_only=True)

    kind = _math.KIND_BAND

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
    """

    vol: float = 0.2
    every: int = 1
    band: float = 0.05
    to: str = "target"
    hedge_vol: str = "constant"
    initial: str = field(default="target", kw_only=True)
    initial_shares: float = field(default=0.0, kw_only=True)

    kind = _math.KIND_BAND  # a band rule whose schedule table marks its dates

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
        return np.where(dates, _math.SCHEDULE_TO_TARGET, 1).astype(np.uint8)

    row_params = DeltaBand.row_params


@dataclass(frozen=True, repr=False)
class SpotMove(Strategy):
    """Trade back to the delta when the spot has moved more than ``pct`` (a fraction, e.g.
    0.01) since the last trade; checked at every grid point."""

    vol: float = 0.2
    pct: float = 0.01
    hedge_vol: str = "constant"
    initial_shares: float = field(default=0.0, kw_only=True)

    kind = _math.KIND_SPOT_MOVE

    def __post_init__(self):
        self._check_vol(required=True)
        self._check_start()
        self._check("pct", low=0.0, high=10.0)

    def row_params(self, book, costs, dt, short_gamma):
        return self.vol, self.pct, 0.0


@dataclass(frozen=True, repr=False)
class WhalleyWilmott(Strategy):
    """Whalley and Wilmott's (1997) asymptotically optimal no-trade band around the delta.

    H = (3/2 e^{-r (T - t)} lambda S Gamma^2 / gamma)^{1/3} shares, with lambda the cost
    level's proportional cost, Gamma the book's Black-Scholes gamma at ``vol`` and gamma =
    ``risk_aversion`` (exponential utility, in 1/currency). Trades to the band's edge, checked
    at every grid point; one kernel row per proportional cost. Scaling: Gamma grows with the
    position size N, so H grows like N^{2/3} at a fixed risk aversion; keeping the relative band
    fixed needs a risk aversion proportional to 1/N. With no proportional cost H = 0: hedging at
    every grid point.

    ``initial="edge"`` (the default) starts as the theory does: from the ``initial_shares``
    held (default none), the first trade goes only to the nearest edge of the band at t=0
    (max(Delta - H, 0) shares from none for a target Delta > 0), as at every later date; the
    band is the optimal policy from any position, the start included, when the start pays
    the cost. ``"target"`` hedges to the full delta at t=0 and applies the band afterwards:
    the natural start when the set-up is free (``Costs(ends=False)``), where the best
    position to set up costs nothing to reach.
    """

    vol: float = 0.2
    risk_aversion: float = 1.0
    hedge_vol: str = "constant"
    initial: str = field(default="edge", kw_only=True)
    initial_shares: float = field(default=0.0, kw_only=True)

    kind = _math.KIND_WHALLEY_WILMOTT
    needs_gamma = True
    cost_dependent = True

    def __post_init__(self):
        self._check_vol(required=True)
        self._check("risk_aversion", low=0.0, high=1e12, low_open=True)
        self._check_start(band=True)

    def row_params(self, book, costs, dt, short_gamma):
        return self.vol, costs.proportional, self.risk_aversion


@dataclass(frozen=True, repr=False)
class Leland(DeltaHedge):
    """Leland's (1985) rule: rebalance every ``every`` steps to the delta at the adjusted vol

    sigma_L^2 = sigma^2 (1 + s sqrt(2/pi) k / (sigma sqrt(dt_h))),

    k = 2 * proportional the round-trip cost of the cost level, dt_h = every * dt the hedging
    interval, s = +1 for a book short gamma (it pays the costs, so it sells dearer) and -1 for
    a long-gamma book. The book changes hands at the Leland vol too. One kernel row per
    proportional cost; without costs it is ``DeltaHedge(vol, every)``.
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


@dataclass(frozen=True, repr=False)
class Zakamouline(WhalleyWilmott):
    """Zakamouline's (2006) approximation of the utility-based hedge with proportional costs.

    Trades to the edge of a band of half-width H0 + H1 around the Black-Scholes delta at a
    modified vol sigma_m (``_math.zakamouline_rule`` has the formulas): with exponential
    utility of risk aversion gamma = ``risk_aversion`` (1/currency) and lambda the cost
    level's proportional cost. The hedger shifts its vol up when the book is short gamma (at
    t=0), down when long. Checked at every grid point; one kernel row per proportional cost. The
    fitted exponents came from single options; applied here to the book's net gamma, with the
    same scaling in position size as ``WhalleyWilmott``. No cost: hedging at every grid point.
    ``initial`` as for ``WhalleyWilmott`` (default ``"edge"``: the band applies at t=0, as in
    the utility-based strategy the approximation fits).

    Reference: V. I. Zakamouline (2006), "Efficient analytic approximation of the optimal
    hedging strategy for a European call option with transaction costs", Quantitative
    Finance 6(5), 435-445.
    """

    kind = _math.KIND_ZAKAMOULINE
    decides = "lane"

    def __post_init__(self):
        super().__post_init__()
        if self.hedge_vol != "constant":
            check.fail(type(self).__name__, "hedge_vol", "'constant' (the rule modifies a "
                       "constant vol)", self.hedge_vol)

    def columns(self, setting):
        return {**super().columns(setting), _math.HEDGER_P3: 1.0 if setting.short_gamma else 0.0}


_OPTION_RULES = ("constant", "instantaneous", "expected-average")


@dataclass(frozen=True, repr=False)
class DeltaGammaHedge(DeltaHedge):
    """Every ``every`` steps, hold n = -Gamma_book / Gamma_option hedge options and then
    -(Delta_book + n Delta_option) shares: the book's delta and gamma are zero after each
    rebalance.

    The hedge option (``option``: a listed ``EuropeanCall`` or ``EuropeanPut``, its maturity
    in years from t=0) is priced along the path by Black-Scholes at the hedge-vol rule applied
    to ``option_vol`` (default: ``vol``): a constant implied vol, or sqrt(v_t) or the
    expected-average vol of a Heston-type market; it trades at that value and pays the cost
    level's ``option_proportional`` on traded premium and ``fixed`` per trade. Greeks of the
    book use ``vol`` under the same rule.

    Expiry: with ``roll=False`` the option must not expire before the book's horizon (it is
    sold at its value at the horizon, or settles there). With ``roll=True`` it is sold at its
    value when ``roll_before`` years of its life remain (default: half its tenor, before its
    gamma concentrates at the strike; 0 holds it to expiry and settles it) and replaced at once
    by a fresh option of the same tenor (its maturity) and the same moneyness strike / spot as
    the first at t=0; tenor and ``roll_before`` must be multiples of the grid step. Execution
    lag delays the share trades only.
    """

    option: EuropeanCall = None
    option_vol: float | None = None
    roll: bool = False
    roll_before: float | None = None

    kind = _math.KIND_DELTA_GAMMA
    decides = "lane"
    needs_gamma = True
    option_hedge = True

    def __post_init__(self):
        super().__post_init__()
        name = type(self).__name__
        if not isinstance(self.option, EuropeanCall):
            check.fail(name, "option", "a EuropeanCall or EuropeanPut (the hedge option)",
                       self.option)
        check.choice(name, "hedge_vol", self.hedge_vol, _OPTION_RULES)
        object.__setattr__(self, "option_vol", check.real(
            name, "option_vol", self.option_vol, 0.0, _MAX_VOL, low_open=True, none_ok=True))
        if not isinstance(self.roll, bool):
            check.fail(name, "roll", "True or False", self.roll)
        if self.roll_before is not None:
            object.__setattr__(self, "roll_before", check.real(
                name, "roll_before", self.roll_before, 0.0, self.option.maturity,
                high_open=True))

    def columns(self, setting):
        name = type(self).__name__
        times, maturity = setting.times, self.option.maturity
        n_steps = len(times) - 1
        dt = times[1] - times[0]
        if not self.roll and maturity < setting.horizon * (1 - 1e-12):
            check.fail(name, "option.maturity", f">= the book's horizon {setting.horizon:g} "
                       "(or set roll=True to roll the hedge option)", maturity)
        step = n_steps + 1.0
        hold = 0.0

        def steps(field, years):
            k = years / dt
            if not math.isclose(k, round(k), rel_tol=1e-9, abs_tol=1e-9) or not np.allclose(
                    np.diff(times), dt, rtol=1e-9):
                check.fail(name, field, f"a multiple of the grid step {dt:.6g} on a uniform "
                           "grid, to expire or roll at a grid point", years)
            return round(k)

        if self.roll or maturity <= setting.horizon * (1 + 1e-12):
            tenor = steps("option.maturity", maturity)
            if self.roll:
                before = tenor // 2 if self.roll_before is None else steps(
                    "roll_before", self.roll_before)
                hold = float(tenor - before)
                tenor = tenor - before
            if tenor <= n_steps:
                step = float(tenor)
        return {**super().columns(setting),
                _math.HEDGER_OPT_STRIKE: self.option.strike, _math.HEDGER_OPT_STEP: step,
                _math.HEDGER_OPT_IS_CALL: 1.0 if self.option.is_call else 0.0,
                _math.HEDGER_OPT_VOL: self.vol if self.option_vol is None else self.option_vol,
                _math.HEDGER_OPT_TENOR: hold, _math.HEDGER_OPT_MATURITY: maturity}


@dataclass(frozen=True, repr=False)
class DeltaVegaHedge(DeltaGammaHedge):
    """As ``DeltaGammaHedge``, with n = -Vega_book / Vega_option (Black-Scholes vegas): the
    book's delta and vega are zero after each rebalance."""

    kind = _math.KIND_DELTA_VEGA
    needs_gamma = False


def _capital(owner, capital, spot, floor, rate, horizon):
    """(capital, PV of the floor) of a portfolio insurer, checked."""
    capital = spot if capital is None else capital
    floor_pv = floor * capital * math.exp(-rate * horizon)
    if floor_pv >= capital:
        check.fail(owner, "floor", f"< e^{{rT}} = {math.exp(rate * horizon):.6g} (the floor's "
                   "present value must be below the capital)", floor)
    return capital, floor_pv


@dataclass(frozen=True, repr=False)
class SyntheticPut(Strategy):
    """Portfolio insurance by a synthetic put: stock plus a put, replicated by trading shares.

    The insurer invests ``capital`` (default: the spot at t=0, one share's worth) in n units
    of (share + put with strike K), n (S_0 + P(S_0, K)) = capital and n K = ``floor`` *
    capital, P the Black-Scholes put at ``vol``, and replicates the puts: it holds
    n (1 + Delta_put) shares every ``every`` steps, the rest in cash. P&L (the package's
    convention) = PV of (portfolio value at the horizon - floor * capital): negative on a path
    where the floor is breached (gap risk). The book's options play no part (the book sets
    the horizon).
    """

    vol: float = 0.2
    floor: float = 0.9
    every: int = 1
    capital: float | None = None
    hedge_vol: str = "constant"

    kind = _math.KIND_SYNTHETIC_PUT
    decides = "lane"
    hedges_delta = False
    insurer = True

    def __post_init__(self):
        self._check_vol(required=True)
        name = type(self).__name__
        self._check("floor", low=0.0, high=10.0, low_open=True)
        self._check_every()
        object.__setattr__(self, "capital", check.real(name, "capital", self.capital, 0.0,
                                                       low_open=True, none_ok=True))
        check.choice(name, "hedge_vol", self.hedge_vol, _OPTION_RULES)

    def schedule(self, times):
        return self._every_schedule(times)

    def units(self, spot, rate, dividend, horizon):
        """(n, K): units of share + put and the put strike for a capital at ``spot``."""
        capital, _ = _capital(type(self).__name__, self.capital, spot, self.floor, rate,
                              horizon)
        floor = self.floor * capital

        def cost(n):
            return n * (spot + _math.bs_price(spot, floor / n, horizon, self.vol, rate,
                                              dividend, False)) - capital

        n = brentq(cost, 1e-12 * capital / spot, capital / spot, xtol=1e-15, rtol=1e-14)
        return n, floor / n

    def columns(self, setting):
        capital, floor_pv = _capital(type(self).__name__, self.capital, setting.spot,
                                     self.floor, setting.rate, setting.horizon)
        n, strike = self.units(setting.spot, setting.rate, setting.dividend, setting.horizon)
        return {_math.HEDGER_P1: strike, _math.HEDGER_P2: n, _math.HEDGER_P3: floor_pv,
                _math.HEDGER_PREMIUM: floor_pv - capital}


@dataclass(frozen=True, repr=False)
class CPPI(Strategy):
    """Constant proportion portfolio insurance (Black and Jones 1987; Perold and Sharpe 1988).

    From ``capital`` (default: the spot at t=0), every ``every`` steps hold shares worth
    E = min(m C, b V), C = V - F e^{-r (T - t)} the cushion over the floor's present value, V
    the portfolio value, m = ``multiplier``, b = ``max_leverage`` (1: no borrowing), F =
    ``floor`` * capital; the rest in cash. V is net of the costs paid so far, so a cost level
    shrinks the cushion (one kernel row per cost level). A fall of more than 1/m between two
    rebalances (a jump) breaches the floor. P&L = PV of (V_T - F), as for ``SyntheticPut``.
    """

    floor: float = 0.9
    multiplier: float = 4.0
    every: int = 1
    capital: float | None = None
    max_leverage: float = 1.0
    vol: float | None = None
    hedge_vol: str = "constant"

    kind = _math.KIND_CPPI
    decides = "lane"
    hedges_delta = False
    insurer = True
    cost_grouping = 2

    def __post_init__(self):
        name = type(self).__name__
        self._check_vol(required=False)
        self._check("floor", low=0.0, high=10.0, low_open=True)
        self._check("multiplier", low=0.0, high=1e3, low_open=True)
        self._check("max_leverage", low=0.0, high=1e3, low_open=True)
        self._check_every()
        object.__setattr__(self, "capital", check.real(name, "capital", self.capital, 0.0,
                                                       low_open=True, none_ok=True))
        check.choice(name, "hedge_vol", self.hedge_vol, ("constant",))

    def schedule(self, times):
        return self._every_schedule(times)

    def row_params(self, book, costs, dt, short_gamma):
        return self.vol, self.multiplier, self.max_leverage

    def columns(self, setting):
        capital, floor_pv = _capital(type(self).__name__, self.capital, setting.spot,
                                     self.floor, setting.rate, setting.horizon)
        return {_math.HEDGER_P3: floor_pv, _math.HEDGER_PREMIUM: floor_pv - capital}
