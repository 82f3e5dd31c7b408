r"""Gram-matrix spectra and decay exponents: the tools that read a spectrum, on any domain.

* :func:`gram_eigenvalues`: the eigenvalues of :math:`K/n` for a Gram matrix of ``n`` points,
  which approximate the kernel's integral-operator eigenvalues;
* :func:`aliased_eigenvalues`: those eigenvalues exactly, for equispaced points on the circle;
* :func:`fit_decay`: a power-law exponent fitted over a window, refusing round-off;
* :func:`local_exponents`: the exponent :math:`d\log v/d\log i` point by point.

The operator's eigenvalues on the sphere (Funk–Hecke) and their multiplicities are in
:mod:`ntklib.sphere`.

Kinds: :func:`gram_eigenvalues` keeps its input's kind (numpy in, numpy out; a torch tensor in,
a tensor out on its device); the others read numpy arrays or tensors and return numpy arrays or
Python floats, since what they return goes into fits and figures.

Examples
--------
>>> import numpy as np, ntklib as nk
>>> k = np.arange(1, 200)
>>> slope, _ = nk.fit_decay(3.0 * k**-2.5, (10, 150), index=k)
>>> round(slope, 12)
-2.5
"""
from __future__ import annotations

import numpy as np
import torch

from ._arrays import check_budget, check_gram, check_int

__all__ = ["gram_eigenvalues", "aliased_eigenvalues", "fit_decay", "local_exponents"]

ALIASED_MAX_BYTES = 8 * 10**8  # default memory limit of aliased_eigenvalues


def _numpy(x, name: str) -> np.ndarray:
    """A float64 numpy copy of an array_like or a torch tensor (on any device); NaN/inf kept."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers; got {type(x).__name__}") from exc
    if a.dtype.kind not in "biuf":  # strings, objects; complex parts would be dropped with a warning only
        raise TypeError(f"{name} must be an array of real numbers; got dtype {a.dtype}")
    return a.astype(np.float64)


def gram_eigenvalues(K):
    r"""Eigenvalues of :math:`K/n` in decreasing order, for a symmetric Gram matrix of ``n`` points.

    With points drawn from a probability measure, the eigenvalues of :math:`K/n` approximate those
    of the kernel's integral operator, each :math:`\mu_k` of a sphere kernel appearing about
    :math:`N(d, k)` times (compare :func:`~ntklib.sphere.expand_multiplicities`). Below about
    :math:`10^{-13}` of the largest they are round-off (see :func:`fit_decay`).

    Parameters
    ----------
    K : array_like or torch.Tensor, shape (n, n)
        A symmetric matrix (to ``GRAM_RTOL`` = 1e-10 of its largest entry, the
        tolerance of every Gram matrix in ntklib), finite. Its symmetric part
        :math:`(K + K^\top)/2` is diagonalized.

    Returns
    -------
    lam : ndarray or torch.Tensor, shape (n,)
        Float64, largest first; a tensor (on ``K``'s device) for a tensor ``K``.

    Raises
    ------
    TypeError
        ``K`` not an array of real numbers.
    ValueError
        ``K`` not square, not finite, or not symmetric.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> nk.gram_eigenvalues(np.array([[2.0, 1.0], [1.0, 2.0]]))   # (3, 1) / n
    array([1.5, 0.5])
    >>> import torch
    >>> nk.gram_eigenvalues(torch.eye(4, dtype=torch.float64))
    tensor([0.2500, 0.2500, 0.2500, 0.2500], dtype=torch.float64)
    """
    A = check_gram(K, "K")  # float64, on K's device, symmetrized
    if isinstance(K, torch.Tensor):
        return torch.linalg.eigvalsh(A).flip(0) / A.shape[0]
    return np.linalg.eigvalsh(A.numpy())[::-1] / A.shape[0]


def aliased_eigenvalues(mu, n, *, max_bytes=ALIASED_MAX_BYTES):
    r"""Eigenvalues of :math:`K/n` for ``n`` equispaced points on the circle, from its :math:`\mu_k`.

    The Gram matrix of :math:`x_j = (\cos 2\pi j/n, \sin 2\pi j/n)` is circulant; its eigenvector
    :math:`e^{2\pi i j m/n}` collects every frequency :math:`j + mn` that aliases to it:

    .. math:: \lambda_j = \sum_{m\in\mathbb Z} \mu_{|j + mn|}, \qquad j = 0, \dots, n-1,

    with :math:`\mu_k` the circle's eigenvalues (:func:`~ntklib.sphere.sphere_eigenvalues` with ``d = 2``;
    each appears twice for :math:`k \ge 1`, as :math:`\pm k`).

    Parameters
    ----------
    mu : array_like, shape (kmax + 1,)
        :math:`\mu_0, \dots, \mu_{k_{\max}}`. The sums are truncated at :math:`k_{\max}`; take it
        well beyond ``n`` (the neglected tail is :math:`\sum_{k > k_{\max}} \mu_k` per eigenvalue).
    n : int
        Number of points, ``n >= 1``.
    max_bytes : int, default ALIASED_MAX_BYTES = 8e8
        The largest memory allowed for the result and its work arrays, ``8 (2 n + 3 len(mu))``
        bytes (n = 10**8 needs 1.6 GB); raise it to allow more. The cost is
        :math:`O(n + k_{\max})`.

    Returns
    -------
    lam : ndarray, shape (n,)
        :math:`\lambda_0, \dots, \lambda_{n-1}` in the order of :math:`j` (not sorted).

    Raises
    ------
    TypeError
        ``n`` not an int.
    ValueError
        ``n < 1``, or ``mu`` not a non-empty one-dimensional array.
    TooLargeError
        The memory estimate is over ``max_bytes`` (a ValueError).

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> mu = 0.5 ** np.arange(60)                 # mu_k = 2^-k
    >>> lam = nk.aliased_eigenvalues(mu, 4)
    >>> # the Gram matrix K_ij = kappa(cos(2 pi (i - j) / 4)) of the same
    >>> # kernel, by its series
    >>> x = 2 * np.pi * np.arange(4) / 4
    >>> def kappa(t):
    ...     return mu[0] + 2 * sum(mu[k] * np.cos(k * t) for k in range(1, 60))
    >>> K = kappa(x[:, None] - x[None, :])
    >>> np.allclose(np.sort(lam), np.sort(nk.gram_eigenvalues(K)))
    True
    """
    mu = _numpy(mu, "mu")
    n = check_int(n, "n", 1, "the number of points")
    if mu.ndim != 1 or mu.size == 0:
        raise ValueError(f"mu must be a non-empty one-dimensional array (mu_0, ..., mu_kmax); got shape {mu.shape}")
    check_budget(8 * (2 * n + 3 * mu.size), max_bytes, what=f"aliased_eigenvalues(n={n}) of {mu.size} mu_k",
                 unit="bytes", knob="max_bytes")
    # frequency f in (-kmax, kmax] lands on j = f mod n: mu_0 once, mu_k for k >= 1 as +k and -k
    kmax = len(mu) - 1
    k = np.arange(1, kmax + 1)
    lam = np.bincount(k % n, weights=mu[1:], minlength=n)
    lam += np.bincount((-k) % n, weights=mu[1:], minlength=n)
    lam[0] += mu[0]
    return lam


def fit_decay(values, window, *, index=None, floor=1e-13):
    r"""Slope :math:`a` and intercept :math:`b` of :math:`\log v_i \approx a \log i + b` over a window.

    A least-squares line in log-log coordinates through ``values[start:stop]``. It refuses a window
    that reaches round-off, since a slope fitted to round-off is not a decay exponent.

    Parameters
    ----------
    values : array_like, shape (m,)
        The spectrum (positive in the window).
    window : tuple of two ints
        ``(start, stop)``, positions into ``values`` (``stop`` excluded), at least 2 values.
    index : array_like, shape (m,), optional
        The abscissa of each value. Default ``1, 2, ..., m``: the 1-based index, for a spectrum
        listed from its largest. Pass ``np.arange(len(mu))`` for degrees :math:`k`.
    floor : float, default 1e-13
        Values at or below ``floor`` times the largest are refused as round-off (float64 Gram
        spectra are noise below about ``1e-13`` of their top).

    Returns
    -------
    slope : float
        The decay exponent :math:`a` (negative for a decaying spectrum).
    intercept : float
        :math:`b`, so that :math:`v \approx e^{b} i^{a}`.

    Raises
    ------
    ValueError
        A window of fewer than 2 values, past the end, or not of two entries; an infinite value
        anywhere (NaN is allowed outside the window); ``index`` of another length; a value in
        the window at or below ``floor`` times the largest, not positive, or NaN (the message
        names the first such position); an abscissa that is not positive in the window.
    TypeError
        ``window`` not a sequence, or its entries not ints.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> i = np.arange(1, 101)
    >>> slope, intercept = nk.fit_decay(2.0 * i**-1.5, (5, 100))
    >>> round(slope, 12), round(float(np.exp(intercept)), 12)
    (-1.5, 2.0)
    >>> k = np.arange(40)                  # degrees from k = 0; fit from k = 1
    >>> mu = np.r_[1.0, k[1:] ** -3.0]
    >>> round(nk.fit_decay(mu, (1, 40), index=k)[0], 12)
    -3.0
    """
    v = _numpy(values, "values")
    if v.ndim != 1:
        raise ValueError(f"values must be one-dimensional; got shape {v.shape}")
    x = np.arange(1, len(v) + 1, dtype=np.float64) if index is None else _numpy(index, "index")
    if x.shape != v.shape:
        raise ValueError(f"index must have the shape of values {v.shape}; got {x.shape}")
    try:
        entries = tuple(window)
    except TypeError as exc:
        raise TypeError(f"window must be a pair (start, stop) of ints; got {window!r}") from exc
    if len(entries) != 2:
        raise ValueError(f"window must be a pair (start, stop), stop excluded (no step); got {len(entries)} entries: "
                         f"{window!r}")
    start, stop = check_int(entries[0], "window start", 0), check_int(entries[1], "window stop", 0)
    if stop - start < 2 or stop > len(v):
        raise ValueError(f"window must hold at least 2 values inside the array of {len(v)}; got {window}")
    infinite = np.flatnonzero(np.isinf(v))
    if infinite.size:  # the floor is relative to the largest value, which must be finite
        j = int(infinite[0])
        where = "inside" if start <= j < stop else "outside"
        raise ValueError(f"values[{j}] = {v[j]} ({where} the window {window}): values must be finite (NaN is allowed "
                         "outside the window); the round-off floor is relative to the largest finite value")
    top = np.nanmax(np.abs(v))
    w = v[start:stop]
    bad = np.flatnonzero(~(w > floor * top))
    if bad.size:
        j = start + int(bad[0])
        raise ValueError(
            f"values[{j}] = {v[j]:.3g} is at or below {floor:g} x the largest value (or not positive): "
            f"the window {window} reaches round-off; fit a window that stops before position {j}"
        )
    if np.any(~(x[start:stop] > 0)):
        raise ValueError("index must be positive inside the window (log scale)")
    slope, intercept = np.polyfit(np.log(x[start:stop]), np.log(w), 1)
    return float(slope), float(intercept)


def local_exponents(values, index):
    r"""The local decay exponent :math:`d\log v/d\log i`, point by point.

    Centred differences in :math:`(\log i, \log v)` (second order on non-uniform grids, one-sided
    at the two ends: ``numpy.gradient``). For a power law :math:`v = c\, i^{a}` it is :math:`a`
    everywhere; for a kernel that decays faster than any power it keeps falling.

    Parameters
    ----------
    values : array_like, shape (m,)
        Positive values, ``m >= 2``.
    index : array_like, shape (m,)
        Positive, strictly increasing abscissae (indices or degrees).

    Returns
    -------
    exponents : ndarray, shape (m,)
        :math:`d\log v/d\log i` at each abscissa.

    Raises
    ------
    ValueError
        Shapes that differ or are not one-dimensional, fewer than 2 values, a value or an abscissa
        that is not positive (or NaN), or abscissae that do not increase.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> k = np.arange(1.0, 6.0)
    >>> nk.local_exponents(k**-3.0, k)
    array([-3., -3., -3., -3., -3.])
    >>> # exp(-k): faster than any power
    >>> np.round(nk.local_exponents(np.exp(-k), k), 2)
    array([-1.44, -2.09, -3.06, -4.04, -4.48])
    """
    v, x = _numpy(values, "values"), _numpy(index, "index")
    if v.ndim != 1 or v.shape != x.shape:
        raise ValueError(f"values and index must be one-dimensional of the same length; got {v.shape} and {x.shape}")
    if len(v) < 2:
        raise ValueError(f"need at least 2 values for a derivative; got {len(v)}")
    if np.any(~(v > 0)) or np.any(~(x > 0)):
        raise ValueError("values and index must be positive (log scale)")
    if np.any(np.diff(x) <= 0):
        raise ValueError("index must be strictly increasing")
    return np.gradient(np.log(v), np.log(x))
