"""The on-disk cache of the CPU kernels: stamped with the kernel sources, for them only."""

import inspect
import re
import types
from pathlib import Path

import numpy as np

import gpuhedge as gh
from gpuhedge.kernels import _cache, _math, cpu


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
    # the models' steps and the rules' decisions are compiled into the kernel: stamped too
    package = Path(gh.__file__).resolve().parent
    assert _cache.SOURCES == (_cache.PACKAGE, package / "models", package / "rules",
                              package / "costs.py")
    assert _cache.source_stamp() == _cache.source_stamp.__wrapped__(_cache.SOURCES)
    # a file among the sources counts as itself
    (tmp_path / "c.py").write_text("z = 1\n")
    with_file = _cache.source_stamp.__wrapped__((kernels, tmp_path / "c.py"))
    (tmp_path / "c.py").write_text("z = 2\n")
    assert _cache.source_stamp.__wrapped__((kernels, tmp_path / "c.py")) != with_file


def test_every_function_the_kernel_module_calls_lives_in_a_stamped_folder():
    package = Path(gh.__file__).resolve().parent
    compiled = [(name, value) for name, value in vars(_math).items()
                if isinstance(value, types.FunctionType)
                and Path(inspect.getfile(value)).resolve().is_relative_to(package)]
    assert {"band_quantity", "zakamouline_rule", "cppi_target", "delta_from",
            "norm_cdf"} <= {name for name, _ in compiled}
    for name, fn in compiled:
        assert Path(inspect.getfile(fn)).resolve().parent in _cache.SOURCES, name
    for model in gh.models.MODELS:
        assert Path(inspect.getfile(model.dynamics.step)).resolve().parent in _cache.SOURCES
    # the modules that declare the per-path state's rows, whose indices the kernel folds
    for owner in (gh.costs, gh.rules.option_hedges, gh.rules.spot_move):
        path = Path(owner.__file__).resolve()
        assert path in _cache.SOURCES or path.parent in _cache.SOURCES, owner.__name__


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


def _phase_names(*args):
    """Names of the phases (the called functions of the step loop) of ``make_run_block(*args)``."""
    run_block = _math.make_run_block(*args)
    names = (getattr(c.cell_contents, "__qualname__", "") for c in run_block.__closure__)
    return {n for n in names if "make_run_block" in n and re.search(r"_[0-9a-f]{16}$", n)}


def test_every_kernel_names_its_phases_apart():
    # numba links the functions that a cached kernel calls by name, first definition first: a
    # kernel loaded from the disk cache into a process that compiled another kernel's phase
    # of the same name would run that phase
    variants = [(gh.BlackScholes.dynamics, np.float64, cpu.LANES, True),
                (gh.BlackScholes.dynamics, np.float32, cpu.LANES, True),
                (gh.Merton.dynamics, np.float64, cpu.LANES, True),
                (gh.Heston.dynamics, np.float64, cpu.LANES, True, True)]
    names = [_phase_names(*v) for v in variants]
    assert all(len(n) == 7 for n in names)  # start_rows, advance, ..., write_outputs
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not a & b
    # the same kernel has the same names in every process: nothing of an object's address
    assert _phase_names(*variants[0]) == names[0]
    assert "0x" not in gh.BlackScholes.dynamics.name()
