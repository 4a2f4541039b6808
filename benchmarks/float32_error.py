"""Error of the float32 mode against float64 on the same paths.

``python benchmarks/float32_error.py [--paths N] [--steps N] [--markets NAME ...] [--out FILE]``
simulates each market with ``dtype="float32"`` and ``"float64"`` on the same seed (the float32
uniforms come from the same Philox words, so the two runs follow the same paths up to rounding),
hedging a short at-the-money call with daily delta hedging, a 5 % delta band (to its edge, and
to the target) and Whalley-Wilmott under 10 bp proportional costs, and prints per (market,
rule):

* the relative difference of the P&L's standard deviation, and its Monte Carlo standard error
  (std / sqrt(2 n)) for scale;
* the largest difference of the 1 %, 5 %, 50 %, 95 % and 99 % quantiles, in units of the std;
* the largest difference on one path (in std) and the share of paths that differ by more than
  1e-3 std (a band rule that trades on one date in one precision and not in the other).
"""

import argparse
from pathlib import Path

import numpy as np

import gpuhedge as gh

LEVELS = (0.01, 0.05, 0.5, 0.95, 0.99)
MARKETS = {
    "BlackScholes": gh.BlackScholes(spot=100.0, vol=0.2, rate=0.03, dividend=0.01),
    "Merton": gh.Merton(spot=100.0, vol=0.2, rate=0.03, lam=1.0, mu_j=-0.1, sigma_j=0.1),
    "Kou": gh.Kou(spot=100.0, vol=0.2, rate=0.03, lam=1.0, p=0.4, eta1=10.0, eta2=5.0),
    "Heston": gh.Heston(spot=100.0, v0=0.04, kappa=2.0, theta=0.04, xi=0.3, rho=-0.7,
                        rate=0.03),
    "Bates": gh.Bates(spot=100.0, v0=0.04, kappa=2.0, theta=0.04, xi=0.3, rho=-0.7, rate=0.03,
                      lam=1.0, mu_j=-0.1, sigma_j=0.1),
    "CEV": gh.CEV(spot=100.0, sigma=2.0, beta=0.5, rate=0.03),
}
HEDGES = {"delta daily": gh.DeltaHedge(vol=0.2),
          "band 5% to edge": gh.DeltaBand(vol=0.2, band=0.05, to="edge"),
          "band 5% to target": gh.DeltaBand(vol=0.2, band=0.05, to="target"),
          "Whalley-Wilmott": gh.WhalleyWilmott(vol=0.2, risk_aversion=1.0)}


def compare(market, n_paths: int, n_steps: int, seed: int = 1) -> list[dict]:
    """One row per rule: float32 against float64 on ``market`` (see the module's docstring)."""
    book = gh.Position(gh.EuropeanCall(100.0, 1.0), -1.0)
    kw = dict(n_paths=n_paths, n_steps=n_steps, seed=seed, device="cpu")
    costs = gh.Costs(proportional=1e-3)
    runs = {dtype: gh.simulate(market, book, HEDGES, costs, dtype=dtype, **kw)
            for dtype in ("float32", "float64")}
    rows = []
    for name in HEDGES:
        single, double = (runs[d].pnl.sel(strategy=name).values.ravel()
                          for d in ("float32", "float64"))
        std = double.std()
        gap = np.abs(single - double)
        rows.append(dict(rule=name, std=std, std_rel=single.std() / std - 1.0,
                         std_se_rel=1.0 / np.sqrt(2.0 * n_paths),
                         quantiles=np.abs(np.quantile(single, LEVELS)
                                          - np.quantile(double, LEVELS)).max() / std,
                         path_max=gap.max() / std, flipped=np.mean(gap > 1e-3 * std)))
    return rows


def markdown(results: dict, n_paths: int, n_steps: int) -> str:
    lines = [f"float32 against float64, same seed, {n_paths:,} paths x {n_steps} steps, short "
             "ATM call (1 year), 10 bp proportional costs, CPU.", "",
             "| market | rule | P&L std | std rel. diff | std's MC SE (rel.) | "
             "max quantile diff (std) | max path diff (std) | paths > 1e-3 std |",
             "|" + " --- |" * 8]
    for market, rows in results.items():
        for r in rows:
            lines.append(f"| {market} | {r['rule']} | {r['std']:.4f} | {r['std_rel']:.1e} | "
                         f"{r['std_se_rel']:.1e} | {r['quantiles']:.1e} | "
                         f"{r['path_max']:.1e} | {r['flipped']:.2%} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=252)
    parser.add_argument("--markets", nargs="*", default=list(MARKETS), choices=list(MARKETS))
    parser.add_argument("--out", help="also write the table to this Markdown file")
    args = parser.parse_args(argv)
    results = {m: compare(MARKETS[m], args.paths, args.steps) for m in args.markets}
    table = markdown(results, args.paths, args.steps)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
