"""Experiments E03 (which rule at equal cost), E04 (what rebalancing cannot remove) and E08
(portfolio insurance) run end to end at tiny size, in-process (so warnings are errors), and
their key facts hold."""

import math
import re
import runpy
from pathlib import Path

import pytest
import xarray as xr

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"

pytest.importorskip("matplotlib")


def _run(tmp_path, script, paths):
    main = runpy.run_path(str(EXPERIMENTS / script))["main"]
    out, store = tmp_path / "report.md", tmp_path / "data.zarr"
    result = main(["--paths", str(paths), "--device", "cpu", "--seed", "7", "--out", str(out),
                   "--store", str(store)])
    assert out.is_file() and store.is_dir()
    md = out.read_text()
    for heading in ("**Question.**", "**Set-up.**", "## Reading", f"{paths:,} paths", "cpu",
                    f"]({out.with_suffix('.png').name})"):
        assert heading in md
    pngs = re.findall(r"\]\(([\w.]+\.png)\)", md)
    assert pngs
    for png in pngs:
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line for line in md.splitlines() if re.match(r"\| [-+\w]", line)]
    numbers = [float(x.replace(",", "")) for line in rows
               for x in re.findall(r"[-+]?\d[\d,]*\.?\d*(?:e[-+]?\d+)?", line)]
    assert rows and numbers and all(math.isfinite(x) for x in numbers)
    assert not re.search(r"\b(nan|inf)\b", md.lower())
    reading = md.split("## Reading")[1].split("![")[0].strip().splitlines()
    assert len(reading) == 2
    return result, md, store


def test_e03_which_rule_tiny(tmp_path):
    result, md, store = _run(tmp_path, "e03_which_rule.py", 2000)
    assert "## 1. Black-Scholes" in md and "## 3. Heston" in md and "textbook" in md
    rows = result["rows"]
    mid = 24.0
    for market, by_rule in rows.items():
        for rule, by_target in by_rule.items():
            r = by_target[mid]
            assert r is not None, (market, rule)  # every grid reaches the middle target
            assert r["std"] > 0 and r["cvar"] > 0
    bs = rows["Black-Scholes"]
    # at equal cost the utility bands leave far less risk than the time grid (measured: 0.6)
    for rule in ("Whalley-Wilmott", "Zakamouline"):
        assert bs[rule][mid]["std"] < 0.8 * bs["time grid"][mid]["std"]
        assert bs[rule][mid]["cvar"] < 0.8 * bs["time grid"][mid]["cvar"]
    # the time grid sits on the textbook Leland cost + Derman-Kamal std curve
    assert bs["time grid"][mid]["std"] == pytest.approx(result["reference"][mid]["std"],
                                                        rel=0.1)
    # with jumps the rules are nearly alike (the jump risk dominates); not so in Black-Scholes
    stds = [r[mid]["std"] for r in rows["Merton"].values()]
    assert max(stds) / min(stds) < 1.2
    stds = [r[mid]["std"] for r in bs.values()]
    assert max(stds) / min(stds) > 1.4
    # the calibrated parameter grows with the cost target where it is a hedging intensity
    assert bs["Whalley-Wilmott"][12.0]["param"] < bs["Whalley-Wilmott"][48.0]["param"]
    assert bs["time grid"][12.0]["param"] > bs["time grid"][48.0]["param"]
    ds = xr.open_zarr(store)
    assert ds.sizes["market"] == 3 and ds.sizes["path"] == 2000


def test_e04_what_rebalancing_cannot_remove_tiny(tmp_path):
    result, md, store = _run(tmp_path, "e04_what_rebalancing_cannot_remove.py", 2000)
    cells = result["cells"]
    assert all(v == pytest.approx(0.2, abs=1e-12) for v in result["total_vols"].values())

    def ratio(market, lo, hi):
        return cells[market][f"delta {hi}"]["std"] / cells[market][f"delta {lo}"]["std"]

    # Black-Scholes: the std halves when N quadruples (Derman-Kamal), and matches its constant
    assert ratio("Black-Scholes", 64, 256) == pytest.approx(0.5, abs=0.05)
    assert ratio("Black-Scholes", 16, 64) == pytest.approx(0.5, abs=0.05)
    assert cells["Black-Scholes"]["delta 256"]["std"] == pytest.approx(0.220, rel=0.1)
    # jumps: it barely falls (measured 0.99); stochastic vol: it falls less than half as fast
    for market in ("Merton", "Kou", "Bates"):
        assert ratio(market, 64, 256) > 0.9
        assert result["plateau"][market]["std"] > 5 * cells["Black-Scholes"]["delta 256"]["std"]
    assert 0.7 < ratio("Heston", 64, 256) < 0.95
    assert result["plateau"]["Black-Scholes"]["std"] < 0.1
    # the listed option removes what matches the risk: gamma for jumps, vega for vol risk
    opt = {(r["market"], r["n"]): r for r in result["options"]}
    assert opt[("Black-Scholes", 256)]["removed_dg"] > 0.9
    assert opt[("Merton", 64)]["removed_dg"] > 0.4
    assert opt[("Heston", 256)]["removed_dv"] > 0.6
    assert opt[("Heston", 256)]["removed_dg"] < 0.0  # a longer-dated gamma hedge is long vega
    groups = {"black_scholes", "merton", "kou", "heston", "bates"}
    for group in groups:
        ds = xr.open_zarr(store, group=group)
        assert ds.sizes["path"] == 2000 and "delta 256" in ds["strategy"].values


def test_e08_portfolio_insurance_tiny(tmp_path):
    result, md, store = _run(tmp_path, "e08_portfolio_insurance.py", 2000)
    assert "](report_path.png)" in md  # the second figure is named after --out
    bs = {r["name"]: r for r in result["tables"]["Black-Scholes"]}
    me = {r["name"]: r for r in result["tables"]["Merton with crashes"]}
    cppi = [f"CPPI m={m:g}" for m in (2, 4, 6, 10)]
    # daily rebalancing without jumps: CPPI never breaches; the synthetic put only by its
    # replication error
    for name in cppi:
        assert bs[name]["p_breach"] == 0.0 and bs[name]["worst"] == 0.0
    assert bs["synthetic put"]["p_material"] < 0.02 and bs["synthetic put"]["shortfall"] < 1.0
    # crashes: the breach probability grows with the multiplier; m = 2 needs a 50% fall
    assert me["CPPI m=2"]["p_breach"] == 0.0
    assert me["CPPI m=10"]["p_breach"] > me["CPPI m=4"]["p_breach"]
    assert me["CPPI m=10"]["p_breach"] > 0.05
    # the 1/m rule (some jump falls by more than 1/m) predicts CPPI's breach probability;
    # the no-leverage cap and the day's diffusive moves shift it a little
    bound = result["textbook"]["Merton with crashes"]
    for name in cppi[1:]:
        assert me[name]["p_breach"] <= bound[name] + 3 * me[name]["se_p"] + 1e-3
    # the upside given up shrinks as the multiplier grows
    given = [bs[name]["given_up"] for name in cppi]
    assert all(a > b for a, b in zip(given, given[1:])) and given[-1] > 0
    # the gap path: the one-day crash breaks the floor of the high multipliers, not the low
    gap = {r["name"]: r for r in result["paths"]}
    assert gap["CPPI m=6"]["gap"]["shortfall"] > 0 and gap["CPPI m=10"]["gap"]["shortfall"] > 0
    assert gap["CPPI m=2"]["gap"]["shortfall"] == 0 and gap["CPPI m=4"]["gap"]["shortfall"] == 0
    assert all(r["calm"]["shortfall"] == 0 for r in result["paths"])
    assert all(r["check"] < 1e-8 for r in result["paths"] if r["check"] is not None)
    assert result["prices"][0, 0] == result["prices"][1, 0]
    for group in ("black_scholes", "merton_with_crashes", "1987_like_path"):
        ds = xr.open_zarr(store, group=group)
        assert ds.sizes["strategy"] == 5


def test_e08_store_none(tmp_path):
    main = runpy.run_path(str(EXPERIMENTS / "e08_portfolio_insurance.py"))["main"]
    out = tmp_path / "sub" / "e08.md"
    main(["--paths", "200", "--device", "cpu", "--out", str(out), "--store", "none"])
    assert out.is_file() and out.with_suffix(".png").is_file()
    assert (out.parent / "e08_path.png").is_file()
    assert not list(tmp_path.rglob("*.zarr"))
