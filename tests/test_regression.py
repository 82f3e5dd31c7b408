"""Kernel regression and gradient flow: the kind rule, the Gram checks, and gradient flow against expm.

(The interpolation, ridge, limit and error tests written first live in test_empirical.py.)
"""
import numpy as np
import pytest
import torch
from scipy import linalg

import ntklib as nk
from ntklib._arrays import GRAM_RTOL

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def problem(n=12, m=4, seed=0):
    X = nk.data.sphere(n + m, 3, seed=seed)
    K = nk.ntk(X, depth=2)
    return K[:n, :n], np.cos(2 * X[:n, 0]) + X[:n, 1], K[n:, :n]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fn", [lambda *a: nk.kernel_regression(*a, ridge=0.1),
                                lambda *a: nk.gradient_flow(*a, t=[0.5, 2.0])], ids=["regression", "flow"])
def test_kind_follows_K_train(fn, device):
    K, y, Kt = problem()
    ref = fn(K, y, Kt)
    assert isinstance(ref, np.ndarray) and ref.dtype == np.float64
    Kd = torch.from_numpy(K).to(device)
    # a tensor K_train gives a float64 tensor on its device, whatever the kind of y and K_test
    for args, rtol in [((Kd, y, Kt), 1e-12), ((Kd, torch.from_numpy(y), torch.from_numpy(Kt).float()), 1e-5),
                       ((Kd.float(), y, Kt), 1e-5)]:
        out = fn(*args)
        assert isinstance(out, torch.Tensor) and out.device.type == device and out.dtype == torch.float64
        np.testing.assert_allclose(out.cpu().numpy(), ref, rtol=rtol, atol=rtol * np.abs(ref).max())
    # and numpy K_train with tensor y gives numpy
    assert isinstance(fn(K, torch.from_numpy(y), Kt), np.ndarray)


def test_gradient_flow_matches_matrix_exponential():
    """f_t(X) = (I - e^{-Kt}) y and f_t(x) = k(x, X) K^{-1} (I - e^{-Kt}) y, from scipy's expm."""
    K, y, Kt = problem()
    for t in (0.1, 1.0, 7.0):
        resid = linalg.expm(-K * t) @ y
        np.testing.assert_allclose(nk.gradient_flow(K, y, t=t), y - resid, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(nk.gradient_flow(K, y, Kt, t=t), Kt @ np.linalg.solve(K, y - resid),
                                   rtol=1e-8, atol=1e-10)


def test_gradient_flow_grows_linearly_along_the_null_space():
    """K = diag(2, 0): the test prediction is (1 - e^{-2t})/2 from the first point plus t from the second."""
    K, y, Kt = np.diag([2.0, 0.0]), np.array([1.0, 1.0]), np.array([[1.0, 1.0]])
    t = np.array([1.0, 2.0, 30.0])
    np.testing.assert_allclose(nk.gradient_flow(K, y, Kt, t=t)[:, 0], -np.expm1(-2 * t) / 2 + t, rtol=1e-14)
    np.testing.assert_allclose(nk.gradient_flow(K, y, t=t), np.stack([-np.expm1(-2 * t), 0 * t], axis=1), atol=1e-15)


def test_a_ridge_does_not_hide_a_negative_eigenvalue():
    K, y, _ = problem()
    bad = K - (np.linalg.eigvalsh(K)[0] + 0.05) * np.eye(len(K))
    assert np.linalg.eigvalsh(bad)[0] == pytest.approx(-0.05)
    np.linalg.cholesky(bad + 1.0 * np.eye(len(K)))  # the ridge alone would make the solve succeed
    with pytest.raises(ValueError, match="K_train is not positive semidefinite"):
        nk.kernel_regression(bad, y, ridge=1.0)
    with pytest.raises(ValueError, match="not positive semidefinite"):
        nk.gradient_flow(bad, y, t=1.0)


def test_round_off_is_within_the_tolerances():
    """A negative eigenvalue and an asymmetry of GRAM_RTOL / 10 pass; ten times the tolerance does not."""
    K, y, _ = problem()
    lam, V = np.linalg.eigh(K)
    scale = np.abs(K).max()
    lam[0] = -GRAM_RTOL / 10 * scale
    Kr = (V * lam) @ V.T
    Kr = (Kr + Kr.T) / 2
    assert np.all(np.isfinite(nk.gradient_flow(Kr, y, t=1.0)))
    assert np.all(np.isfinite(nk.kernel_regression(Kr, y, ridge=1e-3)))
    lam[0] = -GRAM_RTOL * 10 * scale
    with pytest.raises(ValueError, match="not positive semidefinite"):
        nk.gradient_flow((V * lam) @ V.T, y, t=1.0)
    E = np.zeros_like(K)
    E[0, 1] = GRAM_RTOL / 10 * scale
    nk.kernel_regression(K + E, y)
    E[0, 1] = GRAM_RTOL * 10 * scale
    with pytest.raises(ValueError, match="K_train must be symmetric"):
        nk.kernel_regression(K + E, y)


@pytest.mark.parametrize("call, err, match", [
    (lambda K, y, Kt: nk.kernel_regression(K[:, :-1], y), ValueError, r"K_train must be a square"),
    (lambda K, y, Kt: nk.kernel_regression(np.where(np.eye(len(K)) > 0, np.nan, K), y), ValueError,
     "K_train contains NaN"),
    (lambda K, y, Kt: nk.kernel_regression(K, y[:-1]), ValueError, r"y must have shape .* n = 12"),
    (lambda K, y, Kt: nk.kernel_regression(K, y[:, None, None]), ValueError, "y must have shape"),
    (lambda K, y, Kt: nk.kernel_regression(K, y, Kt.T), ValueError, r"K_test must have shape \(m, n\)"),
    (lambda K, y, Kt: nk.kernel_regression(K, y * np.inf), ValueError, "y contains NaN or inf"),
    (lambda K, y, Kt: nk.kernel_regression(K, y, ridge=-1.0), ValueError, "ridge must be >= 0"),
    (lambda K, y, Kt: nk.kernel_regression(K, y, ridge="1"), TypeError, "ridge must be a real number"),
    (lambda K, y, Kt: nk.kernel_regression(K.astype(str), y), TypeError, "K_train must be a real numeric"),
    (lambda K, y, Kt: nk.gradient_flow(K, y, t=-1.0), ValueError, "t must be a time >= 0"),
    (lambda K, y, Kt: nk.gradient_flow(K, y, t=[[1.0]]), ValueError, "1-D array"),
    (lambda K, y, Kt: nk.gradient_flow(K, y, t=np.nan), ValueError, "t contains NaN"),
])
def test_errors_name_the_argument(call, err, match):
    with pytest.raises(err, match=match):
        call(*problem())


def test_singular_kernel_without_ridge_says_so():
    K = np.ones((3, 3))  # PSD, rank one
    with pytest.raises(ValueError, match="needs ridge > 0"):
        nk.kernel_regression(K, np.ones(3))
    np.testing.assert_allclose(nk.kernel_regression(K, np.ones(3), ridge=1.0), 0.75 * np.ones(3), rtol=1e-14)


def test_ill_conditioned_tensor_warns():
    K = torch.tensor([[1.0, 1 - 1e-14], [1 - 1e-14, 1.0]], dtype=torch.float64)
    with pytest.warns(nk.IllConditionedWarning, match="condition number"):
        nk.kernel_regression(K, torch.ones(2, dtype=torch.float64))
