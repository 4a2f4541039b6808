"""E02: optimal rebalancing frequency of a delta hedge under transaction costs.

Question: A written ATM call (100 three-month calls, S=K=100, r=5%, vol 20%) is delta-hedged
every k steps of a half-day grid under a proportional cost and a fixed fee per trade. What is
the risk-cost frontier (std and CVaR 99% of the P&L against the mean cost), which interval
minimises mean cost + a * std for each cost level and risk weight a, and where do Leland's
cost-adjusted vol (with his prediction of the mean cost) and Whalley-Wilmott's no-trade band
sit on that frontier?

Run:  python experiments/e02_rebalancing_frequency.py [--paths 1_000_000] [--device cuda]
"""

import math
import time
import warnings

import numpy as np

import gpuhedge as gh
from gpuhedge import experiment
from gpuhedge.pricing import bs_gamma, bs_price

# The case: 100 written three-month ATM calls, risk-neutral drift, 128 steps (about half a
# trading day each). Costs are charged on the rebalancing trades only (Costs(ends=False)): the
# set-up and the delivery are free, as in Leland's and Whalley-Wilmott's analyses.
CASE = dict(spot=100.0, strike=100.0, rate=0.05, vol=0.2, maturity=0.25, quantity=100)
N_STEPS = 128
DAYS_PER_STEP = 252 * CASE["maturity"] / N_STEPS  # trading days
EVERY = (1, 2, 4, 8, 16, 32, 64, 128)             # steps between rebalances (128: static)
LELAND_EVERY = EVERY[:-1]
PROPORTIONAL = (0.0, 5e-4, 2e-3, 1e-2)             # one-way, fraction of the traded notional
FIXED = (0.0, 1.0, 5.0)                            # currency per trade
RISK_AVERSIONS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # Whalley-Wilmott gamma, 1/currency
A_VALUES = (0.25, 0.5, 1.0, 2.0, 4.0)             # risk weight of mean cost + a * std


def cost_name(p, f):
    return f"{p * 1e4:g} bp + ${f:g}"


def hedges():
    vol = CASE["vol"]
    out = {f"every {k}": gh.DeltaHedge(vol=vol, every=k) for k in EVERY}
    out.update({f"Leland {k}": gh.Leland(vol=vol, every=k) for k in LELAND_EVERY})
    # The set-up is free here (Costs(ends=False)), so the band sets up at the delta, as the
    # schedules do: with nothing to pay at t=0 the best start is the target, not the edge
    # that a charged set-up stops at (WhalleyWilmott's default).
    out.update({f"WW {g:g}": gh.WhalleyWilmott(vol=vol, risk_aversion=g, initial="target")
                for g in RISK_AVERSIONS})
    return out


def costs():
    # proportional-major order: Leland rows of one rate share their delta in the kernel
    return {cost_name(p, f): gh.Costs(proportional=p, fixed=f, ends=False)
            for p in PROPORTIONAL for f in FIXED}


def simulate(n_paths, seed, device):
    market = gh.BlackScholes(spot=CASE["spot"], vol=CASE["vol"], rate=CASE["rate"])
    book = gh.Book.short(gh.EuropeanCall(CASE["strike"], CASE["maturity"]), CASE["quantity"])
    with warnings.catch_warnings():  # every 128 = N_STEPS is the static hedge, on purpose
        warnings.simplefilter("ignore", gh.ScheduleWarning)
        return gh.simulate(market, book, hedges(), costs(), n_paths=n_paths, n_steps=N_STEPS,
                           seed=seed, device=device)


def cell(s, name, strategy, cost):
    return float(s[name].sel(strategy=strategy, cost=cost))


def schedule_rows(s):
    """Per interval: rebalances, risk without costs, mean cost at each single cost source."""
    rows = []
    for k in EVERY:
        st = f"every {k}"
        free = cost_name(0.0, 0.0)
        rows.append(dict(
            k=k, days=k * DAYS_PER_STEP, n=math.ceil(N_STEPS / k),
            std=cell(s, "std", st, free), se_std=cell(s, "se_std", st, free),
            cvar=cell(s, "cvar_99", st, free), trades=cell(s, "mean_trades", st, free),
            prop={p: cell(s, "mean_cost", st, cost_name(p, 0.0)) for p in PROPORTIONAL[1:]},
            fixed={f: cell(s, "mean_cost", st, cost_name(0.0, f)) for f in FIXED[1:]}))
    return rows


def best_rows(s):
    """Per cost level and risk weight a: the interval (and the rule of any kind) minimising
    mean cost + a * std."""
    rows = []
    names = [str(x) for x in s["strategy"].values]
    schedules = [f"every {k}" for k in EVERY]
    for p in PROPORTIONAL:
        for f in FIXED:
            c = cost_name(p, f)
            cost = s["mean_cost"].sel(cost=c)
            std = s["std"].sel(cost=c)
            row = dict(p=p, f=f, cost=c, schedule={}, any={})
            for a in A_VALUES:
                obj = (cost + a * std).values
                i = int(np.argmin([obj[names.index(n)] for n in schedules]))
                row["schedule"][a] = (EVERY[i], float(obj[names.index(schedules[i])]))
                j = int(np.argmin(obj))
                row["any"][a] = (names[j], float(obj[j]))
            rows.append(row)
    return rows


def leland_rows(s, dt):
    """Leland's number, vol and predicted mean cost C(sigma_L) - C(sigma) beside the simulated
    mean cost of the Black-Scholes-delta hedger and the mean P&L of the Leland hedger."""
    c = CASE
    price = c["quantity"] * float(bs_price(c["spot"], c["strike"], c["maturity"], c["vol"],
                                           c["rate"], 0.0, True))
    rows = []
    for p in PROPORTIONAL[1:]:
        cname = cost_name(p, 0.0)
        for k in LELAND_EVERY:
            rule = gh.Leland(vol=c["vol"], every=k)
            vol_l = rule.leland_vol(p, dt, short_gamma=True)
            number = math.sqrt(2 / math.pi) * 2 * p / (c["vol"] * math.sqrt(k * dt))
            pred = c["quantity"] * float(bs_price(c["spot"], c["strike"], c["maturity"], vol_l,
                                                  c["rate"], 0.0, True)) - price
            n = math.ceil(N_STEPS / k)
            bs_name, le_name = f"every {k}", f"Leland {k}"
            rows.append(dict(
                p=p, k=k, number=number, vol=vol_l, predicted=pred, paid=pred * (n - 1) / n,
                bs_cost=cell(s, "mean_cost", bs_name, cname),
                se_bs_cost=cell(s, "se_mean_cost", bs_name, cname),
                le_cost=cell(s, "mean_cost", le_name, cname),
                le_mean=cell(s, "mean", le_name, cname), se_le_mean=cell(s, "se_mean", le_name,
                                                                           cname),
                bs_std=cell(s, "std", bs_name, cname), le_std=cell(s, "std", le_name, cname)))
    return rows


def ww_rows(s, best):
    """Whalley-Wilmott's band at t=0 (their formula) and the simulated risk and cost, against
    the best time schedule at a = 1."""
    c = CASE
    gamma0 = c["quantity"] * float(bs_gamma(c["spot"], c["strike"], c["maturity"], c["vol"],
                                            c["rate"], 0.0))
    disc = math.exp(-c["rate"] * c["maturity"])
    best_at_1 = {r["cost"]: r["schedule"][1.0] for r in best}
    rows = []
    for p in PROPORTIONAL[1:]:
        cname = cost_name(p, 0.0)
        for g in RISK_AVERSIONS:
            name = f"WW {g:g}"
            h0 = (1.5 * disc * p * c["spot"] * gamma0**2 / g) ** (1 / 3)
            cost, std = cell(s, "mean_cost", name, cname), cell(s, "std", name, cname)
            rows.append(dict(p=p, g=g, h0=h0, trades=cell(s, "mean_trades", name, cname),
                             cost=cost, std=std, cvar=cell(s, "cvar_99", name, cname),
                             objective=cost + std, best_schedule=best_at_1[cname]))
    return rows


def schedule_table(rows):
    props = [f"{p * 1e4:g} bp" for p in PROPORTIONAL[1:]]
    return experiment.table(
        ["every k steps (trading days)", "rebalances", "mean trades",
         "std of P&L, no costs (+- se)", "CVaR 99%, no costs", f"mean cost: {props[0]}",
         *props[1:], *(f"${f:g} fee" for f in FIXED[1:])],
        ([f"{r['k']} ({r['days']:.2f})", f"{r['n']}", f"{r['trades']:.1f}",
          f"{r['std']:.2f} +- {r['se_std']:.2f}", f"{r['cvar']:.1f}",
          *(f"{r['prop'][p]:.2f}" for p in PROPORTIONAL[1:]),
          *(f"{r['fixed'][f]:.2f}" for f in FIXED[1:])] for r in rows), text=0)


def best_table(rows, key):
    label = "every " if key == "schedule" else ""
    return experiment.table(
        ["proportional cost", "fee per trade", *(f"a = {a:g}" for a in A_VALUES)],
        ([f"{r['p'] * 1e4:g} bp", f"{r['f']:.2f}",
          *(f"{label}{name}: {obj:.1f}" for name, obj in (r[key][a] for a in A_VALUES))]
         for r in rows), text=0)


def leland_table(rows):
    return experiment.table(
        ["proportional cost", "every k", "Leland number", "Leland vol",
         "Leland: mean cost C(vol_L) - C(vol)", "x (N-1)/N", "mean cost, BS-delta hedger (+- se)",
         "mean cost, Leland hedger", "mean P&L, Leland hedger (+- se; Leland: 0)",
         "std, BS / Leland"],
        ([f"{r['p'] * 1e4:g} bp", f"{r['k']}", f"{r['number']:.3f}", f"{r['vol']:.4f}",
          f"{r['predicted']:.2f}", f"{r['paid']:.2f}",
          f"{r['bs_cost']:.2f} +- {r['se_bs_cost']:.2f}", f"{r['le_cost']:.2f}",
          f"{r['le_mean']:+.2f} +- {r['se_le_mean']:.2f}", f"{r['bs_std']:.1f} / {r['le_std']:.1f}"]
         for r in rows), text=0)


def ww_table(rows):
    return experiment.table(
        ["proportional cost", "risk aversion", "WW band at t=0 (shares)", "mean trades",
         "mean cost", "std", "CVaR 99%", "cost + std", "best schedule at a = 1"],
        ([f"{r['p'] * 1e4:g} bp", f"{r['g']:g}", f"{r['h0']:.2f}", f"{r['trades']:.1f}",
          f"{r['cost']:.2f}", f"{r['std']:.2f}", f"{r['cvar']:.1f}", f"{r['objective']:.1f}",
          "every {}: {:.1f}".format(*r["best_schedule"])] for r in rows), text=0)


def reading_text(sched, best, leland, ww):
    """The two-line answer, from the measured numbers."""
    b1 = {r["cost"]: r for r in best}

    def k_best(p, f):
        k = b1[cost_name(p, f)]["schedule"][1.0][0]
        return f"every {k} ({k * DAYS_PER_STEP:.1f} d)"

    props = ", ".join(f"{k_best(p, 0.0)} at {p * 1e4:g} bp" for p in PROPORTIONAL[1:])
    fees = " / ".join(k_best(0.0, f) for f in FIXED[1:])
    ww_vs = ", ".join(
        f"{min(r['objective'] for r in ww if r['p'] == p):.0f} vs "
        f"{b1[cost_name(p, 0.0)]['schedule'][1.0][1]:.0f} at {p * 1e4:g} bp"
        for p in PROPORTIONAL[1:])
    with_fee = [b1[cost_name(p, f)]["any"][1.0][0] for p in PROPORTIONAL for f in FIXED[1:]]
    ww_wins = sum(name.startswith("WW") for name in with_fee)
    fine = [r for r in leland if math.ceil(N_STEPS / r["k"]) >= 8]
    err = max(abs(r["le_cost"] / r["paid"] - 1) for r in fine)
    bias = max(abs(r["le_mean"]) for r in leland if r["k"] <= 4)
    top = max(leland, key=lambda r: r["number"])
    return (f"Without costs hedge as often as possible (std {sched[0]['std']:.1f} at every "
            f"step vs {sched[-1]['std']:.1f} static, N^-1/2); with costs and a = 1 the best "
            f"interval is {props}, and a $1 / $5 fee alone gives {fees} (table 2; a smaller a "
            f"lengthens it). Whalley-Wilmott's band beats every time schedule without a fee "
            f"(best cost + std {ww_vs}), but with a fee it is the best rule at a = 1 in only "
            f"{ww_wins} of {len(with_fee)} cost levels, a time schedule (Leland's vol or the "
            f"plain delta) in the others: the band's many small trades to its edge each pay "
            f"the fee, and without a proportional cost the band is empty.\n"
            f"Leland's mean cost C(sigma_L) - C(sigma), times (N-1)/N, is within "
            f"{100 * err:.0f}% of his hedger's simulated cost for N >= 8 rebalances, and his "
            f"hedger's mean P&L stays within {bias:.1f} of 0 for k <= 4 (Leland numbers up to "
            f"{top['number']:.1f}); the Black-Scholes-delta hedger pays more when the Leland "
            f"number is large ({top['bs_cost']:.0f} vs {top['le_cost']:.0f} at "
            f"{top['p'] * 1e4:g} bp every {top['k']} step), so Leland's rule lies below the "
            f"time-schedule frontier there (std {top['le_std']:.0f} vs {top['bs_std']:.0f}).")


def figure(s, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(14, 6))
    levels = [(p, 0.0) for p in PROPORTIONAL[1:]] + [(0.0, f) for f in FIXED[1:]]
    colors = plt.get_cmap("tab10").colors
    schedules = [f"every {k}" for k in EVERY[:-1]]  # the static hedge pays no rebalancing cost
    for ax, stat, label in zip(axes, ("std", "cvar_99"),
                               ("std of P&L", "CVaR 99% of P&L (expected loss in the worst 1%)")):
        for i, (p, f) in enumerate(levels):
            c = cost_name(p, f)
            col = colors[i]
            x = s["mean_cost"].sel(cost=c, strategy=schedules).values
            y = s[stat].sel(cost=c, strategy=schedules).values
            lab = f"{p * 1e4:g} bp" if f == 0 else f"${f:g} per trade"
            ax.plot(x, y, "o-", color=col, label=f"every k steps, {lab}")
            if i == 2:
                for k, xx, yy in zip(EVERY, x, y):
                    ax.annotate(f"k={k}", (xx, yy), textcoords="offset points", xytext=(6, 4),
                                fontsize=8, color=col)
            if p > 0:
                le = [f"Leland {k}" for k in LELAND_EVERY]
                ax.plot(s["mean_cost"].sel(cost=c, strategy=le), s[stat].sel(cost=c, strategy=le),
                        "s--", mfc="none", color=col, ms=6, lw=0.8,
                        label=f"Leland vol, {lab}")
                ww = [f"WW {g:g}" for g in RISK_AVERSIONS]
                ax.plot(s["mean_cost"].sel(cost=c, strategy=ww), s[stat].sel(cost=c, strategy=ww),
                        "*:", color=col, ms=10, lw=0.8, label=f"Whalley-Wilmott band, {lab}")
        static = float(s[stat].sel(cost=cost_name(0.0, 0.0), strategy=f"every {EVERY[-1]}"))
        ax.axhline(static, color="grey", ls="--", lw=1)
        ax.text(0.02, static, " static hedge (no rebalancing, no cost)", va="bottom",
                transform=ax.get_yaxis_transform(), color="grey", fontsize=9)
        ax.set(xscale="log", yscale="log", xlabel="mean transaction cost (currency, present value)",
               ylabel=f"{label} (currency)",
               title=f"100 written 3-month ATM calls: {label.split(' (')[0]} vs cost")
        ax.grid(True, which="both", alpha=0.3)
        for axis, subs in ((ax.xaxis, (2.0, 5.0)), (ax.yaxis, (2.0, 3.0, 5.0))):
            axis.set_minor_locator(matplotlib.ticker.LogLocator(subs=subs))
            axis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            axis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.tick_params(which="minor", labelsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = experiment.parser(
        __doc__, "e02_rebalancing_frequency", paths=50_000,
        paths_help="paths",
        store_help="Zarr store for the dataset")
    args = p.parse_args(argv)
    out, png, store = experiment.outputs(args)

    t0 = time.perf_counter()
    ds = simulate(args.paths, args.seed, args.device)
    s = gh.summary(ds)
    t1 = time.perf_counter()
    if store is not None:
        gh.store.save(store, ds)
    dt = CASE["maturity"] / N_STEPS
    sched = schedule_rows(s)
    best = best_rows(s)
    leland = leland_rows(s, dt)
    ww = ww_rows(s, best)
    figure(s, png)

    tables = (
        f"## 1. Time schedules: risk without costs, and the mean cost of each cost source\n\n"
        f"{schedule_table(sched)}\n\n"
        f"For a time schedule the trades do not depend on the cost, so the mean cost of a "
        f"proportional rate plus a fee is the sum of the two columns.\n\n"
        f"## 2. Interval minimising mean cost + a x std (objective in currency)\n\n"
        f"{best_table(best, 'schedule')}\n\n"
        f"## 3. Best rule of any kind (time schedule, Leland vol, Whalley-Wilmott band)\n\n"
        f"{best_table(best, 'any')}\n\n"
        f"## 4. Leland (1985): predicted and simulated mean cost (no fee)\n\n"
        f"{leland_table(leland)}\n\n"
        f"Leland's vol sigma_L^2 = sigma^2 (1 + sqrt(2/pi) 2 lambda / (sigma sqrt(k dt))); "
        f"selling at sigma_L covers the expected cost, so the Leland hedger's mean P&L should "
        f"be 0 and the mean cost about C(sigma_L) - C(sigma), a first-order result in the "
        f"Leland number. Leland charges a cost for each of the N hedging intervals; with a "
        f"free set-up and delivery only N - 1 rebalances are paid, hence the column x (N-1)/N "
        f"(it matters for the few-rebalance schedules).\n\n"
        f"## 5. Whalley-Wilmott (1997) band (no fee)\n\n{ww_table(ww)}\n\n"
        f"The band is H = (3/2 e^{{-r(T-t)}} lambda S Gamma^2 / gamma)^(1/3) shares around the "
        f"delta, checked every step (half a day), trading to its edge; the column gives its "
        f"value at t=0.\n")
    reading = reading_text(sched, best, leland, ww)
    question = experiment.question(__doc__)
    md = (f"# E02: optimal rebalancing frequency under transaction costs\n\n"
          f"**Question.** {question}\n\n"
          f"**Set-up.** Short {CASE['quantity']} European calls, S0 = K = {CASE['spot']:g}, "
          f"T = {CASE['maturity']:g} years, r = {CASE['rate']:.0%}, vol = "
          f"{CASE['vol']:.0%}, Black-Scholes market with the risk-neutral drift; the book is "
          f"sold at its Black-Scholes value at the hedge vol (20%, or Leland's vol for his "
          f"rule). {N_STEPS} exact GBM steps of {DAYS_PER_STEP:.2f} trading days; rules: delta "
          f"hedge every k = {', '.join(map(str, EVERY))} steps (k = {EVERY[-1]}: the static "
          f"hedge), Leland's rule at the same intervals, Whalley-Wilmott's band at risk "
          f"aversions {', '.join(f'{g:g}' for g in RISK_AVERSIONS)} per currency unit; "
          f"{len(PROPORTIONAL) * len(FIXED)} cost levels: proportional "
          f"{', '.join(f'{p * 1e4:g}' for p in PROPORTIONAL)} bp of the traded notional x "
          f"fee {', '.join(f'${f:g}' for f in FIXED)} per trade, charged on the rebalancing "
          f"trades only (Costs(ends=False): set-up and delivery free, as in Leland and "
          f"Whalley-Wilmott; so every rule, the band included, sets up at the delta, "
          f"initial='target'). Costs and P&L are present values at t=0. All rules and cost "
          f"levels on common random numbers: {args.paths:,} paths, seed {args.seed}, one "
          f"simulation and its summary in {t1 - t0:.1f} s. Device: {ds.attrs['device']}.\n\n"
          f"{tables}\n## Reading\n\n{reading}\n\n![risk-cost frontier]({png.name})\n")
    experiment.report(out, md, tables + "\n" + reading,
                      f"Device: {ds.attrs['device']}; {args.paths:,} paths; {t1 - t0:.1f} s.",
                      (png, store))
    return {"schedule": sched, "best": best, "leland": leland, "ww": ww}


if __name__ == "__main__":
    main()
