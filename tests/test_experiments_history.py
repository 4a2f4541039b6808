"""Experiments on real market history (E12 S&P 500 back-test, E13 model vs reality) run end to
end at tiny size, in-process (so warnings are errors), and their key facts hold."""

import math
import runpy

import numpy as np
import pytest

from experiment_helpers import EXPERIMENTS, run_experiment as _run

pytest.importorskip("matplotlib")
pytest.importorskip("arch")


def test_e12_sp500_history_tiny(tmp_path):
    result, md, ds = _run("e12_sp500_history", tmp_path, "--start", "2014-06-01", "--paths",
                          "8", "--worst", "4")
    for heading in ("## 1. The monthly hedging error", "## 2. The worst months",
                    "## 4. Daily attribution", "## 5. The same months"):
        assert heading in md
    assert str(result["starts"][0])[:10] == "2014-06-02" and len(result["starts"]) == 8
    assert set(result["n_months"]) == {"realised", "EWMA", "GARCH", "GJR-GARCH", "VIX"}
    assert all(n == 8 for n in result["n_months"].values())
    # every rule's replay (the attribution's positions and costs) is the engine's P&L
    assert result["check"]["replay"] < 1e-9 and result["check"]["cost"] < 1e-12
    assert result["check"]["trades"] == 0
    assert ds.sizes["path"] == 8 and ds.sizes["source"] == 5 and ds.sizes["strategy"] == 5
    # per month and rule the buckets add up to the error (vol points)
    parts = sum(ds[v] for v in ds.data_vars if v.startswith("att_"))
    np.testing.assert_allclose(parts.values, ds.pnl.values, atol=1e-9)
    # the short call earns theta and pays gamma; hedging daily narrows the error
    for source, s in result["summary"].items():
        assert s["daily delta"]["std"] < s["no hedge"]["std"], source
        assert result["attribution"][source]["theta"] > 0 > result["attribution"][source][
            "gamma"]


def test_e13_model_vs_reality_tiny(tmp_path):
    result, md, ds = _run("e13_model_vs_reality", tmp_path, "--paths", "4000", "--cond-paths",
                          "2000", "--years", "1", "--boot", "20")
    assert "## 1. Fits" in md and "## 2. Predicted against real" in md
    assert result["n_months"] == 12 and ds.sizes["month"] == 12 and len(result["scores"]) == 12
    # sold at the trailing realised vol, the real error is the same whatever the model
    cond = ds.error.sel(mode="conditional")
    first = cond.isel(window=0, model=0).values
    np.testing.assert_allclose(cond.values, np.broadcast_to(first, cond.shape), rtol=1e-12)
    assert np.ptp(ds.error.sel(mode="long-run", window="fixed").values, axis=0).max() > 0
    assert set(result["best"].values()) <= {"Black-Scholes", "Merton", "Heston"}
    bs = result["fits"]["Black-Scholes"]["params"]
    assert 0.18 < bs["vol"] < 0.25            # S&P 500, 1999-2008
    merton = result["fits"]["Merton"]
    assert merton["params"]["lam"] > 0 and all(v > 0 for v in merton["se"].values())
    assert -1 <= result["fits"]["Heston"]["params"]["rho"] < 0   # leverage
    for key, s in result["scores"].items():
        assert 0 <= s["lo"] <= 12 and 0 <= s["hi"] <= 12 and s["std_ratio"] > 0, key
        assert 0 <= s["kupiec_lo"][1] <= 1
    pit = ds.pit.values
    assert ((0 <= pit) & (pit <= 1)).all()


def test_kupiec_and_cvar_by_hand():
    e13 = runpy.run_path(str(EXPERIMENTS / "e13_model_vs_reality.py"))
    # 6 exceedances of a 5% quantile in 120 months is exactly the expected count
    assert e13["kupiec"](6, 120)[0] == pytest.approx(0.0, abs=1e-12)
    lr, p = e13["kupiec"](15, 120)
    phat = 15 / 120
    expected = -2 * (105 * math.log(0.95) + 15 * math.log(0.05)
                     - 105 * math.log(1 - phat) - 15 * math.log(phat))
    assert lr == pytest.approx(expected) and p < 0.01
    x = np.arange(1.0, 101.0)        # worst 5: 1..5, CVaR = 3
    assert e13["cvar"](x) == pytest.approx(-3.0)
    assert e13["cvar"](np.arange(1.0, 11.0)) == pytest.approx(-1.0)   # half of the worst
