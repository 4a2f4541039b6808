"""The on-disk cache of the CPU kernels: stamped with the kernel sources, for them only."""

from pathlib import Path

import gpuhedge as gh
from gpuhedge.kernels import _cache, cpu


def _dispatcher(run):
    """The cached ``run_block`` dispatcher inside ``cpu.kernel``'s runner."""
    outer = next(c.cell_contents for c in run.__closure__ if hasattr(c.cell_contents, "stats"))
    return next(c.cell_contents for c in outer.py_func.__closure__
                if hasattr(c.cell_contents, "stats"))


def test_the_stamp_changes_with_any_source_file(tmp_path):
    kernels, models = tmp_path / "kernels", tmp_path / "models"
    for folder in (kernels, models):
        folder.mkdir()
        (folder / "a.py").write_text("x = 1\n")
    (kernels / "b.py").write_text("y = 2\n")
    before = _cache.source_stamp.__wrapped__((kernels, models))
    assert _cache.source_stamp.__wrapped__((kernels, models)) == before
    (kernels / "b.py").write_text("y = 3\n")
    after_kernels = _cache.source_stamp.__wrapped__((kernels, models))
    assert after_kernels != before
    (models / "a.py").write_text("x = 2\n")
    assert _cache.source_stamp.__wrapped__((kernels, models)) != after_kernels
    # a model's step is compiled into the kernel: its folder is stamped too
    assert _cache.SOURCES == (_cache.PACKAGE, Path(gh.models.__file__).resolve().parent)
    assert _cache.source_stamp() == _cache.source_stamp.__wrapped__(_cache.SOURCES)


def test_the_block_loop_is_cached_under_the_stamp_and_other_functions_are_left_alone():
    gh.simulate(gh.BlackScholes(spot=100.0, vol=0.2, rate=0.05),
                gh.Book.short(gh.EuropeanCall(100.0, 1.0)),
                gh.DeltaHedge(vol=0.2), n_paths=8, n_steps=4, seed=1, device="cpu")
    locator = _dispatcher(cpu.kernel(gh.BlackScholes.dynamics, "float64"))._cache._impl._locator
    assert getattr(locator, "_gpuhedge", False)
    assert locator.get_source_stamp() == _cache.source_stamp()
    assert list(Path(locator.get_cache_path()).glob("*run_block*.nbi"))

    def elsewhere():
        return 1

    for cls in _cache._numba_name("CacheImpl")._locator_classes:
        if getattr(cls, "_gpuhedge", False):
            assert cls.from_function(elsewhere, __file__) is None
    _cache.install()  # a second install adds nothing
    stamped = [c for c in _cache._numba_name("CacheImpl")._locator_classes
               if getattr(c, "_gpuhedge", False)]
    assert len(stamped) == 3
