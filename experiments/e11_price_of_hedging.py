"""E11: the price of hedging, rules optimised on common random numbers.

Question: What premium does a risk-averse writer of a 30-day ATM call need, once hedged by the
best classical rule under proportional costs from 0 to 1%? For the entropic risk (a = 1) and
CVaR 99%, under Black-Scholes and Heston: the indifference prices of no hedge, the daily delta,
the best time schedule, the best delta band, Whalley-Wilmott and Zakamouline with optimised
scale, and the schedule-or-band rule (to the delta on a time schedule, between its dates past a
band), each tuned on one set of paths and priced on fresh ones; does the price spread grow
like cost^(2/3) (Whalley-Wilmott); and does the best tuned classical rule match the
no-transaction band network of Imaki et al. (2021) on its own setting?

Run:  python experiments/e11_price_of_hedging.py [--paths 1_000_000] [--device cuda]
"""

import math
import time
import warnings

import numpy as np
import xarray as xr

import gpuhedge as gh
from gpuhedge import experiment

SPOT = 100.0
DAYS = 30
T = DAYS / 365
VOL = 0.2
MARKETS = {
    "Black-Scholes": gh.BlackScholes(spot=SPOT, vol=VOL, rate=0.0),
    "Heston": gh.Heston(spot=SPOT, rate=0.0, v0=VOL**2, kappa=2.0, theta=VOL**2, xi=0.3,
                        rho=-0.7),
}
BOOK = gh.Book.short(gh.EuropeanCall(SPOT, T), 1.0)
COSTS = (0.0, 1e-4, 1e-3, 3e-3, 1e-2)
MEASURES = {"entropic a=1": gh.Entropic(1.0), "CVaR 99%": gh.ExpectedShortfall(0.99)}
RULES = ("no hedge", "daily delta", "best time schedule", "best delta band",
         "Whalley-Wilmott", "Zakamouline", "schedule-or-band")

# The tuned families: (family, bounds, fixed, integer). Band rules start at the band's edge
# (their default, initial="edge") and pay the set-up and the unwind (Costs(ends=True)).
FAMILIES = {
    "best time schedule": (gh.DeltaHedge, {"every": (1, DAYS)}, {"vol": VOL}, ("every",)),
    "best delta band": (gh.DeltaBand, {"band": (1e-3, 1.0)}, {"vol": VOL, "to": "edge"}, ()),
    "Whalley-Wilmott": (gh.WhalleyWilmott, {"risk_aversion": (1e-3, 1e3)}, {"vol": VOL}, ()),
    "Zakamouline": (gh.Zakamouline, {"risk_aversion": (1e-3, 1e3)}, {"vol": VOL}, ()),
    # to the delta every `every` days, to the band's edge between; at every = DAYS no date is
    # left (initial="edge"): the family holds the best delta band
    "schedule-or-band": (gh.ScheduleBand, {"every": (1, DAYS), "band": (1e-3, 1.0)},
                         {"vol": VOL, "to": "edge", "initial": "edge"}, ("every",)),
}
FIXED_RULES = {"no hedge": gh.NoHedge(), "daily delta": gh.DeltaHedge(vol=VOL, every=1)}

# Imaki et al. (2021), "No-transaction band network", notebook main.ipynb of
# github.com/pfnet-research/NoTransactionBandNetwork: a written ATM call, S0 = K = 1, vol 0.2,
# cost 1e-3 per unit of traded notional, entropic risk a = 1, premium 0.022544 (50,000 paths
# per epoch, 200 epochs, 20 ensemble evaluations). Its path generator makes int(30/365 /
# (1/365)) = 29 prices, i.e. 28 daily steps, and subtracts vol^2 t / 2 with t on a 29-point
# grid to 30/365: a drift of -vol^2 / 28 per year. It charges the set-up but not the unwind.
IMAKI_PRICE = 0.022544
IMAKI_STEPS = 28
IMAKI_MARKET = gh.BlackScholes(spot=1.0, vol=VOL, rate=0.0, drift=-VOL**2 / IMAKI_STEPS)
IMAKI_BOOK = gh.Book.short(gh.EuropeanCall(1.0, IMAKI_STEPS / 365), 1.0)
IMAKI_COST = 1e-3
IMAKI_FAMILIES = {
    "delta band (band, vol)": (gh.DeltaBand, {"band": (1e-3, 1.0), "vol": (0.05, 0.4)},
                               {"to": "edge"}),
    "Whalley-Wilmott (scale, vol)": (gh.WhalleyWilmott, {"risk_aversion": (1e-2, 1e4),
                                                         "vol": (0.05, 0.4)}, {}),
}


def optimise_cell(market, measure, cost, n_paths, seed, device):
    """Indifference prices (in and out of sample) of every rule for one market, measure and
    cost; the tuned rules' optima and landscapes."""
    costs = gh.Costs(proportional=cost)
    rows = {}
    ds = gh.simulate(market, BOOK, FIXED_RULES, {"c": costs}, n_paths=n_paths, n_steps=DAYS,
                     seed=seed, stream=1, device=device)
    fixed = gh.indifference_price(ds, measure).isel(cost=0)
    for name in FIXED_RULES:
        v, s = float(fixed.price.sel(strategy=name)), float(fixed.se.sel(strategy=name))
        rows[name] = dict(value=v, se=s, test_value=v, test_se=s, params={}, passes=1,
                          seconds=0.0, landscape=None)
    for name, (family, bounds, kw, integer) in FAMILIES.items():
        with warnings.catch_warnings():
            # every = DAYS is the static hedge (the delta band for the schedule-or-band rule),
            # a candidate on purpose
            warnings.simplefilter("ignore", gh.ScheduleWarning)
            opt = gh.optimize(market, BOOK, family, bounds, costs, fixed=kw, integer=integer,
                              measure=measure, n_paths=n_paths, n_steps=DAYS, seed=seed,
                              stream=0, test_stream=1, refine="scipy", device=device)
        rows[name] = dict(value=opt.value, se=opt.se, test_value=opt.test_value,
                          test_se=opt.test_se, params=opt.params, passes=opt.passes,
                          seconds=opt.seconds, landscape=opt.landscape)
    return rows


def setup_shares(rule, market, book, cost):
    """Shares bought at t=0 from none: the delta, or for an edge-start band its lower edge."""
    delta = gh.greeks(gh.BlackScholes(spot=market.spot, vol=rule.vol, rate=market.rate), book)
    delta = -delta["delta"]  # the hedge of the written book
    if isinstance(rule, gh.WhalleyWilmott):
        gamma = -gh.greeks(gh.BlackScholes(spot=market.spot, vol=rule.vol, rate=market.rate),
                           book)["gamma"]
        band = (1.5 * cost * market.spot * gamma**2 / rule.risk_aversion) ** (1 / 3)
    elif isinstance(rule, gh.DeltaBand):
        band = rule.band
    else:
        band = 0.0
    return max(delta - band, 0.0)


def imaki(n_paths, seed, device):
    """The best classical rules on the no-transaction band network's setting."""
    measure = gh.Entropic(1.0)
    costs = gh.Costs(proportional=IMAKI_COST)
    out = {}
    for name, (family, bounds, kw) in IMAKI_FAMILIES.items():
        opt = gh.optimize(IMAKI_MARKET, IMAKI_BOOK, family, bounds, costs, fixed=kw,
                          measure=measure, n_paths=n_paths, n_steps=IMAKI_STEPS, seed=seed,
                          stream=10, test_stream=11, refine="zoom", device=device)
        # the network's convention: set-up charged, unwind free = Costs(ends=False) minus the
        # (deterministic) set-up cost, on the out-of-sample paths
        free_ends = gh.simulate(IMAKI_MARKET, IMAKI_BOOK, {"r": opt.strategy},
                                {"c": gh.Costs(proportional=IMAKI_COST, ends=False)},
                                n_paths=n_paths, n_steps=IMAKI_STEPS, seed=seed, stream=11,
                                device=device)
        q0 = setup_shares(opt.strategy, IMAKI_MARKET, IMAKI_BOOK, IMAKI_COST)
        p = gh.indifference_price(free_ends, measure)
        out[name] = dict(params=opt.params, value=opt.value, se=opt.se,
                         test_value=opt.test_value, test_se=opt.test_se,
                         theirs=float(p.price.squeeze()) + IMAKI_COST * q0 * IMAKI_MARKET.spot,
                         theirs_se=float(p.se.squeeze()), seconds=opt.seconds,
                         passes=opt.passes)
    return out


def to_dataset(cells, args, markets, measures, costs):
    shape = (len(markets), len(measures), len(costs), len(RULES))
    data = {k: np.full(shape, np.nan) for k in ("value", "se", "test_value", "test_se")}
    for (i, j, k), rows in cells.items():
        for r, rule in enumerate(RULES):
            for key in data:
                data[key][i, j, k, r] = rows[rule][key]
    # labels as object arrays: Zarr v3 has no specified fixed-width string type
    coords = {"market": np.array(list(markets), dtype=object),
              "measure": np.array(list(measures), dtype=object), "cost": list(costs),
              "rule": np.array(RULES, dtype=object)}
    dims = tuple(coords)
    ds = xr.Dataset({
        "value": (dims, data["value"], {"long_name": "indifference price, in sample"}),
        "se": (dims, data["se"], {"long_name": "standard error, in sample"}),
        "test_value": (dims, data["test_value"],
                       {"long_name": "indifference price, out of sample"}),
        "test_se": (dims, data["test_se"], {"long_name": "standard error, out of sample"})},
        coords=coords, attrs={"paths": args.paths, "seed": args.seed})
    return ds


def fmt_params(p):
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in p.items()) or "-"


def price_table(cells, i, j, value0, costs):
    rows = []
    for rule in RULES:
        row = [rule]
        for k in range(len(costs)):
            r = cells[(i, j, k)][rule]
            text = f"{r['test_value']:.4f} +- {r['test_se']:.4f}"
            if r["params"]:
                text += f" ({fmt_params(r['params'])})"
            row.append(text)
        rows.append(row)
    rows.append(["model price", f"{value0:.4f}"] + [""] * (len(costs) - 1))
    return experiment.table(["rule"] + [f"{c * 100:g}%" for c in costs], rows)


def best_rule(rows, tuned=True):
    names = [r for r in RULES if r != "no hedge"] if tuned else list(RULES)
    return min(names, key=lambda r: rows[r]["test_value"])


def spread_rows(cells, markets, measures, costs):
    """Best out-of-sample price minus the best cost-free one, per market, measure, cost > 0,
    and the log-log slope over the positive costs."""
    out = []
    for i, market in enumerate(markets):
        for j, measure in enumerate(measures):
            base = min(cells[(i, j, 0)][r]["test_value"] for r in RULES if r != "no hedge")
            spreads = []
            for k, c in enumerate(costs[1:], start=1):
                rows = cells[(i, j, k)]
                best = best_rule(rows)
                spreads.append((c, rows[best]["test_value"] - base, best))
            x = np.log([c for c, s, _ in spreads])
            y = np.log([max(s, 1e-12) for _, s, _ in spreads])
            slope = float(np.polyfit(x, y, 1)[0])
            out.append(dict(market=market, measure=measure, spreads=spreads, slope=slope))
    return out


def figure(spreads, path, measures, costs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(measures), figsize=(6 * len(measures), 5), squeeze=False)
    for ax, measure in zip(axes[0], measures):
        for row in (r for r in spreads if r["measure"] == measure):
            c = [x for x, _, _ in row["spreads"]]
            s = [max(y, 1e-12) for _, y, _ in row["spreads"]]
            ax.plot(c, s, "o-", label=f"{row['market']} (slope {row['slope']:.2f})")
        ref = np.array([costs[1], costs[-1]])
        first = next(r for r in spreads if r["measure"] == measure)
        anchor = max(first["spreads"][-1][1], 1e-12)
        ax.plot(ref, anchor * (ref / ref[-1]) ** (2 / 3), "k--", lw=1, label="slope 2/3")
        ax.set(xscale="log", yscale="log", xlabel="proportional cost",
               ylabel="price spread over the cost-free best (currency)",
               title=f"30-day ATM call written, {measure}: best rule's spread")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = experiment.parser(__doc__, "e11_price_of_hedging", paths=1_000_000,
                          paths_help="paths of every optimisation (and of its out-of-sample "
                                     "test)", store_help="Zarr store of the price table")
    p.add_argument("--costs", default=",".join(f"{c:g}" for c in COSTS),
                   help="comma-separated proportional costs, the first 0 (default: %(default)s)")
    p.add_argument("--markets", default=",".join(MARKETS), help="comma-separated among "
                   "%(default)s")
    p.add_argument("--measures", default=",".join(MEASURES), help="comma-separated among "
                   "%(default)s")
    args = p.parse_args(argv)
    costs = tuple(float(c) for c in args.costs.split(","))
    if costs[0] != 0.0 or len(costs) < 3 or any(c <= 0 for c in costs[1:]):
        p.error(f"--costs must start with 0 and hold at least two positive costs; got "
                f"{args.costs}")
    markets = {m: MARKETS[m] for m in args.markets.split(",") if m in MARKETS}
    if not markets:
        p.error(f"--markets must name some of {', '.join(MARKETS)}; got {args.markets}")
    measures = {m: MEASURES[m] for m in args.measures.split(",") if m in MEASURES}
    if not measures:
        p.error(f"--measures must name some of {', '.join(MEASURES)}; got {args.measures}")
    out, png, store = experiment.outputs(args)

    t0 = time.perf_counter()
    cells = {}
    for i, market in enumerate(markets.values()):
        for j, measure in enumerate(measures.values()):
            for k, cost in enumerate(costs):
                cells[(i, j, k)] = optimise_cell(market, measure, cost, args.paths, args.seed,
                                                 args.device)
    t1 = time.perf_counter()
    nt = imaki(args.paths, args.seed, args.device)
    t2 = time.perf_counter()
    ds = to_dataset(cells, args, markets, measures, costs)
    if store is not None:
        gh.store.save(store, ds)
    spreads = spread_rows(cells, markets, measures, costs)
    figure(spreads, png, measures, costs)

    opt_seconds = [r["seconds"] for rows in cells.values() for r in rows.values()
                   if r["params"]]
    opt_passes = [r["passes"] for rows in cells.values() for r in rows.values() if r["params"]]
    values = {name: gh.price(m, BOOK) for name, m in markets.items()}
    sections = []
    for i, market in enumerate(markets):
        for j, measure in enumerate(measures):
            sections.append(f"### {market}, {measure}\n\n"
                            f"{price_table(cells, i, j, -values[market], costs)}\n")
    spread_table = experiment.table(
        ["market", "measure"] + [f"{c * 100:g}%" for c in costs[1:]] + ["slope"],
        [[r["market"], r["measure"]] + [f"{s:.4f} ({b})" for _, s, b in r["spreads"]]
         + [f"{r['slope']:.2f}"] for r in spreads], text=2)
    best_nt = min(nt, key=lambda n: nt[n]["theirs"])
    nt_rows = [[name, fmt_params(r["params"]), f"{r['value']:.6f} +- {r['se']:.6f}",
                f"{r['test_value']:.6f} +- {r['test_se']:.6f}",
                f"{r['theirs']:.6f} +- {r['theirs_se']:.6f}", f"{r['seconds']:.1f}",
                f"{r['passes']}"] for name, r in nt.items()]
    nt_rows.append(["no-transaction band network (Imaki et al.)", "trained", "", "",
                    f"{IMAKI_PRICE:.6f}", "", ""])
    nt_table = experiment.table(
        ["rule", "tuned parameters", "price, in sample", "out of sample (gpuhedge costs: "
         "set-up and unwind)", "out of sample, the network's convention (set-up only)",
         "seconds", "kernel passes"], nt_rows, text=2)
    bs28 = -gh.price(gh.BlackScholes(spot=1.0, vol=VOL, rate=0.0), IMAKI_BOOK)
    diff = nt[best_nt]["theirs"] - IMAKI_PRICE
    tables = (
        "## 1. Indifference prices, out of sample (tuned parameters in brackets)\n\n"
        + "\n".join(sections)
        + "\n## 2. Spread of the best rule over the best cost-free price\n\n"
        + spread_table
        + "\n\n## 3. Against the no-transaction band network (Imaki et al. 2021)\n\n"
        + nt_table + "\n")
    tuned = [r for rows in cells.values() for r in rows.values() if r["params"]]
    gaps = [abs(r["test_value"] - r["value"]) / math.hypot(r["se"], r["test_se"])
            for r in tuned]
    low_share = np.mean([r["value"] < r["test_value"] for r in tuned])
    bias = (": the minimum of noisy values is biased low" if low_share > 0.5 else
            ": no sign of the optimism of a minimum of noisy values at this size")
    winners = ", ".join(f"{b} at {c * 100:g}%" for c, _, b in spreads[0]["spreads"])
    mean_slope = np.mean([r["slope"] for r in spreads])
    shape = ("steeper than 2/3 on this daily grid" if mean_slope > 2 / 3 + 0.1 else
             "flatter than 2/3 on this daily grid" if mean_slope < 2 / 3 - 0.1 else
             "close to 2/3")
    slopes = ", ".join(f"{r['slope']:.2f} ({r['market']}, {r['measure']})" for r in spreads)
    reading = (
        f"The tuned rules' out-of-sample prices differ from their in-sample ones by "
        f"{np.median(gaps):.1f} standard errors in the median (at most {max(gaps):.1f}; "
        f"in sample lower in {low_share:.0%} of the optimisations{bias}). With costs the best "
        f"tuned rule is: {winners} ({spreads[0]['market']}, {spreads[0]['measure']}); "
        f"the spread of the best rule over the best cost-free "
        f"price has a log-log slope of "
        f"{slopes} "
        f"over costs {costs[1]:g} to {costs[-1]:g}, against Whalley-Wilmott's 2/3 for small "
        f"costs: {shape} (the asymptotics need a band wide against the delta's move over one "
        f"step, and at 30 daily steps the optimal band at the smallest costs is not). The "
        f"entropic price of no hedge is a Monte Carlo "
        f"number only: E[exp(a (S_T - K)^+)] is infinite for lognormal S_T, so its estimate "
        f"is set by the largest simulated payoff. On Imaki et al.'s setting the best tuned "
        f"classical rule is the {best_nt} at {nt[best_nt]['theirs']:.6f} in the network's "
        f"cost convention against the network's {IMAKI_PRICE:.6f} "
        f"({'beats it' if diff < 0 else 'above it'} by {abs(diff):.6f}, "
        f"{abs(diff) / IMAKI_PRICE:.2%}, {abs(diff) / nt[best_nt]['theirs_se']:.1f} of our "
        f"standard errors; the network's own Monte Carlo error is not published; "
        f"Black-Scholes value of the 28-step call "
        f"{bs28:.6f}); tuning took {nt[best_nt]['seconds']:.0f} s on "
        f"{args.paths:,} paths ({nt[best_nt]['passes']} kernel passes).")
    size_note = ("" if args.paths >= 1_000_000 else
                 f"The default is 10^6 paths per optimisation; this run "
                 f"used {args.paths:,} to fit the shared 2-core CPU. ")
    question = experiment.question(__doc__)
    device = "cpu" if args.device is None else args.device
    md = (f"# E11: the price of hedging\n\n**Question.** {question}\n\n"
          f"**Set-up.** A written European call, S0 = K = {SPOT:g}, T = {DAYS}/365, r = 0, "
          f"{DAYS} daily steps; markets: {', '.join(markets)} (Black-Scholes vol {VOL:g}; "
          f"Heston (v0 = theta = "
          f"{VOL**2:g}, kappa = 2, xi = 0.3, rho = -0.7)), hedged at the Black-Scholes delta at "
          f"vol {VOL:g}. Proportional costs {', '.join(f'{c:g}' for c in costs)} of the traded "
          f"notional, the set-up and the unwind included (Costs(ends=True)); band rules start "
          f"at the band's edge. Prices are indifference premia rho(P&L without premium) "
          f"(gpuhedge.risk: entropic a = 1 per currency unit, CVaR 99%), in currency, for the "
          f"writer (the ask). Tuned: the rebalancing interval (1-{DAYS} days, all in one "
          f"kernel pass), the delta band's half-width (1e-3 to 1 share, to the edge), "
          f"Whalley-Wilmott's and Zakamouline's risk aversion (band scale, 1e-3 to 1e3), and "
          f"the schedule-or-band rule's two parameters (gh.ScheduleBand: to the delta every "
          f"1-{DAYS} days, between those dates to the edge of a band of 1e-3 to 1 share; at "
          f"{DAYS} days no date is left and it is the delta band), each "
          f"by gh.optimize: a coarse grid as rows of one pass, bounded Brent on common random "
          f"numbers ({args.paths:,} paths, stream 0, seed {args.seed}; for the "
          f"schedule-or-band rule Brent in the band at the best interval of a 5 x 5 grid), "
          f"then priced on {args.paths:,} fresh paths (stream 1); the fixed rules on stream 1. "
          f"Section 3: the network's setting (S0 = K = 1, {IMAKI_STEPS} daily steps of 1/365, "
          f"vol {VOL:g}, drift -vol^2/{IMAKI_STEPS}, cost {IMAKI_COST:g}, entropic a = 1), the "
          f"hedge vol tuned with the band or the scale: a 5 x 5 grid, then three zooming "
          f"5 x 5 grids (one kernel pass each), stream 10, priced on stream 11. "
          f"{size_note}"
          f"{len(opt_seconds)} optimisations took {sum(opt_seconds):.0f} s (median "
          f"{np.median(opt_seconds):.1f} s, {int(np.median(opt_passes))} kernel passes each); "
          f"all of section 1 {t1 - t0:.0f} s, section 3 {t2 - t1:.0f} s. Device: {device}.\n\n"
          f"{tables}\n## Reading\n\n{reading}\n\n![price spread vs cost]({png.name})\n")
    experiment.report(out, md, tables + "\n" + reading,
                      f"Device: {device}; {args.paths:,} paths; {t2 - t0:.1f} s.",
                      (png, store))
    return {"cells": cells, "spreads": spreads, "imaki": nt, "dataset": ds}


if __name__ == "__main__":
    main()
