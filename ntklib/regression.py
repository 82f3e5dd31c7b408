r"""Kernel regression and kernel gradient flow, with stable solves and clear errors.

Ridge(-less) regression predicts :math:`\hat f(x) = k(x, X)(K + \lambda I)^{-1} y`, by a Cholesky
factorization. Gradient flow on :math:`\tfrac12\|f(X) - y\|^2` in the kernel regime,
:math:`\dot f_t = -K(f_t - y)` with :math:`f_0 = 0`, gives :math:`f_t(X) = (I - e^{-Kt})y` and
:math:`f_t(x) = k(x, X) K^{-1}(I - e^{-Kt})y`. As :math:`t\to\infty` this is the ridgeless predictor
(Jacot et al. 2018; Arora et al. 2019, Thm 3.2). The residual along the eigenvector with eigenvalue
:math:`\lambda_i` decays like :math:`e^{-\lambda_i t}`, so :math:`\lambda_{\min}` sets the time to
converge.

**Kinds.** The kind of ``K_train`` decides the kind of the result: a torch tensor gives a float64
tensor on its device (``y`` and ``K_test`` are moved there, whatever their kind); anything else gives
a numpy array. The solves run in float64 torch (LAPACK on the CPU, the GPU's solver on a GPU).
"""
from __future__ import annotations

import warnings

import torch

from ._arrays import GRAM_RTOL, check_gram, check_variance, returns_like, to_tensor

__all__ = ["kernel_regression", "gradient_flow", "IllConditionedWarning"]

#: condition numbers above this trigger an :class:`IllConditionedWarning`
COND_WARN = 1e12


class IllConditionedWarning(RuntimeWarning):
    """The kernel matrix is so ill-conditioned that the solution may have lost most of its digits."""


def _check_inputs(K_train, y, K_test):
    """K (symmetrized float64 tensor), y and K_test on its device, each checked, and the PSD floor."""
    K = check_gram(K_train, "K_train")
    n = K.shape[0]
    y = to_tensor(y, "y", dtype=torch.float64, device=K.device)
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(f"y must have shape (n,) or (n, c) with n = {n} training points; got {tuple(y.shape)}")
    if K_test is not None:
        K_test = to_tensor(K_test, "K_test", dtype=torch.float64, device=K.device)
        if K_test.ndim != 2 or K_test.shape[1] != n:
            raise ValueError(f"K_test must have shape (m, n) with n = {n} training points; got {tuple(K_test.shape)}")
    floor = GRAM_RTOL * float(K.abs().max()) if K.numel() else 0.0
    return K, y, K_test, floor


def _not_psd(K, floor):
    lam_min = float(torch.linalg.eigvalsh(K)[0])
    return lam_min < -floor, lam_min


def _psd_message(lam_min, floor):
    return (f"K_train is not positive semidefinite (smallest eigenvalue {lam_min:.3g}, below "
            f"-{GRAM_RTOL:g} * max|K| = {-floor:.3g}); a kernel matrix must be PSD")


def kernel_regression(K_train, y, K_test=None, *, ridge=0.0):
    r"""Kernel ridge(-less) regression :math:`k(x, X)(K + \lambda I)^{-1} y`.

    Parameters
    ----------
    K_train : (n, n) array_like or torch.Tensor
        Symmetric positive (semi)definite Gram matrix of the training points (symmetric within
        ``GRAM_RTOL`` = 1e-10 of its largest entry; it is then symmetrized).
    y : (n,) or (n, c) array_like or torch.Tensor
        Targets (columns for several outputs, e.g. one-hot classes).
    K_test : (m, n) array_like or torch.Tensor, optional
        Kernel between test and training points; ``None`` predicts on the training points.
    ridge : float, default 0
        :math:`\lambda \ge 0`.

    Returns
    -------
    (m,) or (m, c) numpy.ndarray or torch.Tensor
        The predictions, float64; a tensor on the device of ``K_train`` if ``K_train`` is a tensor, else numpy.

    Raises
    ------
    ValueError
        Non-square, non-symmetric or non-finite ``K_train``; ``K_train`` not positive semidefinite
        (smallest eigenvalue below ``-1e-10 * max|K|``, whatever the ridge); shape mismatches
        (the message names the argument); a negative ridge; or ``K_train + ridge I`` not positive
        definite (a singular kernel matrix needs ``ridge > 0``; the message gives the smallest
        eigenvalue).
    TypeError
        If an argument is not a real numeric array.

    Warns
    -----
    IllConditionedWarning
        If the condition number of ``K_train + ridge I`` exceeds 1e12 (it is in the message).

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> X = np.random.default_rng(0).standard_normal((6, 2))
    >>> K = nk.ntk(X, depth=2)
    >>> y = np.sin(X[:, 0])
    >>> # ridgeless regression interpolates
    >>> np.allclose(nk.kernel_regression(K, y), y)
    True
    >>> import torch
    >>> # a tensor in, a tensor out
    >>> nk.kernel_regression(torch.from_numpy(K), y).dtype
    torch.float64
    """
    K, y, K_test, floor = _check_inputs(K_train, y, K_test)
    ridge = check_variance(ridge, "ridge", positive=False)
    n = K.shape[0]
    A = K + ridge * torch.eye(n, dtype=K.dtype, device=K.device)
    L, info = torch.linalg.cholesky_ex(A)
    if int(info):
        bad, lam_min = _not_psd(K, floor)
        if bad:
            raise ValueError(_psd_message(lam_min, floor) + ", so K_train + ridge*I is not positive definite")
        raise ValueError(
            f"K_train + ridge*I is not positive definite (smallest eigenvalue of K_train {lam_min:.3g}); "
            "a singular kernel matrix needs ridge > 0"
        )
    if ridge > floor:
        # a ridge can hide a negative eigenvalue of K_train: look for one (one more Cholesky)
        if int(torch.linalg.cholesky_ex(K + floor * torch.eye(n, dtype=K.dtype, device=K.device))[1]):
            bad, lam_min = _not_psd(K, floor)
            if bad:
                raise ValueError(_psd_message(lam_min, floor))
    d = torch.diagonal(L)
    # cheap condition estimate from the Cholesky factor, the exact one only when that looks bad
    if n and float(d.max() / d.min()) ** 2 > COND_WARN / 1e3:
        cond = float(torch.linalg.cond(A))
        if cond > COND_WARN:
            warnings.warn(
                f"K_train + ridge*I is ill-conditioned (condition number {cond:.2e}): the solution may have "
                "lost most of its digits; consider ridge > 0",
                IllConditionedWarning,
                stacklevel=2,
            )
    alpha = torch.cholesky_solve(y.reshape(n, -1), L).reshape(y.shape)
    Kt = K if K_test is None else K_test
    return returns_like(K_train, Kt @ alpha)


def gradient_flow(K_train, y, K_test=None, *, t):
    r"""Predictions of kernel gradient flow at time(s) ``t``, started from :math:`f_0 = 0`.

    :math:`f_t = k(x, X)\, V\,\mathrm{diag}\big((1 - e^{-\lambda_i t})/\lambda_i\big) V^\top y` with
    :math:`K = V\mathrm{diag}(\lambda)V^\top`, written with ``expm1`` so that :math:`\lambda_i \to 0`
    gives :math:`t` (no division by zero): along a null direction of ``K_train`` the training
    predictions stay 0 and a test prediction grows linearly in ``t``.

    Parameters
    ----------
    K_train : (n, n) array_like or torch.Tensor
        Symmetric positive semidefinite Gram matrix of the training points, as in
        :func:`kernel_regression`.
    y : (n,) or (n, c) array_like or torch.Tensor
        Targets.
    K_test : (m, n) array_like or torch.Tensor, optional
        Kernel between test and training points; ``None`` predicts on the training points.
    t : float or 1-D array_like of float
        Times :math:`\ge 0`.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        The predictions, of shape (m,) (or (m, c)) for a scalar ``t``; (len(t), m) (or (len(t), m, c)) for an array.
        float64; a tensor on the device of ``K_train`` if ``K_train`` is a tensor, else numpy.

    Raises
    ------
    ValueError
        As :func:`kernel_regression` for ``K_train``, ``y`` and ``K_test`` (eigenvalues of
        ``K_train`` in :math:`[-10^{-10}\max|K|, 0)` are round-off and count as 0); negative or
        non-finite times, or ``t`` of more than one dimension.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> X = nk.data.sphere(5, 3, seed=0)
    >>> K, y = nk.ntk(X, depth=1), X[:, 0]
    >>> f = nk.gradient_flow(K, y, t=[0.0, 1e9])
    >>> f.shape, bool(np.allclose(f[0], 0)), bool(np.allclose(f[1], y))
    ((2, 5), True, True)
    """
    K, y, K_test, floor = _check_inputs(K_train, y, K_test)
    ts = to_tensor(t, "t", dtype=torch.float64, device=K.device)
    if ts.ndim > 1 or bool((ts < 0).any()):
        raise ValueError(f"t must be a time >= 0 or a 1-D array of them; got {t!r}")
    lam, V = torch.linalg.eigh(K)
    if K.numel() and float(lam[0]) < -floor:
        raise ValueError(_psd_message(float(lam[0]), floor))
    lam = lam.clamp_min(0)
    Kt = K if K_test is None else K_test
    proj = V.T @ y                                 # (n,) or (n, c)
    left = Kt @ V                                  # (m, n)
    pos = lam > 0
    out = []
    for ti in ts.reshape(-1):
        gain = torch.where(pos, -torch.expm1(-lam * ti) / torch.where(pos, lam, 1.0), ti)
        g = gain if proj.ndim == 1 else gain[:, None]
        out.append(left @ (g * proj))
    out = torch.stack(out) if out else left.new_zeros((0, *(left.shape[0], *proj.shape[1:])))
    return returns_like(K_train, out[0] if ts.ndim == 0 else out)
