"""Kernel regression and gradient flow: the kind rule, the Gram checks, and gradient flow against expm.

(The interpolation, ridge, limit and error tests written first live in test_empirical.py.)
"""
import warnings

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


def test_gradient_flow_does_not_move_along_the_null_space():
    """K = diag(2, 0): the second direction has gain 0 (it used to grow like t at a test point)."""
    K, y, Kt = np.diag([2.0, 0.0]), np.array([1.0, 1.0]), np.array([[1.0, 1.0]])
    t = np.array([1.0, 2.0, 30.0, np.inf])
    np.testing.assert_allclose(nk.gradient_flow(K, y, Kt, t=t)[:, 0], -np.expm1(-2 * t) / 2, rtol=1e-14)
    np.testing.assert_allclose(nk.gradient_flow(K, y, t=t), np.stack([-np.expm1(-2 * t), np.zeros(4)], axis=1), atol=1e-15)


def singular_problem(duplicate=False):
    """K = nk.ntk(X, depth=0) for 20 points in d = 3: rank 3, a null space of dimension 17."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((24, 3))
    y = rng.standard_normal(20)
    if duplicate:  # the same point twice with conflicting labels
        X[1] = X[0]
        y[1] = y[0] + 3.0
    K = nk.ntk(X, depth=0)
    return K[:20, :20], y, K[20:, :20]


@pytest.mark.parametrize("duplicate", [False, True], ids=["distinct", "duplicated-conflicting"])
def test_gradient_flow_on_a_singular_K_converges_to_the_minimum_norm_solution(duplicate):
    """Issue 10 item 5: the error against the pseudo-inverse solution grew linearly in t (1.24 at
    t = 1e15, 11.6 at 1e16 with conflicting duplicates). The reference is numpy's SVD-based lstsq
    with the same cut n * eps, and the null space of K from scipy's SVD."""
    K, y, Kt = singular_problem(duplicate)
    n = len(K)
    alpha = np.linalg.lstsq(K, y, rcond=n * np.finfo(float).eps)[0]  # the minimum-norm solution
    null = linalg.null_space(K, rcond=n * np.finfo(float).eps)
    assert null.shape[1] == 17
    t = [1e10, 1e15, 1e16, np.inf]
    f_train = nk.gradient_flow(K, y, t=t)
    f_test = nk.gradient_flow(K, y, Kt, t=t)
    for i in range(len(t)):
        np.testing.assert_allclose(f_train[i], K @ alpha, rtol=0, atol=1e-12 * np.abs(y).max())
        np.testing.assert_allclose(f_test[i], Kt @ alpha, rtol=0, atol=1e-11 * np.abs(Kt @ alpha).max())
        # the residual's component along the null space stays the initial one, y's
        np.testing.assert_allclose(null.T @ (y - f_train[i]), null.T @ y, rtol=0, atol=1e-13)
    if duplicate:  # the same point gets one prediction, whatever its two labels
        assert f_train[-1][0] == pytest.approx(f_train[-1][1], rel=1e-12)


def test_gradient_flow_rcond():
    """rcond sets the cut: with rcond above the second eigenvalue of diag(4, 1e-3) only the first moves."""
    K, y = np.diag([4.0, 1e-3]), np.array([1.0, 1.0])
    np.testing.assert_allclose(nk.gradient_flow(K, y, t=np.inf), [1.0, 1.0], rtol=1e-15)
    np.testing.assert_allclose(nk.gradient_flow(K, y, t=np.inf, rcond=1e-3), [1.0, 0.0], rtol=1e-15)
    with pytest.raises(ValueError, match="rcond must be >= 0"):
        nk.gradient_flow(K, y, t=1.0, rcond=-1.0)


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


def test_ill_conditioned_warning_sees_a_unit_cholesky_factor():
    """Issue 10 item 7: K = L L^T with L = I - tril(ones, -1), n = 50, has condition number ~2e17
    (numpy's SVD says so) but a Cholesky factor with unit diagonal; it gave no warning and a training
    residual of 8e13."""
    n = 50
    L = np.eye(n) - np.tril(np.ones((n, n)), -1)
    K = L @ L.T
    assert np.linalg.cond(K) > 1e16
    with pytest.warns(nk.IllConditionedWarning, match="numerically singular"):
        nk.kernel_regression(K, np.ones(n))
    # a well-conditioned matrix of the same size stays silent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nk.kernel_regression(K, np.ones(n), ridge=1.0)
        nk.kernel_regression(np.eye(n) + 0.5 * np.ones((n, n)), np.ones(n))


def test_a_subnormal_pivot_is_an_error_not_nan():
    """diag(1, 1e-310): the Cholesky factorization succeeds, the solve overflows (1/1e-310) and the
    predictions were NaN; exact answer: y itself, which float64 cannot reach through the solve."""
    with pytest.warns(nk.IllConditionedWarning), pytest.raises(ValueError, match="numerically singular.*ridge > 0"):
        nk.kernel_regression(np.diag([1.0, 1e-310, 1.0]), np.ones(3))


def test_ill_conditioned_warning_gives_the_condition_number():
    """diag(1, 1e-13): cond 1e13 (between the threshold 1e12 and the singular cut), in the message."""
    with pytest.warns(nk.IllConditionedWarning, match=r"condition number 1.00e\+13"):
        nk.kernel_regression(np.diag([1.0, 1e-13]), np.ones(2))


def test_ill_conditioned_tensor_warns():
    K = torch.tensor([[1.0, 1 - 1e-14], [1 - 1e-14, 1.0]], dtype=torch.float64)
    with pytest.warns(nk.IllConditionedWarning, match="condition number"):
        nk.kernel_regression(K, torch.ones(2, dtype=torch.float64))


def test_regression_inputs_that_used_to_crash():
    """Issue 10, "Regression/Gram crashes": requires-grad tensors, half precision, an empty K, t=[],
    ridge=None, strings and complex numbers each give a correct result or a clear error."""
    K, y, Kt = problem()
    ref = np.linalg.solve(K + 0.1 * np.eye(len(K)), y)
    Kg = torch.tensor(K, requires_grad=True)
    out = nk.kernel_regression(Kg, torch.tensor(y, requires_grad=True), ridge=0.1)
    assert not out.requires_grad
    np.testing.assert_allclose(out.numpy(), K @ ref, rtol=1e-12)
    np.testing.assert_allclose(nk.gradient_flow(Kg, y, t=np.inf).numpy(), y, rtol=1e-9)
    # bfloat16: a well-conditioned matrix is solved as given; one its rounding made indefinite says why
    B = torch.eye(3, dtype=torch.bfloat16) + 0.25
    np.testing.assert_allclose(nk.kernel_regression(B, np.ones(3)).numpy(), np.ones(3), rtol=1e-12)
    with pytest.raises(ValueError, match="bfloat16, whose rounding"):
        nk.kernel_regression(torch.from_numpy(singular_problem()[0]).bfloat16(), np.ones(20), ridge=1e-3)
    # no training points: empty predictions on the training points, the prior mean 0 at test points
    assert nk.kernel_regression(np.zeros((0, 0)), np.zeros(0)).shape == (0,)
    np.testing.assert_array_equal(nk.kernel_regression(np.zeros((0, 0)), np.zeros((0, 2)), np.zeros((3, 0))),
                                  np.zeros((3, 2)))
    assert nk.gradient_flow(np.zeros((0, 0)), np.zeros(0), t=[1.0, 2.0]).shape == (2, 0)
    # no times: an empty result of the right shape
    assert nk.gradient_flow(K, y, t=[]).shape == (0, 12)
    assert nk.gradient_flow(K, np.stack([y, y], 1), Kt, t=[]).shape == (0, 4, 2)
    with pytest.raises(TypeError, match="ridge must be a real number; got None"):
        nk.kernel_regression(K, y, ridge=None)
    for bad, name in [(K.astype(str), "K_train"), (K.astype(complex), "K_train"), (y.astype(complex), "y"),
                      (Kt.astype(str), "K_test")]:
        args = [K, y, Kt]
        args[["K_train", "y", "K_test"].index(name)] = bad
        with pytest.raises(TypeError, match=f"{name} must be a real numeric array"):
            nk.kernel_regression(*args, ridge=0.1)
    for t in ("1", 1j, torch.tensor([1j]), None):
        with pytest.raises(TypeError, match="t must be a real numeric array"):
            nk.gradient_flow(K, y, t=t)
    np.testing.assert_allclose(nk.gradient_flow(K, y, t=torch.tensor([np.inf])), [y], rtol=1e-9)
