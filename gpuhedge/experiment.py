"""What the experiment scripts (``experiments/eNN_name.py``) share: their command line, the
parts of their Markdown reports that come from the module docstring, and their Markdown tables.

Every script takes ``--paths``, ``--device``, ``--seed``, ``--store`` (a Zarr store, ``none``
to skip) and ``--out`` (the Markdown report; figures go beside it), and its docstring holds a
one-line title, then a ``Question: ...`` paragraph. By default a run writes into ``runs/``
(ignored by git), so running a script never changes the committed results in ``results/``,
which are made with ``--out results/NAME.md`` at the sizes their reports state.
"""

import argparse
from collections.abc import Iterable
from pathlib import Path

from . import _validation as check

DEVICES = ("auto", "cpu", "cuda")
RUNS = "runs"


def parser(doc, name, *, paths, paths_help="paths per simulation",
           store_help="Zarr store of the results", seed_help=None):
    """The common ``argparse`` parser of experiment ``name`` (e.g. ``"e01_derman_kamal"``);
    scripts may add their own options before parsing."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--paths", type=int, default=paths, help=paths_help)
    p.add_argument("--device", choices=DEVICES, default=None,
                   help="default: $GPUHEDGE_DEVICE, else auto")
    p.add_argument("--seed", type=int, default=1, help=seed_help)
    p.add_argument("--store", default=f"{RUNS}/{name}.zarr", help=f"{store_help} ('none' to "
                                                                  "skip)")
    p.add_argument("--out", default=f"{RUNS}/{name}.md", help="Markdown report")
    return p


def outputs(args):
    """(report, main figure, store or None) from parsed arguments; creates the report's
    folder."""
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    store = None if args.store.lower() == "none" else Path(args.store)
    return out, out.with_suffix(".png"), store


def table(header, rows, *, text=1):
    """A Markdown table of already formatted cells.

    Parameters
    ----------
    header : iterable of str
        The column titles.
    rows : iterable of iterables of str
        The cells of each row, one per column.
    text : int or collection of int, default 1
        The columns of text, aligned left: the first ``text`` ones, or those at the given
        indices. The others hold numbers and are aligned right.

    Returns
    -------
    str
        The header line, the alignment line (``---`` left, ``---:`` right) and one line per
        row, e.g. ``table(["N", "std"], [["4", "0.31"]], text=0)`` is
        ``"| N | std |\\n|---:|---:|\\n| 4 | 0.31 |"``.

    Raises
    ------
    ValueError
        When a row has not one cell per column (naming the row and its cells), or ``text`` is
        not a number of columns or a set of column indices.
    """
    header = list(header)
    n = len(header)
    if isinstance(text, Iterable):
        left = [check.integer("table", "text", i, 0, n - 1) for i in text]
    else:
        left = range(check.integer("table", "text", text, 0, n))
    lines = ["| " + " | ".join(header) + " |",
             "|" + "".join("---|" if i in left else "---:|" for i in range(n))]
    for i, row in enumerate(rows):
        cells = list(row)
        if len(cells) != n:
            check.fail("table", f"rows[{i}]", f"{n} cells, one per column of the header",
                       cells)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def question(doc):
    """The ``Question: ...`` paragraph of a script's docstring, on one line."""
    return " ".join(doc.split("\n\n")[1].removeprefix("Question: ").split())


def report(out, md, shown, summary, files):
    """Write the Markdown report ``md`` to ``out``, print ``shown`` (its tables and reading)
    and the one-line ``summary`` (device, paths, seconds), then where it wrote: ``out`` and
    ``files`` (figures, the store; None entries are skipped)."""
    out.write_text(md)
    print(shown)
    print(f"\n{summary}")
    print("Wrote " + ", ".join(str(f) for f in (out, *files) if f is not None))
