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

import numpy as np
import torch

from ._arrays import GRAM_RTOL, check_gram, check_variance, real_array, returns_like, to_tensor

__all__ = ["kernel_regression", "gradient_flow", "IllConditionedWarning"]

#: condition numbers above this trigger an :class:`IllConditionedWarning`
COND_WARN = 1e12

_EPS = float(torch.finfo(torch.float64).eps)
_LOW_PRECISION = (torch.float16, torch.bfloat16, np.float16)


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


def _singular_floor(lam_max: float, n: int) -> float:
    r"""Eigenvalues at or below :math:`n\,\varepsilon\,\lambda_{\max}` are numerically zero.

    A symmetric eigensolver in float64 finds each eigenvalue to about :math:`\varepsilon\|K\|`
    (times a modest factor of ``n``), so a smaller one cannot be told from 0 (numpy's
    ``matrix_rank`` and ``lstsq`` use the same cut).
    """
    return n * _EPS * max(lam_max, 0.0)


def _inverse_norm1(L) -> float:
    r"""Hager's estimate (with Higham's extra vector) of :math:`\|A^{-1}\|_1` from the Cholesky factor.

    A lower bound, in practice within a small factor; :math:`O(n^2)` per iteration, a few iterations.
    """
    n = L.shape[0]

    def solve(v):
        return torch.cholesky_solve(v[:, None], L)[:, 0]

    x = torch.full((n,), 1.0 / n, dtype=L.dtype, device=L.device)
    est = 0.0
    for _ in range(5):
        w = solve(x)
        est = max(est, float(w.abs().sum()))
        z = solve(torch.where(w >= 0, 1.0, -1.0).to(L.dtype))
        j = int(z.abs().argmax())
        if float(z.abs()[j]) <= float(z @ x):
            break
        x = torch.zeros_like(x)
        x[j] = 1.0
    i = torch.arange(n, dtype=L.dtype, device=L.device)
    b = (1 - 2 * (i % 2)) * (1 + i / max(n - 1, 1))
    return max(est, 2 * float(solve(b).abs().sum()) / (3 * n))


def _condition(A, L) -> float:
    """The 2-norm condition number of the SPD matrix ``A`` (inf if numerically singular), computed
    exactly only when an O(n^2) estimate says it may be large."""
    n = A.shape[0]
    d = torch.diagonal(L)
    ratio = float(d.max() / d.min())
    rough = max(ratio * ratio, float(A.abs().sum(0).max()) * _inverse_norm1(L))  # (inf, not OverflowError)
    if rough <= COND_WARN / 1e3:  # (NaN from an overflowing estimate goes on to the exact check)
        return rough
    lam = torch.linalg.eigvalsh(A)
    lam_max, lam_min = float(lam[-1]), float(lam[0])
    if lam_min <= _singular_floor(lam_max, n):
        return float("inf")
    return lam_max / lam_min


def _not_psd(K, floor):
    lam_min = float(torch.linalg.eigvalsh(K)[0])
    return lam_min < -floor, lam_min


def _psd_message(lam_min, floor, K_train):
    dtype = getattr(K_train, "dtype", None)
    # half precision's round-off (~1e-3 relative) makes a PSD matrix look indefinite
    hint = (f" (K_train came in {dtype}, whose rounding alone can do that: compute it in float32 or float64)"
            if dtype in _LOW_PRECISION else "")
    return (f"K_train is not positive semidefinite (smallest eigenvalue {lam_min:.3g}, below "
            f"-{GRAM_RTOL:g} * max|K| = {-floor:.3g}){hint}; a kernel matrix must be PSD")


def kernel_regression(K_train, y, K_test=None, *, ridge=0.0):
    r"""Kernel ridge(-less) regression :math:`k(x, X)(K + \lambda I)^{-1} y`.

    Parameters
    ----------
    K_train : (n, n) array_like or torch.Tensor
        Symmetric positive (semi)definite Gram matrix of the training points (symmetric within
        ``GRAM_RTOL`` = 1e-10 of its largest entry; it is then symmetrized). Any real dtype; the
        solve runs in float64. With n = 0 training points the predictions are 0 (the empty sum).
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
        eigenvalue), or so close to singular that the solve overflows.
    TypeError
        If an argument is not a real numeric array.

    Warns
    -----
    IllConditionedWarning
        If the condition number of ``K_train + ridge I`` exceeds 1e12 (it is in the message). It is
        estimated in :math:`O(n^2)` from the Cholesky factor (Hager's 1-norm estimator) and, if that
        is above 1e9, computed from the eigenvalues; a smallest eigenvalue at most
        :math:`n\varepsilon\lambda_{\max}` (below what float64 resolves) means condition number inf.

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
    Kt = K if K_test is None else K_test
    if n == 0:  # no training points: the empty sum, 0 at every test point
        return returns_like(K_train, Kt.new_zeros((Kt.shape[0], *y.shape[1:])))
    A = K + ridge * torch.eye(n, dtype=K.dtype, device=K.device)
    L, info = torch.linalg.cholesky_ex(A)
    if int(info):
        bad, lam_min = _not_psd(K, floor)
        if bad:
            raise ValueError(_psd_message(lam_min, floor, K_train) + ", so K_train + ridge*I is not positive definite")
        raise ValueError(
            f"K_train + ridge*I is not positive definite (smallest eigenvalue of K_train {lam_min:.3g}); "
            "a singular kernel matrix needs ridge > 0"
        )
    if ridge > floor:
        # a ridge can hide a negative eigenvalue of K_train: look for one (one more Cholesky)
        if int(torch.linalg.cholesky_ex(K + floor * torch.eye(n, dtype=K.dtype, device=K.device))[1]):
            bad, lam_min = _not_psd(K, floor)
            if bad:
                raise ValueError(_psd_message(lam_min, floor, K_train))
    cond = _condition(A, L)
    if cond > COND_WARN:
        what = (f"condition number {cond:.2e}" if cond < float("inf") else
                f"condition number inf: its smallest eigenvalue is at most n * eps * its largest, "
                f"{_singular_floor(1.0, n):.1e} of it, so it is numerically singular")
        warnings.warn(
            f"K_train + ridge*I is ill-conditioned ({what}): the solution may have lost most of its digits; "
            "consider ridge > 0",
            IllConditionedWarning,
            stacklevel=2,
        )
    alpha = torch.cholesky_solve(y.reshape(n, -1), L).reshape(y.shape)
    out = Kt @ alpha
    if not bool(torch.isfinite(out).all()):  # (a pivot so small that the solve overflowed)
        raise ValueError(f"K_train + ridge*I is numerically singular (condition number {cond:.2g}): the solve "
                         "overflowed; a singular kernel matrix needs ridge > 0")
    return returns_like(K_train, out)


def _times(t, device) -> torch.Tensor:
    """``t`` as a 0-d or 1-D float64 tensor of times in [0, inf] (inf: the limit), or a clear error."""
    try:
        a = real_array(t, "t")
    except ValueError:  # NaN or inf in a real array: inf is the limit, NaN no time
        a = np.asarray(t.detach().cpu().double() if isinstance(t, torch.Tensor) else t, dtype=np.float64)
        if np.isnan(a).any():
            raise ValueError("t contains NaN; every time must be a number >= 0 (or inf, the limit)") from None
    if a.ndim > 1:
        raise ValueError(f"t must be a time >= 0 or a 1-D array of them; got shape {a.shape}")
    if (a < 0).any():
        raise ValueError(f"t must be a time >= 0 or a 1-D array of them; got {t!r}")
    return torch.as_tensor(a, device=device)


def gradient_flow(K_train, y, K_test=None, *, t, rcond=None):
    r"""Predictions of kernel gradient flow at time(s) ``t``, started from :math:`f_0 = 0`.

    :math:`f_t = k(x, X)\, V\,\mathrm{diag}(g_i) V^\top y` with :math:`K = V\mathrm{diag}(\lambda)V^\top`
    and the gain :math:`g_i = (1 - e^{-\lambda_i t})/\lambda_i` (``expm1``, so a small
    :math:`\lambda_i` loses no digits); on the training points
    :math:`f_t(X) = V\mathrm{diag}(1 - e^{-\lambda_i t})V^\top y`. ``t = inf`` is the limit, the
    minimum-norm interpolant :math:`k(x, X) K^{+} y`.

    **Null space.** Eigenvalues :math:`\lambda_i \le` ``rcond`` :math:`\cdot\,\lambda_{\max}`
    (default ``rcond`` :math:`= n\varepsilon`, :math:`\varepsilon = 2.2\cdot 10^{-16}`, the cut of
    numpy's ``matrix_rank`` and ``lstsq``) count as 0 and get gain 0: a float64 eigensolver cannot
    resolve them, and along an exact null direction of a Gram matrix gradient flow does not move
    (the residual keeps its initial component there, and :math:`k(x, X)` of a test point has no
    component there). So the predictions stay bounded as :math:`t \to \infty` and converge to the
    pseudo-inverse solution, with the rank that ``numpy.linalg.lstsq(K, y, rcond=rcond)`` uses.

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
        Times :math:`\ge 0`; ``inf`` gives the limit. An empty ``t`` gives an empty result of shape
        (0, m) (or (0, m, c)).
    rcond : float, optional
        Eigenvalues at most ``rcond * max(eigenvalue)`` count as 0 (see above); default
        :math:`n\varepsilon`. ``rcond=0`` keeps every positive eigenvalue.

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
        NaN times, ``t`` of more than one dimension, or a negative or non-finite ``rcond``.
    TypeError
        If ``t`` or ``rcond`` is not real, or an array argument is not a real numeric array.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> X = nk.data.sphere(5, 3, seed=0)
    >>> K, y = nk.ntk(X, depth=1), X[:, 0]
    >>> f = nk.gradient_flow(K, y, t=[0.0, 1e9])
    >>> f.shape, bool(np.allclose(f[0], 0)), bool(np.allclose(f[1], y))
    ((2, 5), True, True)

    A singular K (a rank-one matrix): the flow converges to the pseudo-inverse solution.

    >>> K1 = np.ones((3, 3))
    >>> nk.gradient_flow(K1, [0.0, 1.0, 2.0], t=np.inf).round(12).tolist()
    [1.0, 1.0, 1.0]
    """
    K, y, K_test, floor = _check_inputs(K_train, y, K_test)
    ts = _times(t, K.device)
    n = K.shape[0]
    rcond = n * _EPS if rcond is None else check_variance(rcond, "rcond", positive=False)
    lam, V = torch.linalg.eigh(K)
    if n and float(lam[0]) < -floor:
        raise ValueError(_psd_message(float(lam[0]), floor, K_train))
    pos = lam > rcond * float(lam[-1]) if n else lam > 0
    lam = torch.where(pos, lam, 1.0)               # the null directions' gains are set to 0 below
    proj = V.T @ y                                 # (n,) or (n, c)
    left = None if K_test is None else K_test @ V  # (m, n)
    out = []
    for ti in ts.reshape(-1):
        decay = torch.where(pos, -torch.expm1(-lam * ti), 0.0)  # 1 - e^{-lambda t}, 0 along the null space
        g = decay if left is None else decay / lam
        g = g if proj.ndim == 1 else g[:, None]
        out.append(V @ (g * proj) if left is None else left @ (g * proj))
    m = n if K_test is None else K_test.shape[0]
    out = torch.stack(out) if out else K.new_zeros((0, m, *proj.shape[1:]))
    return returns_like(K_train, out[0] if ts.ndim == 0 else out)
