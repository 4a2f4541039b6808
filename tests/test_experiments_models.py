"""Experiments e07 (gamma scalping), e09 (model risk) and e10 (back-test) run end to end at tiny
size, in-process (so warnings are errors), and their key facts hold."""

import math
import runpy

import numpy as np
import pytest
from scipy import integrate

from experiment_helpers import EXPERIMENTS, run_experiment as _run

pytest.importorskip("matplotlib")


def _closed_form_ahmad_wilmott(e07, sigma):
    """The same integral with E[S_t^2 Gamma_i(S_t)] in closed form (a Gaussian integral):
    e^{a + v^2/2} phi((A + v^2) / sqrt(c^2 + v^2)) / sqrt(c^2 + v^2), a = E ln S_t, v^2 =
    sigma^2 t, c^2 = s_i^2 (T - t), A = a - ln K + (r + s_i^2 / 2)(T - t)."""
    g = e07["GS"]

    def f(t):
        c2, v2 = g["implied"] ** 2 * (g["maturity"] - t), sigma**2 * t
        a = math.log(g["spot"]) + (g["drift"] - 0.5 * sigma**2) * t
        big_a = a - math.log(g["strike"]) + (g["rate"] + 0.5 * g["implied"] ** 2) * (
            g["maturity"] - t)
        return (math.exp(-g["rate"] * t + a + 0.5 * v2 - 0.5 * (big_a + v2) ** 2 / (c2 + v2))
                / math.sqrt(2 * math.pi * (c2 + v2)))

    value = integrate.quad(f, 0, g["maturity"], limit=200, epsabs=1e-12)[0]
    return 0.5 * (sigma**2 - g["implied"] ** 2) * value


def test_e07_gamma_scalping_tiny(tmp_path, capsys):
    result, md, ds = _run("e07_gamma_scalping", tmp_path, "--paths", "2000", "--seed", "7")
    assert "## 1. P&L against realised^2" in md and "2,000 paths" in md
    assert (tmp_path / "e07_gamma_scalping_paths.png").is_file()
    assert ds.sizes["path"] == 2000 and ds.sizes["realised_vol"] == 10
    assert ds.sizes["strategy"] == 2 and ds.sizes["cost"] == 3

    e07 = runpy.run_path(str(EXPERIMENTS / "e07_gamma_scalping.py"))
    assert e07["ahmad_wilmott"](0.3) == pytest.approx(_closed_form_ahmad_wilmott(e07, 0.3),
                                                     rel=1e-8)
    for r in result["sweep"]:
        assert all(math.isfinite(v) for v in r.values())
        # at implied: the mean is Ahmad-Wilmott's integral (daily hedging: a small bias)
        assert abs(r["imp mean"] - r["aw"]) < 4 * r["imp se"] + 0.01 * abs(r["aw"])
        # at realised: BS(realised) - BS(implied), with a much smaller spread
        assert abs(r["real mean"] - r["lock"]) < 4 * r["real se"] + 0.01
        if abs(r["vol"] - 0.2) > 0.09:
            assert r["real std"] < 0.6 * r["imp std"]
    at = next(r for r in result["sweep"] if r["vol"] == 0.3)
    assert at["real std"] == pytest.approx(at["dk"], rel=0.1)  # Derman-Kamal at the true vol
    assert -0.6 < result["slope"] < -0.4                         # ... falls like N^-1/2
    conv = result["convergence"]
    assert conv[-1]["imp std"] > 0.7 * conv[0]["imp std"]      # ... while at implied it stays

    even, leland = result["break_even"], result["leland"]
    assert even["free"] == pytest.approx(0.2, abs=0.01)
    assert even["free"] < even["10 bp"] < even["30 bp"]
    for cost in even:
        assert even[cost] == pytest.approx(leland[cost], abs=0.01)
    assert result["paths"]["corr_gamma"] > 0.95 > result["paths"]["corr_var"]
    assert "Wrote" in capsys.readouterr().out


def test_e09_model_risk_tiny(tmp_path):
    result, md, ds = _run("e09_model_risk", tmp_path, "--paths", "2000", "--seed", "7")
    assert "## 1. Heston" in md and "## 2. Bates" in md and "2,000 paths" in md
    assert ds.sizes["path"] == 2000 and ds.sizes["world"] == 2

    e09 = runpy.run_path(str(EXPERIMENTS / "e09_model_risk.py"))
    atm, mv = e09["ATM"], e09["RULES"]["min-variance"]
    heston = result["Heston"]
    assert 0.15 < heston["atm"] < 0.2   # rho < 0: the ATM implied vol is below sqrt(theta)
    assert result["Bates"]["atm"] > heston["atm"]  # the jumps add variance
    for world in result.values():
        for name, r in world["rows"].items():
            assert all(math.isfinite(v) for v in r.values())
            # sold at the model price, risk-neutral drift: no rule earns on average
            assert abs(r["mean"]) < 4 * r["se"] + 0.02, name
        # sold at the ATM implied vol is sold at the model price
        assert world["rows"][atm]["own_mean"] == pytest.approx(world["rows"][atm]["mean"],
                                                               abs=1e-8)
        assert world["rows"]["no hedge"]["std"] > 3 * world["rows"][atm]["std"]
    # the minimum-variance delta beats Black-Scholes at the implied vol in the Heston world
    assert heston["rows"][mv]["std"] < heston["rows"][atm]["std"]
    assert heston["rows"][mv]["cvar"] < heston["rows"][atm]["cvar"]
    assert 0.15 < heston["best"] < 0.3


def test_e10_backtest_tiny(tmp_path):
    result, md, ds = _run("e10_backtest", tmp_path, "--paths", "10")
    assert "## 1. Two years of monthly rolls" in md and "each of 10 days" in md
    assert (tmp_path / "e10_backtest_attribution.png").is_file()
    assert ds.sizes["path"] == result["n_windows"] == 10 and ds.sizes["strategy"] == 5

    e10 = runpy.run_path(str(EXPERIMENTS / "e10_backtest.py"))
    assert len(result["windows"]) == 24
    for rule, check in result["checks"].items():
        # the script's replay of every rule is the engine's P&L, trades and costs
        assert check["replay"] < 1e-6 and check["cost"] < 1e-6 and check["trades"] == 0, rule
        buckets = result["buckets"][rule]
        assert sum(buckets.values()) == pytest.approx(result["total"][rule], abs=1e-6)
        engine = sum(w[rule] for w in result["windows"])
        assert sum(buckets.values()) == pytest.approx(engine, abs=1e-6)
        # without the higher-order rest the Greeks explain the total to a small residual
        gross = abs(buckets["gamma"])
        assert abs(engine - (sum(buckets.values()) - buckets["higher order"])) < 0.02 * gross
    assert result["buckets"]["daily delta"]["delta residual"] == 0.0
    assert result["buckets"]["unhedged"]["costs"] == 0.0
    assert all(b["theta"] > 0 > b["gamma"] for b in result["buckets"].values())  # short calls
    assert e10["RULES"] == tuple(ds["strategy"].values)


def test_make_series_reproduces_the_committed_csv(tmp_path):
    make = runpy.run_path(str(EXPERIMENTS / "data" / "make_series.py"))
    out = tmp_path / "series.csv"
    make["main"](["--out", str(out)])
    committed = EXPERIMENTS / "data" / make["NAME"]
    assert out.read_bytes() == committed.read_bytes()
    closes = np.genfromtxt(out, delimiter=",", names=True, dtype=None, encoding="utf-8")["close"]
    returns = np.diff(np.log(closes))
    assert int(np.argmin(returns)) + 1 == make["CRASH_DAY"] and returns.min() < -0.08
