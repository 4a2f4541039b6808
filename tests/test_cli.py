"""The command line: info, sweep on the example configuration, report; bad configurations."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gpuhedge as gh
from gpuhedge import store
from gpuhedge.cli import ConfigError, load_config, main, markdown
from gpuhedge.metrics import summary

pytestmark = pytest.mark.filterwarnings("error")

EXAMPLE = Path(__file__).resolve().parents[1] / "experiments" / "configs" / "example.toml"


def test_info_runs_as_the_entry_point():
    script = Path(sys.executable).parent / "gpuhedge"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "gpuhedge.cli"]
    out = subprocess.run(command + ["info"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"gpuhedge {gh.__version__}" in out.stdout and "\ndevice_reason: " in out.stdout


def test_example_configuration_reads_into_objects():
    kwargs = load_config(EXAMPLE)
    assert isinstance(kwargs["market"], gh.BlackScholes) and kwargs["market"].vol == 0.2
    assert kwargs["book"].positions[0].quantity == -10_000
    assert list(kwargs["hedges"]) == ["weekly", "fortnightly", "monthly", "static", "none"]
    assert kwargs["hedges"]["monthly"] == gh.DeltaHedge(vol=0.2, every=4)
    assert kwargs["costs"]["5 bp + $50"] == gh.Costs(proportional=5e-4, fixed=50.0)
    assert kwargs["grid"] == {"market.vol": [0.15, 0.3], "book.maturity": [0.5, 1.0]}
    assert kwargs["n_paths"] == 1_000_000 and kwargs["n_steps"] == 52


def test_sweep_then_report(tmp_path, capsys):
    path = tmp_path / "example.zarr"
    args = ["sweep", str(EXAMPLE), "--store", str(path), "--paths", "2000", "--no-progress"]
    assert main(args) == 0
    assert "complete (market.vol: 2, book.maturity: 2, strategy: 5, cost: 2, path: 2000)" \
        in capsys.readouterr().out
    assert main(args) == 0  # resumes: nothing left to do
    ds = store.open_store(path)
    assert store.config_of(ds.attrs)["n_paths"] == 2000

    out = tmp_path / "report"
    assert main(["report", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    table = [line for line in printed.splitlines() if line.startswith("|")]
    assert table[0].startswith("| market.vol | book.maturity | strategy | cost | mean | std |")
    assert len(table) == 2 + 2 * 2 * 5 * 2
    assert re.search(r"\| 0.15 \| 0.5 \| weekly \| free \| -?[\d.e+]+ ± [\d.e+]+ \|", printed)
    assert (out / "summary.md").read_text().strip() in printed
    # the set-up block, then one pair of figures per scenario, each named by it
    for line in ("## Set-up", "complete: 4 of 4 blocks", "- model: BlackScholes(",
                 "- book: -10000 x EuropeanCall(strike=", "- rule `weekly`: DeltaHedge(",
                 "- cost `5 bp + $50`: Costs(", "- swept `market.vol`: [0.15, 0.3]",
                 "paths 2,000, n_steps 52, seed", "precision float64, storage float32"):
        assert line in printed, line
    for vol in ("0.15", "0.3"):
        for maturity in ("0.5", "1.0"):
            for kind in ("distribution", "frontier"):
                figure = out / f"{kind}_market.vol={vol}_book.maturity={maturity}.png"
                assert figure.stat().st_size > 10_000

    one = tmp_path / "one"
    assert main(["report", str(path), "--out", str(one), "--sel", "market.vol=0.3",
                 "--sel", "book.maturity=1.0"]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 0")]
    assert len(table) == 5 * 2 and all(line.startswith("| 0.3 | 1.0 |") for line in table)
    assert sorted(f.name for f in one.glob("*.png")) == [
        "distribution_market.vol=0.3_book.maturity=1.0.png",
        "frontier_market.vol=0.3_book.maturity=1.0.png"]
    assert main(["report", str(path), "--sel", "market.vol=0.2"]) == 2
    assert "'--sel market.vol' must be one of 0.15, 0.3; got 0.2" in capsys.readouterr().err


def test_report_of_a_missing_store_is_an_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing.zarr")]) == 2
    assert "gpuhedge report: error: open_store: 'path' must be a gpuhedge store" in \
        capsys.readouterr().err


def test_markdown_table_and_plots_of_a_summary():
    ds = gh.simulate(gh.BlackScholes(spot=100.0, vol=0.2, rate=0.0),
                     gh.Book.short(gh.EuropeanCall(100.0, 0.25)),
                     {"d": gh.DeltaHedge(vol=0.2), "n": gh.NoHedge()}, n_paths=500, n_steps=8)
    s = summary(ds)
    text = markdown(s, columns=("mean", "std"))
    assert text.splitlines()[:2] == ["| strategy | cost | mean | std |", "|---|---|---:|---:|"]
    assert text.count("±") == 4
    from gpuhedge import plot

    ax = plot.distribution(ds, kind="kde")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["d", "n"]
    ax = plot.frontier(s, x="mean cost", y="std")
    assert len(ax.collections) >= 1
    with pytest.raises(ValueError, match="plot.frontier: a summary variable must be one of"):
        plot.frontier(s, x="cost")
    with pytest.raises(ValueError, match="plot.distribution: 'kind' must be 'hist' or 'kde'"):
        plot.distribution(ds, kind="violin")
    grid = ds.expand_dims({"market.vol": [0.1, 0.2]})
    with pytest.raises(ValueError, match=r"'sel' must choose one value of \['market.vol'\]"):
        plot.distribution(grid)
    assert np.isfinite(s["std"]).all()


BASE = """
[run]
n_paths = 100
n_steps = 4
[market]
model = "BlackScholes"
spot = 100.0
vol = 0.2
rate = 0.0
[[book]]
option = "call"
strike = 100.0
maturity = 1.0
quantity = -1
[hedges.d]
rule = "DeltaHedge"
"""


@pytest.mark.parametrize("edit, message", [
    ({"[run]": "[run]\nthreads = 4"}, r"unknown key 'run.threads'; expected one of 'n_paths'"),
    ({"n_paths = 100": "n_paths = '100'"},
     r"'run.n_paths' must be an integer in \[1, 4294967296\]; got '100'"),
    ({"n_steps = 4": "n_steps = 0"}, r"'run.n_steps' must be an integer >= 1; got 0"),
    ({"[run]": "[run]\nseed = -1"}, r"'run.seed' must be an integer in \[0, 4294967295\]; got -1"),
    ({"[run]": "[run]\nstorage = 'float16'"},
     r"'run.storage' must be one of 'float32', 'float64'; got 'float16'"),
    ({"[run]": "[run]\nantithetic = 1"}, r"'run.antithetic' must be true or false; got 1"),
    ({"[market]": "[markt]"}, r"unknown key 'markt'; expected one of 'description', 'run'"),
    ({'model = "BlackScholes"': 'model = "GBM"'},
     r"'market.model' must be one of 'BlackScholes', 'Merton', 'Kou', 'Heston', 'Bates', "
     r"'CEV'; got 'GBM'"),
    ({"vol = 0.2": "volatility = 0.2"},
     r"'market.volatility' is not a field of BlackScholes; expected 'model', 'spot', 'vol'"),
    ({"rate = 0.0": ""}, r"'market' must give 'rate' for BlackScholes"),
    ({"vol = 0.2": "vol = -0.2"},
     r"'market': BlackScholes: 'vol' must be a finite number in \[0, 10\]; got -0.2"),
    ({"vol = 0.2": "vol = '0.2'"}, r"'market': BlackScholes: 'vol' must be a finite number"),
    ({'option = "call"': 'option = "straddle"'},
     r"'book\[0\].option' must be 'call' or 'put'; got 'straddle'"),
    ({"strike = 100.0": ""}, r"'book\[0\].strike' must be given"),
    ({"maturity = 1.0": "maturity = 1.0\nexpiry = 2"},
     r"'book\[0\].expiry' is not a position field"),
    ({"quantity = -1": "quantity = 0"}, r"'book\[0\]': Position: 'quantity' must be a non-zero"),
    ({'rule = "DeltaHedge"': 'rule = "Delta"'},
     r"'hedges.d.rule' must be one of 'NoHedge', 'StaticHedge', 'DeltaHedge', .*; got 'Delta'"),
    ({'rule = "DeltaHedge"': 'rule = "DeltaHedge"\nevery = 0'},
     r"'hedges.d': DeltaHedge: 'every' must be an integer >= 1; got 0"),
    ({'rule = "DeltaHedge"': 'rule = "DeltaHedge"\nfrequency = 2'},
     r"'hedges.d.frequency' is not a field of DeltaHedge; expected 'rule', 'vol'"),
    ({"[hedges.d]": "[costs.c]\nspread = 0.1\n[hedges.d]"},
     r"'costs.c.spread' is not a field of Costs; expected 'proportional', 'fixed'"),
    ({"[hedges.d]": "[costs.c]\nproportional = 1.5\n[hedges.d]"},
     r"'costs.c': Costs: 'proportional' must be a finite number in \[0, 1\); got 1.5"),
    ({"[hedges.d]": "[grid]\n'market.vol' = 0.2\n[hedges.d]"},
     r"'grid.market.vol' must be a non-empty array of values; got 0.2"),
    ({"[market]": "[markets.a]\nmodel = 'BlackScholes'\nspot = 1.0\nvol = 0.1\nrate = 0.0\n"
                  "[market]"}, r"give exactly one of 'market'.*got \['market', 'markets'\]"),
    ({"[run]": "[run\n"}, r"not valid TOML"),
])
def test_bad_configurations_name_the_key(tmp_path, edit, message):
    text = BASE
    for old, new in edit.items():
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_bad_grid_key_is_named_by_the_command(tmp_path, capsys):
    path = tmp_path / "grid.toml"
    path.write_text(BASE + "[grid]\n'market.volatility' = [0.1, 0.2]\n")
    assert main(["sweep", str(path), "--store", str(tmp_path / "g.zarr")]) == 2
    err = capsys.readouterr().err
    assert "gpuhedge sweep: error:" in err and "grid.toml" in err
    assert "'volatility' is not a field of BlackScholes" in err
    assert not (tmp_path / "g.zarr").exists()
    path.write_text(BASE.replace("[hedges.d]", "[grid]\nmarket.vol = [0.1, 0.2]\n[hedges.d]"))
    assert load_config(path)["grid"] == {"market.vol": [0.1, 0.2]}  # bare dotted keys nest


def test_readme_scale_out_section_runs(tmp_path):
    """The README's "Scaling out" script, run as a user would (a LocalCluster of one worker
    process per core: 2 on the CI machine) at its own small size."""
    pytest.importorskip("distributed")
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Scaling out", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "scale_out.py").write_text(code)
    out = subprocess.run([sys.executable, "scale_out.py"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Dask dashboard: http" in out.stderr
    ds = store.open_store(tmp_path / "runs" / "scale_out.zarr")
    assert ds.attrs["complete"] == 1 and ds.sizes["path"] == 40_000
    assert ds.pnl.dims == ("market.vol", "strategy", "cost", "path")
    assert re.search(r"0\.25\s+daily", out.stdout)
