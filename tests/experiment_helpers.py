"""What the tests of the experiment scripts share: running one at tiny size and checking the
parts every report has."""

import math
import re
import runpy
from pathlib import Path

import xarray as xr

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def run_experiment(name, tmp_path, *args):
    """Run ``experiments/NAME.py`` in-process with ``args`` on the CPU into ``tmp_path``;
    check its report (question, set-up, reading, finite numbers, figures) and return (its
    result, the report's text, its store opened with the plain ``xarray.open_zarr``)."""
    main = runpy.run_path(str(EXPERIMENTS / f"{name}.py"))["main"]
    out, store = tmp_path / f"{name}.md", tmp_path / f"{name}.zarr"
    result = main([*args, "--device", "cpu", "--out", str(out), "--store", str(store)])
    assert out.is_file() and store.is_dir()
    md = out.read_text()
    for heading in ("**Question.**", "**Set-up.**", "## Reading", "cpu", f"]({name}.png)"):
        assert heading in md
    assert not re.search(r"\b(nan|inf)\b", md.lower())
    rows = [line for line in md.splitlines() if re.match(r"\| [-+\w]", line)]
    numbers = [float(x.replace(",", "")) for line in rows
               for x in re.findall(r"[-+]?[\d,]*\d\.\d+(?:e[-+]\d+)?", line)]
    assert numbers and all(math.isfinite(x) for x in numbers)
    for png in re.findall(r"\]\(([\w.]+\.png)\)", md):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return result, md, xr.open_zarr(store)
