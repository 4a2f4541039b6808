"""E12: twenty years of real S&P 500 history, a written 1-month call hedged every month.

Question: Sell a 1-month (21 trading days) at-the-money call on the S&P 500 every month from
1999 to 2018, priced at a hedge vol read off the data up to the sale (trailing realised vol,
EWMA, GARCH(1,1), GJR-GARCH, or the VIX where it exists), and hedge it along the real daily
closes (daily, weekly, a 5% delta band, Whalley-Wilmott, or not at all) paying 2 bp per trade.
How large is the hedging error per unit of vega, which vol source makes it smallest, which
months were worst, and where did it come from day by day (gamma, theta, vega)?

Run:  python experiments/e12_sp500_history.py [--paths N] [--start 1999-01-01]
"""

import math
import time

import numpy as np
import xarray as xr

import gpuhedge as gh
from gpuhedge import attribution, data, experiment, hedge_vols
from gpuhedge.pricing import bs_vega

TENOR, YEAR = 21, data.TRADING_DAYS       # the call's life and a year, in trading days
SPOT = 100.0                              # each window's closes are scaled to 100 at the sale
RATE = 0.0                                # no rate or dividend series ships with the data
PROPORTIONAL = 2e-4                       # 2 bp of traded notional, initial hedge and unwind
COSTS = {"2 bp": gh.Costs(proportional=PROPORTIONAL)}
BAND, RISK_AVERSION = 0.05, 1.0           # band: 0.05 shares per call; WW: 1/(index point)
RULES = ("daily delta", "weekly delta", "delta band 5%", "Whalley-Wilmott", "no hedge")
SOURCES = ("realised", "EWMA", "GARCH", "GJR-GARCH", "VIX")
EPISODES = (2000, 2001, 2002, 2008, 2010, 2011, 2015, 2018)
UNIT = ("Hedging error = the writer's P&L (premium at the hedge vol, hedge, costs, payoff) "
        "divided by the call's Black-Scholes vega per vol point at the sale (at the hedge vol): "
        "in vol points, the error is how many points of vol the sale was mispriced by, after "
        "the fact. Negative: a loss.")
PATHS_NOTE = ("--paths has no Monte Carlo meaning in a back-test; here it is the number of "
              "monthly sales from --start (default: all).")


def rules(vol):
    return {"daily delta": gh.DeltaHedge(vol=vol, every=1),
            "weekly delta": gh.DeltaHedge(vol=vol, every=5),
            "delta band 5%": gh.DeltaBand(vol=vol, band=BAND),
            "Whalley-Wilmott": gh.WhalleyWilmott(vol=vol, risk_aversion=RISK_AVERSION),
            "no hedge": gh.NoHedge(vol=vol)}


def vega_point(vol):
    """Black-Scholes vega of the ATM call per vol point at the sale."""
    return float(bs_vega(SPOT, SPOT, TENOR / YEAR, vol, RATE, 0.0)) / 100.0


def forecasts(close, vix, starts):
    """Each source's hedge vol (date, horizon), from the data up to each date only."""
    garch = {k: hedge_vols.garch(close, starts, kind, horizon=TENOR)
             for k, kind in (("GARCH", "garch"), ("GJR-GARCH", "gjr"))}
    vols = {"realised": hedge_vols.realised(close, window=TENOR, horizon=TENOR),
            "EWMA": hedge_vols.ewma(close, horizon=TENOR),
            "GARCH": garch["GARCH"].vol, "GJR-GARCH": garch["GJR-GARCH"].vol,
            "VIX": hedge_vols.implied(vix, close["date"].values, horizon=TENOR)}
    return vols, garch


def marks(vol, start):
    """The source's vol for the days left to expiry at closes start .. start + TENOR - 1."""
    v = vol.values
    return np.array([v[start + k, TENOR - k - 1] for k in range(TENOR)])


def back_test(dates, closes, vols, starts, device):
    """gh.hedge_paths on each month for every source x rule, and the daily attribution."""
    times = data.year_fractions(TENOR)
    book = gh.Book.short(gh.EuropeanCall(SPOT, times[-1]), 1.0)
    shape = (len(SOURCES), len(RULES), len(starts))
    out = {k: np.full(shape, np.nan) for k in ("error", "cost", "trades", "hedge_vol",
                                               "realised")}
    att = {b: np.full(shape, np.nan) for b in attribution.BUCKETS}
    check, device_used = dict(replay=0.0, trades=0, cost=0.0), None
    for m, start in enumerate(starts):
        prices = SPOT * closes[start:start + TENOR + 1] / closes[start]
        hedges, sigma = {}, {}
        for i, source in enumerate(SOURCES):
            sigma[source] = marks(vols[source], start)
            if np.all(np.isfinite(sigma[source])):
                hedges.update({f"{source}: {r}": h for r, h in rules(sigma[source][0]).items()})
        if not hedges:
            continue
        ds = gh.hedge_paths(prices, times, book, hedges, COSTS, rate=RATE, device=device)
        device_used = ds.attrs["device"]
        realised = math.sqrt(YEAR * np.mean(np.diff(np.log(prices)) ** 2))
        for i, source in enumerate(SOURCES):
            if f"{source}: {RULES[0]}" not in hedges:
                continue
            vol, unit = sigma[source][0], vega_point(sigma[source][0])
            for j, rule in enumerate(RULES):
                e = ds.sel(strategy=f"{source}: {rule}").isel(cost=0, path=0)
                buckets, trades = attribution.daily_attribution(
                    prices, times, SPOT, -1.0, hedges[f"{source}: {rule}"], PROPORTIONAL,
                    RATE, marks=sigma[source])
                total = sum(float(b.sum()) for b in buckets.values())
                check["replay"] = max(check["replay"], abs(total - float(e.pnl)))
                check["cost"] = max(check["cost"], abs(float(buckets["costs"].sum())
                                                       + float(e.cost_paid)))
                check["trades"] = max(check["trades"], abs(trades - int(e.trades)))
                for b in attribution.BUCKETS:
                    att[b][i, j, m] = float(buckets[b].sum()) / unit
                out["error"][i, j, m] = float(e.pnl) / unit
                out["cost"][i, j, m] = float(e.cost_paid) / unit
                out["trades"][i, j, m] = int(e.trades)
                out["hedge_vol"][i, j, m] = vol
                out["realised"][i, j, m] = realised
    coords = {"source": np.array(SOURCES, dtype=object), "strategy": np.array(RULES, dtype=object),
              "path": np.arange(len(starts)),
              "start_date": ("path", dates[starts].astype("datetime64[ns]"))}
    res = xr.Dataset({"pnl": (("source", "strategy", "path"), out["error"],
                              {"units": "vol points", "long_name": "hedging error / vega"}),
                      "cost_paid": (("source", "strategy", "path"), out["cost"]),
                      "trades": (("source", "strategy", "path"), out["trades"]),
                      "hedge_vol": (("source", "path"), out["hedge_vol"][:, 0]),
                      "realised_vol": ("path", np.nanmax(out["realised"][:, 0], axis=0)),
                      **{f"att_{b.replace(' ', '_')}": (("source", "strategy", "path"), att[b])
                         for b in attribution.BUCKETS}}, coords=coords)
    res.attrs.update(device=device_used, note="path = one monthly sale (start_date); " + UNIT)
    return res, check


def source_summary(res, source):
    one = res.sel(source=source)
    keep = np.isfinite(one.pnl.isel(strategy=0).values)
    one = one.isel(path=np.flatnonzero(keep))
    return one, gh.summary(one[["pnl", "cost_paid", "trades"]], unhedged="no hedge")


def stats_table(res, sums):
    body = []
    for source in SOURCES:
        if source not in sums:
            continue
        one, s = sums[source]
        for rule in RULES:
            c, e = s.sel(strategy=rule), one.pnl.sel(strategy=rule).values
            w = int(np.argmin(e))
            body.append([source, rule, f"{e.size}",
                         f"{float(c['mean']):+.2f} +- {float(c.se_mean):.2f}",
                         f"{float(c['std']):.2f}", f"{float(c.cvar_95):.2f}",
                         f"{float(c.q_05):+.2f}",
                         f"{_month(one.start_date.values[w])} ({e[w]:+.1f})",
                         f"{float(c.mean_cost):.2f}", f"{float(c.mean_trades):.1f}"])
    return experiment.table(
        ["vol source", "rule", "months", "mean (+- se)", "std", "CVaR 95%", "5% quantile",
         "worst month", "mean cost", "mean trades"], body, text=2)


def _month(date):
    return str(np.datetime64(date, "D"))


def worst_table(res, sums, n_worst):
    one, _ = sums["realised"]
    e = one.pnl.sel(strategy="daily delta").values
    order = np.argsort(e)[:n_worst]
    have = [s for s in SOURCES if s in sums]
    body = []
    for k in order:
        row = res.sel(path=int(one.path.values[k]))
        cells = [_month(one.start_date.values[k]), f"{100 * float(row.realised_vol):.1f}%"]
        for s in have:
            v = float(row.hedge_vol.sel(source=s))
            err = float(row.pnl.sel(source=s, strategy="daily delta"))
            cells.append("-" if not math.isfinite(err) else f"{100 * v:.1f}% / {err:+.1f}")
        body.append([*cells, f"{float(one.pnl.sel(strategy='no hedge')[k]):+.1f}"])
    above = sum(float(res.realised_vol.sel(path=int(one.path.values[k])))
                > float(res.hedge_vol.sel(source="realised", path=int(one.path.values[k])))
                for k in order)
    md = experiment.table(["sold", "realised vol over the month",
                           *(f"{s} vol / error" for s in have), "no hedge (realised)"], body)
    return md, [_month(one.start_date.values[k]) for k in order], above


def episode_table(sums):
    one, _ = sums["realised"]
    years = one.start_date.dt.year.values
    body = []
    rows = {}
    for y in EPISODES:
        at = np.flatnonzero(years == y)
        if at.size == 0:
            continue
        e = one.pnl.sel(strategy="daily delta").values[at]
        k = at[int(np.argmin(e))]
        g = "-"
        if "GARCH" in sums:
            go = sums["GARCH"][0]
            hit = np.flatnonzero(go.path.values == one.path.values[k])
            if hit.size:
                g = f"{float(go.pnl.sel(strategy='daily delta')[hit[0]]):+.1f}"
        rows[y] = float(e.min())
        body.append([f"{y}", f"{at.size}", _month(one.start_date.values[k]), f"{e.min():+.1f}",
                     f"{e.mean():+.2f}", g])
    if not rows:
        return "No stress year (" + ", ".join(map(str, EPISODES)) + ") in the sample.", rows
    return experiment.table(
        ["year", "months", "worst month (realised, daily delta)", "its error",
         "mean error that year", "GARCH's error that month"], body, text=(0, 2)), rows


def attribution_table(res, sums, check):
    body = []
    for source in SOURCES:
        if source not in sums:
            continue
        one, _ = sums[source]
        for rule in ("daily delta", "weekly delta", "no hedge"):
            r = one.sel(strategy=rule)
            parts = {b: float(r[f"att_{b.replace(' ', '_')}"].mean()) for b in
                     attribution.BUCKETS}
            body.append([source, rule, *(f"{parts[b]:+.2f}" for b in attribution.BUCKETS),
                         f"{sum(parts.values()):+.2f}",
                         f"{parts['gamma'] + parts['theta'] + parts['vega']:+.2f}"])
    return experiment.table(
        ["vol source", "rule", *attribution.BUCKETS, "total", "Greeks (gamma + theta + vega)"],
        body, text=2)


def figures(dates, closes, res, sums, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    when = res.start_date.values.astype("datetime64[D]").astype(object)
    fig, (ax, bx, cx) = plt.subplots(3, 1, figsize=(12, 11), sharex=True,
                                     gridspec_kw=dict(height_ratios=(0.8, 0.8, 1.4)))
    ax.semilogy(dates.astype("datetime64[D]").astype(object), closes, lw=0.8, color="k")
    ax.set(ylabel="S&P 500 close (log scale)", title="S&P 500 (arch.data.sp500)")
    bx.plot(when, 100 * res.realised_vol, color="0.6", lw=0.8, marker=".", ms=3,
            label="realised over the month sold")
    for i, s in enumerate(SOURCES):
        if s in sums:
            bx.plot(when, 100 * res.hedge_vol.sel(source=s), lw=1, color=f"C{i}", label=s)
    bx.set(ylabel="vol (%)", title="hedge vol at each sale, and the vol that followed")
    bx.legend(fontsize=8, ncol=3, loc="upper right")
    for i, s in enumerate(SOURCES):
        if s in sums:
            cx.plot(when, res.pnl.sel(source=s, strategy="daily delta"), lw=0.9, marker=".",
                    ms=3, color=f"C{i}", label=s)
    cx.axhline(0, color="k", lw=0.5)
    cx.set(ylabel="hedging error (vol points)", xlabel="month sold",
           title="Written 1-month ATM call, hedged daily (2 bp): error / vega per vol point")
    cx.legend(fontsize=8, ncol=5, loc="lower left")
    for a in (ax, bx, cx):
        a.grid(True, alpha=0.3)
        for y in EPISODES:
            a.axvspan(np.datetime64(f"{y}-01-01").astype(object),
                      np.datetime64(f"{y + 1}-01-01").astype(object), color="C3", alpha=0.04)
    cx.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

    have = [s for s in SOURCES if s in sums]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    for ax, s in zip(axes.ravel(), have):
        one = sums[s][0].sel(strategy="daily delta")
        t = one.start_date.values.astype("datetime64[D]").astype(object)
        total = 0
        for j, b in enumerate(attribution.BUCKETS):
            part = one[f"att_{b.replace(' ', '_')}"].values
            total = total + part
            ax.plot(t, np.cumsum(part), lw=1.1, color=f"C{j}", label=f"{b} ({part.sum():+.0f})")
        ax.plot(t, np.cumsum(total), lw=1.8, color="k", label=f"total ({total.sum():+.0f})")
        ax.plot(t, np.cumsum(one.pnl.values), "o", ms=2, mfc="w", color="k",
                label="gh.hedge_paths")
        ax.axhline(0, color="k", lw=0.5)
        ax.set(title=f"{s}: cumulative attribution, daily delta (vol points)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower left", ncol=2)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    hx = axes.ravel()[-1]
    lo = min(float(sums[s][0].pnl.sel(strategy="daily delta").min()) for s in have)
    hi = max(float(sums[s][0].pnl.sel(strategy="daily delta").max()) for s in have)
    bins = np.linspace(lo, hi, 40)
    for i, s in enumerate(SOURCES):
        if s in sums:
            hx.hist(sums[s][0].pnl.sel(strategy="daily delta"), bins=bins, density=True,
                    histtype="step", lw=1.3, color=f"C{i}", label=s)
    hx.set(title="distribution of the monthly error, daily delta", xlabel="vol points",
           ylabel="density")
    hx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path.with_name(f"{path.stem}_attribution.png"), dpi=110)
    plt.close(fig)


def main(argv=None):
    p = experiment.parser(
        __doc__, "e12_sp500_history", paths=None,
        paths_help="monthly sales from --start (default: all); " + PATHS_NOTE,
        store_help="Zarr store of the monthly errors and their attribution",
        seed_help="unused: the back-test is deterministic")
    p.add_argument("--start", default="1999-01-01",
                   help="first sale on or after this date (YYYY-MM-DD); the vol forecasts still "
                        "use all the data before it")
    p.add_argument("--worst", type=int, default=12, help="worst months listed")
    args = p.parse_args(argv)
    out, png, store = experiment.outputs(args)
    sp500 = data.load("sp500")
    vix = data.load("vix").vix
    dates, closes = sp500["date"].values, sp500["close"].values
    first = max(TENOR, int(np.searchsorted(dates, np.datetime64(args.start))))
    starts = np.arange(first, len(closes) - TENOR, TENOR)
    if args.paths is not None:
        starts = starts[:max(args.paths, 1)]

    t0 = time.perf_counter()
    vols, garch = forecasts(sp500["close"], vix, starts)
    t1 = time.perf_counter()
    res, check = back_test(dates, closes, vols, starts, args.device)
    t2 = time.perf_counter()
    sums = {s: source_summary(res, s) for s in SOURCES
            if np.isfinite(res.pnl.sel(source=s, strategy="daily delta")).any()}
    if store is not None:
        gh.store.save(store, res)
    figures(dates, closes, res, sums, png)

    worst, worst_dates, above = worst_table(res, sums, args.worst)
    episodes, episode_worst = episode_table(sums)
    summ = {s: {r: {k: float(sums[s][1][k].sel(strategy=r)) for k in ("mean", "std", "cvar_95")}
                for r in RULES} for s in sums}
    n_months = {s: int(sums[s][0].sizes["path"]) for s in sums}
    fits = {k: g for k, g in garch.items() if g.sizes["fit_date"]}
    fit_note = "; ".join(
        f"{k}: {g.sizes['fit_date']} fits, last (on data to {_month(g.fit_date.values[-1])}) "
        + ", ".join(f"{p} {float(v):.3g}" for p, v in zip(g.param.values,
                                                           g.params.isel(fit_date=-1).values))
        + f", all converged: {bool(g.converged.all())}" for k, g in fits.items())
    dd = {s: summ[s]["daily delta"] for s in summ}
    # std over the same months: the months every source but the VIX covers, and the VIX's
    common = {}
    for label, group in (("all", [s for s in sums if s != "VIX"]), ("VIX", list(sums))):
        if label == "VIX" and "VIX" not in sums:
            continue
        e = res.pnl.sel(strategy="daily delta", source=group)
        both = np.isfinite(e).all("source").values
        common[label] = {s: (float(e.sel(source=s)[both].mean()),
                             float(e.sel(source=s)[both].std(ddof=1)), int(both.sum()))
                         for s in group}
    best = {k: min(v, key=lambda s: v[s][1]) for k, v in common.items()}
    att = {s: {b: float(sums[s][0][f"att_{b.replace(' ', '_')}"].sel(
        strategy="daily delta").mean()) for b in attribution.BUCKETS} for s in sums}

    tables = (f"## 1. The monthly hedging error, per vol source and rule (vol points)\n\n"
              f"{stats_table(res, sums)}\n\n{UNIT} CVaR 95%: the mean of the worst 5% of "
              f"months, as a loss (positive). Standard errors treat months as independent "
              f"(they are not quite: vol clusters).\n\n"
              f"## 2. The worst months (realised-vol source, daily delta)\n\n{worst}\n\n"
              f"Each cell: the source's hedge vol at the sale and the daily-delta error (vol "
              f"points); '-' where the source has no forecast.\n\n"
              f"## 3. The worst month of each stress year (realised source, daily delta)\n\n"
              f"{episodes}\n\n"
              f"## 4. Daily attribution, mean per month (vol points)\n\n"
              f"{attribution_table(res, sums, check)}\n\n"
              f"Each call is marked every day at its source's current forecast of the vol to "
              f"expiry (the rule keeps hedging at the vol it was sold at): gamma = 1/2 Gamma "
              f"dS^2, theta from the Black-Scholes equation at the mark, vega = Vega x the "
              f"day's change of the mark, delta residual = the delta the rule leaves unhedged "
              f"(against the mark's delta), carry = 0 (no rate), costs, and the higher-order "
              f"rest (gpuhedge.attribution.daily_attribution). Replayed against "
              f"gh.hedge_paths over every month, source and rule: largest P&L gap "
              f"{check['replay']:.1e} (index points per 100), cost gap {check['cost']:.1e}, "
              f"trade-count gap {check['trades']}.\n")
    tables += ("\n## 5. The same months for every source, daily delta\n\n"
               + experiment.table(["months", "vol source", "mean", "std"],
                                  ([f"{k} ({n})", s, f"{m:+.2f}", f"{sd:.2f}"]
                                   for k, v in common.items() for s, (m, sd, n) in v.items()),
                                  text=2) + "\n\n"
               "'all': the months with a forecast from every source but the VIX; 'VIX': the "
               "months with a VIX (2014-2018).\n")
    reading = (
        f"Over {n_months['realised']} monthly sales, a written ATM call hedged daily at the "
        f"trailing realised vol had a mean error of {dd['realised']['mean']:+.2f} vol points "
        f"(std {dd['realised']['std']:.2f}, CVaR 95% {dd['realised']['cvar_95']:.1f}); "
        + ", ".join(f"{s} {dd[s]['mean']:+.2f} (std {dd[s]['std']:.2f}, CVaR "
                    f"{dd[s]['cvar_95']:.1f}, {n_months[s]} months)" for s in dd
                    if s != "realised")
        + f". Over the same {common['all'][best['all']][2]} months the smallest spread comes "
        f"from the {best['all']} hedge vol"
        + (f", and over the {common['VIX']['VIX'][2]} VIX months from the {best['VIX']} hedge "
           f"vol (std {common['VIX'][best['VIX']][1]:.2f} against "
           f"{common['VIX']['realised'][1]:.2f} for the trailing realised vol)"
           if "VIX" in best else "") + ". Unhedged, the "
        f"realised-vol writer's std is {summ['realised']['no hedge']['std']:.1f} vol points: "
        f"hedging daily removes "
        f"{100 * (1 - (dd['realised']['std'] / summ['realised']['no hedge']['std']) ** 2):.0f}%"
        f" of the variance; weekly hedging leaves std "
        f"{summ['realised']['weekly delta']['std']:.2f}, the 5% band "
        f"{summ['realised']['delta band 5%']['std']:.2f} and Whalley-Wilmott "
        f"{summ['realised']['Whalley-Wilmott']['std']:.2f}.\n"
        f"The worst months (realised vol, daily delta) were sold on "
        f"{', '.join(worst_dates[:6])}; in {above} of the {len(worst_dates)} worst the vol "
        f"realised over the month was above the trailing vol the call was sold at. "
        + ("Stress years: " + ", ".join(f"{y} worst {v:+.1f}" for y, v in
                                        episode_worst.items()) + ". " if episode_worst else "")
        + f"Day by day the realised-vol daily hedge had theta "
        f"{att['realised']['theta']:+.2f} against gamma {att['realised']['gamma']:+.2f} "
        f"vol points a month on average, with vega {att['realised']['vega']:+.2f} and a "
        f"higher-order rest of {att['realised']['higher order']:+.2f}; the attribution adds "
        f"up to gh.hedge_paths' P&L to {check['replay']:.0e}.")
    question = experiment.question(__doc__)
    md = (f"# E12: Twenty years of S&P 500 history, monthly written calls hedged\n\n"
          f"**Question.** {question}\n\n"
          f"**Set-up.** {sp500.attrs['title']}, {len(closes)} daily closes {_month(dates[0])} "
          f".. {_month(dates[-1])} ({sp500.attrs['source']}); VIX from arch.data.vix "
          f"(2014-2018). Every {TENOR} trading days from {_month(dates[starts[0]])}: sell one "
          f"ATM call expiring {TENOR} trading days later ({len(starts)} sales, each expiring "
          f"when the next is sold), times in trading days / {YEAR}, closes scaled to "
          f"{SPOT:.0f} at the sale, rate and dividend yield 0 (no series of them ships with the "
          f"data; a price index). Hedge vols at the sale's close, from data up to it only "
          f"(gpuhedge.hedge_vols): trailing {TENOR}-day realised; EWMA (lambda 0.94); GARCH(1,1) "
          f"and GJR-GARCH(1,1,1) by arch, zero mean, normal, fitted on all returns since "
          f"1999 (an expanding window, at least 252 returns) at each sale ({fit_note}); VIX / "
          f"100. Rules: {', '.join(RULES)} (band 0.05 shares per call, Whalley-Wilmott risk "
          f"aversion {RISK_AVERSION:g}), each hedging at the vol it sold at; costs "
          f"{PROPORTIONAL * 1e4:.0f} bp of traded notional (initial hedge and unwind "
          f"included). P&L by gh.hedge_paths (one call per month, all sources and rules side "
          f"by side). Forecasts {t1 - t0:.1f} s, back-test and attribution {t2 - t1:.1f} s. "
          f"Device: {res.attrs['device']}.\n\n"
          f"{tables}\n## Reading\n\n{reading}\n\n![errors through time]({png.name})\n\n"
          f"![attribution]({png.stem}_attribution.png)\n")
    experiment.report(out, md, tables + "\n" + reading,
                      f"{len(starts)} months; {t2 - t0:.1f} s.",
                      (png, png.with_name(f"{png.stem}_attribution.png"), store))
    return {"summary": summ, "n_months": n_months, "check": check, "worst": worst_dates,
            "episodes": episode_worst, "attribution": att, "best": best,
            "starts": dates[starts]}


if __name__ == "__main__":
    main()
