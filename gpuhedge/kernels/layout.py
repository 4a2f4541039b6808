"""Column layouts of the kernel's tables, each declared once as an ordered list of named fields.

The engine flattens the user's objects into small float64 tables, and the kernels index their
columns (or rows: the per-path state, the outputs) with integer constants such as
``HEDGER_KIND`` or ``STATE_POSITION``. A ``Layout`` declares a table as a sequence of
``Group``s of ``Field``s, each field with its name and a one-line description; a field's index
is its position and the table's width is the number of its fields, so the indices of a table are
0 .. width - 1 without gaps or duplicates, and a name declared twice is refused.

Every group names its owner: the feature (a rule, a cost kind, the execution lag, the greeks
shared by rows) that needs those columns. The tables of this module describe the user's
objects as the engine flattens them and the kernel's outputs; the per-path state of a hedger
row is declared by its owners, each in its own module, and assembled in ``kernels/state.py``
(a rule, cost kind or path-dependent payoff that needs state declares its group beside its
code). This module imports no other of the package, so that every owner can.

``tables`` (and ``state``, for the per-path state) binds each field's index to a module-level
integer of the field's name, which ``_math`` imports and numba folds into the kernels as a
compile-time constant (the kernels never read these objects), and checks on import that every
binding is the declared index (``check_bound``).
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Field:
    """One column: the name of its index constant and what it holds."""

    name: str
    doc: str


@dataclass(frozen=True)
class Group:
    """Consecutive columns that one feature (``owner``) needs."""

    owner: str
    fields: tuple


def group(owner, *fields):
    """A ``Group`` of ``owner`` from (name, description) pairs."""
    return Group(owner, tuple(Field(name, doc) for name, doc in fields))


class Layout:
    """An ordered table of named columns, in groups by owner.

    Parameters
    ----------
    name : str
        The table's name (the kernel argument that holds it).
    doc : str
        What a row (or column) of the table is.
    *groups : Group
        The columns in order; a field's index is its position over all groups.

    Raises
    ------
    ValueError
        If a field name is declared twice, or is not an upper-case identifier.
    """

    def __init__(self, name, doc, *groups):
        self.name, self.doc, self.groups = name, doc, tuple(groups)
        self.fields = tuple(f for g in self.groups for f in g.fields)
        self._owners = owners = {}
        for g in self.groups:
            for f in g.fields:
                if not (f.name.isidentifier() and f.name.isupper()):
                    raise ValueError(f"Layout {name}: a field name must be an upper-case "
                                     f"identifier; got {f.name!r}")
                if f.name in owners:
                    raise ValueError(f"Layout {name}: field {f.name!r} is declared twice "
                                     f"(groups {owners[f.name]!r} and {g.owner!r})")
                owners[f.name] = g.owner
        self._index = {f.name: i for i, f in enumerate(self.fields)}

    @property
    def width(self) -> int:
        """Number of columns."""
        return len(self.fields)

    @property
    def names(self) -> tuple:
        """Field names, in column order."""
        return tuple(f.name for f in self.fields)

    @property
    def columns(self) -> tuple:
        """The column indices 0 .. width - 1, in the order of ``names`` (for unpacking)."""
        return tuple(range(self.width))

    def index(self, name) -> int:
        """Column index of the field ``name``."""
        try:
            return self._index[name]
        except KeyError:
            raise ValueError(f"Layout {self.name}: no field {name!r}; the fields are "
                             f"{', '.join(self.names)}") from None

    def stack(self, **values) -> np.ndarray:
        """The table from its columns by name: every field's value (a number, or an array of
        one shape for all fields), stacked in column order along a new last axis (float64).

        Raises
        ------
        ValueError
            If a field is missing or a name is not a field.
        """
        unknown = [name for name in values if name not in self._index]
        missing = [name for name in self.names if name not in values]
        if unknown or missing:
            raise ValueError(f"Layout {self.name}: stack needs exactly the fields "
                             f"{', '.join(self.names)}; got {', '.join(values)}")
        return np.stack([np.asarray(values[name], dtype=np.float64) for name in self.names],
                        axis=-1)

    def owner(self, name) -> str:
        """Owner of the group that declares the field ``name``."""
        self.index(name)
        return self._owners[name]

    def check_bound(self, namespace):
        """Check that ``namespace`` (a module's globals) binds every field's name to its index.

        Raises
        ------
        ValueError
            Naming the first field that is missing or bound to another index.
        """
        for i, f in enumerate(self.fields):
            if namespace.get(f.name) != i:
                raise ValueError(f"Layout {self.name}: {f.name} must be bound to {i}; got "
                                 f"{namespace.get(f.name)!r}")


BOOK = Layout(
    "book", "one option of the book",
    group("book (instruments.Book)",
          ("BOOK_STRIKE", "strike"),
          ("BOOK_MATURITY", "maturity (years, a grid point)"),
          ("BOOK_QUANTITY", "number of options held (negative: sold)"),
          ("BOOK_IS_CALL", "1 for a call, 0 for a put"),
          ("BOOK_STEP", "grid step of the maturity"),
          ("BOOK_LOG_STRIKE", "ln(strike)")))

TAU = Layout(
    "book_tau", "one option of the book at one grid point",
    group("book (instruments.Book)",
          ("TAU_SQRT", "sqrt(T_i - t_k), 0 once expired"),
          ("TAU_DIV_DISCOUNT", "e^{-q (T_i - t_k)}, 1 once expired")))

GRID = Layout(
    "grid", "one grid point t_k",
    group("time grid",
          ("GRID_TIME", "t_k (years)"),
          ("GRID_DISCOUNT", "e^{-r t_k}"),
          ("GRID_DIVIDEND", "(e^{q dt_k} - 1) e^{-r t_k}: the dividend yield credited on step k, "
                            "present value")))

# ``hp`` holds the constants of the hedge-vol rules of the market's model; the two layouts share
# the array (``Model.hedge_params``).
HP_VARIANCE = Layout(
    "hp", "constants of the variance-based hedge-vol rules",
    group("Heston-type markets (models.Heston, models.Bates)",
          ("HP_KAPPA", "mean reversion speed of the variance"),
          ("HP_THETA", "long-run variance"),
          ("HP_XI", "vol of variance"),
          ("HP_RHO", "correlation of the price and variance shocks")))

HP_MODEL = Layout(
    "hp", "constants of the model delta (RULE_MODEL)",
    group("Black-Scholes and Merton markets (models.BlackScholes, models.Merton)",
          ("HP_VOL", "diffusion vol"),
          ("HP_LAM", "jump intensity (0: Black-Scholes)"),
          ("HP_MU_J", "mean of the log jump size"),
          ("HP_SIGMA_J", "standard deviation of the log jump size"),
          ("HP_TERMS", "number of terms of Merton's series")))

# A hedger row is one strategy for a group of cost levels that it trades alike (HEDGER_BY_COST).
HEDGER = Layout(
    "hedgers", "one rule for one group of cost levels",
    group("every rule (engine._hedger_table, Strategy.row_params)",
          ("HEDGER_KIND", "the rule's kind (KIND_*)"),
          ("HEDGER_VOL", "the rule's vol (its implied vol, or a vol the rule modifies)"),
          ("HEDGER_RULE", "the hedge-vol rule (RULE_*)"),
          ("HEDGER_PREMIUM", "value paid for the book at t=0 (portfolio insurers: PV of the "
                             "floor minus the capital)"),
          ("HEDGER_STRATEGY", "index of the strategy"),
          ("HEDGER_COST", "id of the row's group of cost levels (``serves``)"),
          ("HEDGER_P1", "rule parameter 1 (band: width in shares; spot move: pct; "
                        "Whalley-Wilmott, Zakamouline: proportional cost lambda; synthetic put: "
                        "strike; CPPI: multiplier)"),
          ("HEDGER_P2", "rule parameter 2 (band: 1 = to the edge; Whalley-Wilmott, "
                        "Zakamouline: risk aversion gamma; synthetic put: number of units; "
                        "CPPI: leverage cap)"),
          ("HEDGER_PRICE_AT_START", "1: price the book at the hedge vol at each path's first "
                                    "price (supplied paths)"),
          ("HEDGER_LAG", "execution lag in grid steps"),
          ("HEDGER_P3", "rule parameter 3 (Zakamouline: 1 if the book is short gamma; "
                        "synthetic put, CPPI: PV of the floor)")),
    group("hedge option (DeltaGammaHedge, DeltaVegaHedge: Strategy.columns)",
          ("HEDGER_OPT_STRIKE", "strike at t=0"),
          ("HEDGER_OPT_STEP", "grid step of its first event (expiry, or roll; n_steps + 1 when "
                              "after the horizon)"),
          ("HEDGER_OPT_IS_CALL", "1 for a call"),
          ("HEDGER_OPT_VOL", "its implied vol"),
          ("HEDGER_OPT_TENOR", "grid steps between rolls (0: no roll)"),
          ("HEDGER_OPT_MATURITY", "its maturity in years (the tenor of each fresh option)")),
    group("rows shared by cost levels and by greeks (engine._hedger_table)",
          ("HEDGER_BY_COST", "how cost levels share the row (Strategy.cost_grouping): 0 same "
                             "lag, 1 same proportional cost and lag, 2 one level"),
          ("HEDGER_GREEKS", "the first row with the same vol and hedge-vol rule, whose book "
                            "delta and gamma the row reads")),
    group("start (Strategy.columns)",
          ("HEDGER_INITIAL_SHARES", "shares held at t=0 before the first hedge (bought before "
                                    "the run at the path's first price: no cost)"),
          ("HEDGER_START_EDGE", "1: a band rule's first hedge goes only to the band's edge; "
                                "0: to the target")),
    group("traits (Strategy.trait_columns)",
          ("HEDGER_DECIDES", "how the rule decides, an index of DECISIONS: never; in the lane "
                             "loops from the book's delta and gamma; lane by lane (hedge_lane)"),
          ("HEDGER_DELTA", "1: the rule hedges the book's delta"),
          ("HEDGER_GAMMA", "1: the rule reads the book's gamma"),
          ("HEDGER_OPTION_HEDGE", "1: the rule holds a hedge option"),
          ("HEDGER_INSURER", "1: a portfolio insurer (holds no book)")))

COST = Layout(
    "costs", "one cost level",
    group("costs.Costs",
          ("COST_PROPORTIONAL", "proportional cost of share trades"),
          ("COST_FIXED", "fixed fee per trade"),
          ("COST_ENDS", "1: the initial hedge and the final unwind pay too"),
          ("COST_IMPACT_SQRT", "square-root impact coefficient eta sigma_d / sqrt(adv)"),
          ("COST_IMPACT_LINEAR", "linear impact coefficient eta sigma_d / adv"),
          ("COST_BORROW", "funding spread: borrow rate - rate"),
          ("COST_LEND", "funding spread: rate - lend rate"),
          ("COST_OPTION", "proportional cost of option trades"),
          ("COST_GROUP_RULE", "id of the level's group of the cost-dependent rules (same "
                              "proportional cost and lag; HEDGER_COST)"),
          ("COST_GROUP_LAG", "id of the level's group of the other rules (same lag)")))

OUT = Layout(
    "out", "one output field of out[field, strategy, cost, path]",
    group("results (engine._dataset)",
          ("OUT_PNL", "hedger's P&L, present value at t=0"),
          ("OUT_COST", "trading and funding costs paid, present value at t=0"),
          ("OUT_SPREAD", "proportional costs (spread) on shares and options"),
          ("OUT_FEE", "fixed fees"),
          ("OUT_IMPACT", "market impact"),
          ("OUT_FUNDING", "funding spreads on the cash account"),
          ("OUT_TRADES", "number of share trades (incl. the final unwind)"),
          ("OUT_TURNOVER", "traded share notional sum |q| S, present value at t=0")))

REC = Layout(
    "rec", "one field of the per-date record rec[field, grid point, strategy, cost, path]",
    group("the per-date record (engine.RECORD)",
          ("REC_SHARES", "shares held after the date's trades"),
          ("REC_OPTIONS", "hedge options held after the date's trades"),
          ("REC_CASH", "cash account at the date"),
          ("REC_BOOK", "value of the book's options still alive"),
          ("REC_VALUE", "value of the hedged position"),
          ("REC_PNL", "P&L to date, present value at t=0"),
          ("REC_COST", "costs paid up to the date, present value at t=0"),
          ("REC_TRADES", "share trades up to the date")))

LANE = Layout(
    "lanes", "one row of a block's lane scratch lanes[row, lane]",
    group("model step",
          ("LANE_SPOT", "spot"),
          ("LANE_VAR", "second state variable (variance)"),
          ("LANE_LOG_SPOT", "ln(spot)")),
    group("settlement",
          ("LANE_SETTLED", "the book's settlements so far, present value at t=0")),
    group("jumps (jump_counts)",
          ("LANE_DRAW", "number of jumps on the step"),
          ("LANE_U", "the uniform that the Poisson inversion inverts"),
          ("LANE_P", "P(N = n) of the inversion"),
          ("LANE_CDF", "P(N <= n) of the inversion")),
    group("trades",
          ("LANE_QTY", "the order of the row on the step")),
    group("paired normals (Dynamics.paired)",
          ("LANE_NEXT", "the second normal of a pair, for the next step")),
    group("Whalley-Wilmott rows",
          ("LANE_BAND", "whalley_wilmott_path_part of one greeks row at one grid point")))

TABLES = (BOOK, TAU, GRID, HP_VARIANCE, HP_MODEL, HEDGER, COST, OUT, REC, LANE)


def check_bound(namespace):
    """``Layout.check_bound`` of every table of ``TABLES``."""
    for table in TABLES:
        table.check_bound(namespace)
