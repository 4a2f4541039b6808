"""``benchmarks/gpucheck.py --tiny`` under numba's CUDA simulator: the one-command GPU check
runs end to end in CI, so that it still works the day a GPU is lent."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpucheck_runs_under_the_simulator(tmp_path):
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpucheck.py"), "--tiny",
                           "--repeat", "1", "--out-dir", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    (report,) = tmp_path.glob("gpu-cuda-simulator-numba-*.md")
    text = report.read_text()
    assert "device | cuda simulator (numba)" in text and "FAILED" not in text
    # every family of the tiny run passed parity, and every timed case has its row
    for case in ("BlackScholes(vol=0.25) float64", "BlackScholes(vol=0.25) float32",
                 "supplied prices float64"):
        assert f"| {case} | 0.00e+00 | ok |" in text
    for case in ("| 1 hedger | float64 |", "| 1 hedger | float32 |", "| 16 x 4 | float64 |"):
        assert case in text
    assert "Registers not read under the CUDA simulator" in text
