"""E11 (the price of hedging) runs end to end at tiny size, in-process (so warnings are
errors), and its key facts hold."""

import runpy
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"

pytest.importorskip("matplotlib")


def test_e11_price_of_hedging_tiny(tmp_path):
    main = runpy.run_path(str(EXPERIMENTS / "e11_price_of_hedging.py"))["main"]
    out, store = tmp_path / "report.md", tmp_path / "data.zarr"
    result = main(["--paths", "600", "--device", "cpu", "--seed", "3", "--out", str(out),
                   "--store", str(store), "--markets", "Black-Scholes",
                   "--costs", "0,0.001,0.01", "--measures", "CVaR 99%"])
    md = out.read_text()
    for heading in ("**Question.**", "**Set-up.**", "## Reading", "## 1. Indifference prices",
                    "## 2. Spread", "## 3. Against the no-transaction band network",
                    "0.022544", "600 paths", "kernel passes"):
        assert heading in md
    assert "nan" not in md.lower()
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ds = xr.open_zarr(store)
    assert dict(ds.sizes) == {"market": 1, "measure": 1, "cost": 3, "rule": 7}
    for (i, j, k), rows in result["cells"].items():
        # the fixed rules and the out-of-sample tests share stream 1: a tuned interval of one
        # step is the daily delta, path for path
        if rows["best time schedule"]["params"] == {"every": 1}:
            assert rows["best time schedule"]["test_value"] == rows["daily delta"]["test_value"]
        # the schedule-or-band rule is tuned in both its parameters, the interval an integer
        params = rows["schedule-or-band"]["params"]
        assert set(params) == {"every", "band"} and type(params["every"]) is int
        # costs raise every hedging rule's price; no hedge pays none
        if k > 0:
            before = result["cells"][(i, j, k - 1)]
            assert rows["daily delta"]["test_value"] > before["daily delta"]["test_value"]
            assert rows["no hedge"]["test_value"] == before["no hedge"]["test_value"]
    assert np.isfinite(ds.test_value).all()
    assert set(result["imaki"]) == {"delta band (band, vol)", "Whalley-Wilmott (scale, vol)"}
