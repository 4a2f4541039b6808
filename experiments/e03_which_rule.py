"""E03: which rebalancing rule gives the least risk for a given cost?

Question: A written ATM call book (100 three-month calls, S=K=100, r=2%) is delta-hedged under
a 20 bp proportional cost by six rules: a time grid (every k steps), Leland's cost-adjusted
vol on a time grid, a fixed delta band, a spot-move trigger, Whalley-Wilmott's band and
Zakamouline's band. Calibrated to the same mean cost (12, 24 and 48 per book), which rule
leaves the smallest std and CVaR 99% of the P&L, in a Black-Scholes market and in Merton
(jumps) and Heston (stochastic vol) markets of the same 20% total vol?

Run:  python experiments/e03_which_rule.py [--paths 1_000_000] [--device cuda]
"""

import math
import time

import numpy as np
from scipy.optimize import brentq

import gpuhedge as gh
from gpuhedge import experiment
from gpuhedge.pricing import bs_price, bs_vega

# The book: 100 written three-month ATM calls, 126 steps (half a trading day each); the rules
# that watch the market check every step. 20 bp of the traded notional on the rebalancing
# trades only (Costs(ends=False): set-up and delivery free, as in Leland and Whalley-Wilmott).
# The book changes hands at the model's value (premium="model"), so every rule starts from
# the same premium and the mean P&L is minus the mean cost.
CASE = dict(spot=100.0, strike=100.0, rate=0.02, maturity=0.25, quantity=100)
N_STEPS = 126
COST = 2e-3
TARGETS = (12.0, 24.0, 48.0)  # mean cost per book (currency, present value)
# Markets with the same total variance (20% vol): Merton's jumps (one every two years, mean log
# size -10%, std 10%) carry a quarter of it; Heston with v0 = theta = 0.04 (Feller holds).
MERTON = dict(lam=0.5, mu_j=-0.1, sigma_j=0.1)
HESTON = dict(v0=0.04, kappa=2.0, theta=0.04, xi=0.3, rho=-0.7)
# Each rule's parameter grid, wide enough to bracket the three targets in all three markets,
# and what the parameter is.
RULES = {
    "time grid": dict(grid=(1, 2, 3, 4, 6, 8, 11, 16, 22, 32, 45), param="every k steps"),
    "Leland": dict(grid=(1, 2, 3, 4, 6, 8, 11, 16, 22, 32, 45), param="every k steps"),
    "delta band": dict(grid=tuple(np.geomspace(0.015, 0.5, 11)), param="band (delta)"),
    "spot move": dict(grid=tuple(np.geomspace(0.003, 0.1, 11)), param="spot move"),
    "Whalley-Wilmott": dict(grid=tuple(np.geomspace(1e-4, 100.0, 11)),
                            param="risk aversion (1/currency)"),
    "Zakamouline": dict(grid=tuple(np.geomspace(5e-4, 5.0, 11)),
                        param="risk aversion (1/currency)"),
}


def markets():
    c = CASE
    diffusion = math.sqrt(0.04 - MERTON["lam"] * (MERTON["mu_j"] ** 2 + MERTON["sigma_j"] ** 2))
    return {"Black-Scholes": gh.BlackScholes(spot=c["spot"], vol=0.2, rate=c["rate"]),
            "Merton": gh.Merton(spot=c["spot"], vol=diffusion, rate=c["rate"], **MERTON),
            "Heston": gh.Heston(spot=c["spot"], rate=c["rate"], **HESTON)}


def implied_vol(market, option):
    """Black-Scholes vol of the model price: the vol of every rule's delta."""
    value = float(gh.price(market, option))
    c = CASE
    return brentq(lambda v: float(bs_price(c["spot"], c["strike"], c["maturity"], v, c["rate"],
                                           0.0, True)) - value, 1e-4, 5.0, xtol=1e-12)


def name(rule, x):
    return f"{rule} {x:.6g}"


def hedges(vol):
    makers = {"time grid": (gh.DeltaHedge, "every"), "Leland": (gh.Leland, "every"),
              "delta band": (gh.DeltaBand, "band"), "spot move": (gh.SpotMove, "pct"),
              "Whalley-Wilmott": (gh.WhalleyWilmott, "risk_aversion"),
              "Zakamouline": (gh.Zakamouline, "risk_aversion")}
    # The set-up is free here (Costs(ends=False)), so the band rules set up at the delta, as
    # the others do: with nothing to pay at t=0 the best start is the target, not the edge
    # that a charged set-up stops at (their default).
    start = {"Whalley-Wilmott": {"initial": "target"}, "Zakamouline": {"initial": "target"}}
    return {name(rule, x): makers[rule][0](vol=vol, **{makers[rule][1]: x},
                                           **start.get(rule, {}))
            for rule, spec in RULES.items() for x in spec["grid"]}


def run(n_paths, seed, device):
    """One simulation per market, every rule and parameter on common random numbers."""
    option = gh.EuropeanCall(CASE["strike"], CASE["maturity"])
    book = gh.Book.short(option, CASE["quantity"])
    out = {}
    for i, (market_name, market) in enumerate(markets().items()):
        vol = implied_vol(market, option)
        ds = gh.simulate(market, book, hedges(vol), {f"{COST * 1e4:g} bp": gh.Costs(
            COST, ends=False)}, n_paths=n_paths, n_steps=N_STEPS, seed=seed, stream=i,
            device=device, premium="model")
        out[market_name] = (ds.isel(cost=0), vol)
    return out


def curves(ds):
    """Per rule, over its parameter grid: mean cost, std, CVaR 99% (with se), trades."""
    s = gh.summary(ds)
    out = {}
    for rule, spec in RULES.items():
        names = [name(rule, x) for x in spec["grid"]]
        c = s.sel(strategy=names)
        out[rule] = dict(param=np.array(spec["grid"], dtype=float),
                         cost=c["mean_cost"].values, se_cost=c["se_mean_cost"].values,
                         std=c["std"].values, se_std=c["se_std"].values,
                         cvar=c["cvar_99"].values, se_cvar=c["se_cvar_99"].values,
                         trades=c["mean_trades"].values, mean=c["mean"].values)
    return out


def at_cost(curve, target):
    """Calibrate by interpolation in log(mean cost) between the two grid points around the
    target: the parameter (log-linear), std and CVaR (log-log), their standard errors and the
    trades (linear). None when the rule's grid does not reach the target."""
    order = np.argsort(curve["cost"])
    cost = curve["cost"][order]
    if not cost[0] < target <= cost[-1] or cost[0] <= 0:
        return None
    j = int(np.searchsorted(cost, target))
    i0, i1 = order[j - 1], order[j]
    w = (math.log(target) - math.log(curve["cost"][i0])) / (
        math.log(curve["cost"][i1]) - math.log(curve["cost"][i0]))

    def lin(key):
        return (1 - w) * curve[key][i0] + w * curve[key][i1]

    def log(key):
        return math.exp((1 - w) * math.log(curve[key][i0]) + w * math.log(curve[key][i1]))

    return dict(param=log("param"), lo=curve["param"][i0], hi=curve["param"][i1],
                std=log("std"), se_std=lin("se_std"), cvar=log("cvar"), se_cvar=lin("se_cvar"),
                trades=lin("trades"))


def textbook_time_grid(vol, target):
    """Black-Scholes reference for the time grid at a mean cost: Leland's (1985) mean cost
    Q [C(sigma_L) - C(sigma)] (N - 1) / N (N - 1 paid rebalances) solved for N, and Derman and
    Kamal's std Q sqrt(pi/4) vega sigma / sqrt(N) at that N."""
    c = CASE
    price = float(bs_price(c["spot"], c["strike"], c["maturity"], vol, c["rate"], 0.0, True))
    vega = float(bs_vega(c["spot"], c["strike"], c["maturity"], vol, c["rate"], 0.0))

    def cost(n):
        number = math.sqrt(2 / math.pi) * 2 * COST / (vol * math.sqrt(c["maturity"] / n))
        vol_l = vol * math.sqrt(1 + number)
        return c["quantity"] * (float(bs_price(c["spot"], c["strike"], c["maturity"], vol_l,
                                               c["rate"], 0.0, True)) - price) * (n - 1) / n

    n = brentq(lambda n: cost(n) - target, 1.5, 1e5)
    return dict(n=n, std=c["quantity"] * math.sqrt(math.pi / 4) * vega * vol / math.sqrt(n))


def fmt_param(rule, x):
    if rule in ("time grid", "Leland"):
        return f"k = {x:.1f}"
    if rule == "delta band":
        return f"{x:.3f}"
    if rule == "spot move":
        return f"{100 * x:.2f}%"
    return f"{x:.3g}"


def table(rows, reference=None):
    header = ["rule"]
    for t in TARGETS:
        header += [f"cost {t:g}: parameter", "std (+- se)", "CVaR 99% (+- se)"]
    body = []
    for rule, by_target in rows.items():
        cells = [rule]
        for t in TARGETS:
            r = by_target[t]
            if r is None:
                cells += ["-", "-", "-"]
            else:
                cells += [fmt_param(rule, r["param"]), f"{r['std']:.1f} +- {r['se_std']:.1f}",
                          f"{r['cvar']:.0f} +- {r['se_cvar']:.0f}"]
        body.append(cells)
    if reference is not None:
        cells = ["time grid, Leland cost + Derman-Kamal std (textbook)"]
        for t in TARGETS:
            r = reference[t]
            cells += [f"N = {r['n']:.1f}", f"{r['std']:.1f}", "-"]
        body.append(cells)
    return experiment.table(header, body)


def relative_table(rows):
    """std and CVaR of each rule over the time grid's, per market, at each target."""
    markets_ = list(rows)

    def ratio(r, base):
        return ("-" if r is None or base is None else
                f"{r['std'] / base['std']:.2f} / {r['cvar'] / base['cvar']:.2f}")

    return experiment.table(
        ["rule", "target cost", *(f"{m}: std / CVaR" for m in markets_)],
        ([rule, f"{t:g}", *(ratio(rows[m][rule][t], rows[m]["time grid"][t]) for m in markets_)]
         for rule in RULES for t in TARGETS))


def best(rows, market, t, key):
    found = [(r[key], rule) for rule, by in rows[market].items() if (r := by[t]) is not None]
    return min(found)[1], min(found)[0]


def reading_text(rows, reference):
    mid = TARGETS[1]
    bs = rows["Black-Scholes"]

    def ratio(m, rule, key="std", t=mid):
        return rows[m][rule][t][key] / rows[m]["time grid"][t][key]

    def spread(m, key, targets=(mid,)):
        found = [by[t][key] for by in rows[m].values() for t in targets if by[t] is not None]
        return min(found), max(found)

    b_std, b_cvar = (best(rows, "Black-Scholes", mid, k) for k in ("std", "cvar"))
    cvar_part = (f"and the least CVaR 99% ({b_cvar[1]:.0f} vs "
                 f"{bs['time grid'][mid]['cvar']:.0f})" if b_cvar[0] == b_std[0] else
                 f"and {b_cvar[0]} the least CVaR 99% ({b_cvar[1]:.0f} vs "
                 f"{bs['time grid'][mid]['cvar']:.0f})")
    worst = max(bs.items(), key=lambda kv: kv[1][mid]["std"])[0]
    me_std, he_std = spread("Merton", "std"), spread("Heston", "std")
    me_cvar = spread("Merton", "cvar", TARGETS)
    return (f"At an equal mean cost of {mid:g} the Black-Scholes ranking is clear: {b_std[0]} "
            f"leaves the least std ({b_std[1]:.0f}, {ratio('Black-Scholes', b_std[0]):.2f} of "
            f"the time grid's {bs['time grid'][mid]['std']:.0f}) {cvar_part}; the utility "
            f"bands (Whalley-Wilmott {ratio('Black-Scholes', 'Whalley-Wilmott'):.2f}, "
            f"Zakamouline {ratio('Black-Scholes', 'Zakamouline'):.2f} of the time grid's std) "
            f"beat the spot-move trigger ({ratio('Black-Scholes', 'spot move'):.2f}) and the "
            f"fixed band ({ratio('Black-Scholes', 'delta band'):.2f}), and the {worst} is "
            f"worst: Leland's vol barely helps it ({ratio('Black-Scholes', 'Leland'):.2f}), "
            f"and it sits on the textbook Leland + Derman-Kamal curve "
            f"({bs['time grid'][mid]['std']:.0f} vs {reference[mid]['std']:.0f}).\n"
            f"With jumps the choice hardly matters: in Merton every rule's std at cost {mid:g} "
            f"lies within {me_std[0]:.0f}-{me_std[1]:.0f} (jump risk, which no rebalancing "
            f"removes) and the CVaR 99% within {me_cvar[0]:.0f}-{me_cvar[1]:.0f} at every rule "
            f"and cost, the extra cost of hedging more adding to the tail; in Heston the std "
            f"spread is {he_std[0]:.0f}-{he_std[1]:.0f}, the bands keeping part of their "
            f"edge (Zakamouline {ratio('Heston', 'Zakamouline'):.2f} of the time grid's std, "
            f"vs {ratio('Black-Scholes', 'Zakamouline'):.2f} under Black-Scholes).")


def figure(all_curves, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    styles = dict(zip(RULES, ("o-", "s--", "^-", "v-", "D-", "*-")))
    colors = dict(zip(RULES, plt.get_cmap("tab10").colors))
    for col, (market, curve) in enumerate(all_curves.items()):
        for row, (key, label) in enumerate((("std", "std of P&L"),
                                            ("cvar", "CVaR 99% of P&L"))):
            ax = axes[row, col]
            for rule, c in curve.items():
                keep = c["cost"] > 0.5
                ax.plot(c["cost"][keep], c[key][keep], styles[rule], color=colors[rule],
                        ms=5, lw=1.2, mfc="none" if rule == "Leland" else None, label=rule)
            for t in TARGETS:
                ax.axvline(t, color="grey", ls=":", lw=1)
            ax.set(xscale="log", yscale="log", xlim=(4, 80),
                   xlabel="mean transaction cost per book (currency, present value)",
                   ylabel=f"{label} (currency)", title=f"{market}: {label.split(' of')[0]}")
            ax.grid(True, which="both", alpha=0.3)
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
                axis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.tick_params(which="both", labelsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=10, frameon=False)
    fig.suptitle(f"Short {CASE['quantity']} three-month ATM calls, {COST * 1e4:g} bp cost: "
                 f"risk vs mean cost per rule (dotted: the target costs "
                 f"{', '.join(f'{t:g}' for t in TARGETS)})")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = experiment.parser(
        __doc__, "e03_which_rule", paths=20_000,
        paths_help="paths per market",
        store_help="Zarr store for the three markets' datasets")
    args = p.parse_args(argv)
    out, png, store = experiment.outputs(args)

    t0 = time.perf_counter()
    results = run(args.paths, args.seed, args.device)
    all_curves = {m: curves(ds) for m, (ds, _) in results.items()}
    t1 = time.perf_counter()
    rows = {m: {rule: {t: at_cost(c, t) for t in TARGETS} for rule, c in cv.items()}
            for m, cv in all_curves.items()}
    reference = {t: textbook_time_grid(results["Black-Scholes"][1], t) for t in TARGETS}
    if store is not None:
        import xarray as xr

        both = xr.concat([ds.drop_vars("terminal_spot") for ds, _ in results.values()],
                         dim="market", coords="minimal", compat="override", join="override",
                         combine_attrs="drop_conflicts")
        # names as object arrays, as the engine stores them (Zarr v3 has no fixed-width
        # unicode type)
        both = both.assign_coords(market=np.array(list(results), dtype=object),
                                  cost=np.array(both["cost"].values, dtype=object))
        gh.store.save(store, both)
    figure(all_curves, png)

    tables = ""
    for i, (market, (ds, vol)) in enumerate(results.items()):
        tables += (f"## {i + 1}. {market} (hedge vol {vol:.2%}): risk at equal mean cost\n\n"
                   f"{table(rows[market], reference if market == 'Black-Scholes' else None)}"
                   f"\n\n")
    tables += (f"Parameter: interval k in half-day steps (time grid and Leland), band in delta "
               f"per option (fixed band), spot move since the last trade, risk aversion per "
               f"currency unit (Whalley-Wilmott, Zakamouline), each interpolated in log mean "
               f"cost between the two grid values around the target (std and CVaR log-log). "
               f"CVaR 99%: the mean loss in the worst 1% of paths, costs included. The textbook "
               f"row solves Leland's mean cost Q [C(sigma_L) - C(sigma)] (N-1)/N = target for "
               f"the number of rebalances N and gives Derman-Kamal's std Q sqrt(pi/4) vega "
               f"sigma / sqrt(N) there.\n\n"
               f"## {len(results) + 1}. Each rule's std and CVaR as a fraction of the time "
               f"grid's at the same cost\n\n{relative_table(rows)}\n")
    reading = reading_text(rows, reference)
    question = experiment.question(__doc__)
    c = CASE
    grids = "; ".join(
        f"{rule}: {RULES[rule]['param']} " + (
            ", ".join(map(str, RULES[rule]["grid"])) if rule in ("time grid", "Leland") else
            f"{fmt_param(rule, min(RULES[rule]['grid']))} to "
            f"{fmt_param(rule, max(RULES[rule]['grid']))}, geometric") for rule in RULES)
    md = (f"# E03: which rule? Risk at equal mean cost\n\n"
          f"**Question.** {question}\n\n"
          f"**Set-up.** Short {c['quantity']} European calls, S0 = K = {c['spot']:g}, T = "
          f"{c['maturity']:g} years, r = {c['rate']:.0%}, risk-neutral drift; the book changes "
          f"hands at the model's value (premium='model'), so every rule gets the same premium. "
          f"Markets of total vol 20%: Black-Scholes (vol 20%); Merton (diffusion vol "
          f"{markets()['Merton'].vol:.2%}, jumps "
          f"lam = {MERTON['lam']} per year, mu_j = {MERTON['mu_j']}, sigma_j = "
          f"{MERTON['sigma_j']}: a quarter of the variance); Heston (v0 = theta = "
          f"{HESTON['v0']}, kappa = {HESTON['kappa']}, xi = {HESTON['xi']}, rho = "
          f"{HESTON['rho']}, QE scheme). Every rule uses the Black-Scholes delta at the "
          f"option's implied vol under the model. Cost: {COST * 1e4:g} bp of the traded "
          f"notional on the rebalancing trades (set-up and delivery free, Costs(ends=False); "
          f"so every rule sets up at the delta, the bands with initial='target'). "
          f"{N_STEPS} steps of half a trading day; band and trigger rules check every step. "
          f"Parameter grids, {len(next(iter(RULES.values()))['grid'])} values each, "
          f"{len(hedges(0.2))} rules in one simulation per market on common random numbers: "
          f"{grids}. Targets: mean cost {', '.join(f'{t:g}' for t in TARGETS)} per book (the "
          f"time grid pays {all_curves['Black-Scholes']['time grid']['cost'][0]:.0f} hedging "
          f"every step under Black-Scholes). {args.paths:,} paths per market, seed "
          f"{args.seed} (one stream per market), {t1 - t0:.1f} s. Device: "
          f"{results['Merton'][0].attrs['device']}.\n\n"
          f"{tables}\n## Reading\n\n{reading}\n\n![risk vs cost per rule]({png.name})\n")
    experiment.report(out, md, tables + "\n" + reading,
                      f"Device: {results['Merton'][0].attrs['device']}; {args.paths:,} "
                      f"paths per market; {t1 - t0:.1f} s.",
                      (png, store))
    return {"rows": rows, "curves": all_curves, "reference": reference,
            "vols": {m: v for m, (_, v) in results.items()}}


if __name__ == "__main__":
    main()
