"""The kernel tables' column indices and the codes their cells hold, as module-level integers
(which numba folds into the kernels as constants).

The columns are declared by name, one line each, in ``layout``; this module binds the generated
indices and widths (``N_*``) of its tables (the per-path state's rows: ``state``). The codes:
the schedule table's entries, the hedge-vol rules (``RULE_*``, the ``HEDGER_RULE`` column) and
how a rule decides (``DECISIONS``, the ``HEDGER_DECIDES`` column). The rules' kinds (``HEDGER_KIND``) are declared by the rule modules
(``gpuhedge.rules``). ``_math`` binds every name of this module; the rules read their columns
and codes here, so that importing a rule does not import the kernel.
"""

from . import layout

# Schedule table entries: 0 the row does not trade at the grid point, 1 its rule decides there,
# SCHEDULE_TO_TARGET a date on which a plain rule hedges to its target whatever its band (the
# dates of ``ScheduleBand``, which between them is a band rule).
SCHEDULE_TO_TARGET = 2

# Hedge-vol rules: which volatility (or model) gives the hedge ratio. ``hp`` holds the model
# constants the rules need: (kappa, theta, xi, rho) of Heston-type models; (vol, lam, mu_j,
# sigma_j, n_terms) of Black-Scholes (lam = 0) and Merton markets for their model delta.
RULE_CONSTANT = 0  # the strategy's own implied vol
RULE_INSTANTANEOUS = 1  # sqrt(v_t)
RULE_EXPECTED_AVERAGE = 2  # Heston expected average variance to each option's maturity
RULE_MIN_VARIANCE = 3  # expected-average delta + rho xi / S * dC/dv
RULE_MODEL = 4  # the market's own delta (Merton series; Black-Scholes at the market vol)

# The column (and row) indices of the tables, declared by name in ``layout`` and bound here as
# plain module-level integers, which numba folds into the kernels as constants.
HP_KAPPA, HP_THETA, HP_XI, HP_RHO = layout.HP_VARIANCE.columns
HP_VOL, HP_LAM, HP_MU_J, HP_SIGMA_J, HP_TERMS = layout.HP_MODEL.columns
BOOK_STRIKE, BOOK_MATURITY, BOOK_QUANTITY, BOOK_IS_CALL, BOOK_STEP, BOOK_LOG_STRIKE = \
    layout.BOOK.columns
TAU_SQRT, TAU_DIV_DISCOUNT = layout.TAU.columns
GRID_TIME, GRID_DISCOUNT, GRID_DIVIDEND = layout.GRID.columns
(HEDGER_KIND, HEDGER_VOL, HEDGER_RULE, HEDGER_PREMIUM, HEDGER_STRATEGY, HEDGER_COST, HEDGER_P1,
 HEDGER_P2, HEDGER_PRICE_AT_START, HEDGER_LAG, HEDGER_P3,
 HEDGER_OPT_STRIKE, HEDGER_OPT_STEP, HEDGER_OPT_IS_CALL, HEDGER_OPT_VOL, HEDGER_OPT_TENOR,
 HEDGER_OPT_MATURITY,
 HEDGER_BY_COST, HEDGER_GREEKS,
 HEDGER_INITIAL_SHARES, HEDGER_START_EDGE,
 HEDGER_DECIDES, HEDGER_DELTA, HEDGER_GAMMA, HEDGER_OPTION_HEDGE, HEDGER_INSURER,
 ) = layout.HEDGER.columns
N_HEDGER = layout.HEDGER.width
(COST_PROPORTIONAL, COST_FIXED, COST_ENDS, COST_IMPACT_SQRT, COST_IMPACT_LINEAR, COST_BORROW,
 COST_LEND, COST_OPTION, COST_GROUP_RULE, COST_GROUP_LAG) = layout.COST.columns
N_COST = layout.COST.width
OUT_PNL, OUT_COST, OUT_SPREAD, OUT_FEE, OUT_IMPACT, OUT_FUNDING, OUT_TRADES, OUT_TURNOVER = \
    layout.OUT.columns
N_OUT = layout.OUT.width
REC_SHARES, REC_OPTIONS, REC_CASH, REC_BOOK, REC_VALUE, REC_PNL, REC_COST, REC_TRADES = \
    layout.REC.columns
N_REC = layout.REC.width
(LANE_SPOT, LANE_VAR, LANE_LOG_SPOT, LANE_SETTLED, LANE_DRAW, LANE_U, LANE_P, LANE_CDF,
 LANE_QTY, LANE_NEXT, LANE_BAND) = layout.LANE.columns
N_LANE = layout.LANE.width
layout.check_bound(globals())

# How a rule decides (``Strategy.decides``): never; in the lane loops from the book's delta
# and gamma; lane by lane (``_math.hedge_lane``).
DECISIONS = ("none", "lanes", "lane")
DECIDES_LANES, DECIDES_LANE = 1, 2
