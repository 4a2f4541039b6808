"""The single dispatch point: objects in, one fused kernel pass per path chunk, xarray out.

P&L convention (the one definition used everywhere in the package)
------------------------------------------------------------------
For each path, strategy and cost level the hedger

1. buys the book at t=0 at its Black-Scholes value at the strategy's vol (the market's
   reference vol for ``NoHedge()``); a short book has negative value, so the hedger receives
   the premium; the shares a rule holds at t=0 (``initial_shares``, default none) are part
   of its initial value at the first price S_0, as if bought then without cost, so that the
   pnl of a partly hedged start is comparable with that of a start from none;
2. trades shares (and, for the option hedges, a hedge option) at the grid points its rule
   chooses, to hold minus the book's delta, paying the cost level's costs per trade
   (``gpuhedge.costs.Costs``: spread, fee, market impact; fills delayed by the execution lag);
   shares earn the dividend yield;
3. receives (pays) each option's payoff at that option's maturity (cash settlement);
4. sells (buys back) its shares at the horizon T, the latest maturity, paying costs on that
   trade too.

Cash is borrowed and lent at the market's ``rate`` (funding spreads to other borrowing and
lending rates are a cost). ``pnl`` is the present value at t=0 of all these cash flows:
sum_k e^{-r t_k} CF_k. A perfect hedge at the true vol in a Black-Scholes world without costs
has pnl -> 0 as the rebalancing interval -> 0. ``cost_paid`` is the present value of the costs,
so that pnl(costs) = pnl(no costs) - cost_paid path by path when the costs do not change the
trades (they do for the cost-dependent rules and for execution lag).

Portfolio insurers (``SyntheticPut``, ``CPPI``) hold no book: they start from their capital
and owe their floor at the horizon, so their ``pnl`` is the PV of (final value - floor).
"""

import dataclasses
import datetime
import json
import math

import numpy as np
import xarray as xr

from . import backend, launches, memory, metrics, reductions
from ._version import __version__
from . import _validation as check
from .costs import Costs
from .instruments import Book, Position
from .kernels import _math, black_scholes, layout
from .models import MODELS, Market, rule_markets
from .pricing import price
from .rules import CPPI, RULES, RowSetting, Strategy

DTYPES = ("float64", "float32")
STORAGE = ("float64", "float32")  # per-path floats returned (the sweep store's choices)
MAX_PATHS = 2**32  # the path index is one 32-bit Philox counter word
MAX_STEPS = 10**7  # far beyond any hedging grid; the time grid is built in memory
KINDS = frozenset(r.kind for r in RULES)  # the kernel's kinds: the registered rules'


def named_items(owner, name, value, kind):
    """A dict name -> object from one object, a list or a dict (names default to the repr)."""
    if isinstance(value, kind):
        items = {repr(value): value}
    elif isinstance(value, dict):
        items = dict(value)
    elif isinstance(value, (list, tuple)):
        items = {repr(v): v for v in value}
        if len(items) != len(value):
            raise ValueError(f"{owner}: '{name}' must hold distinct objects (name them with a "
                             f"dict); got {len(value) - len(items)} duplicate(s) in {value!r}")
    else:
        raise ValueError(f"{owner}: '{name}' must be a {kind.__name__}, a list or a dict of "
                         f"them; got {type(value).__name__}")
    if not items:
        raise ValueError(f"{owner}: '{name}' must hold at least one {kind.__name__}; got "
                         f"an empty {type(value).__name__}")
    for key, v in items.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"{owner}: '{name}' keys must be non-empty strings; got {key!r}")
        if not isinstance(v, kind):
            raise ValueError(f"{owner}: '{name}[{key!r}]' must be a {kind.__name__}; "
                             f"got {type(v).__name__}")
        if kind is Strategy and getattr(v, "kind", None) not in KINDS:
            raise ValueError(f"{owner}: '{name}[{key!r}]' must be one of the package's "
                             f"rules (gpuhedge.rules.RULES); got "
                             f"{type(v).__name__}")
    return items


def as_book(owner, book):
    """``book`` as a Book (a Position becomes a book of one); ``owner`` names the caller in
    the error for anything else."""
    if isinstance(book, Position):
        return Book([book])
    if not isinstance(book, Book):
        raise ValueError(f"{owner}: 'book' must be a Book or a Position; "
                         f"got {type(book).__name__}")
    return book


def _book_table(owner, book, times, hint):
    """Rows of the book table (``layout.BOOK``); maturities must be grid points (``hint`` says
    how to put them there)."""
    rows = []
    for i, p in enumerate(book.positions):
        step = int(np.argmin(np.abs(times - p.option.maturity)))
        if not math.isclose(times[step], p.option.maturity, rel_tol=1e-9, abs_tol=1e-12):
            raise ValueError(
                f"{owner}: 'book.positions[{i}].option.maturity' must be a point of the time "
                f"grid ({hint}); got {p.option.maturity!r}")
        rows.append(layout.BOOK.stack(
            BOOK_STRIKE=p.option.strike, BOOK_MATURITY=p.option.maturity,
            BOOK_QUANTITY=p.quantity, BOOK_IS_CALL=1.0 if p.option.is_call else 0.0,
            BOOK_STEP=float(step), BOOK_LOG_STRIKE=math.log(p.option.strike)))
    return np.array(rows, dtype=np.float64)


def _book_tau(book_table, times, dividend):
    """(points x options x ``layout.TAU``): sqrt(T_i - t_k) and e^{-q (T_i - t_k)}, 0 and 1
    once expired."""
    tau = np.maximum(book_table[None, :, _math.BOOK_MATURITY] - times[:, None], 0.0)
    return layout.TAU.stack(TAU_SQRT=np.sqrt(tau), TAU_DIV_DISCOUNT=np.exp(-dividend * tau))


PREMIUMS = ("hedge", "model")


def _hedger_table(owner, strategies, cost_levels, market, book, book_table, times,
                  premium="hedge", spot0=None, rate=None, dividend=0.0):
    """The kernel's hedger rows and their (steps x rows) uint8 table of trading points.

    A row holds the ``_math.HEDGER_*`` columns: kind, vol, hedge-vol rule, premium, strategy
    index, cost index or -1, the rule's parameters, price at start, execution lag, the hedge
    option. Cost-dependent rules get one row per cost level, and so does every rule when the
    cost levels have different execution lags. ``premium="hedge"``: the value of the book
    at t=0 under the row's own hedge-vol rule and vol (Black-Scholes, or the model's value for
    the model rule); ``"model"``: the market model's value (``gpuhedge.pricing.price``) for
    every row. With supplied paths (``market`` None) the kernel prices the book at each path's
    first price instead.
    """
    if market is not None:
        # only premium="model" prices the book under the market (a model may have no pricer)
        model_value = sum(p.quantity * float(price(market, p.option))
                          for p in book.positions) if premium == "model" else None
        hp = market.hedge_params(book.horizon)
        spot0, rate, dividend = market.spot, market.rate, market.dividend
    dt = times[1] - times[0]
    groups = _cost_groups(cost_levels)
    rows, schedules = [], []
    for j, (name, s) in enumerate(strategies.items()):
        allowed = rule_markets(s.rule)
        if allowed and not isinstance(market, allowed):
            raise ValueError(f"{owner}: 'hedges[{name!r}].hedge_vol' = {s.hedge_vol!r} needs a "
                             f"{' or '.join(m.__name__ for m in allowed)} market; got "
                             f"{type(market).__name__ if market else 'supplied paths'}")
        base_vol = s.vol
        if base_vol is None:
            # only CPPI, which uses no vol, may go without one on supplied paths
            base_vol = market.reference_vol if market is not None else 0.0
        short_gamma = _book_gamma(book_table, spot0, base_vol, market) < 0.0
        setting = RowSetting(spot=float(spot0), times=times, rate=float(rate),
                             dividend=float(dividend), short_gamma=short_gamma)
        try:
            columns = s.columns(setting)
        except ValueError as error:
            raise ValueError(f"{owner}: hedges[{name!r}]: {error}") from None
        schedule = s.schedule(times)
        for group, level in enumerate(groups[s.cost_grouping]):
            vol, p1, p2 = s.row_params(book, level if s.cost_dependent else None, dt,
                                       short_gamma)
            vol = base_vol if vol is None else vol
            if market is None:
                value = 0.0  # priced in the kernel at each path's first price
            elif premium == "model":
                value = model_value
            else:
                value = _premium(book_table, market, hp, vol, s.rule)
            row = np.zeros(_math.N_HEDGER)
            row[[_math.HEDGER_KIND, _math.HEDGER_VOL, _math.HEDGER_RULE, _math.HEDGER_PREMIUM,
                 _math.HEDGER_STRATEGY, _math.HEDGER_COST, _math.HEDGER_P1, _math.HEDGER_P2,
                 _math.HEDGER_PRICE_AT_START, _math.HEDGER_LAG, _math.HEDGER_OPT_STEP,
                 _math.HEDGER_BY_COST]] = (
                s.kind, vol, s.rule, value, j, group, p1, p2,
                float(market is None and not s.insurer), level.lag, -1.0,
                float(s.cost_grouping))
            for column, x in {**s.trait_columns(), **columns}.items():
                row[column] = x
            rows.append(row)
            schedules.append(schedule)
    table = np.array(rows, dtype=np.float64)
    table[:, _math.HEDGER_GREEKS] = _greek_owners(table)
    return table, np.column_stack(schedules).astype(np.uint8)


def _greek_owners(table):
    """Per row, the first row with the same hedge vol and hedge-vol rule among the rows that
    hedge the book's delta (``_math.HEDGER_GREEKS``): the kernel computes the book's delta and
    gamma once per grid point for each such group. Other rows own themselves."""
    owners, first = [], {}
    for h, row in enumerate(table):
        if row[_math.HEDGER_DELTA] > 0.5:
            owners.append(first.setdefault((row[_math.HEDGER_VOL], row[_math.HEDGER_RULE]), h))
        else:
            owners.append(h)
    return owners


def _group_keys(cost_levels):
    """Per cost level, the keys of its two groups: (proportional, lag) for the rules that
    depend on the proportional cost, and the lag for the others (``_math.HEDGER_COST``)."""
    return ([(c.proportional, c.lag) for c in cost_levels.values()],
            [c.lag for c in cost_levels.values()])


def _cost_groups(cost_levels):
    """{grouping: [first cost level of each group, in order]} for the groupings of
    ``Strategy.cost_grouping``: 0 by lag, 1 by (proportional cost, lag), 2 every level."""
    by_rule, by_lag = _group_keys(cost_levels)
    levels = list(cost_levels.values())
    groups = {flag: [levels[keys.index(key)] for key in dict.fromkeys(keys)]
              for flag, keys in ((1, by_rule), (0, by_lag))}
    groups[2] = levels
    return groups


def kernel_rows(strategies, cost_levels):
    """Number of hedger rows the kernel runs for named strategies and cost levels."""
    groups = _cost_groups(cost_levels)
    return sum(len(groups[s.cost_grouping]) for s in strategies.values())


def _book_gamma(book_table, spot, vol, market):
    """Black-Scholes gamma of the book at t=0 (its sign tells Leland's rule which way to go)."""
    rate, div = (0.0, 0.0) if market is None else (market.rate, market.dividend)
    return sum(row[_math.BOOK_QUANTITY] * black_scholes.bs_gamma(
        spot, row[_math.BOOK_STRIKE], row[_math.BOOK_MATURITY], vol, rate, div)
        for row in book_table)


def cost_table(cost_levels, rate, reference_vol):
    """Rows of the kernel's cost table (``layout.COST``), with the impact coefficients at the
    market's ``reference_vol`` (None with supplied paths) and the funding spreads over
    ``rate``."""
    rows = []
    by_rule, by_lag = _group_keys(cost_levels)
    rule_ids, lag_ids = (list(dict.fromkeys(keys)) for keys in (by_rule, by_lag))
    for i, c in enumerate(cost_levels.values()):
        impact_sqrt, impact_linear = c.impact_coefficients(reference_vol)
        borrow, lend = c.funding_spreads(rate)
        rows.append(layout.COST.stack(
            COST_PROPORTIONAL=c.proportional, COST_FIXED=c.fixed, COST_ENDS=float(c.ends),
            COST_IMPACT_SQRT=impact_sqrt, COST_IMPACT_LINEAR=impact_linear, COST_BORROW=borrow,
            COST_LEND=lend, COST_OPTION=c.option_proportional,
            COST_GROUP_RULE=rule_ids.index(by_rule[i]), COST_GROUP_LAG=lag_ids.index(by_lag[i])))
    return np.array(rows, dtype=np.float64)


def _premium_table(hedgers, costs, n_strategies):
    """(strategy, cost) premia from the rows (each row fills the cost levels it serves)."""
    out = np.empty((n_strategies, costs.shape[0]))
    for row in hedgers:
        served = [_math.serves(costs, c, row[_math.HEDGER_BY_COST], row[_math.HEDGER_COST])
                  for c in range(costs.shape[0])]
        out[int(row[_math.HEDGER_STRATEGY]), served] = row[_math.HEDGER_PREMIUM]
    return out


def _premium(book_table, market, hp, vol, rule):
    """Value of the book at t=0 under a hedge-vol rule: the kernel's own scalar formulas."""
    spot, v0 = market.initial_state()
    value = 0.0
    for row in book_table:
        strike, maturity = row[_math.BOOK_STRIKE], row[_math.BOOK_MATURITY]
        call = row[_math.BOOK_IS_CALL] > 0.5
        if rule == _math.RULE_MODEL:
            one = _math.merton_price(spot, strike, maturity, hp[_math.HP_VOL], market.rate,
                                     market.dividend, hp[_math.HP_LAM], hp[_math.HP_MU_J],
                                     hp[_math.HP_SIGMA_J], call, int(hp[_math.HP_TERMS]))
        else:
            sigma = _math.rule_vol(rule, vol, v0, hp, maturity)
            one = black_scholes.bs_price(spot, strike, maturity, sigma, market.rate,
                                         market.dividend, call)
        value += row[_math.BOOK_QUANTITY] * one
    return float(value)


def _grid(times, rate, dividend):
    """Rows (t_k, e^{-r t_k}, (e^{q dt_k} - 1) e^{-r t_k}): time, discount, dividend factor."""
    disc = np.exp(-rate * times)
    div = np.zeros_like(times)
    div[1:] = np.expm1(dividend * np.diff(times)) * disc[1:]
    return layout.GRID.stack(GRID_TIME=times, GRID_DISCOUNT=disc, GRID_DIVIDEND=div)


def describe(obj):
    """JSON-ready description of a frozen dataclass (with its type)."""
    if isinstance(obj, Book):
        return {"type": "Book", "positions": [
            {"type": type(p.option).__name__, **dataclasses.asdict(p.option),
             "quantity": p.quantity} for p in obj.positions]}
    return {"type": type(obj).__name__, **dataclasses.asdict(obj)}


def _plan(owner, device, n_paths, chunk_paths, *, n_strategies, costs_table, hedgers, dtype,
          n_times, n_options, keep="paths", supplied=False, record=False, registers=None):
    """(paths per launch, threads per block) of a run; ``chunk_paths``, validated, when the
    caller gives it. ``registers``: the kernel's registers per thread (``_registers``; None:
    unknown, the plan assumes the most a thread may use).

    The CPU kernel keeps its state per block of paths and writes a per-path result itself:
    one launch, no threads per block (None); with ``keep="stats"`` as many paths as their
    outputs and the reduction's temporaries fit in ``memory.scratch_bytes``. On a GPU the
    launch plan of ``launches.plan``: the device bytes of a launch (``launches.device_bytes``,
    the state per hedger row) within a share of the free device memory, balanced launches of
    whole blocks, and the threads per block the device's registers favour.
    """
    if chunk_paths is not None:
        chunk_paths = check.integer(owner, "chunk_paths", chunk_paths, low=1)
    cells = n_strategies * costs_table.shape[0]
    temporaries = reductions.work_bytes(cells, 1) if keep == "stats" else 0
    if device != "cuda":
        if chunk_paths is None:
            chunk_paths = n_paths if keep == "paths" else max(1024, (
                memory.scratch_bytes() // (8 * _math.N_OUT * cells + dtype.itemsize
                                           + temporaries)) // 1024 * 1024)
        return chunk_paths, None
    per_path, fixed = launches.device_bytes(
        n_hedgers=hedgers.shape[0], n_rows=_n_rows(hedgers), cells=cells, n_times=n_times,
        n_options=n_options, itemsize=dtype.itemsize, record=record, supplied=supplied,
        temporaries=temporaries)
    facts = backend.device_facts()
    if registers is not None:
        facts = dataclasses.replace(facts, registers_per_thread=registers)
    plan = launches.plan(facts, n_paths, per_path=per_path, fixed=fixed)
    return plan.paths if chunk_paths is None else chunk_paths, plan.threads


def _n_rows(hedgers):
    """State rows per hedger row: ``_math.N_STATE`` and the largest lag's."""
    return _math.N_STATE + int(hedgers[:, _math.HEDGER_LAG].max())


def _specialisation(hedgers, costs, grid):
    """(features, rows) of the CUDA kernel of a run: the code paths its rows, costs and grid
    take (``_math.Features.of``; a kernel holds only those) and the shape of a path's state
    (hedger rows, state rows per hedger row)."""
    return _math.Features.of(hedgers, costs, grid), (hedgers.shape[0], _n_rows(hedgers))


def _registers(device, dynamics, dtype, hedgers, costs, times, rate, dividend, record=False):
    """Registers per thread of the run's CUDA kernel (``kernels.cuda.registers``); None on
    the CPU."""
    if device != "cuda":
        return None
    from .kernels import cuda as target

    return target.registers(dynamics, dtype.name, record,
                            *_specialisation(hedgers, costs, _grid(times, rate, dividend)))


def _launcher(dynamics, spot0, v0, mp, hp, paths, times, book_table, n_strategies, hedgers,
              schedule, costs, rate, dividend, *, first_path=0, seed, stream, antithetic, device,
              dtype, record=False, threads=None):
    """``run(start, n, out=None)``: one kernel launch on paths first_path + start ..
    first_path + start + n - 1, returning its outputs (``_math.OUT_*`` fields x strategy x
    cost x path, the terminal spot and the per-date record: ``_math.REC_*`` fields x grid
    point x strategy x cost x path, with no grid point unless ``record``) where the kernel ran
    (CuPy arrays on a GPU). Without ``out`` the outputs go to buffers reused by the next
    launch of the same size. On a GPU, blocks of ``threads`` threads (``_plan``), enqueued on
    CuPy's current stream without waiting."""
    nh, ns, nc = hedgers.shape[0], n_strategies, costs.shape[0]
    xp = backend.array_module(device)
    grid = _grid(times, rate, dividend)
    if device == "cuda":
        from .kernels import cuda as target

        features, rows = _specialisation(hedgers, costs, grid)
        on = backend.stream_pointer()

        def launch(n, *args):
            target.launch(dynamics, dtype.name, record, features, rows, n, *args,
                          threads=threads, stream=on)
    else:
        from .kernels import cpu as target

        def launch(n, *args):
            target.kernel(dynamics, dtype.name, record)(*args)

    grid = xp.asarray(grid)
    # the model's parameters in the kernel's precision: its step computes in it
    tables = [xp.asarray(mp, dtype=dtype)] + [
        xp.asarray(a) for a in (hp, book_table, _book_tau(book_table, times, dividend), hedgers,
                                schedule, costs)]
    no_paths = xp.zeros((1, 1), dtype=dtype)
    buffers = {}
    record_times = times.size if record else 0  # the kernel records when this is not 0

    def run(start, n, out=None):
        if buffers.get("n") != n:
            # The kernels keep their state themselves (a CPU block of paths, a GPU thread) and
            # read only this array's shape: (hedger rows, state rows, 0).
            buffers.clear()
            buffers.update(n=n, state=xp.empty((nh, _n_rows(hedgers), 0)))
        if out is None:
            if "out" not in buffers:  # zeros: the kernel leaves uncharged cost fields untouched
                buffers["out"] = (xp.zeros((_math.N_OUT, ns, nc, n)), xp.empty(n, dtype=dtype),
                                  xp.empty((_math.N_REC, record_times, ns, nc, n)))
            out = buffers["out"]
        chunk = no_paths if paths is None else xp.asarray(paths[start:start + n])
        launch(n, np.int64(first_path + start), np.uint64(seed), np.uint64(stream), antithetic,
               float(spot0), float(v0), tables[0], tables[1], chunk, grid, *tables[2:],
               float(rate), float(dividend), buffers["state"], *out)
        return out

    return run


def _launches(n_paths, chunk_paths):
    """(first path, paths) of each launch."""
    return [(start, min(chunk_paths, n_paths - start))
            for start in range(0, n_paths, chunk_paths)]


def _run(run, *, n_paths, chunk_paths, n_strategies, costs, device, dtype, storage,
         record_times=0):
    """Every launch of ``run`` (``_launcher``) into host arrays: the outputs by field
    (``_math.OUT_*`` -> strategy x cost x path), the terminal spot and the per-date record
    (float64, ``record_times`` grid points: those of ``run``'s record; None without).

    One CPU launch writes the result itself, float64 (``_dataset`` casts it). Otherwise each
    launch's outputs come back field by field, only the cost levels that charge a cost field
    (``_math.charges``; the others stay zero), trades as int32 and the other fields in the
    ``storage`` precision, cast where the kernel ran: on a GPU, a float32 download is half
    the bytes of a float64 one. The downloads land in host buffers of one launch (page-locked
    on a GPU, where they are enqueued on the kernels' stream without waiting), from which the
    host copies them into the result while the next launch runs."""
    n_costs = costs.shape[0]
    shape = (n_strategies, n_costs, n_paths)
    spot = np.empty(n_paths, dtype=dtype)
    recorded = np.empty((_math.N_REC, record_times) + shape)
    kept = recorded if record_times else None
    if device != "cuda" and chunk_paths >= n_paths:
        # np.zeros maps fresh zero pages: the cost fields no level charges cost nothing
        result = np.zeros((_math.N_OUT,) + shape)
        run(0, n_paths, (result, spot, recorded))
        return result, spot, kept
    result, levels = {}, {}
    for field in range(_math.N_OUT):
        result[field] = np.zeros(shape, dtype=np.int32 if field == _math.OUT_TRADES
                                 else storage)
        levels[field] = [c for c in range(n_costs) if field not in memory.COST_FIELDS
                         or _math.charges(costs, c, field)]
    staging = {}  # host buffers of one launch's downloads, page-locked on a GPU

    def download(name, array):  # the first launch is the largest: its buffers serve them all
        if name not in staging:
            staging[name] = backend.pinned_empty(array.size, array.dtype, device)
        host = staging[name][:array.size].reshape(array.shape)
        backend.download(array, host)
        return host

    def downloads(out, out_spot, out_record):
        """Enqueue the downloads of a launch's outputs: {what: host buffer}."""
        copies = {"spot": download("spot", out_spot)}
        if record_times:
            copies["record"] = download("record", out_record)
        for field, served in levels.items():
            if served:
                kept = out[field] if len(served) == n_costs else out[field][:, served]
                copies[field] = download(field, kept.astype(result[field].dtype, copy=False))
        return copies

    def scatter(sl, copies, done):
        """Copy a launch's downloads into the result once they are there."""
        backend.wait(done)
        spot[sl] = copies.pop("spot")
        if record_times:
            recorded[..., sl] = copies.pop("record")
        for field, host in copies.items():
            if len(levels[field]) == n_costs:
                result[field][..., sl] = host
            else:
                result[field][:, levels[field], sl] = host

    # One stream, in order: launch k, its downloads, launch k + 1, ... The host copies
    # launch k's downloads into the result while launch k + 1 runs, and enqueues launch k + 1's
    # downloads into the same buffers only then.
    previous = None
    for start, n in _launches(n_paths, chunk_paths):
        outputs = run(start, n)
        if previous is not None:
            scatter(*previous)
        previous = (slice(start, start + n), downloads(*outputs), backend.mark(device))
    scatter(*previous)
    return result, spot, kept


def _statistics(run, *, n_paths, chunk_paths, strategies, costs, attrs):
    """``reductions.reduce`` of every launch of ``run`` (``_launcher``): the statistics
    Dataset, with the run's attributes; a non-finite P&L is an error naming the scenario."""
    names_s = np.array(list(strategies), dtype=object)
    names_c = np.array(list(costs), dtype=object)
    dims = ("strategy", "cost", "path")
    parts = _launches(n_paths, chunk_paths)

    def outputs():
        for start, n in parts:
            out = run(start, n)[0]
            _check_finite(out[_math.OUT_PNL], names_s, names_c, attrs)
            yield out

    like = xr.DataArray(np.empty((len(names_s), len(names_c), 0)), dims=dims,
                        coords={"strategy": names_s, "cost": names_c})
    unhedged = metrics._unhedged(xr.Dataset(coords=like.coords, attrs=attrs), None)
    ds = reductions.reduce(outputs, [n for _, n in parts], like, unhedged)
    ds.attrs.update({k: v for k, v in attrs.items() if k != "owner"}, keep="stats")
    return ds


def _check_finite(pnl, names_s, names_c, attrs):
    """Refuse a P&L (strategy x cost x path, NumPy or CuPy) with a NaN or an inf, naming the
    first such scenario."""
    xp = backend.namespace(pnl)
    bad = backend.to_numpy(~xp.isfinite(pnl).all(axis=-1))
    if bad.any():
        h, c = (int(i) for i in np.argwhere(bad)[0])
        raise FloatingPointError(f"{attrs['owner']}: NaN or inf in the P&L of strategy "
                                 f"{names_s[h]!r}, cost {names_c[c]!r} (configuration: "
                                 f"{attrs['config']})")


# Cost kinds reported per path when some cost level charges them (``_math.charges``):
# variable -> (output field, description).
COST_KINDS = {
    "cost_spread": (_math.OUT_SPREAD, "proportional costs (spread) on shares and options"),
    "cost_fee": (_math.OUT_FEE, "fixed fees"),
    "cost_impact": (_math.OUT_IMPACT, "market impact"),
    "cost_funding": (_math.OUT_FUNDING, "funding spreads on the cash account"),
}


def _dataset(result, spot, strategies, costs, costs_table, attrs, times, first_path=0,
             storage=np.dtype("float64")):
    """The result Dataset (cost kinds that no level of ``costs_table`` charges left out), its
    floats in ``storage`` precision and its trades int32 (``_run``'s outputs cast where they
    are not); a non-finite P&L is an error naming the scenario."""
    names_s = np.array(list(strategies), dtype=object)
    names_c = np.array(list(costs), dtype=object)
    dims = ("strategy", "cost", "path")

    def values(field):  # cast only the fields that the Dataset holds
        return result[field].astype(np.int32 if field == _math.OUT_TRADES else storage,
                                    copy=False)

    pnl = values(_math.OUT_PNL)
    variables = {
        "pnl": (dims, pnl, {"long_name": "hedger's P&L, present value at t=0",
                            "units": "currency"}),
        "cost_paid": (dims, values(_math.OUT_COST),
                      {"long_name": "trading and funding costs paid, present value at t=0",
                       "units": "currency"}),
    }
    for name, (field, text) in COST_KINDS.items():
        if any(_math.charges(costs_table, c, field) for c in range(len(costs_table))):
            variables[name] = (dims, values(field), {"long_name": f"{text}, present value at t=0",
                                                     "units": "currency"})
    variables["trades"] = (dims, values(_math.OUT_TRADES),
                           {"long_name": "number of share trades (incl. final unwind)",
                            "units": "1"})
    variables["turnover"] = (dims, values(_math.OUT_TURNOVER),
                             {"long_name": "traded share notional sum |q| S, present value at "
                                           "t=0 (incl. the initial hedge and the final unwind)",
                              "units": "currency"})
    variables["terminal_spot"] = (("path",), spot, {"long_name": "spot at the horizon",
                                                    "units": "currency"})
    ds = xr.Dataset(variables, coords={"strategy": names_s, "cost": names_c,
                                       "path": np.arange(first_path, first_path + pnl.shape[-1])},
                    attrs=attrs)
    _check_finite(pnl, names_s, names_c, attrs)
    ds.attrs["horizon"] = float(times[-1])
    del ds.attrs["owner"]
    return ds


def _common_checks(owner, book, hedges, costs, seed, stream, device, dtype):
    book = as_book(owner, book)
    strategies = named_items(owner, "hedges", hedges, Strategy)
    cost_levels = named_items(owner, "costs", Costs() if costs is None else costs, Costs)
    seed = check.integer(owner, "seed", seed, low=0, high=2**32 - 1)
    stream = check.integer(owner, "stream", stream, low=0, high=2**32 - 1)
    device, reason = backend.choose(device, owner)
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        check.fail(owner, "dtype", "float64 or float32", dtype)
    return book, strategies, cost_levels, seed, stream, (device, reason), np.dtype(name)


def _attrs(owner, config, *, device, device_reason, dtype, n_steps, n_paths, **extra):
    """The result's attributes; ``device_reason``: why the run took its device
    (``backend.choose``); ``extra``: what only some runs have (a simulation's seed, stream and
    antithetic flag; the dates of supplied paths)."""
    return {"owner": owner, "gpuhedge_version": __version__, **extra,
            "device": backend.device_name(device), "device_reason": device_reason,
            "precision": dtype.name,
            "n_steps": n_steps, "n_paths": n_paths,
            "config": json.dumps(config, sort_keys=True)}


DAY_COUNTS = ("ACT/365", "trading/252")


def _year_fractions(owner, times, day_count):
    """(times in years, attributes, dates) from year fractions (returned as given, no
    attributes, dates None) or dates (converted by ``day_count``; attributes: first and last
    date, the day count; the dates as ``datetime64[ns]``)."""
    check.choice(owner, "day_count", day_count, DAY_COUNTS)
    array = np.asarray(times)
    if array.dtype.kind == "O" and array.size and all(
            isinstance(x, (datetime.date, np.datetime64)) for x in array.ravel()):
        array = array.astype("datetime64[ns]")
    if array.dtype.kind != "M":
        return times, {}, None
    if array.ndim != 1 or np.isnat(array).any():
        check.fail(owner, "times", "a 1-d array of dates without NaT", times)
    if day_count == "trading/252":
        years = np.arange(array.size) / 252.0
    else:
        years = (array - array[0]) / np.timedelta64(1, "D") / 365.0
    first, last = (str(np.datetime_as_string(d, unit="D")) for d in (array[0], array[-1]))
    return years, {"first_date": first, "last_date": last, "day_count": day_count}, \
        array.astype("datetime64[ns]")


# The per-date record of ``hedge_paths(record=True)``: variable -> (field, units, description).
RECORD = {
    "shares": (_math.REC_SHARES, "shares", "shares held after the date's trades (filled orders)"),
    "hedge_options": (_math.REC_OPTIONS, "options",
                      "hedge options held after the date's trades (option-hedging rules)"),
    "cash": (_math.REC_CASH, "currency",
             "cash account at the date: premium, trades, dividends, settlements and interest, "
             "net of costs"),
    "book_value": (_math.REC_BOOK, "currency",
                   "value at the date of the book's options still alive, Black-Scholes at the "
                   "strategy's vol (portfolio insurers: minus the floor's present value)"),
    "value": (_math.REC_VALUE, "currency",
              "value of the hedged position at the date: cash + shares x spot + hedge options "
              "+ book_value"),
    "pnl_to_date": (_math.REC_PNL, "currency",
                    "P&L to date: value discounted to t=0 (pnl at the last date)"),
    "cost_to_date": (_math.REC_COST, "currency",
                     "costs paid up to the date, present value at t=0 (cost_paid at the last "
                     "date)"),
    "trades_to_date": (_math.REC_TRADES, "1", "share trades up to the date (trades at the "
                                              "last date)"),
}


def _add_record(ds, recorded, times, dates, prices, hedgers):
    """Add the per-date variables of ``hedge_paths(record=True)`` over (time, strategy, cost,
    path) to ``ds``; ``time`` is labelled by the dates when given, else by the year
    fractions (coordinate ``years`` either way). ``hedge_options`` only when some rule holds
    hedge options."""
    option_hedges = (hedgers[:, _math.HEDGER_OPTION_HEDGE] > 0.5).any()
    dims = ("time", "strategy", "cost", "path")
    for name, (field, units, text) in RECORD.items():
        if name == "hedge_options" and not option_hedges:
            continue
        values = recorded[field]
        if name == "trades_to_date":
            values = values.astype(np.int32)
        ds[name] = (dims, values, {"long_name": text, "units": units})
    ds["spot"] = (("time", "path"), prices.T, {"long_name": "price of the underlying",
                                               "units": "currency"})
    label = {"long_name": "time from the first date", "units": "years"} if dates is None \
        else {"long_name": "date"}
    ds.coords["time"] = ("time", times if dates is None else dates, label)
    ds.coords["years"] = ("time", times, {"long_name": "time from the first date",
                                          "units": "years"})
    return ds


def simulate(market, book, hedges, costs=None, *, n_paths, n_steps, seed=0, stream=0,
             antithetic=False, device=None, dtype="float64", chunk_paths=None, first_path=0,
             premium="hedge", keep="paths", storage="float64"):
    """Simulate ``n_paths`` paths of ``market`` and hedge ``book`` along each with every strategy.

    All strategies and cost levels see the same paths (common random numbers) in one kernel
    pass; the P&L convention is in this module's docstring.

    Parameters
    ----------
    market : Market
        A market model of ``gpuhedge.models.MODELS`` (its ``dynamics`` select the compiled
        kernel).
    book : Book or Position
        The options the hedger holds (negative quantities: written).
    hedges : Strategy, list or dict of name -> Strategy
        Hedging rules; a single strategy or a list is named by its repr.
    costs : Costs, list or dict of name -> Costs, optional
        Cost levels (default: no costs).
    n_paths, n_steps : int
        Paths (<= 2**32) and simulation steps over the horizon (the latest maturity).
    seed, stream : int
        Philox key words in [0, 2**32); path p's numbers depend only on (seed, stream, p).
    antithetic : bool
        Paths 2j and 2j+1 use opposite normals.
    device : {"auto", "cpu", "cuda"}, optional
        Default: the ``GPUHEDGE_DEVICE`` environment variable, else "auto".
    dtype : {"float64", "float32"}
        Precision of the market's path: with "float32" the model's step, its random numbers,
        ln S and the Black-Scholes delta and gamma compute in float32 (about twice the
        arithmetic throughput on a GPU); trades, cash flows, P&L and costs are always
        accumulated in float64. Its error against float64 is documented in
        ``docs/precision.md``.
    chunk_paths : int, optional
        Paths per kernel launch (bounds device memory); results do not depend on it. Default:
        all paths on the CPU (the kernel writes the result in place; with ``keep="stats"``
        as many as a quarter of the available memory holds, 64 MiB to 1 GiB), on the GPU
        the fewest equal launches of whole blocks whose state and outputs fit in half the
        free device memory (``gpuhedge.launches.plan``).
    first_path : int
        Global index of the first path: the run covers paths first_path .. first_path +
        n_paths - 1, exactly as they are in a larger run (sweeps split work this way).
    premium : {"hedge", "model"}
        Price at which the book changes hands at t=0: the strategy's own hedge model
        (Black-Scholes at its hedge vol, or the model delta's model), or the market model's
        value for every strategy (then the risk-neutral mean P&L is 0 without costs).
    storage : {"float64", "float32"}
        Precision of the per-path floats returned with ``keep="paths"`` (the sweep's
        ``storage``): the kernel accumulates in float64 and rounds once, where it ran, so
        that a GPU's downloads are half the bytes with "float32". Trades are int32.
    keep : {"paths", "stats"}
        What comes back: every path's results, or only their statistics per strategy x cost,
        reduced launch by launch where the paths are (on the GPU, in device memory), so that
        no per-path result is held on the host (``gpuhedge.reductions``). The statistics
        equal ``gpuhedge.summary`` of the per-path result to rounding, the quantiles, VaR and
        CVaR exactly; a run of more than one launch simulates its paths twice for that.

    Returns
    -------
    xarray.Dataset
        With ``keep="paths"``: ``pnl``, ``cost_paid``, ``trades``, ``turnover`` and the costs
        by kind that some cost level has (``cost_spread``, ``cost_fee``, ``cost_impact``,
        ``cost_funding``) over (strategy, cost, path), ``terminal_spot`` over path,
        ``premium`` over (strategy, cost). With ``keep="stats"``: ``summary``'s variables
        and the P&L's ``min`` and ``max`` over (strategy, cost), and ``premium``. Attributes
        record version, seed, device, precision and the full configuration as JSON.

    Raises
    ------
    gpuhedge.MemoryBudgetError
        Before anything is allocated, when the run would hold more than 80% of the memory
        available: the host's (the per-path results stay on the host until the call returns,
        about 30 to 70 bytes per path and strategy-cost cell with ``keep="paths"``; with
        ``keep="stats"`` one launch's and a few bytes per cell), the address space a
        ``ulimit -v`` leaves, or the free device memory. The message gives the estimate, the
        memory available and the ways out: fewer paths, or ``gpuhedge.sweep`` into a store.
        The environment variable ``GPUHEDGE_MAX_MEMORY`` overrides the check: a budget such
        as ``"48GB"`` in place of the measured memory, or ``"off"`` (``gpuhedge.memory``).
    """
    owner = "simulate"
    if not isinstance(market, Market):
        raise ValueError(f"{owner}: 'market' must be a market model "
                         f"({', '.join(m.__name__ for m in MODELS)}); got {type(market).__name__}")
    book, strategies, cost_levels, seed, stream, (device, reason), dtype = _common_checks(
        owner, book, hedges, costs, seed, stream, device, dtype)
    n_paths = check.integer(owner, "n_paths", n_paths, low=1, high=MAX_PATHS)
    first_path = check.integer(owner, "first_path", first_path, low=0, high=MAX_PATHS - n_paths)
    n_steps = check.integer(owner, "n_steps", n_steps, low=1, high=MAX_STEPS)
    if not isinstance(antithetic, bool):
        raise ValueError(f"{owner}: 'antithetic' must be True or False; got {antithetic!r}")
    horizon = book.horizon
    times = horizon * np.arange(n_steps + 1) / n_steps
    book_table = _book_table(owner, book, times, f"choose 'n_steps' so that it is a multiple of "
                             f"horizon / n_steps = {horizon / n_steps:.6g}")
    check.choice(owner, "premium", premium, PREMIUMS)
    keep = check.choice(owner, "keep", keep, reductions.KEEPS)
    storage = np.dtype(check.choice(owner, "storage", storage, STORAGE))
    hedgers, schedule = _hedger_table(owner, strategies, cost_levels, market, book, book_table,
                                      times, premium)
    costs_table = cost_table(cost_levels, market.rate, market.reference_vol)
    chunk_paths, threads = _plan(owner, device, n_paths, chunk_paths,
                                 n_strategies=len(strategies), costs_table=costs_table,
                                 hedgers=hedgers, dtype=dtype,
                                 n_times=times.size, n_options=len(book_table), keep=keep,
                                 registers=_registers(device, market.dynamics, dtype, hedgers,
                                                      costs_table, times, market.rate,
                                                      market.dividend))
    chunk_paths = min(chunk_paths, n_paths)
    memory.check_run(owner, device=device, n_paths=n_paths, chunk_paths=chunk_paths,
                     n_strategies=len(strategies), costs_table=costs_table, hedgers=hedgers,
                     dtype=dtype, n_times=times.size, n_options=len(book_table), keep=keep,
                     storage=storage)
    spot0, v0 = market.initial_state()
    run = _launcher(
        market.dynamics, spot0, v0, market.kernel_params(horizon / n_steps),
        market.hedge_params(horizon), None, times, book_table, len(strategies), hedgers,
        schedule, costs_table, market.rate, market.dividend, first_path=first_path, seed=seed,
        stream=stream, antithetic=antithetic, device=device, dtype=dtype, threads=threads)

    config = {"market": describe(market), "book": describe(book),
              "hedges": {k: describe(v) for k, v in strategies.items()},
              "costs": {k: describe(v) for k, v in cost_levels.items()}, "premium": premium}
    attrs = _attrs(owner, config, seed=seed, stream=stream, device=device,
                   device_reason=reason, dtype=dtype,
                   n_steps=n_steps, n_paths=n_paths, antithetic=int(antithetic))
    if keep == "stats":
        ds = _statistics(run, n_paths=n_paths, chunk_paths=chunk_paths, strategies=strategies,
                         costs=cost_levels, attrs=attrs)
        ds.attrs["horizon"] = float(times[-1])
    else:
        result, spot, _ = _run(run, n_paths=n_paths, chunk_paths=chunk_paths,
                               n_strategies=len(strategies), costs=costs_table, device=device,
                               dtype=dtype, storage=storage)
        ds = _dataset(result, spot, strategies, cost_levels, costs_table, attrs, times,
                      first_path, storage)
    ds["premium"] = (("strategy", "cost"),
                     _premium_table(hedgers, costs_table, len(strategies)),
                     {"long_name": "value paid for the book at t=0 (negative: received)",
                      "units": "currency"})
    return ds


def hedge_paths(prices, times, book, hedges, costs=None, *, rate, dividend=0.0, device=None,
                dtype="float64", chunk_paths=None, day_count="ACT/365", record=False):
    """Hedge ``book`` along supplied price paths (back-testing), with the simulation's kernels.

    Parameters
    ----------
    prices : array of shape (n_paths, n_times) or (n_times,)
        Positive prices at ``times``; the first column is the price at t=0.
    times : array of shape (n_times,): year fractions or dates
        Strictly increasing times in years from 0, or dates (``numpy.datetime64``, a pandas
        ``DatetimeIndex``, ``datetime.date`` objects) turned into year fractions from the
        first by ``day_count``. Every maturity of the book (in years) must be one of them and
        the last one is the horizon.
    rate, dividend : float
        Cash rate and dividend yield (continuously compounded).
    day_count : {"ACT/365", "trading/252"}
        For dates: t_k = (calendar days from the first date) / 365, or t_k = k / 252 (each
        date given is one trading day; the convention of daily vols).
    record : bool
        Also return how the P&L built up, date by date: the variables of ``RECORD`` over
        (time, strategy, cost, path), written by the kernel at the end of each date t_k
        (after its trades; at the horizon after the unwind), and ``spot`` over (time, path).
        ``time`` is labelled by the dates when dates are given, else by the year fractions;
        the coordinate ``years`` holds the year fractions either way. With D_k = e^{-r t_k},
        the value of the hedged position at t_k is V_k = cash_k + shares_k S_k + hedge
        options_k O_k + book_value_k (the options still alive at Black-Scholes at the
        strategy's vol, the value the hedger paid for them at t_0; an option that matured
        has paid its payoff into the cash), and ``pnl_to_date`` is D_k V_k. At t_0 it is
        minus the costs of the first hedge; at the horizon, where nothing is held,
        ``pnl_to_date``, ``cost_to_date`` and ``trades_to_date`` equal ``pnl``,
        ``cost_paid`` and ``trades`` exactly. The record takes 64 bytes per date, path and
        strategy-cost cell (the memory guard counts them).

    The P&L convention is the module's; see ``simulate`` for the other arguments and the result
    (its attributes hold the first and last date and the day count when dates are given, and
    no seed: nothing is random).
    """
    owner = "hedge_paths"
    book, strategies, cost_levels, _, _, (device, reason), dtype = _common_checks(
        owner, book, hedges, costs, 0, 0, device, dtype)
    if not isinstance(record, bool):
        raise ValueError(f"{owner}: 'record' must be True or False; got {record!r}")
    times, date_attrs, dates = _year_fractions(owner, times, day_count)
    times = check.finite_array(owner, "times", times, 1)
    prices = check.finite_array(owner, "prices", prices, (1, 2))
    if prices.ndim == 1:
        prices = prices[None, :]
    if prices.shape[0] < 1 or prices.shape[1] != times.size:
        raise ValueError(f"{owner}: 'prices' must have shape (n_paths >= 1, {times.size}) to "
                         f"match 'times'; got {prices.shape}")
    if times.size < 2 or times[0] != 0.0:
        raise ValueError(f"{owner}: 'times' must hold at least 2 points starting at 0; got "
                         f"{len(times)} point(s) starting at {times[0] if times.size else None}")
    steps = np.diff(times)
    if np.any(steps <= 0):
        k = int(np.argmax(steps <= 0))
        raise ValueError(f"{owner}: 'times' must increase strictly; got times[{k}] = "
                         f"{times[k]} followed by {times[k + 1]}")
    if np.any(prices <= 0):
        raise ValueError(f"{owner}: 'prices' must be > 0; got min {prices.min()}")
    if not math.isclose(book.horizon, times[-1], rel_tol=1e-9):
        raise ValueError(f"{owner}: the last time must be the book's horizon {book.horizon}; "
                         f"got {times[-1]}")
    if dtype == np.float32 and prices.max() > np.finfo(np.float32).max:
        raise ValueError(f"{owner}: 'prices' must fit in float32 with dtype='float32'; got max "
                         f"{prices.max()}")
    rate = check.real(owner, "rate", rate, -1.0, 1.0)
    dividend = check.real(owner, "dividend", dividend, -1.0, 1.0)
    book_table = _book_table(owner, book, times, "add it to 'times'")
    for name, s in strategies.items():
        if s.vol is None and not isinstance(s, CPPI):
            raise ValueError(f"{owner}: every strategy needs a 'vol' with supplied paths (there "
                             f"is no market vol); got {name!r}: {s!r}")
    if any(s.insurer for s in strategies.values()) and np.ptp(prices[:, 0]) > 0:
        raise ValueError(f"{owner}: portfolio insurers (SyntheticPut, CPPI) need one first price "
                         f"for all paths (their units are fixed at t=0); got first prices from "
                         f"{prices[:, 0].min()} to {prices[:, 0].max()}")
    hedgers, schedule = _hedger_table(owner, strategies, cost_levels, None, book, book_table,
                                      times, spot0=float(prices[0, 0]), rate=rate,
                                      dividend=dividend)
    try:
        costs_table = cost_table(cost_levels, rate, None)
    except ValueError as error:
        raise ValueError(f"{owner}: {error}") from None
    n_paths = prices.shape[0]
    chunk_paths, threads = _plan(owner, device, n_paths, chunk_paths,
                                 n_strategies=len(strategies), costs_table=costs_table,
                                 hedgers=hedgers, dtype=dtype,
                                 n_times=times.size, n_options=len(book_table), supplied=True,
                                 record=record,
                                 registers=_registers(device, _math.SUPPLIED, dtype, hedgers,
                                                      costs_table, times, rate, dividend,
                                                      record))
    memory.check_run(owner, device=device, n_paths=n_paths, chunk_paths=chunk_paths,
                     n_strategies=len(strategies), costs_table=costs_table, hedgers=hedgers,
                     dtype=dtype, n_times=times.size, n_options=len(book_table), supplied=True,
                     record=record)
    run = _launcher(
        _math.SUPPLIED, 0.0, 0.0, np.zeros(1), np.zeros(4), prices.astype(dtype), times,
        book_table, len(strategies), hedgers, schedule, costs_table, rate, dividend, seed=0,
        stream=0, antithetic=False, device=device, dtype=dtype, record=record, threads=threads)
    result, spot, recorded = _run(run, n_paths=n_paths, chunk_paths=min(chunk_paths, n_paths),
                                  n_strategies=len(strategies), costs=costs_table,
                                  device=device, dtype=dtype, storage=np.dtype("float64"),
                                  record_times=times.size if record else 0)
    config = {"market": {"type": "supplied paths", "rate": rate, "dividend": dividend},
              "book": describe(book),
              "hedges": {k: describe(v) for k, v in strategies.items()},
              "costs": {k: describe(v) for k, v in cost_levels.items()}}
    attrs = _attrs(owner, config, device=device, device_reason=reason, dtype=dtype,
                   n_steps=times.size - 1, n_paths=n_paths, **date_attrs)
    ds = _dataset(result, spot, strategies, cost_levels, costs_table, attrs, times)
    return _add_record(ds, recorded, times, dates, prices, hedgers) if record else ds
