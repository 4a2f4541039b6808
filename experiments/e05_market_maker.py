"""E05: what does a market maker's book really cost to hedge?

Question: A market maker is short 10,000 calls with delta 0.6 (S=100, vol 20%, r=0, 20 trading
days to expiry) and delta-hedges twice a day (40 rebalances) at $50 per trade. The back of the
envelope says 40 adjustments x $50 = $2,000 of fees, and $500 net of costs. How does the
simulated distribution of fees and P&L compare with these numbers, and what would a band rule
(a delta band of a few widths, or Whalley-Wilmott's) have saved in fees, trades and risk?

Run:  python experiments/e05_market_maker.py [--paths 1_000_000] [--device cuda]
"""

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

import gpuhedge as gh
from gpuhedge import experiment
from gpuhedge.pricing import bs_gamma, bs_price, bs_vega

# The book: 10,000 written calls, delta 0.6 at t=0, 20 trading days, r = 0 (so present values
# are plain sums and the fees are exactly $50 x trades). Hedged at the true vol.
CASE = dict(spot=100.0, vol=0.2, rate=0.0, days=20, quantity=10_000, delta=0.6)
T = CASE["days"] / 252
STRIKE = CASE["spot"] * math.exp(-(norm.ppf(CASE["delta"]) * CASE["vol"] * math.sqrt(T)
                                   - (CASE["rate"] + 0.5 * CASE["vol"] ** 2) * T))
N_STEPS = 2 * CASE["days"]       # twice a day
FEE = 50.0
# Back of the envelope: 40 adjustments x $50, and $500 net of costs, i.e. an edge of $2,500
# ($0.25 per call) charged over the fair value, with a perfect hedge.
ENVELOPE = dict(adjustments=N_STEPS, fees=N_STEPS * FEE, net=500.0)
EDGE = ENVELOPE["net"] + ENVELOPE["fees"]
BANDS = (0.01, 0.02, 0.05, 0.10, 0.20)  # half-width, fraction of the 10,000-share notional
WW_RISK_AVERSIONS = (1e-4, 1e-3)         # per dollar


@dataclass(frozen=True)
class WhalleyWilmottFee(gh.WhalleyWilmott):
    """Whalley-Wilmott's band sized with a given proportional rate ``lam`` whatever the cost
    level's own. gpuhedge's band uses the cost level's proportional rate, which is 0 under a
    pure fixed fee (the band collapses to hedging at every grid point); here the fee is
    turned into an equivalent rate, the fee over the notional of a typical rebalance."""

    lam: float = 0.0

    def row_params(self, book, costs, dt, short_gamma):
        return self.vol, self.lam, self.risk_aversion


def book_greeks():
    c = CASE
    args = (c["spot"], STRIKE, T, c["vol"], c["rate"], 0.0)
    q = c["quantity"]
    return dict(price=q * float(bs_price(*args, True)), vega=q * float(bs_vega(*args)),
                gamma=q * float(bs_gamma(*args)))


def equivalent_rate(gamma):
    """Fee over the expected notional of one twice-daily rebalance at t=0:
    E|dDelta| S = Gamma S^2 vol sqrt(2 dt / pi)."""
    dt = T / N_STEPS
    return FEE / (gamma * CASE["spot"] ** 2 * CASE["vol"] * math.sqrt(2 * dt / math.pi))


def hedges(lam):
    vol = CASE["vol"]
    out = {"twice a day (40 hedges)": gh.DeltaHedge(vol=vol, every=1),
           "daily (20 hedges)": gh.DeltaHedge(vol=vol, every=2)}
    out.update({f"band {100 * b:g}% to target": gh.DeltaBand(vol=vol, band=b) for b in BANDS})
    out["band 5% to edge"] = gh.DeltaBand(vol=vol, band=0.05, to="edge")
    out["Whalley-Wilmott (fee only: H = 0)"] = gh.WhalleyWilmott(vol=vol, risk_aversion=1e-3)
    out.update({f"Whalley-Wilmott, lam_eq, gamma {g:g}": WhalleyWilmottFee(
        vol=vol, risk_aversion=g, lam=lam) for g in WW_RISK_AVERSIONS})
    out["static (hedge once)"] = gh.StaticHedge(vol=vol)
    out["no hedge"] = gh.NoHedge()
    return out


def simulate(n_paths, seed, device, lam):
    market = gh.BlackScholes(spot=CASE["spot"], vol=CASE["vol"], rate=CASE["rate"])
    book = gh.Book.short(gh.EuropeanCall(STRIKE, T), CASE["quantity"])
    return gh.simulate(market, book, hedges(lam), {"$50 per trade": gh.Costs(fixed=FEE)},
                       n_paths=n_paths, n_steps=N_STEPS, seed=seed, device=device)


def rule_rows(ds, s):
    """Per rule: trades, fees, risk and the net P&L (with the edge)."""
    net = ds.pnl + EDGE
    p_loss = (net < 0).mean("path")
    n = ds.sizes["path"]
    rows = []
    base = float(s["mean_cost"].isel(strategy=0))
    for i, name in enumerate(s["strategy"].values):
        cell = s.isel(strategy=i)
        pl = float(p_loss.isel(strategy=i))
        rows.append(dict(
            name=str(name), trades=float(cell["mean_trades"]), fees=float(cell["mean_cost"]),
            saved=base - float(cell["mean_cost"]), std=float(cell["std"]),
            se_std=float(cell["se_std"]), cvar=float(cell["cvar_99"]) - EDGE,
            net=float(cell["mean"]) + EDGE, se_net=float(cell["se_mean"]), p_loss=pl,
            se_p=math.sqrt(pl * (1 - pl) / n), q05=float(cell["q_05"]) + EDGE,
            q95=float(cell["q_95"]) + EDGE))
    return rows


def envelope_rows(ds, s, greeks):
    """The twice-a-day hedge against the back-of-envelope numbers."""
    first = {"strategy": 0}
    trades = ds.trades.isel(first).values
    fees = ds.cost_paid.isel(first).values
    gross = (ds.pnl + ds.cost_paid).isel(first).values  # hedging P&L before fees, sold at fair
    net = ds.pnl.isel(first).values + EDGE
    n = trades.size
    dk = math.sqrt(math.pi / 4) * greeks["vega"] * CASE["vol"] / math.sqrt(N_STEPS)

    def stats(x):
        q = np.quantile(x, (0.01, 0.99))
        return dict(mean=float(x.mean()), se=float(x.std(ddof=1) / math.sqrt(n)),
                    std=float(x.std(ddof=1)), q01=float(q[0]), q99=float(q[1]))

    return [
        dict(what="trades (40 hedges + the unwind at expiry)", envelope=ENVELOPE["adjustments"],
             **stats(trades)),
        dict(what="fees ($)", envelope=ENVELOPE["fees"], **stats(fees)),
        dict(what="hedging P&L before fees, sold at fair value ($)", envelope=0.0,
             **stats(gross), note=f"Derman-Kamal std {dk:,.0f}"),
        dict(what=f"net P&L with the ${EDGE:,.0f} edge ($)", envelope=ENVELOPE["net"],
             **stats(net)),
    ], float((net < 0).mean()), float(np.abs(fees - FEE * trades).max()), dk


def envelope_table(rows):
    return experiment.table(
        ["twice-a-day hedge", "back of envelope", "simulated mean (+- se)", "std", "1% quantile",
         "99% quantile"],
        ([r["what"], f"{r['envelope']:,.0f}", f"{r['mean']:,.1f} +- {r['se']:,.1f}",
          f"{r['std']:,.1f}" + (f" ({r['note']})" if "note" in r else ""), f"{r['q01']:,.0f}",
          f"{r['q99']:,.0f}"] for r in rows))


def rule_table(rows):
    return experiment.table(
        ["rule", "mean trades", "mean fees ($)", "fees saved vs twice a day ($)",
         "std of P&L (+- se)", "CVaR 99% of net P&L ($)", "mean net P&L (+- se)", "P(net < 0)",
         "5% quantile", "95% quantile"],
        ([r["name"], f"{r['trades']:.2f}", f"{r['fees']:,.0f}", f"{r['saved']:,.0f}",
          f"{r['std']:,.0f} +- {r['se_std']:,.0f}", f"{r['cvar']:,.0f}",
          f"{r['net']:,.0f} +- {r['se_net']:,.0f}", f"{r['p_loss']:.3f}", f"{r['q05']:,.0f}",
          f"{r['q95']:,.0f}"] for r in rows))


def figure(ds, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    names = ["twice a day (40 hedges)", "daily (20 hedges)", "band 5% to target",
             "band 10% to target", f"Whalley-Wilmott, lam_eq, gamma {WW_RISK_AVERSIONS[-1]:g}"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(14, 5.5))
    net = ds.pnl.isel(cost=0) + EDGE
    n = ds.sizes["path"]
    weights = np.full(n, 1.0 / n)
    width = 250.0
    lo, hi = np.quantile(net.sel(strategy=names).values, (0.002, 0.998))
    bins = np.arange(math.floor(lo / width) * width, hi + width, width)
    for name in names:
        ax.hist(net.sel(strategy=name).values, bins=bins, weights=weights, histtype="step",
                lw=1.4, label=name)
    ax.axvline(ENVELOPE["net"], color="k", ls="--", lw=1.2,
               label=f"back of envelope: \\${ENVELOPE['net']:,.0f} net")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set(xlabel=f"net P&L with the \\${EDGE:,.0f} edge (dollars)",
           ylabel=f"fraction of paths per \\${width:.0f} bin",
           title="Short 10,000 calls (delta 0.6, 20 days), \\$50 per trade: net P&L")
    ax.grid(True, alpha=0.3)
    fees = ds.cost_paid.isel(cost=0)
    top = float(fees.sel(strategy=names).max()) + FEE
    fee_bins = np.arange(-FEE / 2, top + FEE, FEE)
    for name in names:
        bx.hist(fees.sel(strategy=name).values, bins=fee_bins, weights=weights,
                histtype="step", lw=1.4, label=name)
    bx.axvline(ENVELOPE["fees"], color="k", ls="--", lw=1.2,
               label=f"back of envelope: 40 x \\$50 = \\${ENVELOPE['fees']:,.0f} of fees")
    bx.set(xlabel="fees paid (dollars; \\$50 per trade)", ylabel="fraction of paths",
           yscale="log", title="Fees: one bar per number of trades")
    bx.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    handles.append(bx.get_legend_handles_labels()[0][-1])
    labels.append(bx.get_legend_handles_labels()[1][-1])
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=9, frameon=False)
    for a in (ax, bx):
        a.xaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = experiment.parser(
        __doc__, "e05_market_maker", paths=200_000,
        paths_help="paths",
        store_help="Zarr store for the dataset")
    args = p.parse_args(argv)
    out, png, store = experiment.outputs(args)

    greeks = book_greeks()
    lam = equivalent_rate(greeks["gamma"])
    t0 = time.perf_counter()
    ds = simulate(args.paths, args.seed, args.device, lam)
    s = gh.summary(ds).squeeze("cost")
    t1 = time.perf_counter()
    if store is not None:
        gh.store.save(store, ds)
    one = ds.isel(cost=0)
    env, p_loss, fee_gap, dk = envelope_rows(one, s, greeks)
    rules = rule_rows(one, s)
    itm = float((ds.terminal_spot > STRIKE).mean())
    figure(ds, png)

    by = {r["name"]: r for r in rules}
    twice = rules[0]
    fee_row = env[1]
    tables = (f"## 1. The back of the envelope against the simulation (twice a day)\n\n"
              f"{envelope_table(env)}\n\n"
              f"Fees are exactly $50 x trades on every path (largest gap ${fee_gap:.2g}). A "
              f"path trades fewer than 41 times when the calls end so far out of the money that "
              f"the delta rounds to 0 and the hedge stops. The unwind is a trade because the "
              f"book is cash settled; with physical delivery the in-the-money book "
              f"({100 * itm:.0f}% of the paths) delivers its shares instead, and the fees come "
              f"closer to 40 x $50.\n\n"
              f"## 2. What a band rule would have saved\n\n{rule_table(rules)}\n\n"
              f"Bands are half-widths in shares as a fraction of the 10,000-share notional "
              f"(5% = 500 shares), checked at the same 40 times; 'to target' trades back to the "
              f"delta, 'to edge' only to the band's edge, from no shares at t=0 too (the first "
              f"trade goes to the edge, as in Whalley and Wilmott). Whalley-Wilmott's band is "
              f"sized by the proportional cost, which is 0 here: it is empty and trades like the "
              f"twice-a-day hedge. The 'lam_eq' rows size it instead with the fee over the "
              f"notional of a typical rebalance, lam_eq = {lam * 1e4:.1f} bp (t=0 band "
              + ", ".join(f"{(1.5 * lam * CASE['spot'] * greeks['gamma']**2 / g) ** (1 / 3):,.0f}"
                          f" shares at gamma {g:g}" for g in WW_RISK_AVERSIONS)
              + "), and trade to its edge.\n")
    b5 = by["band 5% to target"]
    ww = by[f"Whalley-Wilmott, lam_eq, gamma {WW_RISK_AVERSIONS[-1]:g}"]
    low_cvar = min(rules, key=lambda r: r["cvar"])
    low_loss = min(rules, key=lambda r: r["p_loss"])
    dominating = [r["name"] for r in rules if r["name"].endswith("to target")
                  and r["fees"] <= ww["fees"] and r["std"] <= ww["std"]]
    verdict = (f"is dominated by the {' and the '.join(dominating)} (lower fees and std)"
               if dominating else "is not dominated by a band to target")
    reading = (f"The fee count is right (mean ${fee_row['mean']:,.0f}: 40 hedges plus the "
               f"unwind at expiry, {twice['trades']:.2f} trades), but '$500 net' is only the "
               f"mean: the discrete hedge leaves a std of ${env[2]['std']:,.0f} "
               f"(Derman-Kamal: ${dk:,.0f}), so the net P&L is ${env[3]['mean']:,.0f} +- "
               f"${env[3]['std']:,.0f} and negative on {100 * p_loss:.0f}% of the paths.\n"
               f"A 5% band (500 shares) trades {b5['trades']:.1f} times instead of "
               f"{twice['trades']:.1f}, saving ${b5['saved']:,.0f} of fees for "
               f"{100 * (b5['std'] / twice['std'] - 1):+.0f}% std (net P&L ${b5['net']:,.0f}, "
               f"P(loss) {b5['p_loss']:.2f}); the lowest CVaR 99% is the {low_cvar['name']}'s "
               f"(${low_cvar['cvar']:,.0f} vs ${twice['cvar']:,.0f}), the lowest P(loss) the "
               f"{low_loss['name']}'s. Whalley-Wilmott's band, trading to its edge "
               f"(${ww['fees']:,.0f} of fees, std ${ww['std']:,.0f} at gamma "
               f"{WW_RISK_AVERSIONS[-1]:g}), {verdict}.")
    question = experiment.question(__doc__)
    md = (f"# E05: a market maker's book\n\n"
          f"**Question.** {question}\n\n"
          f"**Set-up.** Short {CASE['quantity']:,} European calls, S0 = {CASE['spot']:g}, "
          f"K = {STRIKE:.4f} (Black-Scholes delta {CASE['delta']} at t=0), T = "
          f"{CASE['days']} trading days = {T:.5f} years, vol {CASE['vol']:.0%}, r = 0 (present "
          f"values are plain sums), Black-Scholes market with the risk-neutral drift; fair "
          f"value of the book ${greeks['price']:,.0f} (${greeks['price'] / CASE['quantity']:.3f}"
          f" per call), vega ${greeks['vega']:,.0f} per unit vol, gamma "
          f"{greeks['gamma']:,.0f} shares per dollar. {N_STEPS} exact GBM steps (twice a "
          f"day); every rule hedges at the true vol, trades at t=0 and unwinds its shares at "
          f"expiry (cash settlement), and pays $50 per trade, the initial hedge and the "
          f"unwind included. "
          f"The back of the envelope reads '$500 net of costs' as edge - fees with a perfect "
          f"hedge: the market maker sells ${EDGE / CASE['quantity']:.2f} per call "
          f"(${EDGE:,.0f}, about {100 * EDGE / greeks['vega']:.1f} vol points) above fair "
          f"value and pays 40 x $50; the simulated net P&L adds that edge to the hedger's P&L. "
          f"All rules on common random numbers: {args.paths:,} paths, seed {args.seed}, "
          f"{t1 - t0:.1f} s. Device: {ds.attrs['device']}.\n\n"
          f"{tables}\n## Reading\n\n{reading}\n\n![net P&L and fees]({png.name})\n")
    experiment.report(out, md, tables + "\n" + reading,
                      f"Device: {ds.attrs['device']}; {args.paths:,} paths; {t1 - t0:.1f} s.",
                      (png, store))
    return {"strike": STRIKE, "edge": EDGE, "envelope": env, "p_loss": p_loss,
            "fee_gap": fee_gap, "derman_kamal": dk, "rules": rules, "lam_eq": lam}


if __name__ == "__main__":
    main()
