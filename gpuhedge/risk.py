"""Risk measures of the hedger's P&L with standard errors, and indifference prices.

Conventions
-----------
X is the hedger's P&L on a path and L = -X its loss: every measure here is stated in losses,
a positive number being a risk (money the holder would want to be paid to carry it). Most of
them are *optimised certainty equivalents* (Ben-Tal and Teboulle 2007),

    rho(X) = min_t { t + E[ phi(L - t) ] },

with phi convex, phi(0) = 0, and the minimiser t* where E[phi'(L - t*)] = 1:

* ``Entropic(a)``: phi(x) = (e^{a x} - 1) / a gives rho = (1/a) log E[e^{-a X}] (exponential
  utility with risk aversion a, in 1/currency), evaluated as a shifted log-sum-exp so that no
  exponential overflows;
* ``ExpectedShortfall(alpha)`` (CVaR): phi(x) = max(x, 0) / (1 - alpha) gives
  rho = VaR_alpha + E[(L - VaR_alpha)^+] / (1 - alpha) (Rockafellar and Uryasev 2000), with
  t* = VaR_alpha the ``inverted_cdf`` sample alpha-quantile of L, which minimises the sample
  objective exactly;
* ``MeanVariance(lam)``: phi(x) = x + lam x^2 gives rho = -E[X] + lam Var(X) (t* = E[L]);
  cash-invariant but not monotone;
* ``OCE(phi)``: any other phi, t* found numerically (bounded Brent on [min L, max L]).

Not of that family, and not cash-invariant: ``MeanSquare`` (E[X^2], the quadratic hedging
criterion) and ``SemiVariance`` (E[min(X - E[X], 0)^2], the downside variance).

Standard errors
---------------
All are influence-function (delta-method) estimates, se^2 = Var(IF(L)) / n. For an OCE the
influence function is phi(L - t*) + t* - rho (the t-derivative vanishes at t*, so estimating
t* adds nothing to first order), hence se = std(phi(L - t*)) / sqrt(n): for the entropic risk
this is the delta method on log-mean-exp, std(e^{a L}) / (a sqrt(n) E[e^{a L}]); for the
expected shortfall it is the usual estimator std((L - VaR)^+) / ((1 - alpha) sqrt(n)); for
mean-variance std(L + lam (L - E L)^2) / sqrt(n). ``MeanSquare``: std(X^2) / sqrt(n);
``SemiVariance``: IF = d^2 - rho - 2 E[d] (X - E X) with d = min(X - E X, 0) (the mean's
estimation enters to first order). ``tests/test_risk.py`` checks their coverage on normal
P&L with closed-form answers.

Indifference prices
-------------------
For a cash-invariant rho (rho(X + c) = rho(X) - c), the premium p that leaves the holder
indifferent between having the hedged position (premium included) and nothing is
p = rho(X0), with X0 the P&L *without* the premium: X0 = ``pnl + premium`` in gpuhedge's
convention (``premium`` is the value paid for the book at t=0, negative when received). For a
written book p is the *ask*, the least premium the writer accepts; for a bought book -p is the
*bid*, the most the buyer pays. With the book's Black-Scholes value V (negative when written),
``spread = p + V`` is the premium the holder needs beyond the book's value: ask - |V| for a
written book, V - bid for a bought one (both >= 0 for a risk-averse holder under costs).

References: A. Ben-Tal and M. Teboulle (2007), "An old-new concept of convex risk measures:
the optimized certainty equivalent", Mathematical Finance 17(3); R. T. Rockafellar and S.
Uryasev (2000), "Optimization of conditional value-at-risk", Journal of Risk 2(3); H. Follmer
and A. Schied (2016), Stochastic Finance, ch. 4.
"""

import math

import numpy as np
import xarray as xr

from . import _validation as check


class RiskMeasure:
    """A risk measure of P&L samples; ``evaluate(x)`` gives (value, se) over the last axis."""

    cash_invariant = True

    def evaluate(self, x):
        """(value, standard error) of the measure of P&L samples ``x`` (last axis: paths);
        arrays of the leading shape."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] < 2:
            raise ValueError(f"{type(self).__name__}: needs at least 2 samples; got "
                             f"{x.shape[-1]}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{type(self).__name__}: the P&L holds NaN or infinite values "
                             f"(an unfinished store?)")
        return self._evaluate(x)

    def __call__(self, x):
        return self.evaluate(x)[0]


class OCE(RiskMeasure):
    """Optimised certainty equivalent min_t { t + E[phi(L - t)] } of the loss L = -X, with
    ``phi`` a vectorised convex function (phi(0) = 0, slope 1 at 0); t* by bounded Brent."""

    def __init__(self, phi, name="OCE"):
        if not callable(phi):
            raise ValueError(f"OCE: 'phi' must be a callable; got {phi!r}")
        self.phi = phi
        self.name = name

    def __repr__(self):
        return self.name

    def _shortfall(self, loss, t):
        return self.phi(loss - t[..., None])

    def _minimiser(self, loss):
        from scipy.optimize import minimize_scalar
        flat = loss.reshape(-1, loss.shape[-1])
        out = np.empty(len(flat))
        for i, row in enumerate(flat):
            res = minimize_scalar(lambda t: t + float(np.mean(self.phi(row - t))),
                                  bounds=(row.min(), row.max()), method="bounded",
                                  options={"xatol": 1e-10 * (1.0 + np.abs(row).max())})
            out[i] = res.x
        return out.reshape(loss.shape[:-1])

    def _evaluate(self, x):
        loss = -x
        t = self._minimiser(loss)
        phi = self._shortfall(loss, t)
        n = x.shape[-1]
        return t + phi.mean(axis=-1), phi.std(axis=-1, ddof=1) / math.sqrt(n)


class Entropic(OCE):
    """Entropic risk (1/a) log E[exp(-a X)], risk aversion ``a`` > 0 in 1/currency."""

    def __init__(self, a=1.0):
        self.a = check.real("Entropic", "a", a, low=0.0, high=1e12, low_open=True)
        self.name = f"entropic(a={self.a:g})"

    def phi(self, x):
        return np.expm1(self.a * x) / self.a

    def _evaluate(self, x):
        a, n = self.a, x.shape[-1]
        scaled = -a * x
        shift = scaled.max(axis=-1, keepdims=True)
        w = np.exp(scaled - shift)
        mean = w.mean(axis=-1)
        value = (shift[..., 0] + np.log(mean)) / a
        return value, w.std(axis=-1, ddof=1) / (a * mean * math.sqrt(n))


class ExpectedShortfall(OCE):
    """Expected shortfall (CVaR) at level ``alpha`` in (0, 1): the mean loss in the worst
    1 - alpha of paths, VaR_alpha + E[(L - VaR_alpha)^+] / (1 - alpha)."""

    def __init__(self, alpha=0.99):
        self.alpha = check.real("ExpectedShortfall", "alpha", alpha, low=0.0, high=1.0,
                                low_open=True, high_open=True)
        self.name = f"CVaR {100 * self.alpha:g}%"

    def phi(self, x):
        return np.maximum(x, 0.0) / (1.0 - self.alpha)

    def _minimiser(self, loss):
        return np.quantile(loss, self.alpha, axis=-1, method="inverted_cdf")


class MeanVariance(OCE):
    """-E[X] + ``lam`` Var(X) (variance with divisor n), ``lam`` >= 0 in 1/currency."""

    def __init__(self, lam=1.0):
        self.lam = check.real("MeanVariance", "lam", lam, low=0.0, high=1e12)
        self.name = f"mean-variance(lambda={self.lam:g})"

    def phi(self, x):
        return x + self.lam * x * x

    def _minimiser(self, loss):
        return loss.mean(axis=-1)


class MeanSquare(RiskMeasure):
    """E[X^2], the quadratic hedging criterion (not cash-invariant)."""

    cash_invariant = False
    name = "mean square"

    def __repr__(self):
        return self.name

    def _evaluate(self, x):
        sq = x * x
        return sq.mean(axis=-1), sq.std(axis=-1, ddof=1) / math.sqrt(x.shape[-1])


class SemiVariance(RiskMeasure):
    """E[min(X - E[X], 0)^2], the downside variance (not cash-invariant)."""

    cash_invariant = False
    name = "semi-variance"

    def __repr__(self):
        return self.name

    def _evaluate(self, x):
        centred = x - x.mean(axis=-1, keepdims=True)
        d = np.minimum(centred, 0.0)
        value = (d * d).mean(axis=-1)
        influence = d * d - 2.0 * d.mean(axis=-1, keepdims=True) * centred
        return value, influence.std(axis=-1, ddof=1) / math.sqrt(x.shape[-1])


CVaR = ExpectedShortfall


def _check_measure(owner, measure, *, cash_invariant=False):
    if not isinstance(measure, RiskMeasure):
        raise ValueError(f"{owner}: 'measure' must be a gpuhedge risk measure (Entropic, "
                         f"ExpectedShortfall, MeanVariance, OCE, MeanSquare, SemiVariance); "
                         f"got {measure!r}")
    if cash_invariant and not measure.cash_invariant:
        raise ValueError(f"{owner}: 'measure' must be cash-invariant (Entropic, "
                         f"ExpectedShortfall, MeanVariance, OCE) for a price; got {measure!r}")


def _per_cell(owner, x, measure):
    """Apply ``measure`` over ``path`` of DataArray ``x``, loading one cell at a time when
    ``x`` is lazy (a store): memory holds one cell's paths."""
    if "path" not in x.dims:
        raise ValueError(f"{owner}: the data must have a 'path' dimension; got {x.dims}")
    x = x.transpose(..., "path")
    other = x.dims[:-1]
    shape = x.shape[:-1]
    value = np.empty(shape)
    se = np.empty(shape)
    if x.chunks is None:
        value[...], se[...] = measure.evaluate(x.values)
    else:
        for idx in np.ndindex(*shape):
            value[idx], se[idx] = measure.evaluate(x[idx].values)
    coords = {k: v for k, v in x.coords.items() if "path" not in v.dims}
    return xr.Dataset({"value": (other, value, {"long_name": repr(measure)}),
                       "se": (other, se, {"long_name": "standard error"})}, coords=coords)


def risk(ds, measure, var="pnl"):
    """``measure`` of ``ds[var]`` over paths, per cell (strategy, cost, swept fields).

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        A result of ``simulate``/``hedge_paths``/``sweep`` (in memory or a lazy store, read one
        cell of paths at a time), or a DataArray with a ``path`` dimension.
    measure : RiskMeasure
        E.g. ``Entropic(1.0)``, ``ExpectedShortfall(0.99)``; stated in losses.
    var : str
        The variable of a Dataset (default the P&L).

    Returns
    -------
    xarray.Dataset
        ``value`` and ``se`` (influence-function standard error) over the other dimensions.
    """
    _check_measure("risk", measure)
    x = ds[var] if isinstance(ds, xr.Dataset) else ds
    return _per_cell("risk", x, measure)


def indifference_price(ds, measure, value=None):
    """Indifference premium rho(P&L without premium) per cell, with its standard error.

    ``price`` is the cash the holder needs at t=0 to be indifferent to the hedged position:
    for a written book the ask, for a bought book minus the bid (module docstring). With
    ``value`` (the book's value, e.g. ``gh.price(market, book)``; negative when written),
    ``spread = price + value`` is the premium over that value.

    Parameters
    ----------
    ds : xarray.Dataset
        A result with ``pnl`` and ``premium`` (``simulate``, ``sweep``; lazy stores too).
    measure : RiskMeasure
        A cash-invariant measure (``Entropic``, ``ExpectedShortfall``, ``MeanVariance``,
        ``OCE``).
    value : float or DataArray, optional
        Reference value of the book for the spread.

    Returns
    -------
    xarray.Dataset
        ``price``, ``se`` and, with ``value``, ``spread``.
    """
    owner = "indifference_price"
    _check_measure(owner, measure, cash_invariant=True)
    if not isinstance(ds, xr.Dataset) or "premium" not in ds or "pnl" not in ds:
        raise ValueError(f"{owner}: 'ds' must be a Dataset with 'pnl' and 'premium' (a result "
                         f"of simulate or sweep)")
    out = _per_cell(owner, ds["pnl"] + ds["premium"], measure)
    out = out.rename(value="price")
    out["price"].attrs = {"long_name": f"indifference price ({measure!r})", "units": "currency"}
    if value is not None:
        out["spread"] = out["price"] + value
        out["spread"].attrs = {"long_name": "indifference price over the book's value",
                               "units": "currency"}
    return out

