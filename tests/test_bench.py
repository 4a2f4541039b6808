"""Smoke tests of the benchmark at tiny sizes (no timing assertions)."""

import json
import math

import numpy as np
import pytest

import gpuhedge as gh
from gpuhedge import bench

FIELDS = {"case", "device", "precision", "n_paths", "n_steps", "hedgers", "costs",
          "gpuhedge_seconds", "gpuhedge_path_steps_per_s", "numpy_paths", "numpy_seconds",
          "numpy_path_steps_per_s", "numpy_scaled", "speedup", "target_speedup", "z_mean",
          "z_std"}


@pytest.mark.parametrize("name", list(bench.CASES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_run_case_reports_finite_positive_rates(name, dtype):
    row = bench.run_case(name, n_paths=300, n_steps=6, device="cpu", dtype=dtype, repeat=1)
    assert FIELDS <= row.keys()
    assert row["precision"] == dtype and row["n_paths"] == 300 and row["n_steps"] == 6
    assert (row["hedgers"], row["costs"]) == (len(bench.CASES[name]["every"]),
                                              len(bench.CASES[name]["costs"]))
    for key in ("gpuhedge_seconds", "gpuhedge_path_steps_per_s", "numpy_seconds",
                "numpy_path_steps_per_s", "speedup"):
        assert math.isfinite(row[key]) and row[key] > 0, key


@pytest.mark.parametrize("name", list(bench.CASES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numpy_baseline_does_the_same_work_as_simulate(name, dtype):
    """Same P&L mean and std for every hedger x cost scenario, within Monte Carlo error."""
    hedges, costs = bench.case_inputs(name)
    n_paths, n_steps = 20_000, 64
    ds = gh.simulate(bench.MARKET, gh.Book.short(bench.OPTION, -bench.QUANTITY), hedges, costs,
                     n_paths=n_paths, n_steps=n_steps, seed=1, device="cpu", dtype=dtype)
    ref = bench.numpy_hedge(bench.MARKET, bench.OPTION, bench.QUANTITY, list(hedges.values()),
                            list(costs.values()), n_paths=n_paths, n_steps=n_steps, seed=1,
                            dtype=dtype)
    assert ref["pnl"].shape == ds["pnl"].shape
    z_mean, z_std = bench.agreement(ds["pnl"].values, ref["pnl"])
    assert z_mean < 4.0 and z_std < 4.0
    # Same rebalancing schedules: the same mean number of trades (incl. the unwind).
    np.testing.assert_allclose(ref["trades"].mean(axis=-1),
                               ds["trades"].isel(cost=0).mean("path").values, rtol=1e-3)


def test_agreement_flags_a_shifted_sample():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 10_000))
    assert max(bench.agreement(a, b)) < 5.0
    z_mean, z_std = bench.agreement(a, b + 0.2)
    assert z_mean > 10.0 and z_std < 5.0
    assert bench.agreement(a, 2.0 * b)[1] > 10.0


def test_main_writes_json_and_markdown(tmp_path, capsys):
    assert bench.main(["--paths", "256", "--steps", "4", "--repeat", "1", "--device", "cpu",
                       "--out", str(tmp_path)]) == 0
    (json_path,) = tmp_path.glob("cpu-*core-*.json")
    (md_path,) = tmp_path.glob("cpu-*core-*.md")
    report = json.loads(json_path.read_text())
    assert {"cpu_count", "platform", "numba", "numba_threads", "git_commit",
            "load_average_before"} <= report["machine"].keys()
    assert [c["case"] for c in report["cases"]] == list(bench.CASES)
    assert all(FIELDS <= c.keys() for c in report["cases"])
    table = md_path.read_text()
    assert "| 1 hedger | 1 x 1 |" in table and "| 16 x 4 | 16 x 4 |" in table
    assert "wrote" in capsys.readouterr().out


def test_smaller_numpy_run_is_flagged_as_scaled():
    report = bench.benchmark(n_paths=256, n_steps=4, device="cpu", repeat=1, numpy_paths=128)
    assert all(c["numpy_scaled"] and c["numpy_paths"] == 128 for c in report["cases"])
    assert "NumPy ran at fewer paths" in bench.markdown(report)
