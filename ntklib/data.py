"""Inputs for the chapters: points on spheres and circles (generated, seeded, offline)."""
from __future__ import annotations

import numpy as np

from ._arrays import check_int

__all__ = ["sphere", "circle"]


def sphere(n, d, *, seed):
    """``n`` points drawn uniformly on the unit sphere S^(d-1) in R^d (normalized Gaussians).

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> X = nk.data.sphere(5, 3, seed=0)
    >>> X.shape, bool(np.allclose(np.linalg.norm(X, axis=1), 1))
    ((5, 3), True)
    """
    n, d = check_int(n, "n", 1), check_int(d, "d", 2)
    g = np.random.default_rng(seed).standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def circle(n):
    """``n`` equispaced points on the unit circle, angles ``2 pi j / n`` (``endpoint=False``: the point
    at angle 2 pi would repeat the one at 0). Returns ``(X, angles)`` with ``X`` of shape (n, 2).

    Their Gram matrix under a dot-product kernel is circulant, with eigenvalues ``n`` times the
    aliased sums of the circle's eigenvalues (:func:`ntklib.spectra.aliased_eigenvalues`).

    Examples
    --------
    >>> import ntklib as nk
    >>> X, angles = nk.data.circle(4)
    >>> angles.round(4).tolist()
    [0.0, 1.5708, 3.1416, 4.7124]
    """
    n = check_int(n, "n", 1)
    angles = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1), angles
