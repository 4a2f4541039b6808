"""Philox4x32-10 against the Random123 known answers, and the normals it feeds."""

import numba
import numpy as np
import pytest
from scipy import stats

from gpuhedge.kernels import _math

U = np.uint64


@pytest.mark.parametrize("counter, key, expected", [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_philox_known_answers(counter, key, expected):
    args = [U(c) for c in counter] + [U(k) for k in key]
    assert tuple(int(w) for w in _math.philox4x32(*args)) == expected  # plain Python
    assert tuple(int(w) for w in numba.njit(_math.philox4x32)(*args)) == expected  # compiled


@numba.njit
def _normals(n, seed, stream):
    out = np.empty(2 * n)
    for p in range(n):
        out[2 * p], out[2 * p + 1] = _math.normal_pair(np.uint64(seed), np.uint64(stream), p, 3, 0)
    return out


def test_uniform_stays_in_open_closed_interval():
    assert _math.uniform53(U(0), U(0)) == 2.0**-53
    assert _math.uniform53(U(0xFFFFFFFF), U(0xFFFFFFFF)) == 1.0


def test_normals_pass_ks_and_moments():
    z = _normals(200_000, 11, 0)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    n = z.size
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1.0) < 4 * np.sqrt(2.0 / n)
    # pairs from one block are uncorrelated
    assert abs(np.corrcoef(z[0::2], z[1::2])[0, 1]) < 4 / np.sqrt(n / 2)


def test_streams_and_seeds_give_independent_normals():
    a, b, c = _normals(50_000, 1, 0), _normals(50_000, 1, 1), _normals(50_000, 2, 0)
    for x, y in ((a, b), (a, c)):
        assert abs(np.corrcoef(x, y)[0, 1]) < 4 / np.sqrt(x.size)
