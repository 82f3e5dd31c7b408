r"""Eigenvalues of dot-product kernels on the sphere: spherical harmonics and the Funk–Hecke formula.

A kernel :math:`k(x, y) = \kappa(x\cdot y)` on :math:`S^{d-1}` (uniform probability measure) is
diagonal in the spherical harmonics; the harmonics of degree :math:`k` span a space of dimension
:math:`N(d, k)` and share the eigenvalue

.. math::

    \mu_k = \frac{\omega_{d-2}}{\omega_{d-1}} \int_{-1}^{1} \kappa(t)\, P_k^{(d)}(t)\,
    (1 - t^2)^{(d-3)/2}\, dt
    = \frac{\Gamma(d/2)}{\sqrt\pi\,\Gamma((d-1)/2)} \int_0^\pi \kappa(\cos\theta)\,
    P_k^{(d)}(\cos\theta)\, \sin^{d-2}\theta\, d\theta ,

with :math:`P_k^{(d)}` the Gegenbauer polynomial of index :math:`(d-2)/2` normalized to
:math:`P_k^{(d)}(1) = 1` (Legendre for :math:`d = 3`, Chebyshev for :math:`d = 2`), and
:math:`\kappa(t) = \sum_k \mu_k N(d, k) P_k^{(d)}(t)`.

**Why the tail is hard.** The ReLU NTK has :math:`\mu_k \sim k^{-d}` and its NNGP
:math:`\mu_k \sim k^{-d-2}`. The integral of an :math:`O(1)` oscillating integrand has to come out as,
say, :math:`10^{-15}`. Any float64 quadrature then returns round-off, however many nodes it uses.
:func:`sphere_eigenvalues` integrates in :math:`\theta`. There :math:`\kappa(\cos\theta)` is smooth
for the ReLU kernels, and an algebraic endpoint singularity such as :math:`\theta^\gamma` is resolved
by panels graded geometrically into both ends. It estimates the error of every :math:`\mu_k`. Where
float64 cannot reach the requested relative accuracy, it recomputes that part of the spectrum with
:math:`\kappa` evaluated in mpmath and the Funk–Hecke sums in exact 130-bit fixed point, for a
:class:`SphereKernel`, which knows its exact form. For a plain callable it returns NaN there and
warns.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
from scipy import special

from ._arrays import check_int, per_layer
from .kernels import kappa as _kappa
from .kernels import resolve_layers

__all__ = [
    "multiplicity",
    "legendre",
    "SphereKernel",
    "sphere_eigenvalues",
    "UnreliableEigenvalueWarning",
    "gram_eigenvalues",
    "aliased_eigenvalues",
    "expand_multiplicities",
    "degree_of_index",
    "fit_decay",
    "local_exponents",
]

_Q = 24                  # Gauss–Legendre nodes per panel
_Q_CHECK = 20            # a coarser rule on the same panels: the difference estimates the discretization error
_GRADING = 40            # geometric panels into each endpoint, down to 2^-40 of a bulk panel
_FIXED_BITS = 130        # fixed-point scale of the high-precision path (~ 39 digits)
_MP_DPS = 45             # mpmath digits for kernel values and nodes


class UnreliableEigenvalueWarning(RuntimeWarning):
    """Some eigenvalues could not be computed to the requested accuracy in float64."""


def _check_d(d) -> int:
    return check_int(d, "d", 2, "the sphere is S^(d-1) in R^d")


def _check_k(k, name="k") -> int:
    return check_int(k, name, 0)


def multiplicity(d, k):
    r"""Dimension :math:`N(d, k)` of the spherical harmonics of degree :math:`k` on :math:`S^{d-1}`.

    :math:`N(d, k) = \frac{2k + d - 2}{k}\binom{k + d - 3}{d - 2}` for :math:`k \ge 1`, :math:`N(d, 0) = 1`
    (equivalently :math:`\binom{k+d-1}{d-1} - \binom{k+d-3}{d-1}`).

    Parameters
    ----------
    d : int
        Ambient dimension, ``d >= 2``.
    k : int or array of ints
        Degrees.

    Returns
    -------
    N : int (exact) for an int ``k``; float64 array for an array ``k`` (values pass 2**63 for large d, k)

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.multiplicity(3, 4), nk.multiplicity(2, 7), nk.multiplicity(10, 0)
    (9, 2, 1)
    >>> nk.multiplicity(5, [0, 1, 2])
    array([ 1.,  5., 14.])
    """
    d = _check_d(d)

    def exact(kk):
        kk = _check_k(kk)
        hi = math.comb(kk + d - 1, d - 1)
        lo = math.comb(kk + d - 3, d - 1) if kk >= 2 else 0
        return hi - lo

    if isinstance(k, numbers.Integral) and not isinstance(k, bool):
        return exact(k)
    arr = np.asarray(k)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"k must be an int or an array of ints; got dtype {arr.dtype}")
    return np.array([float(exact(int(v))) for v in arr.ravel()]).reshape(arr.shape)


def legendre(k, d, t):
    r"""The Legendre polynomial :math:`P_k^{(d)}(t)` of :math:`S^{d-1}`, normalized to :math:`P_k^{(d)}(1) = 1`.

    It is the Gegenbauer polynomial :math:`C_k^{\lambda}(t) / C_k^{\lambda}(1)` with
    :math:`\lambda = (d-2)/2`: Chebyshev :math:`T_k` for :math:`d = 2`, Legendre :math:`P_k` for
    :math:`d = 3` (all from ``scipy.special``). They satisfy
    :math:`P_{k+1} = \big((2k + d - 2)\, t\, P_k - k P_{k-1}\big)/(k + d - 2)`.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> float(nk.legendre(2, 3, 0.5))           # (3 t^2 - 1) / 2
    -0.125
    >>> float(nk.legendre(5, 7, 1.0))
    1.0
    """
    k, d = _check_k(k), _check_d(d)
    t = np.asarray(t, dtype=np.float64)
    if np.any(np.abs(t) > 1) or not np.all(np.isfinite(t)):
        raise ValueError("t must lie in [-1, 1]")
    if d == 2:
        return special.eval_chebyt(k, t)
    if d == 3:
        return special.eval_legendre(k, t)
    lam = (d - 2) / 2
    return special.eval_gegenbauer(k, lam, t) / special.eval_gegenbauer(k, lam, 1.0)


class SphereKernel:
    r"""The kernel :math:`\kappa(u)` of :func:`~ntklib.kernels.ntk` / :func:`~ntklib.kernels.nngp`
    on the unit sphere, as an object that knows its exact form.

    Calling it evaluates :func:`~ntklib.kernels.kappa` in float64. Because it knows its layers,
    :func:`sphere_eigenvalues` can also evaluate it in arbitrary precision (closed-form activations:
    ReLU\ :sup:`k`, step, erf, sin, cos, identity) and so resolve eigenvalues far below float64's
    reach.

    Examples
    --------
    >>> import ntklib as nk
    >>> k = nk.SphereKernel(depth=2)
    >>> k
    SphereKernel(depth=2, activation='relu', kernel='ntk', ...)
    >>> float(k(1.0))
    3.0
    """

    def __init__(self, depth, activation="relu", kernel="ntk", weight_var=None, bias_var=0.0):
        if kernel not in ("ntk", "nngp"):
            raise ValueError(f"kernel must be 'ntk' or 'nngp'; got {kernel!r}")
        self.layers = resolve_layers(depth, activation, weight_var, bias_var)
        # which layers use c_sigma (then the high-precision path uses its exact value, not the float)
        self._default_weight = [wv is None for wv in per_layer(weight_var, "weight_var", len(self.layers))]
        self.depth, self.activation, self.kernel = depth, activation, kernel
        self.weight_var, self.bias_var = weight_var, bias_var

    def __repr__(self):
        return (
            f"SphereKernel(depth={self.depth!r}, activation={self.activation!r}, kernel={self.kernel!r}, "
            f"weight_var={self.weight_var!r}, bias_var={self.bias_var!r})"
        )

    def __call__(self, u):
        return _kappa(u, depth=self.depth, activation=self.activation, kernel=self.kernel,
                      weight_var=self.weight_var, bias_var=self.bias_var)

    def mp_values(self, us):
        """:math:`\\kappa(u)` for each mpmath number ``u`` in ``us``, at the current mpmath precision."""
        import mpmath as mp

        b = mp.mpf(self.bias_var)
        consts = []
        q = 1 + b  # diagonal Sigma^(h)(x, x) on the unit sphere, the same for every point
        for layer, default in zip(self.layers, self._default_weight):
            act = layer.activation
            w = act._mp_c_sigma() if default else mp.mpf(layer.weight_var)
            consts.append((act, w, q))
            q = w * act._mp_duals(q, q, mp.mpf(1))[0] + b
        out = []
        for u in us:
            sigma = u + b
            theta = sigma
            for act, w, q in consts:
                rho = max(min(sigma / q, mp.mpf(1)), mp.mpf(-1))
                e, ed = act._mp_duals(q, q, rho)
                sigma = w * e + b
                theta = theta * w * ed + sigma
            out.append(theta if self.kernel == "ntk" else sigma)
        return out


# ------------------------------------------------------------------------------------------------
# the quadrature rule in theta
# ------------------------------------------------------------------------------------------------
def _panel_edges(kmax: int) -> np.ndarray:
    """Panel end points in [0, pi]: uniform panels of width ~16/kmax (2.5 periods of P_kmax per
    panel) and panels graded geometrically into both endpoints."""
    nmid = math.ceil(max(kmax, 1) * math.pi / 16) + 8
    bulk = np.linspace(0.0, math.pi, nmid + 1)
    graded = (math.pi / nmid) * 0.5 ** np.arange(1, _GRADING + 1)
    return np.unique(np.concatenate([bulk, graded, math.pi - graded]))


def _rule(edges: np.ndarray, q: int):
    z, w = np.polynomial.legendre.leggauss(q)
    a, b = edges[:-1, None], edges[1:, None]
    theta = (a + (b - a) * (z + 1) / 2).ravel()
    weight = ((b - a) / 2 * w).ravel()
    return theta, weight


def _norm_const(d: int) -> float:
    """omega_{d-2} / omega_{d-1} for the integral in theta: Gamma(d/2) / (sqrt(pi) Gamma((d-1)/2))."""
    return math.exp(math.lgamma(d / 2) - 0.5 * math.log(math.pi) - math.lgamma((d - 1) / 2))


def _funk_hecke_sums(f: np.ndarray, t: np.ndarray, d: int, kmax: int):
    """sum_i f_i P_k(t_i) and sum_i |f_i P_k(t_i)| for k = 0..kmax, by the three-term recurrence."""
    mu, size = np.empty(kmax + 1), np.empty(kmax + 1)
    absf = np.abs(f)
    p_prev, p = None, np.ones_like(t)
    for k in range(kmax + 1):
        mu[k], size[k] = f @ p, absf @ np.abs(p)
        nxt = t.copy() if k == 0 else ((2 * k + d - 2) * t * p - k * p_prev) / (k + d - 2)
        p_prev, p = p, nxt
    return mu, size


def _kappa_values(kappa, t):
    values = np.asarray(kappa(t), dtype=np.float64)
    if values.shape != t.shape or not np.all(np.isfinite(values)):
        raise ValueError("kappa must return a finite float array of the shape of its argument on [-1, 1]")
    return values


def _float64_eigenvalues(kappa, d, kmax, edges):
    mus = []
    for q in (_Q, _Q_CHECK):
        theta, weight = _rule(edges, q)
        t = np.cos(theta)
        values = _kappa_values(kappa, t)
        base = _norm_const(d) * weight * np.sin(theta) ** (d - 2)
        mu, size = _funk_hecke_sums(base * values, t, d, kmax)
        if q == _Q:
            # the nodes t_i are rounded to float64 (about one ulp). Where kappa is singular at
            # t = +-1 (kappa(1 - s) ~ s^nu with nu < 1) one ulp of t moves kappa by far more than one
            # ulp of kappa: bound that by twice the change to the next float inwards (|P_k| <= 1).
            # Away from the endpoints kappa' is moderate and the 16 eps below covers it.
            near = np.flatnonzero(1 - np.abs(t) < 1e-2)
            inward = _kappa_values(kappa, np.nextafter(t[near], 0.0))
            node = 2 * float(np.sum(np.abs(base[near] * (inward - values[near]))))
            mu_main, size_main = mu, size
        mus.append(mu)
    mu, mu_check = mus
    # rounding of the sums and of the nodes: the cancellation is measured by `size`; the rounded
    # nodes move P_k(t_i) by ~ k ulp near the endpoints, so the budget grows with k. Measured
    # against the high-precision path (tests/test_spectra.py): up to ~0.13 k eps * size for
    # d = 2 and ~0.04 k for d = 3 at k <= 1000, within (16 + k / 8) eps * size. Discretization:
    # the coarser rule's difference (which also carries the round-off of a second set of nodes).
    k = np.arange(kmax + 1)
    err = (16 + k / 8) * np.finfo(np.float64).eps * size_main + node + np.abs(mu - mu_check)
    return mu_main, err


def _mp_gauss_legendre(q: int):
    """Gauss–Legendre nodes and weights on [-1, 1] at the current mpmath precision (Newton from float64)."""
    import mpmath as mp

    z0, _ = np.polynomial.legendre.leggauss(q)
    nodes, weights = [], []
    for x in z0:
        x = mp.mpf(x)
        for _ in range(4):
            p, dp = mp.legendre(q, x), q * (x * mp.legendre(q, x) - mp.legendre(q - 1, x)) / (x * x - 1)
            x -= p / dp
        dp = q * (x * mp.legendre(q, x) - mp.legendre(q - 1, x)) / (x * x - 1)
        nodes.append(x)
        weights.append(2 / ((1 - x * x) * dp * dp))
    return nodes, weights


def _high_precision_eigenvalues(kernel: SphereKernel, d: int, kmax: int, edges) -> np.ndarray:
    """mu_0..mu_kmax with kappa in mpmath and the Funk–Hecke sums in exact fixed point."""
    import mpmath as mp

    one = 1 << _FIXED_BITS
    with mp.workdps(_MP_DPS):
        z, w = _mp_gauss_legendre(_Q)
        c = mp.gamma(mp.mpf(d) / 2) / (mp.sqrt(mp.pi) * mp.gamma(mp.mpf(d - 1) / 2))
        thetas, weights = [], []
        for a, b in zip(edges[:-1], edges[1:]):
            a, b = mp.mpf(a), mp.mpf(b)
            thetas += [a + (b - a) * (zi + 1) / 2 for zi in z]
            weights += [(b - a) / 2 * wi for wi in w]
        us = [mp.cos(th) for th in thetas]
        values = kernel.mp_values(us)
        fixed = lambda x: int(mp.nint(x * one))  # noqa: E731
        t = np.array([fixed(u) for u in us], dtype=object)
        f = np.array([fixed(c * wi * mp.sin(th) ** (d - 2) * v) for wi, th, v in zip(weights, thetas, values)],
                     dtype=object)
    mu = np.empty(kmax + 1)
    scale = one * one
    p_prev, p = None, np.full(t.shape, one, dtype=object)
    for k in range(kmax + 1):
        mu[k] = int(np.dot(f, p)) / scale  # exact integer sum, correctly rounded to float64
        nxt = t.copy() if k == 0 else ((2 * k + d - 2) * ((t * p) >> _FIXED_BITS) - k * p_prev) // (k + d - 2)
        p_prev, p = p, nxt
    return mu


def sphere_eigenvalues(kappa, d, kmax, *, rtol=1e-6, return_error=False, path="auto"):
    r"""Eigenvalues :math:`\mu_0, \dots, \mu_{k_{\max}}` of a dot-product kernel on :math:`S^{d-1}`.

    Uniform probability measure; :math:`\mu_k` is the eigenvalue of each of the :math:`N(d, k)`
    spherical harmonics of degree :math:`k` (see :mod:`ntklib.spectra` for the formula).

    Parameters
    ----------
    kappa : SphereKernel or callable
        A :class:`SphereKernel` (exact, any precision), or a vectorized float64 function of
        :math:`t\in[-1, 1]` (numpy array in, array of the same shape out).
    d : int
        Dimension of the ambient space, ``d >= 2`` (the circle is ``d = 2``).
    kmax : int
        Largest degree.
    rtol : float, default 1e-6
        Requested relative accuracy of every :math:`\mu_k`.
    return_error : bool, default False
        Also return the estimated absolute error of each :math:`\mu_k` (0 where the high-precision
        path computed it).
    path : {"auto", "float64", "exact"}, default "auto"
        ``"auto"``: float64, and the high-precision path (or NaN, see Notes) where float64 misses
        ``rtol``. ``"float64"``: the float64 quadrature for every degree, unreliable ones included,
        without NaN or warning (the error estimate says which to trust); to study round-off.
        ``"exact"``: the high-precision path for every degree; needs a :class:`SphereKernel` with
        closed-form activations.

    Returns
    -------
    mu : ndarray, shape (kmax + 1,)
    err : ndarray, shape (kmax + 1,), if ``return_error``

    Raises
    ------
    ValueError
        Bad ``d``, ``kmax``, ``rtol`` or ``path``; ``kappa`` not finite or of the wrong shape;
        ``path="exact"`` for a kernel without a closed form.
    TypeError
        ``kappa`` neither a :class:`SphereKernel` nor callable; ``path="exact"`` for a plain
        callable.

    Notes
    -----
    Gauss–Legendre quadrature in :math:`\theta` on panels (about 2.5 periods of
    :math:`P_{k_{\max}}` each, and graded geometrically into both endpoints, so that
    :math:`\kappa(\cos\theta) \sim \theta^\gamma` is integrated accurately), with the recurrence for
    :math:`P_k`. Each :math:`\mu_k` gets an error estimate, the sum of three terms: round-off of the
    sums and of the float64 nodes, :math:`(16 + k/8)\,\epsilon\sum_i |f_i P_k(t_i)|` (a rounded node
    moves :math:`P_k(t_i)` by up to about :math:`k` ulps, hence the growth with :math:`k`);
    :math:`2\sum_i |c_i|\,|\kappa(t_i') - \kappa(t_i)|` over the nodes with :math:`1 - |t_i| < 10^{-2}`
    (:math:`f_i = c_i\kappa(t_i)`, :math:`t_i'` the next float inwards from :math:`t_i`), which is large only where :math:`\kappa` is singular at :math:`\pm 1` (the step
    kernels on the circle); and the
    difference to a coarser rule on the same panels. The estimate takes the values of ``kappa``
    as exact to float64 rounding (a quadrature activation's own error, see
    :class:`~ntklib.activations.Activation`, is not in it). An eigenvalue is *reliable* if the
    estimate is at most ``rtol`` times its size (so a vanishing eigenvalue is never reliable in
    float64: it cannot be told from a tiny one). For a :class:`SphereKernel` with closed-form
    activations, the degrees up to the last unreliable one are recomputed with :math:`\kappa` in
    mpmath (45 digits) and the sums in exact 130-bit fixed point, on the same quadrature rule. For
    a plain callable, unreliable eigenvalues are NaN and an :class:`UnreliableEigenvalueWarning`
    names the first one. The high-precision values are accurate to about ``1e-35`` absolute, so
    vanishing eigenvalues come out at that level.

    Cost: the float64 path is :math:`O(k_{\max}^2)` flops (d = 3, kmax = 1000: about 0.1 s); the
    high-precision path takes a few seconds for kmax = 1000.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> mu = nk.sphere_eigenvalues(nk.SphereKernel(depth=1), d=3, kmax=6)
    >>> # the two-layer ReLU NTK: odd k >= 3 vanish
    >>> np.round(mu, 6) + 0.0
    array([0.5     , 0.333333, 0.078125, 0.      , 0.005208, 0.      , 0.001404])
    >>> mu = nk.sphere_eigenvalues(nk.SphereKernel(depth=3), d=3, kmax=1000)
    >>> # trace: sum_k N(d, k) mu_k -> kappa(1) = 4, with a k^-1 tail
    >>> K = np.arange(1001)
    >>> float(np.sum(nk.multiplicity(3, K) * mu))
    3.99...
    >>> # float64 round-off, measured against the high-precision path
    >>> kern = nk.SphereKernel(depth=2, kernel="nngp")
    >>> mu64, err = nk.sphere_eigenvalues(kern, 3, 200, path="float64",
    ...                                   return_error=True)
    >>> exact = nk.sphere_eigenvalues(kern, 3, 200, path="exact")
    >>> bool(np.all(np.abs(mu64 - exact) <= err))
    True
    """
    d = _check_d(d)
    kmax = _check_k(kmax, "kmax")
    if not (isinstance(rtol, numbers.Real) and 0 < rtol < 1):
        raise ValueError(f"rtol must be in (0, 1); got {rtol!r}")
    if not (isinstance(kappa, SphereKernel) or callable(kappa)):
        raise TypeError(f"kappa must be an nk.SphereKernel or a callable on [-1, 1]; got {type(kappa).__name__}")
    if path not in ("auto", "float64", "exact"):
        raise ValueError(f"path must be 'auto', 'float64' or 'exact'; got {path!r}")
    exact = isinstance(kappa, SphereKernel) and all(layer.activation.closed_form for layer in kappa.layers)
    edges = _panel_edges(kmax)
    if path == "exact":
        if not isinstance(kappa, SphereKernel):
            raise TypeError("path='exact' needs an nk.SphereKernel (a plain callable is float64 only)")
        if not exact:
            raise ValueError("path='exact' needs closed-form activations (ReLU^k, step, erf, sin, cos, identity)")
        mu = _high_precision_eigenvalues(kappa, d, kmax, edges)
        return (mu, np.zeros(kmax + 1)) if return_error else mu
    mu, err = _float64_eigenvalues(kappa, d, kmax, edges)
    bad = err > rtol * np.abs(mu)
    if path == "auto" and bad.any():
        last = int(np.flatnonzero(bad)[-1])
        if exact:
            mu[: last + 1] = _high_precision_eigenvalues(kappa, d, last, edges)
            err[: last + 1] = 0.0
        else:
            first = int(np.flatnonzero(bad)[0])
            warnings.warn(
                f"mu_k for k = {first} (and {int(bad.sum()) - 1} more up to k = {last}) cannot be computed to "
                f"rtol={rtol} in float64: they are at the round-off level of the Funk-Hecke integral. They are "
                "NaN; pass an nk.SphereKernel (closed-form activations) for exact values.",
                UnreliableEigenvalueWarning,
                stacklevel=2,
            )
            mu[bad] = np.nan
    return (mu, err) if return_error else mu


# ------------------------------------------------------------------------------------------------
# Gram-matrix spectra, degrees and decay exponents
# ------------------------------------------------------------------------------------------------
def gram_eigenvalues(K):
    r"""Eigenvalues of :math:`K/n` in decreasing order, for a symmetric Gram matrix of ``n`` points.

    With points drawn from a probability measure, the eigenvalues of :math:`K/n` approximate those of
    the kernel's integral operator, each :math:`\mu_k` appearing about :math:`N(d, k)` times.
    Below about :math:`10^{-13}` of the largest they are round-off (see :func:`fit_decay`).
    """
    K = np.asarray(K, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"K must be a square matrix; got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ValueError("K contains NaN or inf")
    if not np.allclose(K, K.T, rtol=1e-12, atol=1e-12 * np.abs(K).max()):
        raise ValueError("K must be symmetric")
    return np.linalg.eigvalsh((K + K.T) / 2)[::-1] / K.shape[0]


def aliased_eigenvalues(mu, n):
    r"""Eigenvalues of :math:`K/n` for ``n`` equispaced points on the circle, from the circle's :math:`\mu_k`.

    The Gram matrix is circulant; its eigenvector :math:`e^{2\pi i j m/n}` collects every frequency
    :math:`j + mn` that aliases to it: :math:`\lambda_j = \sum_{m\in\mathbb Z} \mu_{|j + mn|}`,
    :math:`j = 0, \dots, n-1` (sums truncated at ``len(mu) - 1``; take it well beyond ``n``).
    """
    mu = np.asarray(mu, dtype=np.float64)
    n = check_int(n, "n", 1)
    kmax = len(mu) - 1
    lam = np.zeros(n)
    for j in range(n):
        freqs = np.arange(j - n * (kmax // n + 1), kmax + 1, n)
        freqs = np.abs(freqs[np.abs(freqs) <= kmax])
        lam[j] = mu[freqs].sum()
    return lam


def expand_multiplicities(mu, d):
    """Each :math:`\\mu_k` repeated :math:`N(d, k)` times, in decreasing order: the operator's
    eigenvalues by index, to set beside :func:`gram_eigenvalues`."""
    mu = np.asarray(mu, dtype=np.float64)
    reps = [multiplicity(d, k) for k in range(len(mu))]
    return np.sort(np.repeat(mu, reps))[::-1]


def degree_of_index(i, d):
    r"""The degree :math:`k` of the spherical harmonics that the ``i``-th eigenvalue (0-based, in the
    order of decreasing :math:`\mu_k` when :math:`\mu_k` decreases with :math:`k`) belongs to.

    Since :math:`\sum_{j \le k} N(d, j) \sim 2k^{d-1}/(d-1)!`, the index grows like
    :math:`i \sim k^{d-1}`: a decay :math:`\mu_k \sim k^{-a}` reads :math:`\lambda_i \sim i^{-a/(d-1)}`.

    Examples
    --------
    >>> import ntklib as nk
    >>> # N(3, k) = 2k + 1 eigenvalues per degree
    >>> [nk.spectra.degree_of_index(i, 3) for i in (0, 1, 3, 4, 8, 9)]
    [0, 1, 1, 2, 2, 3]
    """
    i, d = check_int(i, "i", 0), _check_d(d)
    k, total = 0, 1
    while total <= i:
        k += 1
        total += multiplicity(d, k)
    return k


def fit_decay(values, window, *, index=None, floor=1e-13):
    r"""Slope :math:`a` of :math:`\log v_i \approx a \log i + b` over ``window = (start, stop)``.

    ``index`` gives the abscissa of each value (default ``1, 2, ...`` for a spectrum listed from its
    largest, i.e. the 1-based index; pass ``np.arange(len(mu))`` for degrees :math:`k`).

    Refuses a window that reaches round-off: any value in it at or below ``floor`` times the
    largest value (float64 Gram spectra are noise below ~1e-13 of their top), or not positive, or
    NaN, raises ``ValueError`` naming the first offending position, since a slope fitted to round-off
    is not a decay exponent.

    Returns
    -------
    slope, intercept : float
    """
    v = np.asarray(values, dtype=np.float64)
    x = np.arange(1, len(v) + 1, dtype=np.float64) if index is None else np.asarray(index, dtype=np.float64)
    start, stop = window
    start, stop = check_int(start, "window start", 0), check_int(stop, "window stop", 0)
    if stop - start < 2 or stop > len(v):
        raise ValueError(f"window must hold at least 2 values inside the array of {len(v)}; got {window}")
    top = np.nanmax(np.abs(v))
    w = v[start:stop]
    bad = np.flatnonzero(~(w > floor * top))
    if bad.size:
        j = start + int(bad[0])
        raise ValueError(
            f"values[{j}] = {v[j]:.3g} is at or below {floor:g} x the largest value (or not positive): "
            f"the window {window} reaches round-off; fit a window that stops before position {j}"
        )
    if np.any(x[start:stop] <= 0):
        raise ValueError("the abscissa must be positive inside the window (log scale)")
    slope, intercept = np.polyfit(np.log(x[start:stop]), np.log(w), 1)
    return float(slope), float(intercept)


def local_exponents(values, index):
    r"""The local decay exponent :math:`d\log v/d\log i` by centred differences (one-sided at the ends).

    For a power law it is constant; for a kernel that decays faster than any power it keeps falling.
    """
    v, x = np.asarray(values, dtype=np.float64), np.asarray(index, dtype=np.float64)
    if np.any(v <= 0) or np.any(x <= 0):
        raise ValueError("values and index must be positive (log scale)")
    return np.gradient(np.log(v), np.log(x))
