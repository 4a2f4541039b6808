"""The experiment scripts run end to end at tiny size (in-process, so warnings are errors)."""

import math
import re
import runpy
from pathlib import Path

import pytest
import xarray as xr

from gpuhedge import experiment

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


def test_table_aligns_text_left_and_numbers_right():
    md = experiment.table(["rule", "N", "std (+- se)"],
                          [["daily", "252", "1.20 +- 0.01"], ("weekly", "52", "")])
    assert md == ("| rule | N | std (+- se) |\n"
                  "|---|---:|---:|\n"
                  "| daily | 252 | 1.20 +- 0.01 |\n"
                  "| weekly | 52 |  |")
    assert experiment.table(["N", "std"], iter([["4", "0.31"]]), text=0) == (
        "| N | std |\n|---:|---:|\n| 4 | 0.31 |")
    assert experiment.table(["a", "b"], [], text=2) == "| a | b |\n|---|---|"
    # left-aligned columns need not be the first ones
    assert experiment.table(["model", "estimate", "method"], [["GBM", "0.2", "MLE"]],
                            text=(0, 2)).splitlines()[1] == "|---|---:|---|"


@pytest.mark.parametrize("rows, row", [([["a", "1"], ["b"]], 1),
                                       ([["a", "1", "x"]], 0)])
def test_table_refuses_a_row_of_the_wrong_length(rows, row):
    with pytest.raises(ValueError, match=rf"table: 'rows\[{row}\]' must be 2 cells, one per "
                                         r"column of the header; got \["):
        experiment.table(["rule", "N"], rows)


@pytest.mark.parametrize("text", [-1, 3, 1.0, True, (0, 2), ("0",)])
def test_table_refuses_text_columns_outside_the_header(text):
    with pytest.raises(ValueError, match=r"table: 'text' must be an integer in \[0, [12]\]"):
        experiment.table(["rule", "N"], [], text=text)
