"""Write the synthetic daily price series that experiment e10 back-tests.

No market data can be downloaded where these experiments run, so the back-test reads a
generated series instead, made to look like two years of an equity index's daily closes:

* Bates-type dynamics (Heston stochastic variance with leverage plus log-normal jumps),
  simulated by full-truncation Euler with 16 sub-steps per trading day (252 a year):
  d ln S = (mu - lam k - v/2) dt + sqrt(v) dW1 + dJ, dv = kappa (theta - v) dt + xi sqrt(v) dW2,
  d<W1, W2> = rho dt, jumps at rate lam with ln J ~ N(mu_j, sigma_j^2), k = E[J - 1];
* one crash: on CRASH_DAY the market opens with a log gap of CRASH_GAP (about -9.5%) and the
  variance jumps to CRASH_VARIANCE (vol 40%), from where it decays at rate kappa;
* closes rounded to cents, dated on weekdays (no holidays) from START.

The columns are ``date`` (ISO), ``close`` and ``true_vol``: the generator's instantaneous vol
sqrt(v) at the close, which real data would not show (e10 uses it only in a figure, never in a
hedge). The first WARM_UP days give the back-test a trailing realised vol at its first trade.

Run:  python experiments/data/make_series.py [--seed 3] [--out experiments/data/...]
Same seed, same bytes (NumPy's PCG64 generator).
"""

import argparse
import math
from pathlib import Path

import numpy as np

SEED = 3  # picked among seeds 1-7 for a calm first year and a crash that stands out
START = "2022-01-03"
WARM_UP = 21                         # trading days before the back-test starts
N_DAYS = WARM_UP + 2 * 252           # closes after the first one
SUBSTEPS = 16
PARAMS = dict(spot=4000.0, mu=0.07, v0=0.02, kappa=5.0, theta=0.025, xi=0.45, rho=-0.75,
              lam=1.0, mu_j=-0.03, sigma_j=0.02)
CRASH_DAY = WARM_UP + 346            # mid-way through the 17th monthly roll
CRASH_GAP = -0.10                    # log return of the gap, about -9.5%
CRASH_VARIANCE = 0.16                # vol 40% after the crash
NAME = "synthetic_index.csv"


def generate(seed=SEED):
    """(dates, closes, true vols) of N_DAYS + 1 trading days."""
    p = PARAMS
    rng = np.random.default_rng(seed)
    dt = 1.0 / 252 / SUBSTEPS
    comp = p["lam"] * math.expm1(p["mu_j"] + 0.5 * p["sigma_j"] ** 2)
    log_s, v = math.log(p["spot"]), p["v0"]
    closes, vols = [p["spot"]], [math.sqrt(v)]
    for day in range(1, N_DAYS + 1):
        if day == CRASH_DAY:
            log_s += CRASH_GAP
            v = max(v, CRASH_VARIANCE)
        z1, z2 = rng.standard_normal((2, SUBSTEPS))
        jumps = rng.poisson(p["lam"] * dt, SUBSTEPS)
        sizes = rng.standard_normal(SUBSTEPS)
        for i in range(SUBSTEPS):
            vp = max(v, 0.0)
            w2 = p["rho"] * z1[i] + math.sqrt(1 - p["rho"] ** 2) * z2[i]
            log_s += (p["mu"] - comp - 0.5 * vp) * dt + math.sqrt(vp * dt) * z1[i]
            if jumps[i]:
                log_s += jumps[i] * p["mu_j"] + p["sigma_j"] * math.sqrt(jumps[i]) * sizes[i]
            v += p["kappa"] * (p["theta"] - vp) * dt + p["xi"] * math.sqrt(vp * dt) * w2
        closes.append(math.exp(log_s))
        vols.append(math.sqrt(max(v, 0.0)))
    dates = np.busday_offset(np.datetime64(START), np.arange(N_DAYS + 1), roll="forward")
    return dates, np.round(np.array(closes), 2), np.array(vols)


def write(path, seed=SEED):
    dates, closes, vols = generate(seed)
    lines = ["date,close,true_vol"]
    lines += [f"{d},{c:.2f},{v:.4f}" for d, c, v in zip(dates, closes, vols)]
    Path(path).write_text("\n".join(lines) + "\n")
    return dates, closes, vols


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--out", default=str(Path(__file__).with_name(NAME)))
    args = p.parse_args(argv)
    dates, closes, vols = write(args.out, args.seed)
    print(f"Wrote {args.out}: {len(closes)} closes {dates[0]} .. {dates[-1]}, "
          f"{closes[0]:.2f} -> {closes[-1]:.2f}, min {closes.min():.2f}")


if __name__ == "__main__":
    main()
