"""E04: what rebalancing cannot remove.

Question: A written three-month ATM call is delta-hedged N times (N = 4 to 256) in five
markets of the same total variance (20% vol): Black-Scholes, Merton and Kou jump diffusions,
Heston stochastic vol and Bates (both). Under Black-Scholes the std of the hedging error falls
like N^-1/2 (Derman-Kamal); how far do jumps and vol risk hold it up (the plateau as N grows,
in std and CVaR 99%), and how much of that residual does a delta-gamma or delta-vega hedge
with a listed six-month ATM call remove?

Run:  python experiments/e04_what_rebalancing_cannot_remove.py [--paths 2_000_000] [--device cuda]
"""

import math
import time

import numpy as np
from scipy.optimize import brentq

import gpuhedge as gh
from gpuhedge import experiment
from gpuhedge.pricing import bs_price, bs_vega

# One written three-month ATM call, 256 steps (about a quarter of a trading day each); the
# delta hedge rebalances every 256 / N steps. No costs: the question is the hedging error.
CASE = dict(spot=100.0, strike=100.0, rate=0.02, maturity=0.25)
N_STEPS = 256
NS = (4, 8, 16, 32, 64, 128, 256)
OPTION_NS = (16, 64, 256)
LISTED = dict(strike=100.0, maturity=0.5)  # the hedge option: a six-month ATM call
TOTAL_VAR = 0.04  # every market's expected variance per year: 20% vol
# Jumps carry a quarter of the variance (0.01 per year) in Merton, Kou and Bates. Merton and
# Bates: one jump every two years, log size N(-10%, 10%^2). Kou: 30% of the jumps up (mean
# 4%), 70% down (mean 10%), rate set so that lam E[Y^2] = 0.01.
MERTON = dict(lam=0.5, mu_j=-0.1, sigma_j=0.1)
KOU = dict(p=0.3, eta1=25.0, eta2=10.0)
KOU_SECOND = 2 * KOU["p"] / KOU["eta1"] ** 2 + 2 * (1 - KOU["p"]) / KOU["eta2"] ** 2
JUMP_VAR = 0.01
# Heston: v0 = theta = 0.04, half-life of the variance about 4 months, vol of variance 30%,
# spot-vol correlation -0.7 (Feller holds); Bates: the same with v0 = theta = 0.03 plus
# Merton's jumps.
HESTON = dict(kappa=2.0, xi=0.3, rho=-0.7)
MARKETS = ("Black-Scholes", "Merton", "Kou", "Heston", "Bates")
STOCHASTIC_VOL = ("Heston", "Bates")


def markets():
    c = dict(spot=CASE["spot"], rate=CASE["rate"])
    diffusion = math.sqrt(TOTAL_VAR - JUMP_VAR)
    assert math.isclose(MERTON["lam"] * (MERTON["mu_j"] ** 2 + MERTON["sigma_j"] ** 2),
                        JUMP_VAR)
    return {"Black-Scholes": gh.BlackScholes(vol=math.sqrt(TOTAL_VAR), **c),
            "Merton": gh.Merton(vol=diffusion, **MERTON, **c),
            "Kou": gh.Kou(vol=diffusion, lam=JUMP_VAR / KOU_SECOND, **KOU, **c),
            "Heston": gh.Heston(v0=TOTAL_VAR, theta=TOTAL_VAR, **HESTON, **c),
            "Bates": gh.Bates(v0=TOTAL_VAR - JUMP_VAR, theta=TOTAL_VAR - JUMP_VAR, **HESTON,
                              **MERTON, **c)}


def total_vol(market):
    """sqrt of the expected variance per year: diffusion (or theta = v0) plus lam E[Y^2]."""
    if isinstance(market, gh.Heston):
        jumps = getattr(market, "lam", 0.0) * (getattr(market, "mu_j", 0.0) ** 2
                                               + getattr(market, "sigma_j", 0.0) ** 2)
        return math.sqrt(market.theta + jumps)
    return market.reference_vol


def implied_vol(market, option):
    value = float(gh.price(market, option))
    return brentq(lambda v: float(bs_price(CASE["spot"], option.strike, option.maturity, v,
                                           CASE["rate"], 0.0, True)) - value, 1e-4, 5.0,
                  xtol=1e-12)


def model_delta_rule(market_name):
    """The market's own delta where the package has one."""
    return {"Merton": "model", "Heston": "min-variance", "Bates": "min-variance"}.get(
        market_name)


def hedges(market_name, vol, listed_vol):
    listed = gh.EuropeanCall(LISTED["strike"], LISTED["maturity"])
    # Heston-type markets: the option hedges (and their delta baseline) price the options at
    # the expected-average vol of the current variance, so the hedge option's value moves
    # with the variance; elsewhere at the constant implied vols.
    rule = "expected-average" if market_name in STOCHASTIC_VOL else "constant"
    out = {f"delta {n}": gh.DeltaHedge(vol=vol, every=N_STEPS // n) for n in NS}
    for n in OPTION_NS:
        k = N_STEPS // n
        if rule != "constant":
            out[f"delta ({rule}) {n}"] = gh.DeltaHedge(vol=vol, every=k, hedge_vol=rule)
        out[f"delta-gamma {n}"] = gh.DeltaGammaHedge(vol=vol, option=listed, every=k,
                                                     option_vol=listed_vol, hedge_vol=rule)
        out[f"delta-vega {n}"] = gh.DeltaVegaHedge(vol=vol, option=listed, every=k,
                                                   option_vol=listed_vol, hedge_vol=rule)
        if model_delta_rule(market_name) is not None:
            out[f"model delta {n}"] = gh.DeltaHedge(vol=vol, every=k,
                                                    hedge_vol=model_delta_rule(market_name))
    return out


def run(n_paths, seed, device):
    option = gh.EuropeanCall(CASE["strike"], CASE["maturity"])
    listed = gh.EuropeanCall(LISTED["strike"], LISTED["maturity"])
    book = gh.Book.short(option, 1)
    out = {}
    for i, (name, market) in enumerate(markets().items()):
        vol, listed_vol = implied_vol(market, option), implied_vol(market, listed)
        ds = gh.simulate(market, book, hedges(name, vol, listed_vol), n_paths=n_paths,
                         n_steps=N_STEPS, seed=seed, stream=i, device=device, premium="model")
        out[name] = dict(ds=ds, vol=vol, listed_vol=listed_vol,
                         total_vol=total_vol(market), value=float(gh.price(market, option)))
    return out


def stats(ds):
    s = gh.summary(ds).squeeze("cost")
    return {str(st): dict(std=float(s["std"].sel(strategy=st)),
                          se_std=float(s["se_std"].sel(strategy=st)),
                          cvar=float(s["cvar_99"].sel(strategy=st)),
                          se_cvar=float(s["se_cvar_99"].sel(strategy=st)),
                          mean=float(s["mean"].sel(strategy=st)),
                          se_mean=float(s["se_mean"].sel(strategy=st)),
                          trades=float(s["mean_trades"].sel(strategy=st)))
            for st in s["strategy"].values}


def plateau(cells):
    """Least-squares fit Var(N) = a + b / N over the N >= 32 delta hedges: sqrt(max(a, 0)) is
    the std that no rebalancing frequency removes (its standard error by the delta method
    from the fit's covariance, with the variances' own standard errors as weights)."""
    ns = np.array([n for n in NS if n >= 32], dtype=float)
    var = np.array([cells[f"delta {int(n)}"]["std"] ** 2 for n in ns])
    se = np.array([2 * cells[f"delta {int(n)}"]["std"] * cells[f"delta {int(n)}"]["se_std"]
                   for n in ns])
    x = np.column_stack([np.ones_like(ns), 1 / ns]) / se[:, None]
    coef, *_ = np.linalg.lstsq(x, var / se, rcond=None)
    cov = np.linalg.inv(x.T @ x)
    a = float(coef[0])
    std = math.sqrt(max(a, 0.0))
    se_a = math.sqrt(cov[0, 0])
    return dict(a=a, std=std, se=se_a / (2 * std) if std > 0 else math.sqrt(se_a),
                share=max(a, 0.0) / cells[f"delta {NS[-1]}"]["std"] ** 2)


def derman_kamal(vol, n):
    vega = float(bs_vega(CASE["spot"], CASE["strike"], CASE["maturity"], vol, CASE["rate"], 0.0))
    return math.sqrt(math.pi / 4) * vega * vol / math.sqrt(n)


def slope(cells, lo, hi):
    return math.log(cells[f"delta {hi}"]["std"] / cells[f"delta {lo}"]["std"]) / math.log(hi / lo)


def rows_n(results, cells, key):
    """Table of std or CVaR 99% against N, with Derman-Kamal beside Black-Scholes."""
    se = f"se_{key}"
    dk = key == "std"
    body = []
    for n in NS:
        body.append([f"{n}", *(f"{cells[m][f'delta {n}'][key]:.3f} +- "
                               f"{cells[m][f'delta {n}'][se]:.3f}" for m in MARKETS)])
        if dk:
            body[-1].append(f"{derman_kamal(results['Black-Scholes']['vol'], n):.3f}")
    if dk:
        plats = {m: plateau(cells[m]) for m in MARKETS}
        body += [
            ["log-log slope, N = 64 to 256",
             *(f"{slope(cells[m], 64, 256):+.2f}" for m in MARKETS), "-0.50"],
            ["std ratio N = 256 / N = 64",
             *(f"{cells[m]['delta 256']['std'] / cells[m]['delta 64']['std']:.2f}"
               for m in MARKETS), "0.50"],
            ["plateau: sqrt(a) of Var = a + b/N, N >= 32 (+- se)",
             *(f"{plats[m]['std']:.3f} +- {plats[m]['se']:.3f}" for m in MARKETS), "0"],
            ["share of Var at N = 256 that is plateau",
             *(f"{100 * plats[m]['share']:.0f}%" for m in MARKETS), "0%"]]
    return experiment.table(
        ["N (rebalances)", *MARKETS, *(["Derman-Kamal (Black-Scholes)"] if dk else [])], body,
        text=0)


def option_rows(cells):
    rows = []
    for m in MARKETS:
        c = cells[m]
        base_name = "delta (expected-average)" if m in STOCHASTIC_VOL else "delta"
        for n in OPTION_NS:
            base = c[f"{base_name} {n}"]
            row = dict(market=m, n=n, plain=c[f"delta {n}"], base=base,
                       dg=c[f"delta-gamma {n}"], dv=c[f"delta-vega {n}"],
                       model=c.get(f"model delta {n}"))
            for k in ("dg", "dv"):
                row[f"removed_{k}"] = 1 - row[k]["std"] ** 2 / base["std"] ** 2
            rows.append(row)
    return rows


def option_table(rows):
    def pair(c):
        return "-" if c is None else f"{c['std']:.3f} / {c['cvar']:.2f}"

    return experiment.table(
        ["market", "N", "delta, implied vol: std / CVaR 99%",
         "delta, vol rule of the option hedges: std / CVaR", "delta-gamma: std / CVaR",
         "delta-vega: std / CVaR", "variance removed: delta-gamma / delta-vega",
         "model's delta: std / CVaR"],
        ([r["market"], f"{r['n']}", pair(r["plain"]), pair(r["base"]), pair(r["dg"]),
          pair(r["dv"]), f"{100 * r['removed_dg']:.0f}% / {100 * r['removed_dv']:.0f}%",
          pair(r["model"])] for r in rows))


def reading_text(cells, plats, opt):
    bs, me = cells["Black-Scholes"], cells["Merton"]
    at = {(r["market"], r["n"]): r for r in opt}
    n = OPTION_NS[-1]
    shares = [plats[m]["share"] for m in MARKETS[1:]]
    dg_heston = at[("Heston", n)]["dg"]["std"] / at[("Heston", n)]["base"]["std"]
    last = CASE["maturity"] * (n - 1) / n  # time of the last rebalance
    listed_per_call = math.sqrt((LISTED["maturity"] - last) / (CASE["maturity"] - last))
    return (f"Under Black-Scholes the std falls like N^{slope(bs, 64, 256):+.2f} (from "
            f"{bs['delta 4']['std']:.2f} at N = 4 to {bs['delta 256']['std']:.3f} at N = 256, "
            f"on Derman-Kamal's line); with jumps it stalls: Merton's std falls only "
            f"{me['delta 64']['std'] / me['delta 256']['std']:.2f}x from N = 64 to 256 (vs "
            f"{bs['delta 64']['std'] / bs['delta 256']['std']:.2f}x), to a plateau of about "
            f"{plats['Merton']['std']:.2f} (Kou {plats['Kou']['std']:.2f}); vol risk leaves "
            f"{plats['Heston']['std']:.2f} in Heston and both together "
            f"{plats['Bates']['std']:.2f} in Bates, {100 * min(shares):.0f}-"
            f"{100 * max(shares):.0f}% of the variance at N = 256; the CVaR 99% does not move "
            f"with N under jumps ({me['delta 4']['cvar']:.1f} at N = 4, "
            f"{me['delta 256']['cvar']:.1f} at N = 256 in Merton vs "
            f"{bs['delta 256']['cvar']:.2f} in Black-Scholes).\n"
            f"A listed six-month call removes part of it, if it matches the risk: at N = {n} "
            f"the delta-gamma hedge removes {100 * at[('Merton', n)]['removed_dg']:.0f}% of "
            f"Merton's and {100 * at[('Kou', n)]['removed_dg']:.0f}% of Kou's variance (jumps "
            f"are gamma risk; {100 * at[('Merton', OPTION_NS[0])]['removed_dg']:.0f}% at N = "
            f"{OPTION_NS[0]}: near expiry an ATM book needs about sqrt(tau_listed / tau_book) "
            f"listed calls per written one, some {listed_per_call:.0f} at the last of {n} "
            f"rebalances, a gamma hedge that holds only for small moves), the delta-vega hedge "
            f"{100 * at[('Heston', n)]['removed_dv']:.0f}% of "
            f"Heston's and {100 * at[('Bates', n)]['removed_dv']:.0f}% of Bates'; the "
            f"delta-gamma hedge raises Heston's std {dg_heston:.1f}x (a longer-dated "
            f"gamma hedge is long vega), and the model's own delta does not help (Merton std "
            f"{at[('Merton', n)]['model']['std']:.3f} vs {at[('Merton', n)]['plain']['std']:.3f}).")


def figure(results, cells, plats, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(1, 3, figsize=(18, 6))
    colors = dict(zip(MARKETS, plt.get_cmap("tab10").colors))
    ns = np.array(NS)
    ax, bx, cx = axes
    for m in MARKETS:
        c = cells[m]
        std = [c[f"delta {n}"]["std"] for n in NS]
        ax.errorbar(ns, std, yerr=[2 * c[f"delta {n}"]["se_std"] for n in NS], fmt="o-",
                    color=colors[m], ms=5, label=m)
        if plats[m]["std"] > 0 and m != "Black-Scholes":
            ax.axhline(plats[m]["std"], color=colors[m], ls=":", lw=1)
        bx.errorbar(ns, [c[f"delta {n}"]["cvar"] for n in NS],
                    yerr=[2 * c[f"delta {n}"]["se_cvar"] for n in NS], fmt="o-",
                    color=colors[m], ms=5, label=m)
    vol = results["Black-Scholes"]["vol"]
    ax.plot(ns, [derman_kamal(vol, n) for n in NS], "k--", lw=1,
            label=r"Derman-Kamal $\sqrt{\pi/4}\,\mathrm{vega}\,\sigma/\sqrt{N}$")
    ax.plot([], [], ":", color="grey", label="fitted plateau (Var = a + b/N, N >= 32)")
    ax.set(title="delta hedge at the implied vol: std", ylabel="std of P&L (currency per call)")
    bx.set(title="delta hedge at the implied vol: CVaR 99%",
           ylabel="CVaR 99% of P&L (currency per call)")
    n = OPTION_NS[-1]
    width = 0.27
    x = np.arange(len(MARKETS))
    handles = []
    for j, (hedge, hatch) in enumerate((("delta", ""), ("delta-gamma", "//"),
                                        ("delta-vega", ".."))):
        values = [cells[m][f"{'delta (expected-average)' if m in STOCHASTIC_VOL else 'delta'} "
                           f"{n}" if hedge == "delta" else f"{hedge} {n}"]["std"]
                  for m in MARKETS]
        bars = cx.bar(x + (j - 1) * width, values, width, color=[colors[m] for m in MARKETS],
                      hatch=hatch, edgecolor="k", lw=0.6)
        cx.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
        handles.append(Patch(facecolor="white", hatch=hatch, edgecolor="k", label=hedge))
    cx.set_xticks(x, MARKETS)
    cx.set(yscale="log", ylabel="std of P&L (currency per call)",
           title=f"with a listed six-month ATM call, N = {n}\n(Heston, Bates: all three at "
                 f"the expected-average vol)")
    cx.set_ylim(top=6.0)
    cx.legend(handles=handles, fontsize=9, loc="upper left", ncol=3)
    cx.yaxis.set_minor_locator(matplotlib.ticker.LogLocator(subs=(2.0, 5.0)))
    cx.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    cx.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    cx.tick_params(which="both", labelsize=8)
    cx.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=9)
    bx.legend(fontsize=9)
    for a in (ax, bx):
        a.set(xscale="log", yscale="log", xlabel="rebalances over three months, N")
        a.set_xticks(NS, [str(t) for t in NS])
        a.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        a.yaxis.set_minor_locator(matplotlib.ticker.LogLocator(subs=(2.0, 3.0, 5.0)))
        a.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        a.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        a.tick_params(which="both", labelsize=8)
        a.grid(True, which="both", alpha=0.3)
    fig.suptitle("One written three-month ATM call, S = K = 100, markets of total vol 20%: "
                 "the hedging error against the number of rebalances")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = experiment.parser(
        __doc__, "e04_what_rebalancing_cannot_remove", paths=50_000,
        paths_help="paths per market",
        store_help="Zarr store, one group per market")
    args = p.parse_args(argv)
    out, png, store = experiment.outputs(args)

    t0 = time.perf_counter()
    results = run(args.paths, args.seed, args.device)
    cells = {m: stats(r["ds"]) for m, r in results.items()}
    t1 = time.perf_counter()
    plats = {m: plateau(cells[m]) for m in MARKETS}
    opt = option_rows(cells)
    if store is not None:
        # one group per market: their strategy sets differ
        gh.store.save(store, {m.replace("-", "_").lower(): r["ds"] for m, r in results.items()})
    figure(results, cells, plats, png)

    listed_vols = ", ".join(f"{m} {results[m]['listed_vol']:.2%}" for m in MARKETS[:3])
    total_vols = [results[m]["total_vol"] for m in MARKETS]
    vols = [results[m]["vol"] for m in MARKETS]
    tables = (f"## 1. Std of the delta-hedging error against N (+- se)\n\n"
              f"{rows_n(results, cells, 'std')}\n\n"
              f"## 2. CVaR 99% against N (+- se)\n\n{rows_n(results, cells, 'cvar')}\n\n"
              f"## 3. Hedging with a listed six-month ATM call\n\n{option_table(opt)}\n\n"
              f"Delta hedge: the Black-Scholes delta at the book option's implied vol under the "
              f"model (tables 1 and 2). The option hedges hold -Gamma_book / Gamma_option "
              f"(delta-gamma) or -Vega_book / Vega_option (delta-vega) listed calls, then shares "
              f"for the rest of the delta, at every rebalance; in Heston and Bates both options "
              f"are valued and hedged at the expected-average vol of the current variance "
              f"(hedge_vol='expected-average'), so the listed call's value follows the "
              f"variance, and the variance removed is measured against the delta hedge at that "
              f"vol (column 4); in Black-Scholes, Merton and Kou at their constant implied vols "
              f"({listed_vols}). "
              f"The listed call is bought at that Black-Scholes value and sold at it at the "
              f"horizon (a mark, not the model's price), which biases the mean P&L a little but "
              f"hardly the std. Model's delta: Merton's series delta, the Heston minimum-variance "
              f"delta (Kou and Black-Scholes: none beyond the Black-Scholes delta).\n")
    reading = reading_text(cells, plats, opt)
    question = experiment.question(__doc__)
    c, mk = CASE, markets()
    md = (f"# E04: what rebalancing cannot remove\n\n"
          f"**Question.** {question}\n\n"
          f"**Set-up.** Short one European call, S0 = K = {c['spot']:g}, T = {c['maturity']:g} "
          f"years, r = {c['rate']:.0%}, risk-neutral drift; the call changes hands at the "
          f"model's value (premium='model'), so the mean P&L is about 0. Markets of expected "
          f"variance {TOTAL_VAR} per year (total vol 20%): Black-Scholes (vol 20%); Merton "
          f"(diffusion vol {mk['Merton'].vol:.2%}, lam = {MERTON['lam']}, mu_j = "
          f"{MERTON['mu_j']}, sigma_j = {MERTON['sigma_j']}); Kou (diffusion vol "
          f"{mk['Kou'].vol:.2%}, lam = {mk['Kou'].lam:.3f}, p = {KOU['p']}, eta1 = "
          f"{KOU['eta1']:g}, eta2 = {KOU['eta2']:g}); jumps carry {JUMP_VAR} of the variance "
          f"in both; Heston (v0 = theta = {TOTAL_VAR}, kappa = {HESTON['kappa']}, xi = "
          f"{HESTON['xi']}, rho = {HESTON['rho']}); Bates (the same with v0 = theta = "
          f"{TOTAL_VAR - JUMP_VAR:.2f} plus Merton's jumps); total vols "
          f"{', '.join(f'{v:.1%}' for v in total_vols)}, implied vols of "
          f"the book's call {', '.join(f'{v:.2%}' for v in vols)}. "
          f"{N_STEPS} steps; the delta hedge rebalances every {N_STEPS}/N steps, N = "
          f"{', '.join(map(str, NS))}, the option hedges at N = "
          f"{', '.join(map(str, OPTION_NS))}. No costs. All rules of a market on common random "
          f"numbers: {args.paths:,} paths per market, seed {args.seed} (one stream per "
          f"market), {t1 - t0:.1f} s. Device: {results['Bates']['ds'].attrs['device']}.\n\n"
          f"{tables}\n## Reading\n\n{reading}\n\n![std and CVaR against N]({png.name})\n")
    experiment.report(out, md, tables + "\n" + reading,
                      f"Device: {results['Bates']['ds'].attrs['device']}; {args.paths:,} paths per "
                      f"market; {t1 - t0:.1f} s.",
                      (png, store))
    return {"cells": cells, "plateau": plats, "options": opt,
            "vols": {m: r["vol"] for m, r in results.items()},
            "total_vols": {m: r["total_vol"] for m, r in results.items()}}


if __name__ == "__main__":
    main()
