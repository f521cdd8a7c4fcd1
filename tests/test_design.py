"""The design arrays handed to the kernels (``jaxlasso._engine.design_arrays``): padded to the
bucketed shape with zeros, transposed, never aliasing the caller's array."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxlasso._engine import design_arrays, host_array, precision_scope


@pytest.mark.parametrize("shape", [(7, 11), (3, 5, 9)])
def test_host_array_is_aligned_and_writable(shape):
    for dtype in (np.float64, np.float32, np.int32):
        a = host_array(shape, dtype)
        assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
        assert a.ctypes.data % 64 == 0


@pytest.mark.parametrize("kkt_float32", [False, True])
def test_design_is_padded_transposed_and_a_copy(kkt_float32):
    def dirty(shape, dtype):  # fresh and pooled buffers hold garbage: the padding must be written
        a = host_array(shape, dtype)
        a.fill(np.nan)
        return a

    rng = np.random.default_rng(0)
    X = rng.standard_normal((13, 21)) * 3.0
    keep = X.copy()
    with precision_scope(np.float64):
        Xd, XTd, colnorm = design_arrays(X, jnp.float64, kkt_float32=kkt_float32, shape=(16, 24), alloc=dirty)
        X[:] = np.nan  # the caller's array is not aliased: the design keeps its values
        Xd, XTd, colnorm = (np.asarray(a) for a in (Xd, XTd, colnorm))
    padded = np.zeros((16, 24))
    padded[:13, :21] = keep
    assert Xd.dtype == (np.float32 if kkt_float32 else np.float64) and XTd.dtype == np.float64
    np.testing.assert_array_equal(Xd, padded.astype(Xd.dtype))
    np.testing.assert_array_equal(XTd, padded.T)
    # Column norms feed the float32 pass's error bound; unused (zero) for an exact X.
    want = np.linalg.norm(padded, axis=0) if kkt_float32 else np.zeros(24)
    np.testing.assert_allclose(colnorm, want, rtol=1e-14)


def test_design_of_stacked_datasets_and_float32():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2, 5, 6))
    with precision_scope(np.float32):
        Xd, XTd, colnorm = (np.asarray(a) for a in design_arrays(X, jnp.float32, kkt_float32=True))
    assert Xd.dtype == XTd.dtype == np.float32  # a float32 problem has no float32 KKT copy to make
    np.testing.assert_array_equal(Xd, X.astype(np.float32))
    np.testing.assert_array_equal(XTd, np.swapaxes(X, 1, 2).astype(np.float32))
    np.testing.assert_array_equal(colnorm, 0.0)


def test_no_float32_copy_of_huge_entries():
    X = np.ones((4, 3))
    X[1, 2] = 2.0 ** 101  # products of such entries would overflow float32
    with precision_scope(np.float64):
        Xd, _, _ = design_arrays(X, jnp.float64, kkt_float32=True)
    assert Xd.dtype == jnp.float64


@pytest.mark.parametrize("stacked", [False, True])
def test_transposed_design_over_several_strips_with_and_without_shift(stacked):
    """X^T is written strip by strip (``buffers._STRIP`` columns): over several strips, a last
    partial one and the padding, it is exactly the transpose of X (or of X - shift)."""
    from jaxlasso._engine import buffers

    def dirty(shape, dtype):
        a = host_array(shape, dtype)
        a.fill(np.nan)
        return a

    rng = np.random.default_rng(2)
    p = 2 * buffers._STRIP + 17
    X = rng.standard_normal((3, 11, p) if stacked else (11, p)) * 5.0 + 2.0
    shift = None if stacked else X.mean(axis=0)
    shape = X.shape[:-2] + (16, p + 15)
    with precision_scope(np.float64):
        _, XTd, _ = design_arrays(X, jnp.float64, shape=shape, alloc=dirty, shift=shift)
    XTd = np.asarray(XTd)
    want = np.zeros(shape)
    want[..., :11, :p] = X if shift is None else X - shift
    np.testing.assert_array_equal(XTd, np.swapaxes(want, -1, -2))
