"""The experiment scripts run end to end at tiny size (in-process, so warnings are errors)."""

import math
import re
import runpy
from pathlib import Path

import pytest
import xarray as xr

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"

pytest.importorskip("matplotlib")


def test_e01_derman_kamal_tiny(tmp_path, capsys):
    main = runpy.run_path(str(EXPERIMENTS / "e01_derman_kamal.py"))["main"]
    out, store = tmp_path / "e01.md", tmp_path / "e01.zarr"
    result = main(["--paths", "2000", "--device", "cpu", "--seed", "7", "--out", str(out),
                   "--store", str(store)])

    assert out.is_file() and out.with_suffix(".png").is_file() and store.is_dir()
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = out.read_text()
    for heading in ("**Question.**", "**Set-up.**", "## 1. Derman-Kamal", "## 2. Hull",
                    "## Reading", "2,000 paths", "cpu"):
        assert heading in md
    rows = [line for line in md.splitlines() if re.match(r"\| \d", line)]
    assert len(rows) == 8 + 6
    numbers = [float(x) for line in rows for x in re.findall(r"[-+]?\d+\.\d+", line)]
    assert numbers and all(math.isfinite(x) for x in numbers)
    assert "nan" not in md.lower() and "inf " not in md.lower()

    values = [r[k] for r in result["dk"] for k in ("std", "se_std", "dk", "mean", "se_mean")]
    values += [r[k] for r in result["hull"] for k in ("ratio", "se")]
    assert all(math.isfinite(v) for v in values + [result["slope"], result["price"]])
    assert -0.6 < result["slope"] < -0.4
    assert result["price"] == pytest.approx(240_000, rel=1e-3)

    ds = xr.open_zarr(store)
    assert ds.sizes["path"] == 2000 and ds.sizes["strategy"] == 6
    assert "Wrote" in capsys.readouterr().out


def test_e01_store_none(tmp_path):
    main = runpy.run_path(str(EXPERIMENTS / "e01_derman_kamal.py"))["main"]
    out = tmp_path / "sub" / "e01.md"
    main(["--paths", "200", "--device", "cpu", "--out", str(out), "--store", "none"])
    assert out.is_file() and out.with_suffix(".png").is_file()
    assert not list(tmp_path.rglob("*.zarr"))
