"""Portfolio insurers, which run on their own capital beside the book's hedgers and owe a floor
at the horizon: their base ``Insurer``, ``SyntheticPut`` and ``CPPI``."""

import math
from dataclasses import dataclass

from numba.extending import register_jitable
from scipy.optimize import brentq

from .. import _validation as check
from ..kernels import tables
from ..kernels._fastmath import fdiv, fexp, flog, fsqrt
from ..kernels.black_scholes import bs_price, delta_from
from ._base import OPTION_RULES, Strategy

# ``HEDGER_KIND``
KIND_SYNTHETIC_PUT = 9
KIND_CPPI = 10


class Insurer(Strategy):
    """Base of the portfolio insurers: from ``capital`` (None: the spot at t=0, one share's
    worth) they trade shares every ``every`` steps, lane by lane, and owe F = ``floor`` *
    capital at the horizon; P&L = PV of (portfolio value at the horizon - F)."""

    decides = "lane"
    hedges_delta = False
    insurer = True

    def _check_insurance(self):
        """Check ``floor``, ``every`` and ``capital``."""
        self._check("floor", low=0.0, high=10.0, low_open=True)
        self._check_every()
        object.__setattr__(self, "capital", check.real(type(self).__name__, "capital",
                                                       self.capital, 0.0, low_open=True,
                                                       none_ok=True))

    def schedule(self, times):
        return self._every_schedule(times)

    def capital_and_floor(self, spot, rate, horizon):
        """(capital, PV of the floor F e^{-r T}) for a spot ``spot`` at t=0; the floor's PV
        must be below the capital."""
        capital = spot if self.capital is None else self.capital
        floor_pv = self.floor * capital * math.exp(-rate * horizon)
        if floor_pv >= capital:
            check.fail(type(self).__name__, "floor", f"< e^{{rT}} = "
                       f"{math.exp(rate * horizon):.6g} (the floor's present value must be "
                       "below the capital)", self.floor)
        return capital, floor_pv

    def columns(self, setting):
        """The floor's PV (``HEDGER_P3``) and the premium, floor PV - capital: the P&L counts
        the capital as paid at t=0 and the floor as owed at the horizon."""
        capital, floor_pv = self.capital_and_floor(setting.spot, setting.rate, setting.horizon)
        return {tables.HEDGER_P3: floor_pv, tables.HEDGER_PREMIUM: floor_pv - capital}


@dataclass(frozen=True, repr=False)
class SyntheticPut(Insurer):
    """Portfolio insurance by a synthetic put: stock plus a put, replicated by trading shares.

    The insurer invests ``capital`` (default: the spot at t=0, one share's worth) in n units
    of (share + put with strike K), n (S_0 + P(S_0, K)) = capital and n K = ``floor`` *
    capital, P the Black-Scholes put at ``vol``, and replicates the puts: it holds
    n (1 + Delta_put) shares every ``every`` steps, the rest in cash. P&L (the package's
    convention) = PV of (portfolio value at the horizon - floor * capital): negative on a path
    where the floor is breached (gap risk). The book's options play no part (the book sets
    the horizon).

    Kernel decision: ``synthetic_put_target``, called lane by lane from ``_math.hedge_lane``.
    """

    vol: float = 0.2
    floor: float = 0.9
    every: int = 1
    capital: float | None = None
    hedge_vol: str = "constant"

    kind = KIND_SYNTHETIC_PUT

    def __post_init__(self):
        self._check_vol(required=True)
        self._check_insurance()
        check.choice(type(self).__name__, "hedge_vol", self.hedge_vol, OPTION_RULES)

    def units(self, spot, rate, dividend, horizon):
        """(n, K): units of share + put and the put strike for a capital at ``spot``."""
        capital, _ = self.capital_and_floor(spot, rate, horizon)
        floor = self.floor * capital

        def cost(n):
            return n * (spot + bs_price(spot, floor / n, horizon, self.vol, rate,
                                        dividend, False)) - capital

        n = brentq(cost, 1e-12 * capital / spot, capital / spot, xtol=1e-15, rtol=1e-14)
        return n, floor / n

    def columns(self, setting):
        n, strike = self.units(setting.spot, setting.rate, setting.dividend, setting.horizon)
        return {**super().columns(setting), tables.HEDGER_P1: strike, tables.HEDGER_P2: n}


@dataclass(frozen=True, repr=False)
class CPPI(Insurer):
    """Constant proportion portfolio insurance (Black and Jones 1987; Perold and Sharpe 1988).

    From ``capital`` (default: the spot at t=0), every ``every`` steps hold shares worth
    E = min(m C, b V), C = V - F e^{-r (T - t)} the cushion over the floor's present value, V
    the portfolio value, m = ``multiplier``, b = ``max_leverage`` (1: no borrowing), F =
    ``floor`` * capital; the rest in cash. V is net of the costs paid so far, so a cost level
    shrinks the cushion (one kernel row per cost level). A fall of more than 1/m between two
    rebalances (a jump) breaches the floor. P&L = PV of (V_T - F), as for ``SyntheticPut``.

    Kernel decision: ``cppi_target``, called lane by lane from ``_math.hedge_lane`` (the
    cushion net of the costs paid so far).
    """

    floor: float = 0.9
    multiplier: float = 4.0
    every: int = 1
    capital: float | None = None
    max_leverage: float = 1.0
    vol: float | None = None
    hedge_vol: str = "constant"

    kind = KIND_CPPI
    cost_grouping = 2

    def __post_init__(self):
        self._check_vol(required=False)
        self._check_insurance()
        self._check("multiplier", low=0.0, high=1e3, low_open=True)
        self._check("max_leverage", low=0.0, high=1e3, low_open=True)
        check.choice(type(self).__name__, "hedge_vol", self.hedge_vol, ("constant",))

    def row_params(self, book, costs, dt, short_gamma):
        return self.vol, self.multiplier, self.max_leverage


@register_jitable
def synthetic_put_target(units, strike, log_spot, tau, vol, rate, div):
    """Shares a synthetic put holds, tau years before the horizon: n (1 + Delta_put), n the
    units of (share + put of strike K) and Delta_put the Black-Scholes put delta at ``vol``."""
    put = delta_from(log_spot - flog(strike), fsqrt(tau), fexp(-div * tau), vol, rate, div,
                     False)
    return units * (1.0 + put)


@register_jitable
def cppi_target(cushion, spot, multiplier, max_leverage, floor_pv, discount):
    """Shares a CPPI holds: exposure E = min(m max(C, 0), b (C + F e^{-r (T - t)})) over the
    spot, with C the cushion (portfolio value less the floor's PV at t, net of the costs paid),
    m the multiplier, b the leverage cap and F e^{-r (T - t)} = ``floor_pv`` / ``discount``
    (the floor's PV at t=0 over e^{-r t})."""
    exposure = min(multiplier * max(cushion, 0.0),
                   max_leverage * (cushion + fdiv(floor_pv, discount)))
    return fdiv(exposure, spot)
