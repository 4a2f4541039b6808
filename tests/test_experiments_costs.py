"""The transaction-cost experiments (E02, E05, E06) run end to end at tiny size, in-process (so
warnings are errors), and their key facts hold."""

import math
import re
import runpy
from pathlib import Path

import pytest
import xarray as xr

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"

pytest.importorskip("matplotlib")


def _run(tmp_path, script, paths=2000):
    main = runpy.run_path(str(EXPERIMENTS / script))["main"]
    out, store = tmp_path / "report.md", tmp_path / "data.zarr"
    result = main(["--paths", str(paths), "--device", "cpu", "--seed", "7", "--out", str(out),
                   "--store", str(store)])
    png = out.with_suffix(".png")
    assert out.is_file() and png.is_file() and store.is_dir()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = out.read_text()
    for heading in ("**Question.**", "**Set-up.**", "## Reading", f"{paths:,} paths", "cpu",
                    f"]({png.name})"):
        assert heading in md
    rows = [line for line in md.splitlines() if re.match(r"\| [-+$]?\d", line)
            or re.match(r"\| [a-zA-Z]", line) and not line.startswith("| rule |")]
    numbers = [float(x.replace(",", "")) for line in rows
               for x in re.findall(r"[-+]?\d[\d,]*\.?\d*(?:e[-+]?\d+)?", line)]
    assert rows and numbers and all(math.isfinite(x) for x in numbers)
    assert "nan" not in md.lower() and "inf " not in md.lower()
    return result, md, xr.open_zarr(store)


def test_e02_rebalancing_frequency_tiny(tmp_path, capsys):
    result, md, ds = _run(tmp_path, "e02_rebalancing_frequency.py")
    for heading in ("## 1. Time schedules", "## 2. Interval minimising", "## 4. Leland",
                    "## 5. Whalley-Wilmott"):
        assert heading in md
    sched = result["schedule"]
    # the cost of a proportional rate falls as the interval grows (static: nothing to pay)
    for rate in sched[0]["prop"]:
        costs = [r["prop"][rate] for r in sched]
        assert all(a > b for a, b in zip(costs, costs[1:])) and costs[-1] == 0.0
    stds = [r["std"] for r in sched]
    assert all(a < b for a, b in zip(stds, stds[1:]))  # and the risk grows
    # without costs hedging every step is best; with 1% it is not
    best = {(r["p"], r["f"]): r["schedule"][1.0][0] for r in result["best"]}
    assert best[(0.0, 0.0)] == 1 and best[(1e-2, 0.0)] > 1
    # Leland's C(sigma_L) - C(sigma) is his hedger's mean cost when hedging every step
    for r in result["leland"]:
        if r["k"] == 1:
            assert r["le_cost"] == pytest.approx(r["predicted"], rel=0.1)
    assert ds.sizes["path"] == 2000 and ds.sizes["cost"] == 12
    assert "Wrote" in capsys.readouterr().out


def test_e05_market_maker_tiny(tmp_path):
    result, md, ds = _run(tmp_path, "e05_market_maker.py")
    from gpuhedge.pricing import bs_delta

    assert float(bs_delta(100.0, result["strike"], 20 / 252, 0.2, 0.0, 0.0, True)) == \
        pytest.approx(0.6, abs=1e-12)
    assert result["fee_gap"] == 0.0  # r = 0: fees are exactly $50 x trades on every path
    assert ds.cost_paid.equals(50.0 * ds.trades)
    trades, fees = result["envelope"][0], result["envelope"][1]
    assert 40.0 <= trades["mean"] <= 41.0 and fees["mean"] == pytest.approx(50 * trades["mean"])
    rules = {r["name"]: r for r in result["rules"]}
    twice = rules["twice a day (40 hedges)"]
    # with a pure fee Whalley-Wilmott's band is empty: the twice-a-day hedge
    ww = rules["Whalley-Wilmott (fee only: H = 0)"]
    assert (ww["trades"], ww["fees"], ww["std"]) == (twice["trades"], twice["fees"], twice["std"])
    widths = [rules[f"band {w}% to target"] for w in (1, 2, 5, 10, 20)]
    assert all(a["fees"] > b["fees"] for a, b in zip(widths, widths[1:]))
    assert widths[0]["fees"] < twice["fees"]
    # the hedge's std is Derman-Kamal's within 15%, far above the $500 the envelope nets
    gross = result["envelope"][2]
    assert gross["std"] == pytest.approx(result["derman_kamal"], rel=0.15)
    assert 0.2 < result["p_loss"] < 0.6


def test_e06_dynamic_vs_static_tiny(tmp_path):
    result, md, ds = _run(tmp_path, "e06_dynamic_vs_static.py")
    assert "## 1. Black-Scholes" in md and "## 2. Bates" in md
    for market, rows in result["rows"].items():
        r = {row["name"]: row for row in rows}
        daily, weekly = r["daily delta hedge"], r["weekly delta hedge"]
        static, none = r["static hedge"], r["no hedge"]
        assert none["std"] > static["std"] > weekly["std"] > daily["std"]
        assert daily["cost"] > weekly["cost"] > static["cost"] > none["cost"] == 0.0
        assert none["trades"] == 0.0 and static["trades"] == 2.0
        assert none["p_gain"] > daily["p_gain"]
    # jumps and stochastic vol: the daily hedge leaves far more risk than in Black-Scholes
    assert result["rows"]["Bates"][0]["std"] > 2 * result["rows"]["Black-Scholes"][0]["std"]
    assert result["vols"]["Black-Scholes"] == pytest.approx(0.2, abs=1e-9)
    assert ds.sizes["market"] == 2 and ds.sizes["path"] == 2000


def test_e05_store_none(tmp_path):
    main = runpy.run_path(str(EXPERIMENTS / "e05_market_maker.py"))["main"]
    out = tmp_path / "sub" / "e05.md"
    main(["--paths", "200", "--device", "cpu", "--out", str(out), "--store", "none"])
    assert out.is_file() and out.with_suffix(".png").is_file()
    assert not list(tmp_path.rglob("*.zarr"))
