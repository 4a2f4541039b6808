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
from gpuhedge import calibrate, data, experiment
from gpuhedge.pricing import bs_vega

TENOR, YEAR = 21, data.TRADING_DAYS
SPOT, RATE = 100.0, 0.0
PROPORTIONAL = 2e-4
COSTS = gh.Costs(proportional=PROPORTIONAL)
FIT_END, TEST_FIRST, TEST_LAST = 2008, 2009, 2018
MODELS = ("Black-Scholes", "Merton", "Heston")
TAIL = 0.05
UNIT = ("Hedging error = the writer's P&L (premium at the model's vol, daily delta hedge at "
        "that vol, 2 bp costs, payoff) / the call's Black-Scholes vega per vol point at that "
        "vol: in vol points; negative is a loss.")


def fit_all(returns, n_boot, seed):
    """The three fits on one window of daily log returns."""
    return {"Black-Scholes": calibrate.fit_merton(returns, jumps=False),
            "Merton": calibrate.fit_merton(returns),
            "Heston": calibrate.fit_heston_moments(returns, n_boot=n_boot, seed=seed)}


def market(fit):
    """(gh market started at SPOT, risk-neutral at RATE; the vol the call is sold and hedged
    at: the model's long-run total vol). Heston starts at its long-run variance."""
    p = fit.params
    if fit.model == "Black-Scholes":
        return gh.BlackScholes(SPOT, p["vol"], RATE), p["vol"]
    if fit.model == "Merton":
        m = gh.Merton(SPOT, p["vol"], RATE, p["lam"], p["mu_j"], p["sigma_j"])
        return m, m.reference_vol
    with warnings.catch_warnings():  # reported with the fit (2 kappa theta vs xi^2)
        warnings.simplefilter("ignore", gh.FellerWarning)
        m = gh.Heston(SPOT, RATE, p["theta"], p["kappa"], p["theta"], p["xi"], p["rho"])
    return m, math.sqrt(p["theta"])


def vega_point(vol):
    return float(bs_vega(SPOT, SPOT, TENOR / YEAR, vol, RATE, 0.0)) / 100.0


def book():
    return gh.Book.short(gh.EuropeanCall(SPOT, TENOR / YEAR), 1.0)


def predict(fits, n_paths, seed, device):
    """Simulated normalised errors per model, and the hedge vols."""
    out, vols = {}, {}
    for name in MODELS:
        mkt, vol = market(fits[name])
        ds = gh.simulate(mkt, book(), {"daily delta": gh.DeltaHedge(vol=vol, every=1)},
                         {"2 bp": COSTS}, n_paths=n_paths, n_steps=TENOR, seed=seed,
                         device=device)
        out[name] = ds.pnl.isel(strategy=0, cost=0).values / vega_point(vol)
        vols[name] = vol
    return out, vols, ds.attrs["device"]


def realised(closes, start, vols, device):
    """The same trade on the real closes from ``start``: ``vols[(window, model)]`` is the vol
    each (window, model) sells and hedges at; one gh.hedge_paths call for all of them."""
    prices = SPOT * closes[start:start + TENOR + 1] / closes[start]
    hedges = {f"{w}|{n}": gh.DeltaHedge(vol=v, every=1) for (w, n), v in vols.items()}
    ds = gh.hedge_paths(prices, data.year_fractions(TENOR), book(), hedges, {"2 bp": COSTS},
                        rate=RATE, device=device)
    pnl = ds.pnl.isel(cost=0, path=0)
    return {key: float(pnl.sel(strategy=f"{key[0]}|{key[1]}")) / vega_point(v)
            for key, v in vols.items()}


def cvar(x, weights=None):
    """Expected shortfall at 95%, as a loss: -E[X | X <= q_5%] (weighted sample)."""
    x = np.asarray(x, float)
    w = np.full(x.size, 1.0 / x.size) if weights is None else weights / weights.sum()
    order = np.argsort(x)
    x, w = x[order], w[order]
    cum = np.cumsum(w)
    k = int(np.searchsorted(cum, TAIL))
    tail = np.append(w[:k], TAIL - (cum[k - 1] if k else 0.0))
    return -float(np.dot(tail, x[:k + 1]) / TAIL)


def kupiec(hits, n, p=TAIL):
    """Kupiec's (1995) proportion-of-failures test of ``hits`` exceedances in ``n`` months at
    probability ``p``: the likelihood-ratio statistic and its chi2(1) p-value."""
    def log_lik(q):
        return float(special.xlogy(n - hits, 1 - q) + special.xlogy(hits, q))

    lr = -2.0 * (log_lik(p) - log_lik(hits / n))
    return lr, float(stats.chi2.sf(lr, 1))


def evaluate(errors, samples, month_fit):
    """PIT, coverage, Kupiec tests and ratios of the realised errors against the predicted
    distribution(s); ``month_fit[i]`` picks month i's predictive sample."""
    n = errors.size
    pit = np.empty(n)
    lo_hit = hi_hit = 0
    z = np.empty(n)
    for i, e in enumerate(errors):
        s = samples[month_fit[i]]
        pit[i] = np.mean(s <= e)
        q_lo, q_hi = np.quantile(s, [TAIL, 1 - TAIL])
        lo_hit += e < q_lo
        hi_hit += e > q_hi
        z[i] = (e - s.mean()) / s.std()
    used, counts = np.unique(month_fit, return_counts=True)
    pool = np.concatenate([samples[u] for u in used])
    weights = np.concatenate([np.full(samples[u].size, c / samples[u].size)
                              for u, c in zip(used, counts)])
    mean_p = float(np.average(pool, weights=weights))
    std_p = math.sqrt(float(np.average((pool - mean_p) ** 2, weights=weights)))
    hist = np.histogram(pit, bins=10, range=(0, 1))[0]
    ends = float(np.mean((pit < 0.1) | (pit >= 0.9)))
    return dict(pit=pit, n=n, ends=ends, lo=int(lo_hit), hi=int(hi_hit), kupiec_lo=kupiec(int(lo_hit), n),
                kupiec_hi=kupiec(int(hi_hit), n), hist=hist,
                uniform_p=float(stats.chisquare(hist).pvalue),
                std_ratio=float(errors.std(ddof=1)) / std_p,
                cvar_ratio=cvar(errors) / cvar(pool, weights), z_std=float(z.std(ddof=1)),
                mean_real=float(errors.mean()), mean_pred=mean_p, std_real=float(
                    errors.std(ddof=1)), std_pred=std_p, cvar_real=cvar(errors),
                cvar_pred=cvar(pool, weights), worst=float(errors.min()),
                worst_pit=float(pit[int(np.argmin(errors))]))


def fit_table(fits):
    lines = ["| model | parameter | estimate | standard error | method |", "|---|---|---:|---:|---|"]
    for name in MODELS:
        f = fits[name]
        for k, v in f.params.items():
            lines.append(f"| {name} | {k} | {v:.4g} | {f.se[k]:.2g} | {f.method} |")
    return "\n".join(lines)


def score_table(scores):
    lines = ["| fit | model | hedge vol | months | mean real / predicted | std real / predicted "
             "(ratio) | CVaR 95% real / predicted (ratio) | below 5% q (Kupiec p) | above 95% "
             "q (Kupiec p) | PIT uniform p | std of z |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (window, name), s in scores.items():
        lines.append(
            f"| {window} | {name} | {s['vol']} | {s['n']} | {s['mean_real']:+.2f} / "
            f"{s['mean_pred']:+.2f} | {s['std_real']:.2f} / {s['std_pred']:.2f} "
            f"({s['std_ratio']:.2f}) | {s['cvar_real']:.1f} / {s['cvar_pred']:.1f} "
            f"({s['cvar_ratio']:.2f}) | {s['lo']} = {100 * s['lo'] / s['n']:.1f}% "
            f"({s['kupiec_lo'][1]:.2g}) | {s['hi']} = {100 * s['hi'] / s['n']:.1f}% "
            f"({s['kupiec_hi'][1]:.2g}) | {s['uniform_p']:.2g} | {s['z_std']:.2f} |")
    return "\n".join(lines)


def figures(scores, when, errors, bands, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    windows = list(dict.fromkeys(w for w, _ in scores))
    fig, axes = plt.subplots(len(windows), len(MODELS), figsize=(13, 4 * len(windows)),
                             squeeze=False, sharey=True)
    for r, w in enumerate(windows):
        for c, name in enumerate(MODELS):
            s = scores[(w, name)]
            ax = axes[r, c]
            ax.bar(np.arange(10) / 10 + 0.05, s["hist"] / s["n"], width=0.1, color=f"C{c}",
                   edgecolor="k", lw=0.5)
            ax.axhline(0.1, color="k", ls="--", lw=1)
            ax.set(title=f"{name}, {w}: PIT of the real errors (uniformity p "
                         f"{s['uniform_p']:.2g})", xlabel="predicted CDF at the real error",
                   xlim=(0, 1))
            ax.title.set_fontsize(9)
            if c == 0:
                ax.set_ylabel("fraction of months")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

    t = when.astype("datetime64[D]").astype(object)
    fig, axes = plt.subplots(len(MODELS), 1, figsize=(12, 3.3 * len(MODELS)), sharex=True)
    for ax, name in zip(axes, MODELS):
        for w, style in zip(windows, ("-", ":")):
            lo, hi = bands[(w, name)]
            ax.plot(t, lo, style, color="C3", lw=1, label=f"predicted 5% / 95%, {w}")
            ax.plot(t, hi, style, color="C3", lw=1)
        ax.plot(t, errors[windows[0]][name], ".-", color="k", lw=0.7, ms=4,
                label=f"real error ({windows[0]} vol)")
        ax.axhline(0, color="k", lw=0.4)
        ax.set(ylabel="vol points", title=f"{name}: real 2009-2018 errors and the predicted band")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
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

    t0 = time.perf_counter()
    fixed = fit_all(r[r_year <= FIT_END], args.boot, args.seed)
    refits = {y: fit_all(r[r_year < y], 20, args.seed) for y in np.unique(start_year)}
    t1 = time.perf_counter()
    samples, vols, device = {}, {}, None
    for key, fits in [("fixed", fixed), *refits.items()]:
        samples[key], vols[key], device = predict(fits, args.paths, args.seed, args.device)
    t2 = time.perf_counter()
    errors = {"fixed": {n: np.empty(starts.size) for n in MODELS},
              "expanding": {n: np.empty(starts.size) for n in MODELS}}
    for i, s in enumerate(starts):
        sold = {("fixed", n): vols["fixed"][n] for n in MODELS}
        sold.update({("expanding", n): vols[int(start_year[i])][n] for n in MODELS})
        for (w, n), e in realised(closes, s, sold, args.device).items():
            errors[w][n][i] = e
    t3 = time.perf_counter()

    labels = {"fixed": f"1999-{FIT_END}", "expanding": "expanding, yearly"}
    scores, bands = {}, {}
    for w, label in labels.items():
        for n in MODELS:
            keys = ["fixed"] * starts.size if w == "fixed" else [int(y) for y in start_year]
            sm = {k: samples[k][n] for k in set(keys)}
            s = evaluate(errors[w][n], sm, keys)
            s["vol"] = (f"{100 * vols['fixed'][n]:.1f}%" if w == "fixed" else
                        f"{100 * min(vols[k][n] for k in set(keys)):.1f}-"
                        f"{100 * max(vols[k][n] for k in set(keys)):.1f}%")
            scores[(label, n)] = s
            q = {k: np.quantile(v, [TAIL, 1 - TAIL]) for k, v in sm.items()}
            bands[(label, n)] = (np.array([q[k][0] for k in keys]),
                                 np.array([q[k][1] for k in keys]))
    figures(scores, dates[starts], {labels[w]: errors[w] for w in errors}, bands, png)
    if store is not None:
        res = xr.Dataset(
            {f"{v}": (("window", "model", "month"),
                      np.array([[scores[(labels[w], n)]["pit"] if v == "pit" else errors[w][n]
                                 for n in MODELS] for w in labels]))
             for v in ("error", "pit")},
            coords={"window": np.array(list(labels.values()), dtype=object),
                    "model": np.array(MODELS, dtype=object),
                    "start_date": ("month", dates[starts].astype("datetime64[ns]"))})
        res.attrs.update(note=UNIT, device=device)
        res.to_zarr(store, mode="w", zarr_format=3, consolidated=False)

    hp = fixed["Heston"].params
    feller = 2 * hp["kappa"] * hp["theta"] - hp["xi"] ** 2
    fixed_scores = {n: scores[(labels["fixed"], n)] for n in MODELS}
    exp_scores = {n: scores[(labels["expanding"], n)] for n in MODELS}

    def miss(s):  # distance of the coverage from 5% on both tails, and of the ratios from 1
        return (abs(s["lo"] / s["n"] - TAIL) + abs(s["hi"] / s["n"] - TAIL)
                + abs(math.log(s["std_ratio"])) + abs(math.log(s["cvar_ratio"])))

    best = min(exp_scores, key=lambda n: miss(exp_scores[n]))
    best_fixed = min(fixed_scores, key=lambda n: miss(fixed_scores[n]))
    worst_month = int(np.argmin(errors["fixed"]["Black-Scholes"]))
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
              f"{UNIT} Each model's call is sold and hedged at the model's long-run vol: "
              f"Black-Scholes vol, Merton sqrt(vol^2 + lam (mu_j^2 + sigma_j^2)), Heston "
              f"sqrt(theta); the prediction is {args.paths:,} simulated paths (risk-neutral, "
              f"rate 0; Heston started at v0 = theta, its long-run variance). PIT: the "
              f"predicted CDF at each real error (uniform on [0, 1] if the model is right; "
              f"uniformity p: chi-square over 10 bins). Coverage: real errors below the "
              f"predicted 5% quantile and above the 95% one (5% each if right), with Kupiec's "
              f"proportion-of-failures test (p < 0.05 rejects). z = (error - predicted mean) / "
              f"predicted std, whose std is 1 if the predicted spread is right. 'expanding, "
              f"yearly': each year's sales are predicted by fits on all returns since 1999 up to "
              f"the year before (the Heston bootstrap then only 20 samples; its standard errors "
              f"are not used). Ratios real / predicted; CVaR 95% as a loss.\n")
    def brief(s):
        return (f"std ratio {s['std_ratio']:.2f}, CVaR ratio {s['cvar_ratio']:.2f}, "
                f"{100 * s['lo'] / s['n']:.0f}% below the 5% quantile (Kupiec p "
                f"{s['kupiec_lo'][1]:.2g})")

    reading = (
        f"Fitted on 1999-{FIT_END} and held fixed, the models sell the call at "
        + ", ".join(f"{n} {100 * vols['fixed'][n]:.1f}%" for n in MODELS)
        + f" and predict errors with std "
        + ", ".join(f"{fixed_scores[n]['std_pred']:.2f}" for n in MODELS)
        + f" vol points; the real 2009-{last_year} errors had std "
        + ", ".join(f"{fixed_scores[n]['std_real']:.2f}" for n in MODELS)
        + f" and means " + ", ".join(f"{fixed_scores[n]['mean_real']:+.2f}" for n in MODELS)
        + f" (predicted " + ", ".join(f"{fixed_scores[n]['mean_pred']:+.2f}" for n in MODELS)
        + "). " + "; ".join(f"{n}: {brief(fixed_scores[n])}" for n in MODELS) + ". "
        f"Refitted every year: " + "; ".join(f"{n}: {brief(exp_scores[n])}" for n in MODELS)
        + f".\nBy coverage of both tails and the std and CVaR ratios, {best} predicts the real "
        f"hedging error best with yearly refits ({best_fixed} with the fixed fit). "
        f"The worst real month, sold {str(dates[starts[worst_month]])[:10]} "
        f"({errors['fixed']['Black-Scholes'][worst_month]:+.1f} vol points at the "
        f"Black-Scholes vol), sits at predicted probabilities "
        + ", ".join(f"{n} {fixed_scores[n]['worst_pit']:.2g}" for n in MODELS)
        + " of a worse month. "
        + "; ".join(f"{n}: {100 * s['ends']:.0f}% of the PIT values in the outer two tenths "
                    f"(20% if right)" for n, s in fixed_scores.items()) + " (fixed fits).")
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
          f"Predicted: gh.simulate, {args.paths:,} paths per model and fit (seed "
          f"{args.seed}). Real: gh.hedge_paths on each {TENOR}-day window of "
          f"{TEST_FIRST}-{last_year} ({starts.size} sales, each expiring when the next is "
          f"sold, closes scaled to {SPOT:.0f}). Fits {t1 - t0:.1f} s, simulations "
          f"{t2 - t1:.1f} s, real windows {t3 - t2:.1f} s. Device: {device}.\n\n"
          f"{tables}\n## Reading\n\n{reading}\n\n![PIT histograms]({png.name})\n\n"
          f"![bands]({png.stem}_bands.png)\n")
    experiment.report(out, md, tables + "\n" + reading,
                      f"Device: {device}; {args.paths:,} paths; {t3 - t0:.1f} s.",
                      (png, png.with_name(f"{png.stem}_bands.png"), store))
    return {"fits": {n: dict(params=fixed[n].params, se=fixed[n].se) for n in MODELS},
            "scores": {f"{w}|{n}": {k: v for k, v in s.items() if k not in ("pit", "hist")}
                       for (w, n), s in scores.items()},
            "best": best, "best_fixed": best_fixed, "n_months": int(starts.size),
            "feller": feller}


if __name__ == "__main__":
    main()
