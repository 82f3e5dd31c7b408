"""Hypothesis strategies for tests/test_invariants.py: seeded point sets and images.

Hypothesis draws only small integers (a seed, sizes, flags); the arrays come from numpy's seeded
generator. That keeps the examples fast and reproducible, and a failure prints a seed that rebuilds
the array exactly (``points_from(seed, ...)``).

The point sets are *spread*: distinct rows are at least :data:`MIN_ANGLE_DEG` degrees apart as lines
(``|cos| <= cos(MIN_ANGLE_DEG)``), so that the kernels' round-off amplification is bounded (the
steepest dual, the step/ReLU-NTK ``kappa_0``, has slope ``1/(pi sin theta)``, unbounded at
``theta -> 0``) and tolerances can be derived. Exactly parallel rows (a copy, a multiple by -2, both
exact in floating point) can be added: the library handles ``rho = +-1`` exactly, with no amplification.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import note
from hypothesis import strategies as st

#: distinct rows of a point set are at least this many degrees apart as lines
MIN_ANGLE_DEG = 30.0
COS_MAX = math.cos(math.radians(MIN_ANGLE_DEG))

seeds = st.integers(0, 2**32 - 1)


def spread_directions(rng, n: int, d: int) -> np.ndarray:
    """``n`` unit vectors in R^d, pairwise ``|cos| <= COS_MAX`` (rejection sampling; d >= 3, n <= 6)."""
    out = []
    while len(out) < n:
        u = rng.standard_normal(d)
        u /= np.linalg.norm(u)
        if all(abs(u @ v) <= COS_MAX for v in out):
            out.append(u)
    return np.array(out)


def points_from(seed: int, n: int, d: int, log10_q=(-3.0, 3.0), parallel=0) -> np.ndarray:
    """Spread points with squared norms ``10**uniform(*log10_q)`` and ``parallel`` extra rows
    exactly parallel to earlier ones (a copy of row 0, then -2 times row 1)."""
    rng = np.random.default_rng(seed)
    X = spread_directions(rng, n, d) * np.sqrt(10.0 ** rng.uniform(*log10_q, size=n))[:, None]
    extra = [X[0], -2.0 * X[min(1, n - 1)]][:parallel]
    return np.vstack([X, *extra]) if extra else X


@st.composite
def points(draw, n=(2, 5), d=(3, 4), log10_q=(-3.0, 3.0), parallel=True):
    """A spread point set (see :func:`points_from`), optionally with exactly parallel extra rows."""
    k = draw(st.integers(0, 2)) if parallel else 0
    args = (draw(seeds), draw(st.integers(*n)), draw(st.integers(*d)), log10_q, k)
    note(f"points_from{args}")  # the exact array (its printed repr is rounded)
    return points_from(*args)


@st.composite
def point_pairs(draw, n=(2, 4), m=(1, 3), d=(3, 4), log10_q=(-3.0, 3.0)):
    """Two point sets (X, Y) with the same number of features, Y's rows spread against X's too."""
    n, m, d = draw(st.integers(*n)), draw(st.integers(*m)), draw(st.integers(*d))
    args = (draw(seeds), n + m, d, log10_q)
    note(f"points_from{args} split at {n}")
    Z = points_from(*args)
    return Z[:n], Z[n:]


@st.composite
def images(draw, n=(2, 3), c=(1, 2), h=(2, 4), w=(2, 4)):
    """Seeded standard normal images (n, C, H, W), small enough for the GAP CNTK's (HW)^2 pairs."""
    shape = tuple(draw(st.integers(*r)) for r in (n, c, h, w))
    seed = draw(seeds)
    note(f"np.random.default_rng({seed}).standard_normal({shape})")
    return np.random.default_rng(seed).standard_normal(shape)
