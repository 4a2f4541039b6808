"""The per-path state of a hedger row, ``state[row, field, path]``: the groups of rows its
owners declare, each in its own module, assembled here into one layout, and the module-level
integers of their indices (which ``_math`` imports and numba folds into the kernels as
constants).

The owners: the kernel itself (every row's shares, cash flows and trade count, and the book's
greeks that rows share), the spot-move rule (``rules/spot_move.py``), the costs (``costs.py``:
the execution lag, funding, the cost sums and their ends' part) and the option hedges
(``rules/option_hedges.py``). A rule, cost kind or path-dependent payoff that keeps state per
path declares it as a ``STATE`` tuple of ``layout.group``s in its own module, and its groups
are added to ``STATE`` here. Rows from ``N_STATE`` on are the ring of orders in flight of the
execution lag (one per lag step).
"""

from .. import costs
from ..rules import option_hedges, spot_move
from . import layout

__all__ = ["N_STATE"]  # and every field's name, below

EVERY_ROW = layout.group(
    "every row (the kernel)",
    ("STATE_POSITION", "shares held (filled orders)"),
    ("STATE_FLOW", "cash flows so far, present value at t=0"),
    ("STATE_TRADES", "number of share trades"))

GREEKS = layout.group(
    "book greeks shared by rows (HEDGER_GREEKS)",
    ("STATE_DELTA", "the book's delta under the row's vol and rule, where last computed"),
    ("STATE_GAMMA", "the book's gamma under the row's vol and rule, where last computed"),
    ("STATE_DELTA_AT", "grid point of STATE_DELTA (lane 0 only)"),
    ("STATE_GAMMA_AT", "grid point of STATE_GAMMA (lane 0 only)"))

STATE = layout.Layout(
    "state", "the state of one hedger row on one path (rows of state[row, field, path])",
    EVERY_ROW, *spot_move.STATE, *costs.STATE, *option_hedges.STATE, GREEKS)

(STATE_POSITION, STATE_FLOW, STATE_TRADES,
 STATE_LAST_SPOT,
 STATE_ORDERED, STATE_BORROWED, STATE_LENT,
 ACC_TURNOVER, ACC_TICKETS, ACC_IMPACT_SQRT, ACC_IMPACT_LINEAR, ACC_OPTION_TURNOVER,
 ACC_ENDS_TURNOVER, ACC_ENDS_TICKETS, ACC_ENDS_IMPACT_SQRT, ACC_ENDS_IMPACT_LINEAR,
 ACC_ENDS_OPTION_TURNOVER,
 STATE_OPT_POSITION, STATE_OPT_STRIKE, STATE_OPT_STEP, STATE_OPT_EXPIRY, STATE_OPT_MONEYNESS,
 STATE_DELTA, STATE_GAMMA, STATE_DELTA_AT, STATE_GAMMA_AT,
 ) = STATE.columns
N_STATE = STATE.width
STATE.check_bound(globals())
__all__ += list(STATE.names)
