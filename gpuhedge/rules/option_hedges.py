"""Hedges with a second option: ``DeltaGammaHedge`` and ``DeltaVegaHedge``."""

import math
from dataclasses import dataclass

import numpy as np

from .. import _validation as check
from ..instruments import EuropeanCall
from ..kernels import layout, tables
from ._base import MAX_VOL, OPTION_RULES
from .delta import DeltaHedge

# ``HEDGER_KIND``
KIND_DELTA_GAMMA = 7
KIND_DELTA_VEGA = 8

# The per-path state of a row that holds a hedge option (``kernels/state.py``)
STATE = (layout.group(
    "hedge option (DeltaGammaHedge, DeltaVegaHedge)",
    ("STATE_OPT_POSITION", "hedge options held"),
    ("STATE_OPT_STRIKE", "strike of the hedge option held"),
    ("STATE_OPT_STEP", "grid step of its next event (expiry or roll)"),
    ("STATE_OPT_EXPIRY", "expiry of the hedge option held (years)"),
    ("STATE_OPT_MONEYNESS", "strike / spot at t=0 of the hedge option (kept when it rolls)")),)


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

    Kernel decision: ``_math.hedge_lane`` (the option's greeks from ``_math.option_greeks``; its
    expiry and roll in ``_math.option_event``).
    """

    option: EuropeanCall = None
    option_vol: float | None = None
    roll: bool = False
    roll_before: float | None = None

    kind = KIND_DELTA_GAMMA
    decides = "lane"
    needs_gamma = True
    option_hedge = True

    def __post_init__(self):
        super().__post_init__()
        name = type(self).__name__
        if not isinstance(self.option, EuropeanCall):
            check.fail(name, "option", "a EuropeanCall or EuropeanPut (the hedge option)",
                       self.option)
        check.choice(name, "hedge_vol", self.hedge_vol, OPTION_RULES)
        object.__setattr__(self, "option_vol", check.real(
            name, "option_vol", self.option_vol, 0.0, MAX_VOL, low_open=True, none_ok=True))
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
                tables.HEDGER_OPT_STRIKE: self.option.strike, tables.HEDGER_OPT_STEP: step,
                tables.HEDGER_OPT_IS_CALL: 1.0 if self.option.is_call else 0.0,
                tables.HEDGER_OPT_VOL: self.vol if self.option_vol is None else self.option_vol,
                tables.HEDGER_OPT_TENOR: hold, tables.HEDGER_OPT_MATURITY: maturity}


@dataclass(frozen=True, repr=False)
class DeltaVegaHedge(DeltaGammaHedge):
    """As ``DeltaGammaHedge``, with n = -Vega_book / Vega_option (Black-Scholes vegas): the
    book's delta and vega are zero after each rebalance.

    Kernel decision: ``_math.hedge_lane``, as ``DeltaGammaHedge``.
    """

    kind = KIND_DELTA_VEGA
    needs_gamma = False
