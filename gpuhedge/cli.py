"""Command line.

``gpuhedge info``
    Device, CUDA and library versions.
``gpuhedge sweep CONFIG.toml --store PATH [--scheduler ADDR] [--paths N] [--keep stats]
[--overwrite]``
    Run (or resume) the sweep a TOML file describes (schema: ``experiments/configs/README.md``,
    example: ``experiments/configs/example.toml``) into a Zarr store; ``--keep stats`` stores
    only each scenario's statistics.
``gpuhedge report STORE [--out DIR] [--sel KEY=VALUE ...]``
    The set-up and summary table of a store as Markdown (printed, and written with the
    figures: for every scenario, the P&L distribution per strategy and the std-vs-cost
    frontier, the scenario in each title). A store of statistics gives the table from its
    statistics and the frontiers; the distributions, which need the paths, are skipped.
"""

import argparse
import dataclasses
import importlib.metadata
import itertools
import os
import re
import sys
import tomllib
from pathlib import Path

from . import backend
from ._version import __version__
from . import _validation as check

TOP = ("description", "run", "market", "markets", "book", "hedges", "costs", "grid",
       "scenarios")
RUN = ("n_paths", "n_steps", "seed", "stream", "antithetic", "dtype", "storage",
       "chunk_paths", "compression", "device", "scheduler", "workers", "keep")
REPORT_COLUMNS = ("mean", "std", "var_95", "cvar_95", "var_99", "cvar_99",
                  "hedge_effectiveness", "mean_cost", "mean_trades")


class ConfigError(ValueError):
    """A configuration file that cannot be run; the message names the key."""


def _info():
    print(f"gpuhedge {__version__}")
    print(f"python {sys.version.split()[0]}")
    for pkg in ("numpy", "numba", "numba-cuda", "cupy-cuda13x", "cupy-cuda12x", "xarray",
                "zarr", "dask", "distributed", "dask-cuda"):
        try:
            print(f"{pkg} {importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    print(f"GPUHEDGE_DEVICE={os.environ.get('GPUHEDGE_DEVICE', '')}")
    try:
        device, why = backend.choose(None, "gpuhedge info")
    except ValueError as error:  # GPUHEDGE_DEVICE=cuda without a usable device
        print(f"device: none: {error}")
        return
    print(f"device: {device}: {backend.device_name(device)}")
    print(f"device_reason: {why}")


# ----------------------------------------------------------------------------- config
def _table(owner, key, value):
    if not isinstance(value, dict):
        check.fail(owner, key, "a table", value)
    return value


def _flatten(value, prefix=""):
    """{"market": {"vol": [..]}} -> {"market.vol": [..]}: TOML's bare dotted keys nest."""
    out = {}
    for k, v in value.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _build(owner, key, table, classes, kind_key):
    """An object from a table: ``kind_key`` names the class, the rest are its fields."""
    table = dict(_table(owner, key, table))
    names = {c.__name__: c for c in classes}
    kind = table.pop(kind_key, None)
    if kind not in names:
        check.fail(owner, f"{key}.{kind_key}", "one of " + ", ".join(map(repr, names)), kind)
    return _construct(owner, key, names[kind], table, (kind_key,))


def _construct(owner, key, cls, table, also=()):
    """``cls(**table)`` after checking that the table names only (and all required) fields."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for field in table:
        if field not in fields:
            expected = ", ".join(map(repr, (*also, *fields)))
            raise ConfigError(f"{owner}: '{key}.{field}' is not a field of {cls.__name__}; "
                              f"expected {expected}")
    missing = [f for f, spec in fields.items() if f not in table
               and spec.default is dataclasses.MISSING
               and spec.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{owner}: '{key}' must give {', '.join(map(repr, missing))} for "
                          f"{cls.__name__}; got {sorted(table)}")
    try:
        return cls(**table)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{owner}: '{key}': {e}") from None


def _book(owner, value):
    from .instruments import Book, EuropeanCall, EuropeanPut, Position

    rows = [value] if isinstance(value, dict) else value
    if not isinstance(rows, list) or not rows:
        check.fail(owner, "book", "a table or an array of tables ([[book]]) of positions",
                   value)
    positions = []
    for i, row in enumerate(rows):
        key = f"book[{i}]"
        row = dict(_table(owner, key, row))
        unknown = set(row) - {"option", "strike", "maturity", "quantity"}
        if unknown:
            raise ConfigError(f"{owner}: '{key}.{sorted(unknown)[0]}' is not a position field; "
                              f"expected 'option', 'strike', 'maturity', 'quantity'")
        kind = row.get("option")
        if kind not in ("call", "put"):
            check.fail(owner, f"{key}.option", "'call' or 'put'", kind)
        for field in ("strike", "maturity", "quantity"):
            if field not in row:
                raise ConfigError(f"{owner}: '{key}.{field}' must be given (a number); "
                                  f"got nothing")
        option = EuropeanCall if kind == "call" else EuropeanPut
        try:
            positions.append(Position(option(row["strike"], row["maturity"]), row["quantity"]))
        except ValueError as e:
            raise ConfigError(f"{owner}: '{key}': {e}") from None
    return Book(positions)


def load_config(path):
    """Read a sweep configuration (TOML) into ``sweep``'s keyword arguments.

    Returns
    -------
    dict
        ``market``, ``book``, ``hedges``, ``costs``, ``grid``, ``scenarios`` and the ``run``
        settings, ready for ``gpuhedge.sweep.sweep(**kwargs, store=...)``.

    Raises
    ------
    ConfigError
        For any unknown key, wrong type or value out of range, naming the key and the
        expected form.
    """
    try:
        return _load(path)
    except ConfigError:
        raise
    except ValueError as e:  # the package's uniform checks, already naming the key
        raise ConfigError(str(e)) from None


def _load(path):
    from .costs import Costs
    from .models import MODELS
    from .reductions import KEEPS
    from .rules import RULES

    owner = str(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{owner}: not valid TOML: {e}") from None
    for key in raw:
        if key not in TOP:
            raise ConfigError(f"{owner}: unknown key {key!r}; expected one of "
                              f"{', '.join(map(repr, TOP))}")
    run = dict(_table(owner, "run", raw.get("run", {})))
    for key in run:
        if key not in RUN:
            raise ConfigError(f"{owner}: unknown key 'run.{key}'; expected one of "
                              f"{', '.join(map(repr, RUN))}")
    for key in ("n_paths", "n_steps"):
        if key not in run:
            raise ConfigError(f"{owner}: 'run.{key}' must be given (an integer >= 1); got "
                              f"nothing")
    out = {"n_paths": check.integer(owner, "run.n_paths", run["n_paths"], low=1, high=2**32),
           "n_steps": check.integer(owner, "run.n_steps", run["n_steps"], low=1)}
    for key in ("seed", "stream"):
        if key in run:
            out[key] = check.integer(owner, f"run.{key}", run[key], low=0, high=2**32 - 1)
    for key in ("chunk_paths", "workers"):
        if key in run:
            out[key] = check.integer(owner, f"run.{key}", run[key], low=1)
    if "antithetic" in run:
        if not isinstance(run["antithetic"], bool):
            check.fail(owner, "run.antithetic", "true or false", run["antithetic"])
        out["antithetic"] = run["antithetic"]
    for key, options in (("dtype", ("float64", "float32")), ("storage", ("float32", "float64")),
                         ("compression", ("lz4", "zstd", "none")),
                         ("device", ("auto", "cpu", "cuda")), ("keep", KEEPS)):
        if key in run:
            out[key] = check.choice(owner, f"run.{key}", run[key], options)
    if "scheduler" in run:
        if not isinstance(run["scheduler"], str):
            check.fail(owner, "run.scheduler", "a string ('threads', 'synchronous', 'local' or "
                       "an address like 'tcp://host:8786')", run["scheduler"])
        out["scheduler"] = run["scheduler"]

    if ("market" in raw) == ("markets" in raw):
        raise ConfigError(f"{owner}: give exactly one of 'market' (a table with 'model' and "
                          f"its fields) or 'markets' (named tables); got "
                          f"{[k for k in ('market', 'markets') if k in raw] or 'neither'}")
    if "market" in raw:
        out["market"] = _build(owner, "market", raw["market"], MODELS, "model")
    else:
        markets = _table(owner, "markets", raw["markets"])
        if not markets:
            check.fail(owner, "markets", "a non-empty table of named markets", markets)
        out["market"] = {name: _build(owner, f"markets.{name}", table, MODELS, "model")
                         for name, table in markets.items()}
    if "book" not in raw:
        raise ConfigError(f"{owner}: 'book' must be given ([[book]] tables with option, strike,"
                          f" maturity, quantity); got nothing")
    out["book"] = _book(owner, raw["book"])
    hedges = _table(owner, "hedges", raw.get("hedges", {}))
    if not hedges:
        raise ConfigError(f"{owner}: 'hedges' must name at least one strategy ([hedges.NAME] "
                          f"with rule = one of {', '.join(c.__name__ for c in RULES)}); got "
                          f"nothing")
    out["hedges"] = {name: _build(owner, f"hedges.{name}", table, RULES, "rule")
                     for name, table in hedges.items()}
    costs = _table(owner, "costs", raw.get("costs", {"none": {}}))
    out["costs"] = {}
    for name, table in costs.items():
        out["costs"][name] = _construct(owner, f"costs.{name}", Costs,
                                        _table(owner, f"costs.{name}", table))
    if "grid" in raw:
        grid = _flatten(_table(owner, "grid", raw["grid"]))
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                check.fail(owner, f"grid.{key}", "a non-empty array of values", values)
        out["grid"] = grid
    if "scenarios" in raw:
        scenarios = _table(owner, "scenarios", raw["scenarios"])
        out["scenarios"] = {name: _flatten(_table(owner, f"scenarios.{name}", table))
                            for name, table in scenarios.items()}
    return out


def _sweep(args):
    from .reductions import KEEPS
    from .sweep import expand, sweep

    kwargs = load_config(args.config)
    if args.paths is not None:
        kwargs["n_paths"] = check.integer("gpuhedge sweep", "--paths", args.paths, low=1)
    if args.keep is not None:
        kwargs["keep"] = check.choice("gpuhedge sweep", "--keep", args.keep, KEEPS)
    if args.scheduler is not None:
        kwargs["scheduler"] = args.scheduler
    try:  # the scenarios' own errors, named as keys of the file
        expand(kwargs["market"], kwargs["book"], kwargs["hedges"], kwargs["costs"],
               kwargs["n_steps"], kwargs.get("grid"), kwargs.get("scenarios"))
    except ValueError as e:
        raise ConfigError(f"{args.config}: {e}") from None
    progress = None if args.progress is None else args.progress
    ds = sweep(**kwargs, store=args.store, overwrite=args.overwrite, progress=progress)
    dims = ", ".join(f"{d}: {n}" for d, n in ds.sizes.items())
    print(f"gpuhedge sweep: {args.store} complete ({dims})")


# ----------------------------------------------------------------------------- report
def _fmt(value, se=None):
    if value != value:  # NaN
        return ""
    text = f"{value:.4g}"
    return text if se is None or se != se else f"{text} ± {se:.2g}"


def markdown(summary, columns=REPORT_COLUMNS):
    """The summary as a Markdown table: one row per cell, "value ± standard error"."""
    columns = [c for c in columns if c in summary]
    frame = summary[columns + [f"se_{c}" for c in columns if f"se_{c}" in summary]]
    index = list(frame.dims)
    frame = frame.to_dataframe().reset_index()
    head = index + columns
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---" if c in index else "---:" for c in head) + "|"]
    for _, row in frame.iterrows():
        cells = [str(row[c]) for c in index]
        cells += [_fmt(row[c], row.get(f"se_{c}")) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _parse_sel(items, ds):
    """``--sel key=value`` options -> {dim: value}, each value typed like its coordinate."""
    sel = {}
    for item in items or ():
        key, eq, text = item.partition("=")
        if not eq or key not in ds.coords:
            check.fail("gpuhedge report", "--sel", "key=value with key one of "
                       + ", ".join(map(repr, (d for d in ds.coords if d != "path"))), item)
        coord = ds[key]
        try:
            value = float(text) if coord.dtype.kind in "fiu" else text
        except ValueError:
            check.fail("gpuhedge report", "--sel", f"a number for {key!r}", text)
        if value not in coord.values.tolist():
            check.fail("gpuhedge report", f"--sel {key}", "one of "
                       + ", ".join(map(repr, coord.values.tolist())), value)
        sel.setdefault(key, []).append(value)
    return sel


def _setup(ds, path):
    """The Markdown set-up block of a store: what was simulated, how, and by which code."""
    from .store import config_of

    config = config_of(ds.attrs)
    markets = config.get("markets") or {"": config["market"]}

    def describe(d):
        return (d["type"] + "(" + ", ".join(f"{k}={v!r}" for k, v in d.items() if k != "type")
                + ")")

    lines = [f"- store: `{path}` ({'complete' if ds.attrs['complete'] else 'PARTIAL'}: "
             f"{ds.attrs['blocks_done']} of {ds.attrs['blocks_total']} blocks)"]
    lines += [f"- model{f' {name}' if name else ''}: {describe(m)}" for name, m in
              markets.items()]
    lines.append("- book: " + "; ".join(
        f"{p['quantity']:+g} x {p['type']}(strike={p['strike']:g}, maturity={p['maturity']:g})"
        for p in config["book"]["positions"]))
    lines += [f"- rule `{name}`: {describe(rule)}" for name, rule in config["hedges"].items()]
    lines += [f"- cost `{name}`: {describe(c)}" for name, c in config["costs"].items()]
    for key, values in config["grid"].items():
        lines.append(f"- swept `{key}`: {values}")
    for name, overrides in config["scenarios"].items():
        lines.append(f"- scenario `{name}`: " + ", ".join(f"{k} = {v!r}"
                                                          for k, v in overrides.items()))
    lines.append(f"- paths {config['n_paths']:,}, n_steps {config['n_steps']}, seed "
                 f"{config['seed']}, stream {config['stream']}, antithetic "
                 f"{config['antithetic']}"
                 + (", statistics only (keep='stats')" if config.get("keep") == "stats"
                    else ""))
    lines.append(f"- device {ds.attrs['device']}, precision {ds.attrs['precision']}, storage "
                 f"{ds.attrs['storage']}; gpuhedge {ds.attrs['gpuhedge_version']}"
                 + (f" ({ds.attrs['git_revision']})" if "git_revision" in ds.attrs else "")
                 + (f", created {ds.attrs['created']}" if "created" in ds.attrs else ""))
    return "\n".join(lines)


def _report(args):
    from . import plot
    from .metrics import summary
    from .store import open_store

    ds = open_store(args.store)
    sel = _parse_sel(args.sel, ds)
    ds = ds.sel(sel)
    stats_only = ds.attrs.get("keep") == "stats"
    s = ds.load() if stats_only else summary(ds)
    out = Path(args.out) if args.out else Path(str(args.store).rstrip("/")).with_suffix("")
    out = out if args.out else out.parent / (out.name + "_report")
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(s)
    note = ("Losses are positive in var_XX / cvar_XX (value at risk and expected shortfall of "
            "the P&L); each entry is value ± one standard error over "
            f"{s.attrs['n_paths']:,} paths.")
    chosen = ", ".join(f"{k} in {v}" for k, v in sel.items())
    text = (f"# gpuhedge report: {args.store}\n\n## Set-up\n\n{_setup(ds, args.store)}\n"
            + (f"- selected: {chosen}\n" if chosen else "")
            + f"\n## Summary\n\n{note}\n\n{table}\n")
    (out / "summary.md").write_text(text)
    print(text)
    if stats_only:
        print("gpuhedge report: the P&L distributions are skipped: the store holds statistics "
              "only (keep='stats'), not the per-path results they are drawn from")
    dims = [d for d in s["mean"].dims if d not in ("strategy", "cost")]
    figures = []
    for values in itertools.product(*(ds[d].values.tolist() for d in dims)):
        point = dict(zip(dims, values))
        label = ", ".join(f"{d}={v}" for d, v in point.items())
        suffix = "_" + re.sub(r"[^\w.=-]+", "_", label.replace(", ", "_")) if point else ""
        if not stats_only:
            ax = plot.distribution(ds, sel=point)
            ax.figure.savefig(out / f"distribution{suffix}.png", dpi=120)
            figures.append(out / f"distribution{suffix}.png")
        ax = plot.frontier(s, sel=point)
        ax.set_title((f"{label}\n" if label else "") + ax.get_title(), fontsize="small")
        ax.figure.savefig(out / f"frontier{suffix}.png", dpi=120)
        figures.append(out / f"frontier{suffix}.png")
    print(f"figures ({len(figures)}): " + ", ".join(str(f) for f in figures[:4])
          + (", ..." if len(figures) > 4 else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="gpuhedge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="device, CUDA and library versions")
    p = sub.add_parser("sweep", help="run or resume a sweep from a TOML configuration")
    p.add_argument("config", help="the configuration (TOML)")
    p.add_argument("--store", required=True, help="the Zarr store to write (resumed if it "
                   "exists with the same configuration)")
    p.add_argument("--scheduler", help="a Dask scheduler address (tcp://host:8786), 'local', "
                   "'threads' or 'synchronous'")
    p.add_argument("--paths", type=int, help="number of paths (overrides run.n_paths)")
    p.add_argument("--keep", help="'paths' (every path's results) or 'stats' (only each "
                   "scenario's statistics; overrides run.keep)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a store made with another configuration")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: on a terminal)")
    p = sub.add_parser("report", help="summary table (Markdown) and figures of a store")
    p.add_argument("store")
    p.add_argument("--out", help="directory of summary.md and the figures (default: "
                   "STORE's name + '_report' beside it)")
    p.add_argument("--sel", action="append", metavar="KEY=VALUE",
                   help="only these values of a dimension (repeatable; default: every "
                   "scenario, each with its own figures)")
    args = parser.parse_args(argv)
    try:
        if args.command == "info":
            _info()
        elif args.command == "sweep":
            _sweep(args)
        else:
            _report(args)
    except (ValueError, ImportError, FileNotFoundError) as e:
        print(f"gpuhedge {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the sweep has said how to resume
        print(f"gpuhedge {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
