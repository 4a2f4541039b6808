"""Trading costs: spread, fees, market impact, execution lag and funding."""

import dataclasses
import math
import numbers
from dataclasses import dataclass

from . import _validation as check
from .kernels import layout

IMPACT_LAWS = ("sqrt", "linear")
TRADING_DAYS = 252.0  # converts an annual vol to the daily vol of the impact laws

# The per-path state a hedger row keeps for its costs (``kernels/state.py`` assembles every
# owner's). Costs are linear in a few sums, so the kernel keeps the sums per row and path and
# prices every cost level once at the end (``_math.level_costs``): spread = proportional *
# TURNOVER + option proportional * OPTION_TURNOVER, fee = fixed * TICKETS, impact = c_sqrt *
# IMPACT_SQRT + c_lin * IMPACT_LINEAR, funding = borrow spread * BORROWED + lend spread * LENT.
_SUMS = (("ACC_TURNOVER", "sum e^{-r t} |q| S over share trades"),
         ("ACC_TICKETS", "sum e^{-r t} over trades"),
         ("ACC_IMPACT_SQRT", "sum e^{-r t} S |q|^{3/2}"),
         ("ACC_IMPACT_LINEAR", "sum e^{-r t} S q^2"),
         ("ACC_OPTION_TURNOVER", "sum e^{-r t} |q| V over hedge option trades"))
STATE = (
    layout.group("execution lag (Costs.lag; the rows after the state are the ring of orders "
                 "in flight, one per lag step)",
                 ("STATE_ORDERED", "shares held plus orders in flight, what a lagged rule "
                                   "compares with its target")),
    layout.group("funding (Costs.borrow_rate, lend_rate)",
                 ("STATE_BORROWED", "sum over steps of the PV of the negative cash balance "
                                    "times dt"),
                 ("STATE_LENT", "sum over steps of the PV of the positive cash balance times "
                                "dt")),
    layout.group("cost kinds (Costs)", *_SUMS),
    layout.group("the ends' part of the cost sums (Costs.ends)",
                 *((f"ACC_ENDS_{name[len('ACC_'):]}",
                    f"the part of {name} due to the initial hedge and the final unwind")
                   for name, _ in _SUMS)))


@dataclass(frozen=True, repr=False)
class Costs:
    """What trading costs one hedger: one cost level of a simulation.

    A trade of q shares at price S pays

        proportional * |q| * S + fixed + impact(q),

    square-root law impact(q) = eta * sigma_d * S * sqrt(|q| / adv) * |q| (Almgren et al.
    2005; Toth et al. 2011), or linear law impact(q) = eta * sigma_d * S * (|q| / adv) * |q|,
    with eta = ``impact``, sigma_d = ``impact_vol`` the daily volatility and adv the average
    daily volume in shares. Hedge options (delta-gamma and delta-vega rules) pay
    ``option_proportional`` times their traded premium |n| C, and ``fixed`` per option trade.

    Parameters
    ----------
    proportional : float
        Fraction of traded share notional paid (half the bid-ask spread plus fees), in [0, 1).
    fixed : float
        Fee per trade (per rebalance that trades, per instrument), in currency, >= 0.
    ends : bool
        Whether the initial hedge at t=0 and the final unwind at the horizon pay costs too
        (default). False charges only the rebalancing in between, as in Leland's (1985) and
        Whalley and Wilmott's analyses, where the hedge is set up and delivered for free.
    impact : float
        eta >= 0, the impact coefficient (of order 0.1 to 1 for equities).
    adv : float
        Average daily volume in shares, > 0 (needed when ``impact`` > 0).
    impact_law : {"sqrt", "linear"}
    impact_vol : float, optional
        Daily volatility sigma_d (a fraction); default: the market's reference vol / sqrt(252).
    lag : int
        Execution lag in grid steps, >= 0: a trade decided at grid point k fills at the price
        of grid point k + lag. The rule sees its orders in flight as held; orders still in
        flight at the horizon are cancelled and the filled shares unwound.
    borrow_rate, lend_rate : float, optional
        Rates of the cash account when it is negative (borrowing) and positive (lending);
        default: the market's rate. The spreads to the market rate are charged as a funding
        cost, to first order in the spread: sum over steps of spread * balance * dt (PV).
    option_proportional : float
        Fraction of traded option premium paid on hedge-option trades, in [0, 1).
    """

    proportional: float = 0.0
    fixed: float = 0.0
    ends: bool = True
    impact: float = 0.0
    adv: float = math.inf
    impact_law: str = "sqrt"
    impact_vol: float | None = None
    lag: int = 0
    borrow_rate: float | None = None
    lend_rate: float | None = None
    option_proportional: float = 0.0

    def __post_init__(self):
        name = type(self).__name__

        def real(field, **allowed):
            object.__setattr__(self, field, check.real(name, field, getattr(self, field),
                                                       **allowed))

        real("proportional", low=0.0, high=1.0, high_open=True)
        object.__setattr__(self, "fixed", check.non_negative(name, "fixed", self.fixed))
        if not isinstance(self.ends, bool):
            check.fail(name, "ends", "True or False", self.ends)
        object.__setattr__(self, "impact", check.non_negative(name, "impact", self.impact))
        adv = self.adv
        if isinstance(adv, bool) or not isinstance(adv, numbers.Real) or not adv > 0 or (
                self.impact > 0 and math.isinf(adv)):
            check.fail(name, "adv", "> 0 and finite when impact > 0 (average daily volume in "
                       "shares)", adv)
        object.__setattr__(self, "adv", float(adv))
        check.choice(name, "impact_law", self.impact_law, IMPACT_LAWS)
        real("impact_vol", low=0.0, high=10.0, none_ok=True)
        object.__setattr__(self, "lag", check.integer(name, "lag", self.lag, low=0,
                                                      high=10**6))
        real("borrow_rate", low=-1.0, high=1.0, none_ok=True)
        real("lend_rate", low=-1.0, high=1.0, none_ok=True)
        if self.borrow_rate is not None and self.lend_rate is not None and \
                self.lend_rate > self.borrow_rate:
            check.fail(name, "lend_rate", f"<= borrow_rate = {self.borrow_rate}",
                       self.lend_rate)
        real("option_proportional", low=0.0, high=1.0, high_open=True)

    def __repr__(self):
        """The spread, fee and ends, and the other fields where they differ from the default
        (the default name of a cost level)."""
        shown = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                 if f.name in ("proportional", "fixed", "ends")
                 or getattr(self, f.name) != f.default]
        return f"{type(self).__name__}({', '.join(shown)})"

    def impact_coefficients(self, reference_vol):
        """(c_sqrt, c_linear): impact(q) = c_sqrt S |q|^{3/2} + c_linear S q^2, with sigma_d
        = ``impact_vol`` or ``reference_vol`` / sqrt(252) (an annual vol)."""
        if self.impact == 0.0:
            return 0.0, 0.0
        if self.impact_vol is None and reference_vol is None:
            check.fail(type(self).__name__, "impact_vol", "a daily vol (there is no market "
                       "vol to take it from with supplied paths)", None)
        sigma_d = self.impact_vol if self.impact_vol is not None else \
            reference_vol / math.sqrt(TRADING_DAYS)
        if self.impact_law == "sqrt":
            return self.impact * sigma_d / math.sqrt(self.adv), 0.0
        return 0.0, self.impact * sigma_d / self.adv

    def funding_spreads(self, rate):
        """(borrow spread, lend spread) over and under the market ``rate``."""
        borrow = 0.0 if self.borrow_rate is None else self.borrow_rate - rate
        lend = 0.0 if self.lend_rate is None else rate - self.lend_rate
        return borrow, lend
