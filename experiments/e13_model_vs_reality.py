"""E13: does Monte Carlo predict the real hedging error?

Question: Fit Black-Scholes, Merton and Heston to the S&P 500's daily log returns of 1999-2008,
simulate the hedging error of a written 1-month ATM call sold and hedged daily at the model's
vol (2 bp costs), and compare the predicted distribution with the errors the same trade made on
the real closes of 2009-2018. Are the realised errors spread like the prediction (probability
integral transform, coverage of the 5% and 95% quantiles with Kupiec's test), how do their std
and CVaR compare, and does refitting every year on an expanding window help? Which model
predicts the real hedging error best, and how badly does each miss the tail?

Run:  python experiments/e13_model_vs_reality.py [--paths 200000] [--device cuda]
"""

import math
import time
import warnings

import numpy as np
import xarray as xr
from scipy import special, stats

import gpuhedge as gh
from gpuhedge import calibrate, data, experiment, hedge_vols
from gpuhedge.pricing import bs_vega

TENOR, YEAR = 21, data.TRADING_DAYS
SPOT, RATE = 100.0, 0.0
PROPORTIONAL = 2e-4
COSTS = gh.Costs(proportional=PROPORTIONAL)
FIT_END, TEST_FIRST, TEST_LAST = 2008, 2009, 2018
MODELS = ("Black-Scholes", "Merton", "Heston")
MODES = ("conditional", "long-run")     # sold at the trailing realised vol / the model's vol
WINDOWS = ("fixed", "expanding")        # fitted on 1999-2008 / refitted every year
TAIL = 0.05
UNIT = ("Hedging error = the writer's P&L (premium at the model's vol, daily delta hedge at "
        "that vol, 2 bp costs, payoff) / the call's Black-Scholes vega per vol point at that "
        "vol: in vol points; negative is a loss.")


def fit_all(returns, n_boot, seed):
    """The three fits on one window of daily log returns."""
    return {"Black-Scholes": calibrate.fit_merton(returns, jumps=False),
            "Merton": calibrate.fit_merton(returns),
            "Heston": calibrate.fit_heston_moments(returns, n_boot=n_boot, seed=seed)}


def market(fit, vol=None):
    """(gh market started at SPOT, risk-neutral at RATE; the vol the call is sold and hedged
    at). ``vol=None``: the model as fitted, sold at its long-run total vol, Heston started at
    its long-run variance. ``vol`` given (the trailing realised vol at the sale): the model
    started at that vol, sold at it: Black-Scholes at ``vol``; Merton with its diffusion vol
    and jump rate scaled so that the total vol is ``vol`` (the jumps' share of the variance
    kept); Heston started at v0 = vol^2."""
    p = fit.params
    if fit.model == "Black-Scholes":
        v = p["vol"] if vol is None else vol
        return gh.BlackScholes(SPOT, v, RATE), v
    if fit.model == "Merton":
        m = gh.Merton(SPOT, p["vol"], RATE, p["lam"], p["mu_j"], p["sigma_j"])
        if vol is None:
            return m, m.reference_vol
        scale = vol / m.reference_vol
        return gh.Merton(SPOT, p["vol"] * scale, RATE, p["lam"] * scale**2, p["mu_j"],
                         p["sigma_j"]), vol
    v0 = p["theta"] if vol is None else vol**2
    with warnings.catch_warnings():  # reported with the fit (2 kappa theta vs xi^2)
        warnings.simplefilter("ignore", gh.FellerWarning)
        m = gh.Heston(SPOT, RATE, v0, p["kappa"], p["theta"], p["xi"], p["rho"])
    return m, math.sqrt(v0)


def vega_point(vol):
    return float(bs_vega(SPOT, SPOT, TENOR / YEAR, vol, RATE, 0.0)) / 100.0


def book():
    return gh.Book.short(gh.EuropeanCall(SPOT, TENOR / YEAR), 1.0)


def predict(fit, vol, n_paths, seed, device):
    """Simulated normalised errors of the trade under ``market(fit, vol)``; the sale vol; the
    device."""
    mkt, sold = market(fit, vol)
    ds = gh.simulate(mkt, book(), {"daily delta": gh.DeltaHedge(vol=sold, every=1)},
                     {"2 bp": COSTS}, n_paths=n_paths, n_steps=TENOR, seed=seed, device=device)
    return ds.pnl.isel(strategy=0, cost=0).values / vega_point(sold), sold, ds.attrs["device"]


def realised(closes, start, vols, device):
    """The same trade on the real closes from ``start``: ``vols[key]`` is the vol each
    setting (a tuple of names) sells and hedges at; one gh.hedge_paths call for all."""
    prices = SPOT * closes[start:start + TENOR + 1] / closes[start]
    hedges = {"|".join(k): gh.DeltaHedge(vol=v, every=1) for k, v in vols.items()}
    ds = gh.hedge_paths(prices, data.year_fractions(TENOR), book(), hedges, {"2 bp": COSTS},
                        rate=RATE, device=device)
    pnl = ds.pnl.isel(cost=0, path=0)
    return {k: float(pnl.sel(strategy="|".join(k))) / vega_point(v) for k, v in vols.items()}


def cvar(x):
    """Expected shortfall at 95%, as a loss: -E[X | X <= q_5%] over the worst 5% of the sample
    (a fractional weight on the order statistic at the boundary)."""
    x = np.sort(np.asarray(x, float))
    k = TAIL * x.size
    whole = int(k)
    tail = x[:whole].sum() + (k - whole) * (x[whole] if whole < x.size else 0.0)
    return -float(tail / k)


def kupiec(hits, n, p=TAIL):
    """Kupiec's (1995) proportion-of-failures test of ``hits`` exceedances in ``n`` months at
    probability ``p``: the likelihood-ratio statistic and its chi2(1) p-value."""
    def log_lik(q):
        return float(special.xlogy(n - hits, 1 - q) + special.xlogy(hits, q))

    lr = -2.0 * (log_lik(p) - log_lik(hits / n))
    return lr, float(stats.chi2.sf(lr, 1))


def evaluate(errors, samples, pool_size=20_000):
    """PIT, coverage, Kupiec tests and ratios of the real errors against the predictions;
    ``samples[i]`` is month i's predicted sample (one array may serve many months). Predicted
    std and CVaR are those of the months' mixture (the first ``pool_size`` paths of each)."""
    n = errors.size
    pit, z, band = np.empty(n), np.empty(n), np.empty((n, 2))
    for i, (e, s) in enumerate(zip(errors, samples)):
        pit[i] = np.mean(s <= e)
        band[i] = np.quantile(s, [TAIL, 1 - TAIL])
        z[i] = (e - s.mean()) / s.std()
    lo_hit, hi_hit = int(np.sum(errors < band[:, 0])), int(np.sum(errors > band[:, 1]))
    pool = np.concatenate([s[:pool_size] for s in samples])
    hist = np.histogram(pit, bins=10, range=(0, 1))[0]
    return dict(pit=pit, band=band, n=n, lo=lo_hit, hi=hi_hit,
                ends=float(np.mean((pit < 0.1) | (pit >= 0.9))),
                kupiec_lo=kupiec(lo_hit, n), kupiec_hi=kupiec(hi_hit, n), hist=hist,
                uniform_p=float(stats.chisquare(hist).pvalue),
                std_ratio=float(errors.std(ddof=1) / pool.std(ddof=1)),
                cvar_ratio=cvar(errors) / cvar(pool), z_std=float(z.std(ddof=1)),
                mean_real=float(errors.mean()), mean_pred=float(pool.mean()),
                std_real=float(errors.std(ddof=1)), std_pred=float(pool.std(ddof=1)),
                cvar_real=cvar(errors), cvar_pred=cvar(pool), worst=float(errors.min()),
                worst_pit=float(pit[int(np.argmin(errors))]))


def _probability(p, n_paths):
    """A simulated probability; below one path in ``n_paths`` when no path was worse."""
    return f"< {1 / n_paths:.1g}" if p == 0 else f"{p:.2g}"


def fit_table(fits):
    return experiment.table(
        ["model", "parameter", "estimate", "standard error", "method"],
        ([name, k, f"{v:.4g}", f"{fits[name].se[k]:.2g}", fits[name].method]
         for name in MODELS for k, v in fits[name].params.items()), text=(0, 1, 4))


def score_table(scores):
    return experiment.table(
        ["sale", "fit", "model", "hedge vol", "months", "mean real / predicted",
         "std real / predicted (ratio)", "CVaR 95% real / predicted (ratio)",
         "below 5% q (Kupiec p)", "above 95% q (Kupiec p)", "PIT uniform p", "std of z"],
        ([mode, window, name, f"{s['vol']}", f"{s['n']}",
          f"{s['mean_real']:+.2f} / {s['mean_pred']:+.2f}",
          f"{s['std_real']:.2f} / {s['std_pred']:.2f} ({s['std_ratio']:.2f})",
          f"{s['cvar_real']:.1f} / {s['cvar_pred']:.1f} ({s['cvar_ratio']:.2f})",
          f"{s['lo']} = {100 * s['lo'] / s['n']:.1f}% ({s['kupiec_lo'][1]:.2g})",
          f"{s['hi']} = {100 * s['hi'] / s['n']:.1f}% ({s['kupiec_hi'][1]:.2g})",
          f"{s['uniform_p']:.2g}", f"{s['z_std']:.2f}"]
         for (mode, window, name), s in scores.items()), text=3)


def figures(scores, when, errors, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    rows = [(m, w) for m in MODES for w in WINDOWS]
    fig, axes = plt.subplots(len(rows), len(MODELS), figsize=(13, 3.2 * len(rows)),
                             squeeze=False, sharey=True)
    for r, (mode, window) in enumerate(rows):
        for c, name in enumerate(MODELS):
            s = scores[(mode, window, name)]
            ax = axes[r, c]
            ax.bar(np.arange(10) / 10 + 0.05, s["hist"] / s["n"], width=0.1, color=f"C{c}",
                   edgecolor="k", lw=0.5)
            ax.axhline(0.1, color="k", ls="--", lw=1)
            ax.set(title=f"{name}; sold {mode}, fit {window} (uniform p "
                         f"{s['uniform_p']:.2g})", xlim=(0, 1))
            ax.title.set_fontsize(9)
            if c == 0:
                ax.set_ylabel("fraction of months")
            if r == len(rows) - 1:
                ax.set_xlabel("predicted CDF at the real error (PIT)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

    t = when.astype("datetime64[D]").astype(object)
    fig, axes = plt.subplots(len(MODELS), 1, figsize=(12, 3.3 * len(MODELS)), sharex=True)
    for ax, name in zip(axes, MODELS):
        for mode, color in zip(MODES, ("k", "C0")):
            k = (mode, "expanding", name)
            band = scores[k]["band"]
            ax.fill_between(t, band[:, 0], band[:, 1], step="mid", color=color, alpha=0.12,
                            label=f"predicted 5-95%, sold {mode}")
            ax.plot(t, errors[k], ".-", color=color, lw=0.7, ms=4,
                    label=f"real error, sold {mode}")
        ax.axhline(0, color="k", lw=0.4)
        ax.set(ylabel="vol points", title=f"{name} (refitted yearly): real errors and the "
                                          f"predicted 5-95% band")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower left", ncol=2)
    axes[-1].xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    fig.tight_layout()
    fig.savefig(path.with_name(f"{path.stem}_bands.png"), dpi=110)
    plt.close(fig)


def main(argv=None):
    p = experiment.parser(__doc__, "e13_model_vs_reality", paths=200_000,
                          paths_help="simulated paths per model and fit",
                          store_help="Zarr store of the real errors and their PIT")
    p.add_argument("--boot", type=int, default=200,
                   help="bootstrap samples for the Heston moment fit's standard errors")
    p.add_argument("--cond-paths", type=int, default=50_000,
                   help="simulated paths per model and month when the model starts at the "
                        "month's trailing realised vol")
    p.add_argument("--years", type=int, default=TEST_LAST - TEST_FIRST + 1,
                   help="test years from 2009 (default: all ten)")
    args = p.parse_args(argv)
    out, png, store = experiment.outputs(args)
    sp500 = data.load("sp500")
    dates, closes = sp500["date"].values, sp500["close"].values
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    r = np.diff(np.log(closes))  # r[i]: close i -> i + 1, known at close i + 1
    r_year = years[1:]
    last_year = TEST_FIRST + max(args.years, 1) - 1
    first = int(np.searchsorted(years, TEST_FIRST))
    starts = np.arange(first, len(closes) - TENOR, TENOR)
    starts = starts[years[starts] <= last_year]
    start_year = years[starts]

    trailing = hedge_vols.realised(sp500["close"], window=TENOR, horizon=1).values[:, 0]

    t0 = time.perf_counter()
    fixed = fit_all(r[r_year <= FIT_END], args.boot, args.seed)
    refits = {y: fit_all(r[r_year < y], 20, args.seed) for y in np.unique(start_year)}

    def fit(window, i):
        return ("fixed", fixed) if window == "fixed" else (int(start_year[i]),
                                                            refits[int(start_year[i])])

    def sale(mode, i):
        return trailing[starts[i]] if mode == "conditional" else None

    settings = [(m, w, n) for m in MODES for w in WINDOWS for n in MODELS]
    sold = {k: np.array([market(fit(k[1], i)[1][k[2]], sale(k[0], i))[1]
                         for i in range(starts.size)]) for k in settings}
    t1 = time.perf_counter()
    errors = {k: np.empty(starts.size) for k in settings}
    for i, start in enumerate(starts):
        for k, e in realised(closes, start, {k: sold[k][i] for k in settings},
                             args.device).items():
            errors[k][i] = e
    t2 = time.perf_counter()
    scores, device, long_run = {}, None, {}
    for k in settings:
        mode, window, name = k
        samples = []
        for i in range(starts.size):
            key, fits = fit(window, i)
            if mode == "long-run":
                if (key, name) not in long_run:
                    long_run[(key, name)] = predict(fits[name], None, args.paths, args.seed,
                                                    args.device)
                x, _, device = long_run[(key, name)]
            else:
                x, _, device = predict(fits[name], sale(mode, i), args.cond_paths, args.seed,
                                       args.device)
            samples.append(x)
        scores[k] = evaluate(errors[k], samples)
        scores[k]["vol"] = (f"{100 * sold[k].min():.1f}%" if np.ptp(sold[k]) == 0 else
                            f"{100 * sold[k].min():.1f}-{100 * sold[k].max():.1f}%")
    t3 = time.perf_counter()
    figures(scores, dates[starts], errors, png)
    if store is not None:
        res = xr.Dataset(
            {v: (("mode", "window", "model", "month"),
                 np.array([[[scores[(m, w, n)]["pit"] if v == "pit" else errors[(m, w, n)]
                             for n in MODELS] for w in WINDOWS] for m in MODES]))
             for v in ("error", "pit")},
            coords={"mode": np.array(MODES, dtype=object),
                    "window": np.array(WINDOWS, dtype=object),
                    "model": np.array(MODELS, dtype=object),
                    "start_date": ("month", dates[starts].astype("datetime64[ns]"))})
        res.attrs.update(note=UNIT, device=device)
        gh.store.save(store, res)

    hp = fixed["Heston"].params
    feller = 2 * hp["kappa"] * hp["theta"] - hp["xi"] ** 2

    def miss(s):  # distance of the coverage from 5% on both tails, and of the ratios from 1
        return (abs(s["lo"] / s["n"] - TAIL) + abs(s["hi"] / s["n"] - TAIL)
                + abs(math.log(s["std_ratio"])) + abs(math.log(s["cvar_ratio"])))

    best = {(m, w): min(MODELS, key=lambda n: miss(scores[(m, w, n)]))
            for m in MODES for w in WINDOWS}
    headline = {n: scores[("conditional", "expanding", n)] for n in MODELS}
    cond = errors[("conditional", "fixed", "Black-Scholes")]
    worst_month = int(np.argmin(cond))
    tables = (f"## 1. Fits on the daily log returns of 1999-{FIT_END} "
              f"({int((r_year <= FIT_END).sum())} returns)\n\n{fit_table(fixed)}\n\n"
              f"Per year: m the drift of ln S between jumps, vol, lam (jumps a year), kappa; "
              f"theta a variance per year; mu_j, sigma_j the mean and std of a jump's log size. "
              f"Heston: 2 kappa theta - xi^2 = {feller:+.3f} (Feller's condition "
              f"{'holds' if feller >= 0 else 'fails: the variance reaches 0'}); log-likelihoods "
              f"Black-Scholes {fixed['Black-Scholes'].objective:,.1f}, Merton "
              f"{fixed['Merton'].objective:,.1f}; Heston's weighted squared moment gap "
              f"{fixed['Heston'].objective:.1f} over {fixed['Heston'].extra['sample'].size} "
              f"moments.\n\n"
              f"## 2. Predicted against real hedging errors, {TEST_FIRST}-{last_year} "
              f"({starts.size} monthly sales)\n\n{score_table(scores)}\n\n"
              f"{UNIT} Sale: 'conditional' sells at the trailing {TENOR}-day realised vol at "
              f"the sale (E12's realised source; the real errors are then the same for every "
              f"model) and starts the model there ({args.cond_paths:,} simulated paths per "
              f"model and month): Black-Scholes at that vol, Merton with its diffusion vol and "
              f"jump rate scaled to that total vol, Heston at v0 = that vol squared. 'long-run' "
              f"sells at the model's own long-run vol (Black-Scholes vol, Merton sqrt(vol^2 + "
              f"lam (mu_j^2 + sigma_j^2)), Heston sqrt(theta), Heston started at v0 = theta; "
              f"{args.paths:,} paths per model and fit). Fit: 'fixed' on 1999-{FIT_END}; "
              f"'expanding' each year's sales predicted by fits on all returns since 1999 up to "
              f"the year before (the Heston bootstrap then 20 samples; its standard errors are "
              f"not used). Simulations risk-neutral, rate 0. PIT: the predicted CDF at each real "
              f"error (uniform on [0, 1] if the model is right; uniformity p: chi-square over "
              f"10 bins). Coverage: real errors below the predicted 5% quantile and above the "
              f"95% one (5% each if right), with Kupiec's proportion-of-failures test (p < 0.05 "
              f"rejects). z = (error - predicted mean) / predicted std, whose std is 1 if the "
              f"predicted spread is right. Ratios real / predicted (std and CVaR of the months' "
              f"mixture of predictions); CVaR 95% as a loss.\n")

    def brief(s):
        return (f"std ratio {s['std_ratio']:.2f}, CVaR ratio {s['cvar_ratio']:.2f}, "
                f"{100 * s['lo'] / s['n']:.0f}% / {100 * s['hi'] / s['n']:.0f}% beyond the 5% "
                f"/ 95% quantiles (Kupiec p {s['kupiec_lo'][1]:.2g} / {s['kupiec_hi'][1]:.2g})")

    lr = {n: scores[("long-run", "fixed", n)] for n in MODELS}
    reading = (
        f"Sold at the trailing realised vol and refitted every year (the closest to E12's "
        f"trade), the real errors of {TEST_FIRST}-{last_year} had mean "
        f"{headline['Black-Scholes']['mean_real']:+.2f} and std "
        f"{headline['Black-Scholes']['std_real']:.2f} vol points, against predicted means "
        + ", ".join(f"{n} {headline[n]['mean_pred']:+.2f}" for n in MODELS)
        + " and stds " + ", ".join(f"{headline[n]['std_pred']:.2f}" for n in MODELS) + ". "
        + "; ".join(f"{n}: {brief(headline[n])}" for n in MODELS) + ". "
        f"By coverage of both tails and the std and CVaR ratios the best predictor is "
        f"{best[('conditional', 'expanding')]} (with the fixed fit "
        f"{best[('conditional', 'fixed')]}). The worst real month, sold "
        f"{str(dates[starts[worst_month]])[:10]} ({cond[worst_month]:+.1f} vol points), had "
        f"a predicted probability of a worse month of "
        + ", ".join(f"{n} " + _probability(scores[("conditional", "fixed", n)]["worst_pit"],
                                           args.cond_paths) for n in MODELS) + " (fixed fits).\n"
        f"Sold instead at each model's own long-run vol fitted on 1999-{FIT_END} ("
        + ", ".join(f"{n} {lr[n]['vol']}" for n in MODELS)
        + f"), the sales of {TEST_FIRST}-{last_year} made the writer's mean error "
        + ", ".join(f"{lr[n]['mean_real']:+.2f}" for n in MODELS) + " against predicted "
        + ", ".join(f"{lr[n]['mean_pred']:+.2f}" for n in MODELS) + ": "
        + "; ".join(f"{n} {100 * lr[n]['hi'] / lr[n]['n']:.0f}% above the 95% quantile"
                    for n in MODELS)
        + f" (best: {best[('long-run', 'fixed')]}; refitted yearly "
        f"{best[('long-run', 'expanding')]}). An unconditional prediction misses the vol "
        f"regime: the PIT has " + ", ".join(f"{100 * lr[n]['ends']:.0f}%" for n in MODELS)
        + " of its values in the outer two tenths (20% if right), against "
        + ", ".join(f"{100 * headline[n]['ends']:.0f}%" for n in MODELS)
        + " when the prediction starts from the current vol.")
    question = experiment.question(__doc__)
    md = (f"# E13: Does Monte Carlo predict the real hedging error?\n\n"
          f"**Question.** {question}\n\n"
          f"**Set-up.** {sp500.attrs['title']} daily closes ({sp500.attrs['source']}). Fits "
          f"on the daily log returns of 1999-{FIT_END} (gpuhedge.calibrate): Black-Scholes and "
          f"Merton by maximum likelihood with standard errors from the inverse Hessian, "
          f"Heston by moment matching with block-bootstrap standard errors ({args.boot} "
          f"samples). Trade: sell one 1-month ({TENOR} trading days, times in trading days / "
          f"{YEAR}) ATM call at the model's vol and delta-hedge it daily at that vol, "
          f"{PROPORTIONAL * 1e4:.0f} bp costs (initial hedge and unwind included), rate 0. "
          f"Predicted: gh.simulate (seed {args.seed}; paths in section 2). Real: "
          f"gh.hedge_paths on each {TENOR}-day window of "
          f"{TEST_FIRST}-{last_year} ({starts.size} sales, each expiring when the next is "
          f"sold, closes scaled to {SPOT:.0f}). Fits {t1 - t0:.1f} s, real windows "
          f"{t2 - t1:.1f} s, simulations {t3 - t2:.1f} s. Device: {device}.\n\n"
          f"{tables}\n## Reading\n\n{reading}\n\n![PIT histograms]({png.name})\n\n"
          f"![bands]({png.stem}_bands.png)\n")
    experiment.report(out, md, tables + "\n" + reading,
                      f"Device: {device}; {args.paths:,} paths; {t3 - t0:.1f} s.",
                      (png, png.with_name(f"{png.stem}_bands.png"), store))
    return {"fits": {n: dict(params=fixed[n].params, se=fixed[n].se) for n in MODELS},
            "scores": {"|".join(k): {a: v for a, v in s.items()
                                     if a not in ("pit", "hist", "band")}
                       for k, s in scores.items()},
            "best": {"|".join(k): v for k, v in best.items()}, "n_months": int(starts.size),
            "feller": feller}


if __name__ == "__main__":
    main()
