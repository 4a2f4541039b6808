"""Smoke tests of the benchmark at tiny sizes (no timing assertions), and checks that every NumPy
baseline does the same work as ``gpuhedge.simulate``."""

import json
import math

import numba
import numpy as np
import pytest

import gpuhedge as gh
from benchmarks import bench

# the benchmark's cases (every 1..16 steps, the rule zoo's schedules) are sized for 252 steps;
# the tiny grids here make their longest schedules trade only at t=0, which is expected
pytestmark = pytest.mark.filterwarnings("ignore::gpuhedge.ScheduleWarning")

FIELDS = {"case", "market", "device", "precision", "n_paths", "n_steps", "hedgers", "costs",
          "kernel_rows", "load_average", "gpuhedge_all_seconds", "gpuhedge_seconds",
          "gpuhedge_median_seconds", "gpuhedge_path_steps_per_s", "gpuhedge_all_cpu_seconds",
          "gpuhedge_cpu_seconds"}
NUMPY_FIELDS = {"numpy_paths", "numpy_all_seconds", "numpy_seconds", "numpy_median_seconds",
                "numpy_path_steps_per_s", "numpy_scaled", "speedup", "speedup_median",
                "numpy_all_cpu_seconds", "numpy_cpu_seconds", "cpu_speedup",
                "target_speedup", "z_mean", "z_std"}
RELATIVE_FIELDS = {"reference_case", "reference_all_seconds", "reference_seconds",
                   "reference_median_seconds", "reference_path_steps_per_s", "time_ratio",
                   "time_ratio_median", "max_time_ratio", "reference_all_cpu_seconds",
                   "reference_cpu_seconds", "cpu_time_ratio"}
NUMPY_CASES = [name for name, case in bench.CASES.items() if "reference" not in case]
BLACK_SCHOLES_CASES = ["1 hedger", "16 x 4"]
MODEL_CASES = ["Merton", "Heston QE", "Bates QE"]
# at the smoke tests' few steps, the schedules of more steps trade only at t=0 (and warn)
TINY_GRID = pytest.mark.filterwarnings("ignore::gpuhedge.ScheduleWarning")


def test_cases_cover_every_model_and_the_rule_zoo():
    assert set(BLACK_SCHOLES_CASES + MODEL_CASES) == set(NUMPY_CASES)
    assert [type(bench.CASES[name]["market"]) for name in MODEL_CASES] == [
        gh.Merton, gh.Heston, gh.Bates]
    assert all(bench.CASES[name]["market"].scheme == "qe" for name in MODEL_CASES[1:])
    zoo = bench.rule_zoo(252)
    assert len(zoo) == 32
    kinds = {type(rule) for rule in zoo.values()}
    assert kinds == {gh.DeltaHedge, gh.HedgeAt, gh.DeltaBand, gh.SpotMove, gh.WhalleyWilmott,
                     gh.Leland}
    assert {rule.to for rule in zoo.values() if isinstance(rule, gh.DeltaBand)} == {
        "target", "edge"}
    # the "32 hedgers together" at the reference's cost level; the 4 levels besides
    hedges, costs = bench.case_inputs("rule zoo", 252)
    assert (len(hedges), len(costs)) == (32, 1)
    assert bench.CASES["rule zoo"]["costs"] == bench.CASES["1 hedger"]["costs"]
    assert bench.CASES["rule zoo"]["max_ratio"] == 6.0
    hedges, costs = bench.case_inputs("rule zoo x 4 costs", 252)
    assert (len(hedges), len(costs)) == (32, 4)
    assert "max_ratio" not in bench.CASES["rule zoo x 4 costs"]


@TINY_GRID
@pytest.mark.parametrize("name", list(bench.CASES))
def test_run_case_reports_finite_positive_rates(name):
    row = bench.run_case(name, n_paths=300, n_steps=6, device="cpu", repeat=2)
    case = bench.CASES[name]
    assert FIELDS | (RELATIVE_FIELDS if "reference" in case else NUMPY_FIELDS) <= row.keys()
    assert row["n_paths"] == round(300 * case.get("paths_fraction", 1.0))
    assert row["n_steps"] == 6
    hedges, costs = bench.case_inputs(name, 6)
    assert (row["hedgers"], row["costs"]) == (len(hedges), len(costs))
    assert len(row["gpuhedge_all_seconds"]) == 2
    ratios = ("time_ratio", "time_ratio_median", "cpu_time_ratio") if "reference" in case else (
        "speedup", "speedup_median", "cpu_speedup")
    for key in ("gpuhedge_seconds", "gpuhedge_path_steps_per_s", *ratios):
        assert math.isfinite(row[key]) and row[key] > 0, key


@TINY_GRID
@pytest.mark.parametrize("name", BLACK_SCHOLES_CASES)
def test_run_case_in_float32(name):
    row = bench.run_case(name, n_paths=300, n_steps=6, device="cpu", dtype="float32", repeat=1)
    assert row["precision"] == "float32" and math.isfinite(row["speedup"])


@TINY_GRID
def test_rule_zoo_dates_are_grid_points_at_any_size():
    for n_steps in (1, 6, 7, 252):
        hedges, costs = bench.case_inputs("rule zoo x 4 costs", n_steps)
        ds = gh.simulate(bench.MARKET, gh.Book.short(bench.OPTION, -bench.QUANTITY), hedges,
                         costs, n_paths=64, n_steps=n_steps, seed=1, device="cpu")
        assert ds["pnl"].shape == (32, 4, 64) and np.isfinite(ds["pnl"].values).all()


@pytest.mark.parametrize("name, dtype", [(name, "float64") for name in NUMPY_CASES]
                         + [(name, "float32") for name in BLACK_SCHOLES_CASES])
def test_numpy_baseline_does_the_same_work_as_simulate(name, dtype):
    """Same P&L mean and std for every hedger x cost scenario, within Monte Carlo error."""
    hedges, costs = bench.case_inputs(name, 64)
    market = bench.CASES[name]["market"]
    n_paths, n_steps = 20_000, 64
    ds = gh.simulate(market, gh.Book.short(bench.OPTION, -bench.QUANTITY), hedges, costs,
                     n_paths=n_paths, n_steps=n_steps, seed=1, device="cpu", dtype=dtype)
    ref = bench.numpy_hedge(market, bench.OPTION, bench.QUANTITY, list(hedges.values()),
                            list(costs.values()), n_paths=n_paths, n_steps=n_steps, seed=1,
                            dtype=dtype)
    assert ref["pnl"].shape == ds["pnl"].shape
    z_mean, z_std = bench.agreement(ds["pnl"].values, ref["pnl"])
    assert z_mean < 4.0 and z_std < 4.0
    # Same rebalancing schedules: the same mean number of trades (incl. the unwind). In
    # float32, gpuhedge's delta deep in the money is exactly 1 (N(d1) rounds to 1 from d1 = 5.4
    # on) where the baseline's float64 delta is 1 - 1e-9 and trades dust: fewer trades, by up
    # to 1 % here (docs/precision.md).
    trades = ds["trades"].isel(cost=0).mean("path").values
    if dtype == "float32":
        assert (trades <= ref["trades"].mean(axis=-1)).all()
    np.testing.assert_allclose(ref["trades"].mean(axis=-1), trades,
                               rtol=1e-3 if dtype == "float64" else 1.5e-2)
    # The same terminal spot distribution (the market step, without the hedging).
    z_spot, _ = bench.agreement(ds["terminal_spot"].values.astype(float)[None],
                                ref["terminal_spot"].astype(float)[None])
    assert z_spot < 4.0


@pytest.mark.parametrize("name", MODEL_CASES)
def test_numpy_steps_are_martingales(name):
    """E[S_{t+dt}] = S_t e^{(r - q) dt} for each NumPy step (exact compensators and Andersen's
    martingale correction), and the Heston variance stays >= 0 with E[v'] as in the model."""
    market = bench.CASES[name]["market"]
    dt, n = 0.25, 400_000
    mp = market.kernel_params(dt).tolist()
    spot0, var0 = market.initial_state()
    spot, var = bench.NUMPY_STEPS[type(market)](np.full(n, spot0), np.full(n, var0), mp,
                                                np.random.default_rng(3))
    forward = spot0 * math.exp(market.rate * dt)
    assert abs(spot.mean() - forward) < 4.0 * spot.std() / math.sqrt(n)
    if isinstance(market, gh.Heston):
        assert var.min() >= 0.0
        mean_var = market.theta + (var0 - market.theta) * math.exp(-market.kappa * dt)
        assert abs(var.mean() - mean_var) < 4.0 * var.std() / math.sqrt(n)


def test_numpy_heston_exponential_branch():
    """A variance near 0 sends paths through the exponential branch (psi > 1.5): still a
    martingale, with an atom of the next variance at 0."""
    with pytest.warns(gh.FellerWarning):  # psi > 1.5 needs a large vol of variance
        market = gh.Heston(spot=100.0, rate=0.05, v0=1e-3, kappa=1.0, theta=0.04, xi=1.0,
                           rho=-0.5)
    dt, n = 0.1, 400_000
    mp = market.kernel_params(dt).tolist()
    m = market.theta + (market.v0 - market.theta) * mp[7]
    assert (market.v0 * mp[8] + mp[9]) / m**2 > 1.5
    spot, var = bench.numpy_heston_step(np.full(n, 100.0), np.full(n, market.v0), mp,
                                        np.random.default_rng(4))
    assert abs(spot.mean() - 100.0 * math.exp(market.rate * dt)) < 4.0 * spot.std() / math.sqrt(n)
    assert var.min() == 0.0 and abs(var.mean() - m) < 4.0 * var.std() / math.sqrt(n)


def test_numpy_hedge_refuses_what_it_does_not_implement():
    kw = dict(n_paths=10, n_steps=2, seed=0)
    call, delta = bench.OPTION, [gh.DeltaHedge(vol=0.2)]
    with pytest.raises(ValueError, match="numpy_hedge"):
        bench.numpy_hedge(gh.Heston(**{**bench._HESTON, "scheme": "euler"}), call, -1.0, delta,
                          [gh.Costs()], **kw)
    with pytest.raises(ValueError, match="numpy_hedge"):
        bench.numpy_hedge(bench.MARKET, call, -1.0, [gh.DeltaBand(vol=0.2)], [gh.Costs()], **kw)
    with pytest.raises(ValueError, match="numpy_hedge"):
        bench.numpy_hedge(gh.Kou(spot=100.0, vol=0.2, rate=0.05, lam=1.0, p=0.5, eta1=10.0,
                                 eta2=10.0), call, -1.0, delta, [gh.Costs()], **kw)


def test_agreement_flags_a_shifted_sample():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 10_000))
    assert max(bench.agreement(a, b)) < 5.0
    z_mean, z_std = bench.agreement(a, b + 0.2)
    assert z_mean > 10.0 and z_std < 5.0
    assert bench.agreement(a, 2.0 * b)[1] > 10.0


def test_interleaved_times_alternate_the_order():
    calls = []
    seconds, cpu_seconds, results = bench.interleaved_times(
        {"a": lambda: calls.append("a") or 1, "b": lambda: calls.append("b") or 2}, 3)
    assert calls == ["a", "b", "b", "a", "a", "b"] and results == {"a": 1, "b": 2}
    assert [len(v) for v in seconds.values()] == [len(v) for v in cpu_seconds.values()] == [3, 3]
    with pytest.raises(ValueError, match="repeat"):
        bench.interleaved_times({"a": lambda: None}, 0)


@TINY_GRID
def test_main_writes_json_and_markdown(tmp_path, capsys):
    assert bench.main(["--paths", "256", "--steps", "4", "--repeat", "1", "--device", "cpu",
                       "--out", str(tmp_path)]) == 0
    (json_path,) = tmp_path.glob("cpu-*core-*-models.json")
    (md_path,) = tmp_path.glob("cpu-*core-*-models.md")
    report = json.loads(json_path.read_text())
    assert {"cpu_count", "platform", "numba", "numba_threads", "git_commit",
            "git_commit_at_start", "load_average_before", "load_average_after"} <= report[
                "machine"].keys()
    assert [c["case"] for c in report["cases"]] == list(bench.CASES)
    assert all(FIELDS <= c.keys() for c in report["cases"])
    table = md_path.read_text()
    for row in ("| 1 hedger | BlackScholes(vol=0.2) | 1 x 1 |", "| 16 x 4 |", "| Merton |",
                "| Heston QE |", "| Bates QE |",
                "| rule zoo | BlackScholes(vol=0.2) | 32 x 1 | 32 |",
                "| rule zoo x 4 costs | BlackScholes(vol=0.2) | 32 x 4 | 56 |"):
        assert row in table
    zoo_rows = [line for line in table.splitlines() if line.startswith("| rule zoo")]
    assert zoo_rows[0].endswith("<= 6x (met) |") or zoo_rows[0].endswith("<= 6x (missed) |")
    assert zoo_rows[1].endswith("| reported |")
    assert "Costs of `rule zoo x 4 costs` (proportional, fixed): (0.0005, 0)" in table
    assert "No NumPy baseline" in table
    assert "wrote" in capsys.readouterr().out


def test_main_picks_cases_tag_and_threads(tmp_path):
    threads = numba.get_num_threads()
    assert bench.main(["--paths", "128", "--steps", "2", "--repeat", "1", "--device", "cpu",
                       "--case", "Merton", "--case", "1 hedger", "--tag", "", "--threads", "1",
                       "--out", str(tmp_path)]) == 0
    assert numba.get_num_threads() == threads  # restored
    (json_path,) = tmp_path.glob("*.json")
    assert not json_path.stem.endswith("-models")
    report = json.loads(json_path.read_text())
    assert [c["case"] for c in report["cases"]] == ["Merton", "1 hedger"]
    assert report["machine"]["numba_threads"] == 1
    with pytest.raises(ValueError, match="cases"):
        bench.benchmark(n_paths=16, n_steps=2, device="cpu", repeat=1, cases=["nope"])


@TINY_GRID
def test_smaller_numpy_run_is_flagged_as_scaled():
    report = bench.benchmark(n_paths=256, n_steps=4, device="cpu", repeat=1, numpy_paths=128,
                             cases=["1 hedger", "Heston QE", "rule zoo"])
    rows = [c for c in report["cases"] if "speedup" in c]
    assert len(rows) == 2 and all(c["numpy_scaled"] and c["numpy_paths"] == 128 for c in rows)
    assert "NumPy ran at fewer paths" in bench.markdown(report)
