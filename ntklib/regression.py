r"""Kernel regression and kernel gradient flow, with stable solves and clear errors.

Ridge(-less) regression predicts :math:`\hat f(x) = k(x, X)(K + \lambda I)^{-1} y`, by a Cholesky
factorization. Gradient flow on :math:`\tfrac12\|f(X) - y\|^2` in the kernel regime,
:math:`\dot f_t = -K(f_t - y)` with :math:`f_0 = 0`, gives :math:`f_t(X) = (I - e^{-Kt})y` and
:math:`f_t(x) = k(x, X) K^{-1}(I - e^{-Kt})y`. As :math:`t\to\infty` this is the ridgeless predictor
(Jacot et al. 2018; Arora et al. 2019, Thm 3.2). The residual along the eigenvector with eigenvalue
:math:`\lambda_i` decays like :math:`e^{-\lambda_i t}`, so :math:`\lambda_{\min}` sets the time to
converge.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

__all__ = ["kernel_regression", "gradient_flow", "IllConditionedWarning"]

#: condition numbers above this trigger an :class:`IllConditionedWarning`
COND_WARN = 1e12


class IllConditionedWarning(RuntimeWarning):
    """The kernel matrix is so ill-conditioned that the solution may have lost most of its digits."""


def _check_gram(K, name="K_train"):
    K = np.asarray(K, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix; got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ValueError(f"{name} contains NaN or inf")
    scale = max(np.abs(K).max(), np.finfo(float).tiny)
    if np.abs(K - K.T).max() > 1e-10 * scale:
        raise ValueError(f"{name} must be symmetric; max |K - K^T| = {np.abs(K - K.T).max():.3g}")
    return (K + K.T) / 2


def _check_targets(y, n):
    y = np.asarray(y, dtype=np.float64)
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(f"y must have shape (n,) or (n, c) with n = {n}; got {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or inf")
    return y


def _check_cross(K_test, n):
    K_test = np.asarray(K_test, dtype=np.float64)
    if K_test.ndim != 2 or K_test.shape[1] != n:
        raise ValueError(f"K_test must have shape (m, n) with n = {n} training points; got {K_test.shape}")
    if not np.all(np.isfinite(K_test)):
        raise ValueError("K_test contains NaN or inf")
    return K_test


def kernel_regression(K_train, y, K_test=None, *, ridge=0.0):
    r"""Kernel ridge(-less) regression :math:`k(x, X)(K + \lambda I)^{-1} y`.

    Parameters
    ----------
    K_train : (n, n) array
        Symmetric positive (semi)definite Gram matrix of the training points.
    y : (n,) or (n, c) array
        Targets (columns for several outputs, e.g. one-hot classes).
    K_test : (m, n) array, optional
        Kernel between test and training points; ``None`` predicts on the training points.
    ridge : float, default 0
        :math:`\lambda \ge 0`.

    Returns
    -------
    predictions : (m,) or (m, c) array

    Raises
    ------
    ValueError
        Non-square, non-symmetric or non-finite ``K_train``; shape mismatches; or ``K_train + ridge I``
        not positive definite (the message gives its smallest eigenvalue).

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
    """
    K = _check_gram(K_train)
    n = K.shape[0]
    y = _check_targets(y, n)
    ridge = float(ridge)
    if not np.isfinite(ridge) or ridge < 0:
        raise ValueError(f"ridge must be a finite number >= 0; got {ridge}")
    A = K + ridge * np.eye(n)
    try:
        chol = linalg.cho_factor(A, lower=True, check_finite=False)
    except linalg.LinAlgError:
        lam_min = np.linalg.eigvalsh(A)[0]
        raise ValueError(
            f"K_train + ridge*I is not positive definite (smallest eigenvalue {lam_min:.3g}); "
            "the kernel matrix must be PSD, and a singular one needs ridge > 0"
        ) from None
    diag = np.diag(chol[0])
    # cheap condition estimate from the Cholesky factor, exact one only when that looks bad
    if (diag.max() / diag.min()) ** 2 > COND_WARN / 1e3:
        cond = np.linalg.cond(A)
        if cond > COND_WARN:
            warnings.warn(
                f"K_train + ridge*I is ill-conditioned (condition number {cond:.2e}): the solution may have "
                "lost most of its digits; consider ridge > 0",
                IllConditionedWarning,
                stacklevel=2,
            )
    alpha = linalg.cho_solve(chol, y, check_finite=False)
    Kt = K if K_test is None else _check_cross(K_test, n)
    return Kt @ alpha


def gradient_flow(K_train, y, K_test=None, *, t):
    r"""Predictions of kernel gradient flow at time(s) ``t``, started from :math:`f_0 = 0`.

    :math:`f_t = k(x, X)\, V\,\mathrm{diag}\big((1 - e^{-\lambda_i t})/\lambda_i\big) V^\top y` with
    :math:`K = V\mathrm{diag}(\lambda)V^\top`, written with ``expm1`` so that :math:`\lambda_i \to 0`
    gives :math:`t` (no division by zero).

    Parameters
    ----------
    K_train, y, K_test
        As in :func:`kernel_regression`.
    t : float or 1-D array of times >= 0

    Returns
    -------
    predictions : (m,) (or (m, c)) for a scalar ``t``; (len(t), m) (or (len(t), m, c)) for an array

    Raises
    ------
    ValueError
        ``K_train`` with an eigenvalue below ``-1e-10 * max`` (not PSD), or negative times.
    """
    K = _check_gram(K_train)
    n = K.shape[0]
    y = _check_targets(y, n)
    ts = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if ts.ndim != 1 or np.any(ts < 0) or not np.all(np.isfinite(ts)):
        raise ValueError("t must be a time >= 0 or a 1-D array of them")
    lam, V = np.linalg.eigh(K)
    if lam[0] < -1e-10 * max(lam[-1], np.finfo(float).tiny):
        raise ValueError(f"K_train is not positive semidefinite (smallest eigenvalue {lam[0]:.3g})")
    lam = np.clip(lam, 0, None)
    Kt = K if K_test is None else _check_cross(K_test, n)
    proj = V.T @ y                                 # (n,) or (n, c)
    left = Kt @ V                                  # (m, n)
    out = []
    for ti in ts:
        with np.errstate(invalid="ignore", divide="ignore"):
            gain = np.where(lam > 0, -np.expm1(-lam * ti) / np.where(lam > 0, lam, 1), ti)
        g = gain if proj.ndim == 1 else gain[:, None]
        out.append(left @ (g * proj))
    out = np.stack(out)
    return out[0] if np.ndim(t) == 0 else out
