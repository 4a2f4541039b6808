"""Device choice: an explicit device never falls back, "auto" says what it chose and why."""

import sys
import types

import pytest

import gpuhedge as gh
from gpuhedge import backend, cli

NO_GPU = (False, "CuPy finds no usable CUDA driver (CUDARuntimeError: no driver)")


@pytest.fixture
def no_gpu(monkeypatch):
    """A machine without a usable GPU, outside the simulator, whatever this one is."""
    monkeypatch.setattr(backend, "cuda_status", lambda: NO_GPU)
    monkeypatch.setattr(backend, "_simulator", lambda: False)
    monkeypatch.delenv("GPUHEDGE_DEVICE", raising=False)


def _run(device):
    return gh.simulate(gh.BlackScholes(spot=100.0, vol=0.2, rate=0.01),
                       gh.Book.short(gh.EuropeanCall(100.0, 0.25)), gh.DeltaHedge(vol=0.2),
                       n_paths=8, n_steps=4, device=device)


def test_auto_without_gpu_records_cpu_and_why(no_gpu):
    assert backend.choose("auto") == ("cpu", f"auto: no usable GPU: {NO_GPU[1]}")
    ds = _run("auto")
    assert ds.attrs["device"].startswith("cpu")
    assert ds.attrs["device_reason"] == f"auto: no usable GPU: {NO_GPU[1]}"
    replay = gh.hedge_paths([[100.0, 101.0, 99.0]], [0.0, 0.1, 0.2],
                            gh.Book.short(gh.EuropeanCall(100.0, 0.2)), gh.DeltaHedge(vol=0.2),
                            rate=0.0)
    assert replay.attrs["device_reason"] == f"auto: no usable GPU: {NO_GPU[1]}"


def test_auto_with_gpu_says_so(monkeypatch):
    monkeypatch.setattr(backend, "cuda_status", lambda: (True, "1 CUDA device(s) visible"))
    assert backend.choose("auto") == ("cuda", "auto: 1 CUDA device(s) visible")


def test_explicit_cuda_without_gpu_raises_with_the_reason(no_gpu, monkeypatch):
    with pytest.raises(ValueError, match=r"simulate: 'device' is 'cuda' but there is no usable "
                       r"CUDA device: CuPy finds no usable CUDA driver \(CUDARuntimeError: no "
                       r"driver\).*got 'cuda'"):
        _run("cuda")
    monkeypatch.setenv("GPUHEDGE_DEVICE", "cuda")  # the environment's default is explicit too
    with pytest.raises(ValueError, match="no usable CUDA device: CuPy finds no usable"):
        _run(None)


def test_explicit_cpu_says_it_was_requested(no_gpu, monkeypatch):
    assert backend.choose("cpu") == ("cpu", "device='cpu' requested")
    monkeypatch.setenv("GPUHEDGE_DEVICE", "cpu")
    assert backend.choose(None) == ("cpu", "GPUHEDGE_DEVICE='cpu' requested")
    assert _run(None).attrs["device_reason"] == "GPUHEDGE_DEVICE='cpu' requested"


def _fake_cupy(monkeypatch, error):
    """A CuPy module whose device count raises ``error``."""
    class CUDARuntimeError(RuntimeError):
        pass

    def count():
        raise error(CUDARuntimeError)

    runtime = types.SimpleNamespace(CUDARuntimeError=CUDARuntimeError, getDeviceCount=count)
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(backend, "_simulator", lambda: False)
    backend.cuda_status.cache_clear()


def test_driver_error_is_a_reason_other_errors_raise(monkeypatch):
    try:
        _fake_cupy(monkeypatch, lambda kind: kind("cudaErrorNoDevice: no CUDA-capable device"))
        usable, why = backend.cuda_status()
        assert not usable and "cudaErrorNoDevice" in why and not backend.gpu_available()
        backend.cuda_status.cache_clear()
        _fake_cupy(monkeypatch, lambda kind: TypeError("a bug, not a missing GPU"))
        with pytest.raises(TypeError, match="a bug"):
            backend.gpu_available()
    finally:
        backend.cuda_status.cache_clear()


def test_info_prints_the_choice_and_why(no_gpu, capsys, monkeypatch):
    cli.main(["info"])
    out = capsys.readouterr().out
    assert "device: cpu: cpu (" in out
    assert f"device_reason: auto: no usable GPU: {NO_GPU[1]}" in out
    monkeypatch.setenv("GPUHEDGE_DEVICE", "cuda")
    cli.main(["info"])
    out = capsys.readouterr().out
    assert "device: none: gpuhedge info: 'device' is 'cuda' but there is no usable CUDA " \
        "device: CuPy finds no usable CUDA driver" in out
