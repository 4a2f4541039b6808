"""Benchmarks of gpuhedge (outside the package): ``python benchmarks/bench.py`` times the kernel
against a NumPy baseline, ``python benchmarks/bench_sweep.py`` the sweep's storage and
scheduling."""
