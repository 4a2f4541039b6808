"""Figures: the P&L distribution per strategy, and a risk-cost frontier from a summary.

Both draw on a Matplotlib ``Axes`` (a new ``matplotlib.figure.Figure`` when none is given, so
nothing depends on pyplot's global state or a display) and return it. Matplotlib is an
optional dependency (the ``plot`` extra), imported when a figure is asked for.
"""

import numpy as np
import xarray as xr

_SAMPLE = 200_000  # paths read to fix the histogram's range and to fit a KDE


def _axes(ax):
    if ax is not None:
        return ax
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plot: needs matplotlib (pip install 'gpuhedge[plot]')") from None
    return Figure(figsize=(7, 4.5), layout="constrained").subplots()


def _cell(ds, var, sel, dim):
    """``ds[var]`` reduced by ``sel`` to (strategy, dim); other dims must be chosen."""
    da = ds[var].sel(sel or {})
    extra = [d for d in da.dims if d not in ("strategy", dim) and da.sizes[d] > 1]
    if extra:
        raise ValueError(f"plot: 'sel' must choose one value of {extra} (e.g. sel={{"
                         f"{extra[0]!r}: {da[extra[0]].values[0]!r}}}); got {sel!r}")
    da = da.squeeze([d for d in da.dims if d not in ("strategy", dim)], drop=False)
    return da if "strategy" in da.dims else da.expand_dims("strategy")


def _title(da, dim):
    """The fixed coordinates of a plotted cell (the scenario first), wrapped to fit a figure;
    a scenario's override that it does not have (NaN) is left out."""
    import textwrap

    names = [d for d in da.coords if d not in ("strategy", dim) and da[d].ndim == 0]
    names.sort(key=lambda d: (d == "cost", d not in da.indexes))
    fixed = [f"{d}={da[d].values.item()}" for d in names
             if not (da[d].dtype.kind == "f" and np.isnan(da[d].values))]
    return textwrap.fill(", ".join(fixed), width=90)


def distribution(ds, *, sel=None, strategies=None, kind="hist", bins=100, var="pnl",
                 dim="path", ax=None):
    """Histogram (or kernel density) of the P&L across paths, one curve per strategy.

    Parameters
    ----------
    ds : xarray.Dataset
        ``simulate``'s result or a sweep's store (read lazily: a histogram reads the data once,
        block by block).
    sel : dict, optional
        Values of the other dims (cost, swept fields) when they have more than one; the cost
        defaults to the first level.
    strategies : list of str, optional
        Which strategies (default all).
    kind : {"hist", "kde"}
        Step histogram of densities over the 0.1%-99.9% range of the first paths, or a
        Gaussian kernel density (``scipy.stats.gaussian_kde``) of the first 200,000 paths.
    bins : int
        Histogram bins.
    var : str
        The per-path variable (``pnl``, ``cost_paid``, ...).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if kind not in ("hist", "kde"):
        raise ValueError(f"plot.distribution: 'kind' must be 'hist' or 'kde'; got {kind!r}")
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
        raise ValueError(f"plot.distribution: 'bins' must be an integer >= 1; got {bins!r}")
    sel = dict(sel or {})
    if "cost" in ds[var].dims and "cost" not in sel:
        sel["cost"] = ds["cost"].values[0]
    da = _cell(ds, var, sel, dim)
    if strategies is not None:
        da = da.sel(strategy=list(strategies))
    ax = _axes(ax)
    n = da.sizes[dim]
    sample = da.isel({dim: slice(0, min(n, _SAMPLE))}).astype(np.float64).values
    if kind == "hist":
        import dask.array as dsk

        lo, hi = np.nanquantile(sample, [0.001, 0.999])
        if not lo < hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
    for i, name in enumerate(da["strategy"].values):
        row = da.isel(strategy=i)
        if kind == "hist":
            data = row.data if row.chunks is not None else dsk.from_array(row.values)
            counts, _ = dsk.histogram(data.astype(np.float64), bins=edges)
            density = np.asarray(counts.compute()) / (n * np.diff(edges))
            ax.stairs(density, edges, label=str(name))
        else:
            from scipy.stats import gaussian_kde

            x = sample[i]
            grid = np.linspace(*np.quantile(x, [0.001, 0.999]), 400)
            if np.ptp(x) > 0:
                ax.plot(grid, gaussian_kde(x)(grid), label=str(name))
    units = ds[var].attrs.get("units", "")
    ax.set_xlabel(f"{ds[var].attrs.get('long_name', var)}" + (f" [{units}]" if units else ""))
    ax.set_ylabel("density" + (" (of all paths)" if kind == "hist" else ""))
    ax.set_title(_title(da, dim) or var, fontsize="small")
    ax.legend(fontsize="small")
    return ax


def _variable(summary, name):
    """A summary variable by name; spaces may stand for underscores ("mean cost")."""
    key = name.replace(" ", "_")
    if key not in summary.data_vars:
        options = [v for v in summary.data_vars if not v.startswith("se_")]
        raise ValueError(f"plot.frontier: a summary variable must be one of {options}; "
                         f"got {name!r}")
    return key


def _efficient(xs, ys):
    """Indices of the points that no other point beats on both axes (lower is better), in
    increasing x."""
    ok = np.flatnonzero(np.isfinite(xs) & np.isfinite(ys))
    order = ok[np.lexsort((ys[ok], xs[ok]))]
    keep, best = [], np.inf
    for i in order:
        if ys[i] < best:
            keep.append(i)
            best = ys[i]
    return np.array(keep, dtype=int)


def frontier(summary, x="mean cost", y="std", *, hue="cost", label="strategy", sel=None,
             errorbars=True, ax=None):
    """Risk against cost: one point per strategy, a colour per cost level, and each level's
    efficient frontier (the strategies that no other beats on both axes) joined by a line.

    Parameters
    ----------
    summary : xarray.Dataset
        ``gpuhedge.summary``'s result.
    x, y : str
        Summary variables ("mean cost" = ``mean_cost``); lower is taken as better on both.
    hue : str
        The dim whose values get their own colour and frontier (default the cost level).
    label : str
        The dim whose values label the points (default the strategy).
    sel : dict, optional
        Values of the other dims (swept fields) when they have more than one.
    errorbars : bool
        One standard error (``se_<name>``) each way.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(summary, xr.Dataset):
        raise ValueError(f"plot.frontier: 'summary' must be the Dataset of gpuhedge.summary; "
                         f"got {type(summary).__name__}")
    xk, yk = _variable(summary, x), _variable(summary, y)
    data = summary[[xk, yk] + [f"se_{k}" for k in (xk, yk) if f"se_{k}" in summary]]
    data = data.sel(sel or {})
    extra = [d for d in data.dims if d not in (hue, label) and data.sizes[d] > 1]
    if extra:
        raise ValueError(f"plot.frontier: 'sel' must choose one value of {extra} (e.g. sel={{"
                         f"{extra[0]!r}: {data[extra[0]].values[0]!r}}}); got {sel!r}")
    data = data.squeeze([d for d in data.dims if d not in (hue, label)])
    for dim in (hue, label):
        if dim not in data.dims:
            data = data.expand_dims({dim: [""]})
    data = data.transpose(hue, label)
    ax = _axes(ax)
    names = [str(v) for v in data[label].values]
    for i, value in enumerate(data[hue].values):
        part = data.isel({hue: i})
        xs, ys = part[xk].values, part[yk].values
        ex = part[f"se_{xk}"].values if errorbars and f"se_{xk}" in part else None
        ey = part[f"se_{yk}"].values if errorbars and f"se_{yk}" in part else None
        bars = ax.errorbar(xs, ys, xerr=ex, yerr=ey, fmt="o", ms=4, capsize=2,
                           label=f"{hue} {value}" if str(value) else None)
        best = _efficient(xs, ys)
        ax.plot(xs[best], ys[best], "--", lw=1, color=bars[0].get_color())
        for xv, yv, name in zip(xs, ys, names):
            if np.isfinite(xv) and np.isfinite(yv) and name:
                ax.annotate(name, (xv, yv), textcoords="offset points", xytext=(4, 3),
                            fontsize="x-small")
    ax.set_xlabel(summary[xk].attrs.get("long_name", xk))
    ax.set_ylabel(summary[yk].attrs.get("long_name", yk))
    ax.set_title("dashed: efficient frontier (lower cost and risk)", fontsize="small")
    if any(str(v) for v in data[hue].values):
        ax.legend(fontsize="small")
    return ax
