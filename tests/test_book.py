"""The chapters' helpers in ntklib.book: the NTK_SCALE knob, the relative error, cosine Gram matrices."""
import numpy as np
import pytest
import torch

import ntklib as nk

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("value", ["small", "full"])
def test_scale_reads_the_variable(monkeypatch, value):
    monkeypatch.setenv("NTK_SCALE", value)
    assert nk.book.scale() == value


def test_scale_default_when_unset(monkeypatch):
    monkeypatch.delenv("NTK_SCALE", raising=False)
    assert nk.book.scale() == "small"
    assert nk.book.scale(default="full") == "full"


@pytest.mark.parametrize("value", ["medium", "", "Full", " small", "1"])
def test_scale_refuses_anything_else_and_lists_the_choices(monkeypatch, value):
    """Today one chapter reads NTK_SCALE=medium as full and two as small: it must be an error."""
    monkeypatch.setenv("NTK_SCALE", value)
    with pytest.raises(ValueError, match=r"NTK_SCALE must be one of 'small', 'full'; got " + repr(value)):
        nk.book.scale()
    with pytest.raises(ValueError, match="default must be one of"):
        nk.book.scale("UNSET_VARIABLE_FOR_THIS_TEST", default="big")


def test_relative_error_is_the_frobenius_ratio():
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((2, 5, 4))
    direct = np.sqrt(((A - B) ** 2).sum() / (B**2).sum())
    assert nk.book.relative_error(A, B) == pytest.approx(direct, rel=1e-14)
    assert nk.book.relative_error(B, B) == 0.0
    # relative to B, not symmetric in its arguments; scale-free
    assert nk.book.relative_error(2 * B, B) == pytest.approx(1.0, rel=1e-15)
    assert nk.book.relative_error(B, 2 * B) == pytest.approx(0.5, rel=1e-15)
    for big_or_tiny in (1e200, 1e-200):  # squares beyond the float64 range
        assert nk.book.relative_error(big_or_tiny * A, big_or_tiny * B) == pytest.approx(direct, rel=1e-14)
    assert isinstance(nk.book.relative_error(torch.from_numpy(A).float(), B), float)


@pytest.mark.parametrize("call, match", [
    (lambda: nk.book.relative_error(np.ones((2, 2)), np.ones(2)), "same shape"),
    (lambda: nk.book.relative_error(np.ones(2), np.zeros(2)), "B is zero"),
    (lambda: nk.book.relative_error(np.array([np.nan, 1.0]), np.ones(2)), "A contains NaN"),
])
def test_relative_error_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("device", DEVICES)
def test_cosine_gram_against_its_definition(device):
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((7, 3)), 5 * rng.standard_normal((4, 3))
    nx, ny = np.linalg.norm(X, axis=1), np.linalg.norm(Y, axis=1)
    np.testing.assert_allclose(nk.book.cosine_gram(X, Y), X @ Y.T / np.outer(nx, ny), rtol=1e-14, atol=1e-15)
    U = nk.book.cosine_gram(torch.from_numpy(X).to(device))
    assert isinstance(U, torch.Tensor) and U.device.type == device and U.dtype == torch.float64
    U = U.cpu().numpy()
    assert np.array_equal(U, U.T) and np.all(np.diag(U) == 1.0)
    np.testing.assert_allclose(U, X @ X.T / np.outer(nx, nx), rtol=1e-14, atol=1e-15)


def test_cosine_gram_clips_and_is_exact_on_the_diagonal():
    """Parallel rows have cosine 1 up to round-off: the result never leaves [-1, 1]."""
    x = np.random.default_rng(2).standard_normal(3)
    X = np.stack([x * s for s in (1.0, 3.0, 1e-3, -7.0, 0.1, 1 / 3)])
    U = nk.book.cosine_gram(X)
    assert np.abs(U).max() <= 1.0
    np.testing.assert_allclose(np.abs(U), 1.0, rtol=0, atol=1e-15)
    assert np.all(np.abs(nk.book.cosine_gram(X, X)) <= 1.0)


@pytest.mark.parametrize("call, match", [
    (lambda: nk.book.cosine_gram(np.array([[1.0, 0.0], [0.0, 0.0]])), "X has a zero row"),
    (lambda: nk.book.cosine_gram(np.ones((2, 2)), np.zeros((1, 2))), "Y has a zero row"),
    (lambda: nk.book.cosine_gram(np.ones((2, 2)), np.ones((1, 3))), "same number of features"),
    (lambda: nk.book.cosine_gram(np.ones(3)), "2-D"),
])
def test_cosine_gram_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
