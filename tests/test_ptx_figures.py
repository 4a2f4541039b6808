"""Static GPU figures of the GBM kernels compiled for sm_90 (``benchmarks/ptx_figures.py``).

Prints registers per thread, spills and the PTX instruction mix (run with ``-s`` to see them).
The asserts check that the figures were read, the register budgets (the one-hedger kernels in
float64 and float32 at most 64 registers per thread, the 16 x 4 kernel at most 128, none
spilling), that specialising a kernel on its run's code paths leaves the others out, and that
the float32 kernel's step loop computes in float32 (no float64 polynomial left in it).
"""

import os

import pytest

from benchmarks import ptx_figures


def test_parse_ptxas_reads_its_report():
    text = ("ptxas info    : Function properties for run\n"
            "    8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads\n"
            "ptxas info    : Used 72 registers, used 0 barriers\n")
    assert ptx_figures.parse_ptxas(text) == dict(registers=72, spill_stores=4, spill_loads=12,
                                       stack_frame=8)
    with pytest.raises(ValueError, match="parse_ptxas: no"):
        ptx_figures.parse_ptxas("ptxas info    : 0 bytes gmem\n")


def test_step_loop_is_the_loop_around_the_most_loops():
    # a wide loop without inner loops (the start's) comes first; the step loop holds one
    start = ["$L__BB0_0:"] + ["mul.rn.f64 %fd3, %fd3, %fd3;"] * 9 + ["@%p3 bra $L__BB0_0;"]
    ptx = "\n".join(start + [
        "mov.f64 %fd1, 0d0;", "$L__BB0_1:", "fma.rn.f64 %fd1, %fd1, %fd1, %fd1;",
        "$L__BB0_2:", "add.f32 %f1, %f1, %f1;", "@%p1 bra $L__BB0_2;",
        "ld.global.f64 %fd2, [%rd1];", "@%p2 bra $L__BB0_1;", "st.global.f64 [%rd1], %fd1;",
        "ret;"])
    loop = ptx_figures.count(ptx_figures.step_loop(ptx))
    assert (loop.fma_f64, loop.f64, loop.f32, loop.ld_global, loop.ld_global_nc,
            loop.st_global) == (1, 1, 1, 1, 0, 0)
    whole = ptx_figures.count(ptx.splitlines()[len(start):])
    assert (whole.f64, whole.st_global, whole.instructions) == (1, 1, 8)  # mov, ld: not arithmetic
    mixed = ["add.rn.f64 %fd1, %fd1, %fd2;", "cvt.f64.f32 %fd3, %f1;", "add.rn.f32 %f2, %f2, %f2;",
             "@%p1 setp.lt.f64 %p2, %fd1, %fd3;", "add.rn.f64 %fd1, %fd1, %fd3;"]
    assert ptx_figures.f64_mix(mixed) == {"add": 2, "cvt": 1, "setp": 1}


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", reason="real compiler only")
def test_gbm_kernel_figures_for_sm90():
    pytest.importorskip("numba_cuda", reason="the 'gpu' extra brings the CUDA compiler")
    try:
        ptxas = ptx_figures.find_ptxas()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    rows = ptx_figures.kernel_figures(ptxas)
    print("\n" + ptx_figures.markdown(rows))
    for row in rows:
        assert row.registers > 0 and row.spill_stores >= 0 and row.spill_loads >= 0
        assert 0 < row.loop.instructions < row.kernel.instructions
        assert row.loop.f64 > 0 and row.kernel.ld_global > 0 and row.kernel.st_global > 0
        assert row.kernel.ld_global_nc == row.kernel.ld_global  # the tables: read-only
    one, zoo, single, generic = rows
    # the register budgets of the GPU build: 64 registers (32 warps of 32 threads per
    # multiprocessor, half the H100's threads) for one hedger, 128 for 16 rows x 4 cost levels
    for row, budget in ((one, 64), (single, 64), (zoo, 128)):
        assert row.registers <= budget and row.spill_stores == row.spill_loads == 0, row
    # float32: the path, its random numbers and the greeks' exp/log/N() in float32 arithmetic;
    # float64 only in the accounting (adds and multiplies, no polynomial: no fma.f64)
    assert "float32" in single.name and single.loop.fma_f64 == 0 < one.loop.fma_f64
    assert single.loop.f32 > single.loop.f64 and single.loop.f64 < one.loop.f64 / 2
    assert single.registers < one.registers
    # the specialised kernel leaves out the code of the rules, costs and lags it does not run
    assert one.kernel.instructions < generic.kernel.instructions / 2
    assert one.registers < generic.registers
