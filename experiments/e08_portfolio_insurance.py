"""E08: portfolio insurance, and the gap risk that rebalancing cannot insure.

Question: An investor puts 100 in a stock for one year and wants at least 90 back. A synthetic
put (stock plus a replicated put) and CPPI with multipliers 2, 4, 6 and 10, rebalanced daily
under a 10 bp cost, promise that floor. How often, and by how much, do they breach it in a
Black-Scholes market, in a Merton market with crash jumps, and on a 1987-like path with a
one-day crash; what do they cost in trading, and how much of the stock's upside (mean final
value against buy-and-hold) do they give up?

Run:  python experiments/e08_portfolio_insurance.py [--paths 2_000_000] [--device cuda]
"""

import math
import time

import numpy as np
from scipy.stats import norm

import gpuhedge as gh
from gpuhedge import experiment
from gpuhedge.kernels.black_scholes import bs_delta
from gpuhedge.pricing import bs_price

# 100 of capital (one share at S0 = 100), one year of 252 daily rebalances, floor 90% of the
# capital at the horizon; cash at 3%, the stock's real-world drift 7% (its mean return).
CASE = dict(spot=100.0, rate=0.03, drift=0.07, horizon=1.0, floor=0.9, vol=0.2)
N_STEPS = 252
COST = 1e-3  # 10 bp of the traded notional, the purchase at t=0 and the sale at the horizon too
MULTIPLIERS = (2.0, 4.0, 6.0, 10.0)
# Crash jumps: one every five years on average, of mean log size -20% (std 5%); the diffusion
# vol is set so that the total vol stays 20%.
CRASH = dict(lam=0.2, mu_j=-0.2, sigma_j=0.05)
# The supplied path: a stylised 1987 (not the index itself): +25% to day 160, -15% over the
# next 40 days, a one-day crash of -20.5% (19 October 1987) on day 201, +8% to the year end;
# daily noise of 0.5% from a fixed seed. Its twin without the gap has 0 on the crash day.
PATH = dict(legs=((0, 160, 0.25), (160, 200, -0.15), (201, 252, 0.08)), crash_day=201,
            crash=-0.205, noise=0.005, seed=19871019)
BUY_AND_HOLD = "buy and hold"


def insurers():
    c = CASE
    out = {"synthetic put": gh.SyntheticPut(vol=c["vol"], floor=c["floor"], every=1)}
    out.update({f"CPPI m={m:g}": gh.CPPI(floor=c["floor"], multiplier=m, every=1)
                for m in MULTIPLIERS})
    return out


def costs():
    return {"free": gh.Costs(), f"{COST * 1e4:g} bp": gh.Costs(proportional=COST)}


def book():
    """The insurers hold no options: the book only sets the one-year horizon."""
    return gh.Book.short(gh.EuropeanCall(CASE["spot"], CASE["horizon"]), 1.0)


def markets():
    c = CASE
    diffusion = math.sqrt(c["vol"] ** 2 - CRASH["lam"] * (CRASH["mu_j"] ** 2
                                                          + CRASH["sigma_j"] ** 2))
    kw = dict(spot=c["spot"], rate=c["rate"], drift=c["drift"])
    return {"Black-Scholes": gh.BlackScholes(vol=c["vol"], **kw),
            "Merton with crashes": gh.Merton(vol=diffusion, **CRASH, **kw)}


def supplied_paths():
    """(times, prices of shape (2, 253)): the 1987-like path and its twin without the gap;
    both start at S0 (insurers on supplied paths need one first price)."""
    days = np.arange(N_STEPS + 1)
    step = np.zeros(N_STEPS)
    for start, end, total in PATH["legs"]:
        step[start:end] += math.log1p(total) / (end - start)
    step += np.random.default_rng(PATH["seed"]).normal(0.0, PATH["noise"], N_STEPS)
    gap = step.copy()
    gap[PATH["crash_day"] - 1] = math.log1p(PATH["crash"])
    calm = step.copy()
    calm[PATH["crash_day"] - 1] = 0.0
    prices = CASE["spot"] * np.exp(np.vstack([np.r_[0.0, np.cumsum(gap)],
                                              np.r_[0.0, np.cumsum(calm)]]))
    return days / N_STEPS * CASE["horizon"], prices


def replicate(prices, times, rule):
    """The insurer's portfolio value along one supplied path, in NumPy (the kernel's rules:
    CPPI holds min(m C, V) in shares, C = V - F e^{-r (T - t)}; the synthetic put n N(d1)
    shares; cash at the rate; no costs). Checks the engine and draws figure 2."""
    c = CASE
    r, horizon = c["rate"], c["horizon"]
    capital = prices[0]
    floor = c["floor"] * capital
    cash, shares, values = capital, 0.0, []
    if isinstance(rule, gh.SyntheticPut):
        n, strike = rule.units(prices[0], r, 0.0, horizon)
    for k, (t, s) in enumerate(zip(times, prices)):
        if k > 0:
            cash *= math.exp(r * (t - times[k - 1]))
        value = cash + shares * s
        values.append(value)
        if k == len(times) - 1:
            break
        if isinstance(rule, gh.CPPI):
            cushion = value - floor * math.exp(-r * (horizon - t))
            target = min(rule.multiplier * max(cushion, 0.0), rule.max_leverage * value) / s
        else:
            target = n * (1.0 + bs_delta(s, strike, horizon - t, rule.vol, r, 0.0, False))
        cash -= (target - shares) * s
        shares = target
    return np.array(values)


def run(n_paths, seed, device):
    out = {}
    for i, (name, market) in enumerate(markets().items()):
        out[name] = gh.simulate(market, book(), insurers(), costs(), n_paths=n_paths,
                                n_steps=N_STEPS, seed=seed, stream=i, device=device)
    times, prices = supplied_paths()
    out["1987-like path"] = gh.hedge_paths(prices, times, book(), insurers(), costs(),
                                           rate=CASE["rate"], device=device)
    return out, times, prices


def final_values(ds):
    """Final values at the horizon, (strategy, cost, path), with buy-and-hold prepended:
    V_T = F + e^{rT} pnl; buy-and-hold holds capital / S0 shares (cost on the purchase and
    the sale)."""
    import xarray as xr

    c = CASE
    growth = math.exp(c["rate"] * c["horizon"])
    capital = c["spot"]
    floor = c["floor"] * capital
    value = floor + growth * ds.pnl
    held = capital * ds.terminal_spot / c["spot"]
    rates = xr.DataArray([0.0, COST], dims="cost", coords={"cost": ds["cost"].values})
    bh = (held - rates * (growth * capital + held)).expand_dims(strategy=[BUY_AND_HOLD])
    bh_cost = (rates * (capital + held / growth)).expand_dims(strategy=[BUY_AND_HOLD])
    return (xr.concat([bh, value.transpose("strategy", "cost", "path")], dim="strategy"),
            xr.concat([bh_cost, ds.cost_paid.transpose("strategy", "cost", "path")],
                      dim="strategy"))


def rows_of(ds):
    """Per strategy: breach probability (before and after costs), mean shortfall given a
    breach, CVaR 99% of V_T - F, costs, trades, and the final value's mean and quantiles."""
    values, paid = final_values(ds)
    c = CASE
    floor = c["floor"] * c["spot"]
    growth = math.exp(c["rate"] * c["horizon"])
    free, costly = values.sel(cost="free"), values.isel(cost=1)
    n = ds.sizes["path"]
    bh_mean = float(costly.sel(strategy=BUY_AND_HOLD).mean())
    rows = []
    for name in values["strategy"].values:
        v0, v1 = free.sel(strategy=name).values, costly.sel(strategy=name).values
        short = floor - v0
        p0, p1 = float((short > 0).mean()), float((v1 < floor).mean())
        tail = np.sort(v1 - floor)[:max(1, int(round(0.01 * n)))]
        trades = ds.trades.isel(cost=1).sel(strategy=name).values \
            if name != BUY_AND_HOLD else np.full(n, 2.0)
        rows.append(dict(
            name=str(name), p_breach=p0, se_p=math.sqrt(p0 * (1 - p0) / n),
            p_material=float((short > 0.01 * c["spot"]).mean()), p_breach_costs=p1,
            shortfall=float(short[short > 0].mean()) if p0 > 0 else 0.0,
            worst=float(max(short.max(), 0.0)), cvar=float(-tail.mean() / growth),
            cost=float(paid.isel(cost=1).sel(strategy=name).mean()), trades=float(trades.mean()),
            mean=float(v1.mean()), se_mean=float(v1.std() / math.sqrt(n)),
            mean_free=float(v0.mean()),
            median=float(np.median(v1)), q95=float(np.quantile(v1, 0.95)),
            given_up=bh_mean - float(v1.mean())))
    return rows


def textbook(market_name):
    """Closed forms beside the simulation. Black-Scholes, continuous rebalancing, no costs:
    the synthetic put ends at n max(S_T, K), mean n (K + e^{mu T} C(S0, K; rate mu)); CPPI
    without the leverage cap ends at F + C_0 (S_T/S_0)^m e^{...}, mean F + C_0 e^{(r + m (mu -
    r)) T} (the cap binds often for m >= 4, so only m = 2 is shown). Merton: CPPI breaches
    when a jump falls more than 1/m between two rebalances; without the cap, P(breach) =
    1 - exp(-lam T P(J < 1 - 1/m))."""
    c = CASE
    out = {}
    if market_name == "Black-Scholes":
        n, strike = insurers()["synthetic put"].units(c["spot"], c["rate"], 0.0, c["horizon"])
        call = float(bs_price(c["spot"], strike, c["horizon"], c["vol"], c["drift"], 0.0, True))
        out["synthetic put"] = n * (strike + math.exp(c["drift"] * c["horizon"]) * call)
        cushion = c["spot"] * (1 - c["floor"] * math.exp(-c["rate"] * c["horizon"]))
        m = MULTIPLIERS[0]
        out[f"CPPI m={m:g}"] = c["floor"] * c["spot"] + cushion * math.exp(
            (c["rate"] + m * (c["drift"] - c["rate"])) * c["horizon"])
        out[BUY_AND_HOLD] = c["spot"] * math.exp(c["drift"] * c["horizon"])
    else:
        for m in MULTIPLIERS:
            p_jump = norm.cdf((math.log(1 - 1 / m) - CRASH["mu_j"]) / CRASH["sigma_j"])
            out[f"CPPI m={m:g}"] = -math.expm1(-CRASH["lam"] * c["horizon"] * p_jump)
    return out


def market_table(rows, reference, market_name):
    closed_form = market_name == "Black-Scholes"
    ref_head = ("closed form: mean final value, no costs (simulated)" if closed_form else
                "1/m rule: P(a jump < -1/m)")

    def ref_cell(r):
        ref = reference.get(r["name"])
        return ("-" if ref is None else
                f"{ref:.2f} ({r['mean_free']:.2f})" if closed_form else f"{ref:.4f}")

    return experiment.table(
        ["strategy", "P(breach) (+- se)", "P(miss > 1% of capital)", "P(breach), after costs",
         "mean shortfall given breach", "worst shortfall", "CVaR 99% of V_T - F (PV)",
         "mean cost", "trades", "mean final value (+- se)", "median", "95% quantile",
         "upside given up vs buy and hold", ref_head],
        ([r["name"], f"{r['p_breach']:.4f} +- {r['se_p']:.4f}", f"{r['p_material']:.4f}",
          f"{r['p_breach_costs']:.4f}", f"{r['shortfall']:.2f}", f"{r['worst']:.2f}",
          f"{r['cvar']:+.2f}", f"{r['cost']:.3f}", f"{r['trades']:.1f}",
          f"{r['mean']:.2f} +- {r['se_mean']:.2f}", f"{r['median']:.2f}", f"{r['q95']:.2f}",
          f"{r['given_up']:+.2f}", ref_cell(r)] for r in rows))


def path_rows(ds, times, prices):
    values, paid = final_values(ds)
    floor = CASE["floor"] * CASE["spot"]
    rows = []
    for name in values["strategy"].values:
        name = str(name)
        check = None
        if name != BUY_AND_HOLD:
            rule = insurers()[name]
            check = max(abs(replicate(prices[j], times, rule)[-1]
                            - float(values.sel(strategy=name, cost="free")[j]))
                        for j in range(prices.shape[0]))
        row = dict(name=name, check=check, trades=float(ds.trades.isel(cost=1).sel(
            strategy=name)[0]) if name != BUY_AND_HOLD else 2.0)
        for j, label in enumerate(("gap", "calm")):
            v0 = float(values.sel(strategy=name, cost="free")[j])
            row[label] = dict(free=v0, after=float(values.isel(cost=1).sel(strategy=name)[j]),
                              shortfall=max(floor - v0, 0.0),
                              cost=float(paid.isel(cost=1).sel(strategy=name)[j]))
        rows.append(row)
    return rows


def path_table(rows):
    return experiment.table(
        ["strategy", "gap path: final value, no costs", "shortfall below the floor",
         "final value after costs", "cost (PV)", "trades",
         "path without the gap: final value after costs",
         "NumPy replica vs engine (max abs difference)"],
        ([r["name"], f"{r['gap']['free']:.2f}", f"{r['gap']['shortfall']:.2f}",
          f"{r['gap']['after']:.2f}", f"{r['gap']['cost']:.3f}", f"{r['trades']:.0f}",
          f"{r['calm']['after']:.2f}", "-" if r["check"] is None else f"{r['check']:.1e}"]
         for r in rows))


def listing(items):
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    return " and ".join([", ".join(items[:-1]), items[-1]] if len(items) > 1 else items)


def reading_text(tables, paths):
    bs = {r["name"]: r for r in tables["Black-Scholes"]}
    me = {r["name"]: r for r in tables["Merton with crashes"]}
    gp = {r["name"]: r for r in paths}
    cppi = [f"CPPI m={m:g}" for m in MULTIPLIERS]
    sp = "synthetic put"
    broke = [n for n in [sp] + cppi if gp[n]["gap"]["shortfall"] > 0]
    names = ["the synthetic put" if n == sp else n for n in broke]
    held = [n for n in cppi if gp[n]["gap"]["shortfall"] == 0]
    bound = textbook("Merton with crashes")
    misses = [f"{gp[n]['gap']['shortfall']:.1f}" for n in broke]
    return (f"With daily rebalancing and no jumps the floor holds: CPPI never breaches it under "
            f"Black-Scholes (P = {max(bs[n]['p_breach'] for n in cppi):.4f} for every "
            f"multiplier) and the synthetic put misses it only by its replication error (mean "
            f"miss {bs[sp]['shortfall']:.2f}, P(miss > 1% of capital) = "
            f"{bs[sp]['p_material']:.4f}); crashes breach it: under Merton CPPI m = "
            f"{MULTIPLIERS[1]:g}/{MULTIPLIERS[2]:g}/{MULTIPLIERS[3]:g} breaches on "
            f"{100 * me[cppi[1]]['p_breach']:.1f}/{100 * me[cppi[2]]['p_breach']:.1f}/"
            f"{100 * me[cppi[3]]['p_breach']:.1f}% of paths (mean shortfall "
            f"{me[cppi[3]]['shortfall']:.1f} at m = {MULTIPLIERS[3]:g}; the 1/m rule gives "
            f"{'/'.join(f'{100 * bound[n]:.1f}' for n in cppi[1:])}%, the no-leverage cap "
            f"saving some paths at large m), the synthetic put on "
            f"{100 * me[sp]['p_breach']:.1f}% "
            f"(mean shortfall {me[sp]['shortfall']:.1f}), m = {MULTIPLIERS[0]:g} never; on the "
            f"1987-like path the crash takes {listing(names) or 'no insurer'} below the floor "
            f"(by {listing(misses) or '0'}) while {listing(held) or 'no CPPI'} hold.\n"
            f"The insurance is paid in upside more than in costs (at most "
            f"{max(r['cost'] for r in tables['Black-Scholes']):.2f} per 100): under "
            f"Black-Scholes the mean final value is {bs[BUY_AND_HOLD]['mean']:.1f} for buy and "
            f"hold against {bs[sp]['mean']:.1f} for the synthetic put and "
            f"{bs[cppi[0]]['mean']:.1f}-{max(bs[n]['mean'] for n in cppi):.1f} for CPPI "
            f"(m = {MULTIPLIERS[0]:g} to {MULTIPLIERS[-1]:g}: {bs[cppi[0]]['given_up']:.1f} to "
            f"{bs[cppi[-1]]['given_up']:.1f} given up, 95% quantile {bs[cppi[0]]['q95']:.0f} to "
            f"{bs[cppi[-1]]['q95']:.0f} vs {bs[BUY_AND_HOLD]['q95']:.0f}): a larger multiplier "
            f"buys upside with gap risk; and a CPPI knocked below its floor sits in cash for "
            f"the rest of the year (m = {MULTIPLIERS[-1]:g} ends the 1987-like path at "
            f"{gp[cppi[-1]]['gap']['after']:.1f}, the stock at "
            f"{gp[BUY_AND_HOLD]['gap']['after']:.1f}).")


def figure_markets(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [BUY_AND_HOLD] + list(insurers())
    colors = dict(zip(names, ("grey",) + plt.get_cmap("tab10").colors))
    floor = CASE["floor"] * CASE["spot"]
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.6))
    for ax, market in zip(axes[:2], markets()):
        ds = results[market]
        values, _ = final_values(ds)
        values = values.isel(cost=1)
        x = ds.terminal_spot.values / CASE["spot"]
        keep = np.random.default_rng(0).permutation(x.size)[:min(x.size, 4000)]
        for name in names[::-1]:  # the widest clouds (large multipliers) underneath
            ax.scatter(x[keep], values.sel(strategy=name).values[keep], s=3, alpha=0.5,
                       color=colors[name], label=name, rasterized=True)
        ax.axhline(floor, color="k", ls="--", lw=1, label=f"floor ({floor:g})")
        ax.set(xlabel="stock at the horizon / stock at t=0, S_T / S_0",
               ylabel="final value after costs (currency)", title=f"{market}: final value "
               f"against the stock ({COST * 1e4:g} bp cost)", xlim=(0.4, 2.2), ylim=(55, 200))
        ax.grid(True, alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    order = [labels.index(n) for n in names] + [labels.index(f"floor ({floor:g})")]
    axes[0].legend([handles[i] for i in order], [labels[i] for i in order], markerscale=4,
                   fontsize=9, loc="upper left")
    cx = axes[2]
    ds = results["Merton with crashes"]
    values, _ = final_values(ds)
    values = values.isel(cost=1)
    n = ds.sizes["path"]
    for name in names:
        v = np.sort(values.sel(strategy=name).values)
        cx.step(v, np.arange(1, n + 1) / n, where="post", color=colors[name], lw=1.5,
                label=name)
    cx.axvline(floor, color="k", ls="--", lw=1)
    cx.set(xlim=(60, 100), ylim=(1e-4, 1), yscale="log",
           xlabel="final value after costs (currency)",
           ylabel="P(final value <= x), log scale",
           title="Merton with crashes: the left tail (below the floor: breaches)")
    cx.grid(True, which="both", alpha=0.3)
    cx.legend(fontsize=9, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def figure_path(times, prices, ds, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = CASE
    rules = insurers()
    colors = dict(zip(rules, plt.get_cmap("tab10").colors))
    days = times * N_STEPS / c["horizon"]
    floor_pv = c["floor"] * c["spot"] * np.exp(-c["rate"] * (c["horizon"] - times))
    fig, axes = plt.subplots(1, 2, figsize=(16, 5.6), sharey=True)
    for ax, j, label in zip(axes, (0, 1), ("with the one-day crash", "without the gap")):
        for name, rule in rules.items():
            ax.plot(days, replicate(prices[j], times, rule), color=colors[name], lw=1.3,
                    label=name)
        ax.plot(days, prices[j], color="k", lw=1, ls=(0, (1, 1)),
                label="stock (buy and hold; CPPI m=10 holds it while capped)")
        ax.plot(days, floor_pv, "k--", lw=1, label="floor, present value F e^{-r(T-t)}")
        ax.axvline(PATH["crash_day"], color="r", lw=0.8, ls=":")
        ax.set(xlabel="trading day", title=f"1987-like path {label}: portfolio value "
               f"(no costs)", xlim=(0, N_STEPS), ylim=(55, None))
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("value (currency; capital 100 at day 0)")
    axes[0].legend(fontsize=9, loc="lower left", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = experiment.parser(
        __doc__, "e08_portfolio_insurance", paths=100_000,
        paths_help="paths per market",
        store_help="Zarr store, one group per market and one for the paths")
    args = p.parse_args(argv)
    out, png, store = experiment.outputs(args)
    png_path = out.with_name(out.stem + "_path.png")

    t0 = time.perf_counter()
    results, times, prices = run(args.paths, args.seed, args.device)
    tables = {m: rows_of(results[m]) for m in markets()}
    paths = path_rows(results["1987-like path"], times, prices)
    t1 = time.perf_counter()
    if store is not None:
        gh.store.save(store, {name.replace(" ", "_").replace("-", "_").lower(): ds
                              for name, ds in results.items()})
    figure_markets(results, png)
    figure_path(times, prices, results["1987-like path"], png_path)

    text = ""
    for i, market in enumerate(markets()):
        text += (f"## {i + 1}. {market}\n\n"
                 f"{market_table(tables[market], textbook(market), market)}\n\n")
    text += (f"Breach: the final value without costs V_T below the floor F = "
             f"{CASE['floor'] * CASE['spot']:g} (the rule's own gap risk); after costs: the "
             f"value net of the {COST * 1e4:g} bp cost (CPPI sizes its exposure on its "
             f"cushion net of the costs paid so far; the synthetic put's share holdings do not "
             f"depend on its wealth, so its costs come on top). Shortfall: F - V_T, in "
             f"currency per 100 of capital. CVaR 99%: minus the mean of V_T - F (after costs, "
             f"present value) over the worst 1% of paths; negative means even those end above "
             f"the floor. Final values are after costs; upside given up: buy-and-hold's mean "
             f"final value minus the strategy's. Closed forms: Black-Scholes with continuous "
             f"rebalancing and no costs (CPPI m = {MULTIPLIERS[0]:g} without the leverage "
             f"cap, which rarely binds at that multiplier); for Merton, the 1/m rule: the "
             f"chance that some jump in the year falls by more than 1/m, the breach "
             f"probability of a CPPI that always holds m C when the day's diffusive move is "
             f"small beside the jump (the cap at the portfolio value lowers the exposure, and "
             f"the breach probability, at large m).\n\n"
             f"## 3. The 1987-like path (hedge_paths)\n\n{path_table(paths)}\n\n"
             f"The replica column recomputes each insurer's final value (no costs) along the "
             f"path in NumPy from the rules' definitions; it agrees with the engine.\n")
    reading = reading_text(tables, paths)
    question = experiment.question(__doc__)
    c, mk = CASE, markets()
    md = (f"# E08: portfolio insurance and gap risk\n\n"
          f"**Question.** {question}\n\n"
          f"**Set-up.** Capital {c['spot']:g} (one share at S0 = {c['spot']:g}), horizon "
          f"{c['horizon']:g} year, floor F = {c['floor']:.0%} of the capital at the horizon, "
          f"cash rate {c['rate']:.0%}, real-world drift of the stock {c['drift']:.0%}. "
          f"Insurers (gpuhedge.SyntheticPut, CPPI), rebalanced every day ({N_STEPS} steps): "
          f"a synthetic put (units of share + Black-Scholes put at vol {c['vol']:.0%}, the "
          f"put replicated by n N(d1) shares), CPPI holding min(m C, V) in shares, C = V - F "
          f"e^{{-r(T-t)}} the cushion, m = {', '.join(f'{m:g}' for m in MULTIPLIERS)}, no "
          f"borrowing (max_leverage = 1); buy and hold for comparison. Costs: "
          f"{COST * 1e4:g} bp of the traded notional on every trade, the purchase and the "
          f"final sale included, and a cost-free twin run. Markets: Black-Scholes (vol "
          f"{c['vol']:.0%}); Merton with crashes (diffusion vol "
          f"{mk['Merton with crashes'].vol:.2%}, "
          f"lam = {CRASH['lam']} per year, mu_j = {CRASH['mu_j']}, sigma_j = "
          f"{CRASH['sigma_j']}: total vol 20%); {args.paths:,} paths per market, seed "
          f"{args.seed} (one stream per market). The 1987-like path: a deterministic daily "
          f"series (+25% to day 160, -15% to day 200, a {PATH['crash']:.1%} crash on day "
          f"{PATH['crash_day']}, +8% to the year end, {PATH['noise']:.1%} daily noise from a "
          f"fixed seed; a stylised year, not index data) and its twin without the gap, both "
          f"from the same first price, hedged with gpuhedge.hedge_paths. {t1 - t0:.1f} s. "
          f"Device: {results['Merton with crashes'].attrs['device']}.\n\n"
          f"{text}\n## Reading\n\n{reading}\n\n![final values and left tail]({png.name})\n\n"
          f"![the 1987-like path]({png_path.name})\n")
    experiment.report(out, md, text + "\n" + reading,
                      f"Device: {results['Merton with crashes'].attrs['device']}; "
                      f"{args.paths:,} paths per market; {t1 - t0:.1f} s.",
                      (png, png_path, store))
    return {"tables": tables, "paths": paths, "textbook": {m: textbook(m) for m in markets()},
            "prices": prices}


if __name__ == "__main__":
    main()
