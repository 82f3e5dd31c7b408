r"""Dot-product kernels on the sphere: multiplicities, Legendre polynomials, Funk–Hecke eigenvalues.

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
:math:`\kappa(t) = \sum_k \mu_k N(d, k) P_k^{(d)}(t)`. Here :math:`\theta` is the angle between
:math:`x` and :math:`y` (in code ``angle``; ``theta`` names the NTK :math:`\Theta`, as in the book).

**The sphere-kernel protocol.** Everything here that takes "a kernel on the sphere" (and the
boolean-cube tools, which use the same objects) accepts

* an object with a method ``kappa(u)``: :math:`\kappa` in float64, vectorized over cosines
  :math:`u \in [-1, 1]` of any shape, returning the kind of ``u`` (numpy in, numpy out; a tensor in,
  a tensor out). :class:`SphereKernel`, :class:`~ntklib.kernels.NTK`, :class:`~ntklib.kernels.NNGP` and the classic
  kernels (:class:`~ntklib.classic.Laplace`, ...) are such objects;
* optionally with a method ``kappa_mp(u)``: :math:`\kappa(u)` for one mpmath number ``u``, as an
  mpmath number computed at the *caller's* current mpmath precision (it never sets the precision
  itself), or a ``TypeError`` when the kernel has no high-precision form (an activation evaluated by
  quadrature, say). :func:`sphere_eigenvalues` uses it, under a precision of its own, to resolve
  eigenvalues beyond float64's reach;
* or, for compatibility, a plain callable ``t -> kappa(t)`` on numpy arrays (float64 only).

The ``kappa`` method wins over calling the object: a classic kernel called on points gives a Gram
matrix, not :math:`\kappa`.

**Why the tail is hard.** The ReLU NTK has :math:`\mu_k \sim k^{-d}` and its NNGP
:math:`\mu_k \sim k^{-d-2}`. The integral of an :math:`O(1)` oscillating integrand has to come out as,
say, :math:`10^{-15}`. Any float64 quadrature then returns round-off, however many nodes it uses.
:func:`sphere_eigenvalues` integrates in :math:`\theta`. There :math:`\kappa(\cos\theta)` is smooth
for the ReLU kernels, and an algebraic endpoint singularity such as :math:`\theta^\gamma` is resolved
by panels graded geometrically into both ends. It estimates the error of every :math:`\mu_k`. Where
float64 cannot reach the requested relative accuracy, it recomputes that part of the spectrum with
``kappa_mp`` (45 digits) and the Funk–Hecke sums in exact 130-bit fixed point. For a kernel without
``kappa_mp`` it returns NaN there and warns.

Gram-matrix spectra and decay fits, which are not about the sphere, live in :mod:`ntklib.decay`.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
from scipy import special

from ._arrays import (
    call_repr,
    check_budget,
    check_choice,
    check_int,
    real_array,
)
from .activations import get_activation
from .kernels import NNGP, NTK

__all__ = [
    "multiplicity",
    "legendre",
    "expand_multiplicities",
    "degree_of_index",
    "SphereKernel",
    "sphere_eigenvalues",
    "UnreliableEigenvalueWarning",
]

_Q = 24                  # Gauss–Legendre nodes per panel
_Q_CHECK = 20            # a coarser rule on the same panels: the difference estimates the discretization error
_GRADING = 40            # geometric panels into each endpoint, down to 2^-40 of a bulk panel
_FIXED_BITS = 130        # fixed-point scale of the high-precision path (~ 39 digits)
_MP_DPS = 45             # mpmath digits for kernel values and nodes
_KERNELS = ("ntk", "nngp")
_FLOAT_MAX = float(np.finfo(np.float64).max)
EXPAND_MAX_BYTES = 8 * 10**8   # default memory limit of expand_multiplicities
LEGENDRE_MAX_TERMS = 2 * 10**9  # default limit of legendre's recurrence, k (t.size + 1000): ~10 s
MAX_TERMS = 10**8        # default limit of sphere_eigenvalues' cost (nodes x degrees): ~1 min
_TAIL_EXPONENT = 110     # the panels drop the angles where sin^(d-2) is below e^-110 ~ 1.7e-48 of its peak


class UnreliableEigenvalueWarning(RuntimeWarning):
    """Some eigenvalues could not be computed to the requested accuracy in float64.

    Emitted by :func:`sphere_eigenvalues` for a kernel without a high-precision form
    (no ``kappa_mp``); the eigenvalues concerned are NaN. The message names the first one and the
    cause: the quadrature's discretization error (a ``kappa`` the rule does not resolve, such as a
    kink inside :math:`(-1, 1)`) or float64 round-off.

    Examples
    --------
    >>> import warnings, ntklib as nk
    >>> issubclass(nk.UnreliableEigenvalueWarning, RuntimeWarning)
    True
    """


def _check_d(d) -> int:
    return check_int(d, "d", 2, "the sphere is S^(d-1) in R^d")


def _check_k(k, name="k") -> int:
    return check_int(k, name, 0)


def multiplicity(d, k):
    r"""Dimension :math:`N(d, k)` of the spherical harmonics of degree :math:`k` on :math:`S^{d-1}`.

    :math:`N(d, k) = \frac{2k + d - 2}{k}\binom{k + d - 3}{d - 2}` for :math:`k \ge 1`,
    :math:`N(d, 0) = 1` (equivalently :math:`\binom{k+d-1}{d-1} - \binom{k+d-3}{d-1}`).

    Parameters
    ----------
    d : int
        Ambient dimension, ``d >= 2`` (the sphere is :math:`S^{d-1} \subset \mathbb R^d`).
    k : int or array_like of ints
        Degrees, ``k >= 0``.

    Returns
    -------
    N : int or ndarray
        An exact int for an int ``k``; a float64 array of the shape of ``k`` for an array (the
        values pass 2**63 for large ``d`` and ``k``; beyond float64's range, ~1.8e308, a
        ValueError).

    Raises
    ------
    TypeError
        ``d`` not an int, or ``k`` neither an int nor an array of ints.
    ValueError
        ``d < 2`` or a negative degree; for an array ``k``, a value beyond float64's range (an int
        ``k`` gives the exact int: ``multiplicity(1000, 1000)`` has 600 digits).

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
    values, inverse = np.unique(arr, return_inverse=True)
    out = np.empty(len(values))
    for j, v in enumerate(values):
        n = exact(int(v))
        if n > _FLOAT_MAX:
            raise ValueError(
                f"N(d={d}, k={int(v)}) ~ 10^{len(str(n)) - 1} is beyond float64's range (~1.8e308): pass k as an "
                "int for the exact integer"
            )
        out[j] = n
    return out[inverse.reshape(arr.shape)]


def legendre(d, k, t, *, max_terms=LEGENDRE_MAX_TERMS):
    r"""The Legendre polynomial :math:`P_k^{(d)}(t)` of :math:`S^{d-1}`, normalized to :math:`P_k^{(d)}(1) = 1`.

    It is the Gegenbauer polynomial :math:`C_k^{\lambda}(t) / C_k^{\lambda}(1)` with
    :math:`\lambda = (d-2)/2`: Chebyshev :math:`T_k` for :math:`d = 2`, Legendre :math:`P_k` for
    :math:`d = 3` (from ``scipy.special``); for :math:`d \ge 4` by that recurrence, which stays
    in :math:`[-1, 1]` (the unnormalized :math:`C_k^{\lambda}(1)` overflows, at d = 500, k = 1000).
    They satisfy
    :math:`P_{k+1} = \big((2k + d - 2)\, t\, P_k - k P_{k-1}\big)/(k + d - 2)`, are orthogonal for the
    weight :math:`(1 - t^2)^{(d-3)/2}`, and by the addition theorem
    :math:`P_k^{(d)}(x\cdot y) = N(d, k)^{-1}\sum_j Y_{kj}(x) Y_{kj}(y)`.

    The arguments come in the order of :func:`multiplicity`: ``(d, k)``.

    Parameters
    ----------
    d : int
        Ambient dimension, ``d >= 2``.
    k : int
        Degree, ``k >= 0``.
    t : float or array_like
        Points in :math:`[-1, 1]`, any shape (real numbers: strings and complex values are refused).
    max_terms : int, default LEGENDRE_MAX_TERMS = 2e9
        For :math:`d \ge 4`, the largest cost ``k * (t.size + 1000)`` of the recurrence allowed
        (about 10 s); raise it to allow more.

    Returns
    -------
    P : ndarray
        :math:`P_k^{(d)}(t)`, float64, of the shape of ``t`` (a 0-d array for a scalar ``t``).

    Raises
    ------
    TypeError
        ``d`` or ``k`` not an int; ``t`` not real numbers (a string, complex values).
    ValueError
        ``d < 2``, ``k < 0``, a NaN or infinite ``t``, or ``t`` outside :math:`[-1, 1]`.
    TooLargeError
        For :math:`d \ge 4`, a cost past ``max_terms`` (a ValueError).

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> float(nk.legendre(3, 2, 0.5))           # (3 t^2 - 1) / 2
    -0.125
    >>> float(nk.legendre(2, 3, np.cos(0.4)))   # Chebyshev: cos(3 theta)
    0.362357754476...
    >>> float(nk.legendre(7, 5, 1.0))
    1.0
    """
    d, k = _check_d(d), _check_k(k)
    if isinstance(t, str):
        raise TypeError("t must be a float or a real numeric array; got a str")
    try:
        t = real_array(t, "t")
    except ValueError as exc:
        raise ValueError("t must be finite; got NaN or inf") from exc
    if np.any(np.abs(t) > 1):
        raise ValueError(f"t must lie in [-1, 1]; got values up to |t| = {float(np.max(np.abs(t)))}")
    if d == 2:
        return special.eval_chebyt(k, t)
    if d == 3:
        return special.eval_legendre(k, t)
    # the normalized recurrence: |P_k| <= 1 throughout, so it neither overflows (C_k^lambda(1) does,
    # d = 500, k = 1000) nor loses accuracy (scipy's ratio is ~1e-14 off at d = 500)
    check_budget(k * (t.size + 1000), max_terms, what=f"legendre(d={d}, k={k}) on {t.size} points",
                 unit="recurrence terms", knob="max_terms")
    p_prev, p = np.ones_like(t), t.copy()
    if k == 0:
        return p_prev
    for j in range(1, k):
        p_prev, p = p, ((2 * j + d - 2) * t * p - j * p_prev) / (j + d - 2)
    return p


def expand_multiplicities(mu, d, *, max_bytes=EXPAND_MAX_BYTES):
    r"""Each :math:`\mu_k` repeated :math:`N(d, k)` times, in decreasing order.

    These are the integral operator's eigenvalues by index, to set beside
    :func:`~ntklib.decay.gram_eigenvalues` of ``n`` sampled points.

    Parameters
    ----------
    mu : array_like, shape (kmax + 1,)
        :math:`\mu_0, \dots, \mu_{k_{\max}}` (from :func:`sphere_eigenvalues`).
    d : int
        Ambient dimension, ``d >= 2``.
    max_bytes : int, default EXPAND_MAX_BYTES = 8e8
        The largest memory allowed, 16 bytes per eigenvalue (the result and the sort's copy);
        raise it to allow more.

    Returns
    -------
    lam : ndarray, shape (sum_k N(d, k),)
        The eigenvalues with multiplicity, largest first.

    Raises
    ------
    TypeError
        ``mu`` not real numbers (strings, complex values).
    ValueError
        ``mu`` not one-dimensional or containing NaN; bad ``d``.
    TooLargeError
        More than ``max_bytes`` needed (a ValueError): :math:`\sum_k N(d, k)` grows like
        :math:`k_{\max}^{d-1}`.

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.expand_multiplicities([0.5, 0.25, 0.0625], 3)   # N(3, k) = 1, 3, 5
    array([0.5   , 0.25  , 0.25  , 0.25  , 0.0625, 0.0625, 0.0625, 0.0625,
           0.0625])
    """
    d = _check_d(d)
    mu = np.asarray(mu)
    if mu.dtype.kind not in "biuf":  # strings; complex parts would be dropped with a warning only
        raise TypeError(f"mu must be a real numeric array; got dtype {mu.dtype}")
    mu = mu.astype(np.float64)
    if mu.ndim != 1:
        raise ValueError(f"mu must be one-dimensional (mu_0, ..., mu_kmax); got shape {mu.shape}")
    if np.isnan(mu).any():
        raise ValueError("mu contains NaN (unreliable eigenvalues): there is no order to sort them in")
    reps = [multiplicity(d, k) for k in range(len(mu))]
    # sum_k N(d, k) = C(kmax + d - 1, d - 1) + C(kmax + d - 2, d - 1): d = 1000, kmax = 4 is 4e10 values
    check_budget(16 * sum(reps), max_bytes, what=f"expand_multiplicities of {len(mu)} mu_k on S^{d - 1}",
                 unit="bytes", knob="max_bytes")
    return np.sort(np.repeat(mu, reps))[::-1]


def degree_of_index(i, d):
    r"""The degree :math:`k` of the spherical harmonics that the ``i``-th eigenvalue belongs to.

    The index ``i`` is 0-based, in the order of decreasing :math:`\mu_k` when :math:`\mu_k`
    decreases with :math:`k` (the order of :func:`expand_multiplicities`). Since
    :math:`\sum_{j \le k} N(d, j) \sim 2k^{d-1}/(d-1)!`, the index grows like :math:`i \sim k^{d-1}`:
    a decay :math:`\mu_k \sim k^{-a}` reads :math:`\lambda_i \sim i^{-a/(d-1)}`.

    Parameters
    ----------
    i : int
        0-based eigenvalue index, ``i >= 0``.
    d : int
        Ambient dimension, ``d >= 2``.

    Returns
    -------
    k : int
        The smallest ``k`` with :math:`\sum_{j\le k} N(d, j) > i`, found by bisection on the
        closed form :math:`\sum_{j\le k} N(d, j) = \binom{k+d-1}{d-1} + \binom{k+d-2}{d-1}` in
        exact integers (so any ``i`` is quick: ``degree_of_index(10**12, 2)`` is ``5 * 10**11``).

    Raises
    ------
    TypeError
        ``i`` or ``d`` not an int.
    ValueError
        ``i < 0`` or ``d < 2``.

    Examples
    --------
    >>> import ntklib as nk
    >>> # N(3, k) = 2k + 1 eigenvalues per degree
    >>> [nk.degree_of_index(i, 3) for i in (0, 1, 3, 4, 8, 9)]
    [0, 1, 1, 2, 2, 3]
    """
    i, d = check_int(i, "i", 0), _check_d(d)
    # sum_{j <= k} N(d, j) = C(k + d - 1, d - 1) + C(k + d - 2, d - 1) (harmonics of degree <= k),
    # increasing in k and > i at k = i: bisect for the smallest k with it > i (exact ints)
    lo, hi = 0, i
    while lo < hi:
        mid = (lo + hi) // 2
        if math.comb(mid + d - 1, d - 1) + math.comb(mid + d - 2, d - 1) > i:
            hi = mid
        else:
            lo = mid + 1
    return lo


# ------------------------------------------------------------------------------------------------
# the kernel of a deep network on the sphere: a view of nk.NTK / nk.NNGP
# ------------------------------------------------------------------------------------------------
class SphereKernel:
    r"""The NTK or NNGP of a deep fully connected network on the unit sphere, :math:`\kappa(u)`.

    A thin wrapper of :class:`~ntklib.kernels.NTK` (``kernel="ntk"``) or
    :class:`~ntklib.kernels.NNGP` (``kernel="nngp"``), kept for the chapters and for the argument
    order ``(depth, activation, kernel)``: :meth:`kappa` and :meth:`kappa_mp` are those objects'
    (one recursion, :func:`~ntklib.kernels.layer_step`, in float64 and in mpmath), and
    :attr:`network_kernel` is the object itself, whose call gives Gram matrices. Calling a
    ``SphereKernel``, ``k(u)``, is ``k.kappa(u)``: a function of cosines, not of points.

    Parameters
    ----------
    depth : int
        Number of hidden layers :math:`L \ge 0`.
    activation : str, Activation, callable or sequence of them, default "relu"
        One activation for every hidden layer, or one per layer (as in :func:`~ntklib.kernels.ntk`).
    kernel : {"ntk", "nngp"}, default "ntk"
        :math:`\Theta^{(L)}` or :math:`\Sigma^{(L)}`.
    weight_var : float, None or sequence of them, default None
        Weight variance of each hidden layer; ``None`` (or a ``None`` entry) is that layer's
        :math:`c_\sigma`, used exactly (not rounded to float64) by :meth:`kappa_mp`.
    bias_var : float or sequence of depth + 1 floats, default 0.0
        Bias variances :math:`\beta_h^2`, as in :func:`~ntklib.kernels.ntk` (a scalar: the same in
        every layer).

    Attributes
    ----------
    network_kernel : NTK or NNGP
        The kernel object this one wraps.

    Raises
    ------
    ValueError
        ``kernel`` not one of ``"ntk"``, ``"nngp"``; bad ``depth``, ``weight_var`` or ``bias_var``
        (see :func:`~ntklib.kernels.ntk`).
    TypeError
        An ``activation`` that is neither a name, an Activation nor a callable.

    Notes
    -----
    Two sphere kernels are equal when their network kernels are (the same resolved layers); the
    repr reads back as code.

    Examples
    --------
    >>> import mpmath as mp, ntklib as nk
    >>> k = nk.SphereKernel(depth=2)
    >>> k
    SphereKernel(depth=2)
    >>> k.network_kernel
    NTK(depth=2)
    >>> float(k.kappa(1.0))                    # depth + 1 at u = 1
    3.0
    >>> with mp.workdps(30):                  # the same recursion in mpmath
    ...     print(k.kappa_mp(mp.mpf("0.5")))
    1.3514795611234831630837342058
    >>> float(k.kappa(0.5))
    1.35147956112348...
    >>> eval(repr(k), {"SphereKernel": nk.SphereKernel}) == k
    True
    """

    def __init__(self, depth, activation="relu", kernel="ntk", weight_var=None, bias_var=0.0):
        kernel = check_choice(kernel, "kernel", _KERNELS)
        cls = NTK if kernel == "ntk" else NNGP
        self._network_kernel, self._kernel_name = cls(depth, activation=activation, weight_var=weight_var,
                                                       bias_var=bias_var), kernel

    # read-only, like the NTK/NNGP object they come from (its layers are resolved once)
    network_kernel = property(lambda self: self._network_kernel)  # documented under Attributes above
    kernel = property(lambda self: self._kernel_name, doc='"ntk" or "nngp" (read-only).')
    depth = property(lambda self: self._network_kernel.depth, doc="The number of hidden layers (read-only).")
    activation = property(lambda self: self._network_kernel.activation, doc="The activation(s) (read-only).")
    weight_var = property(lambda self: self._network_kernel.weight_var, doc="The weight variance(s) (read-only).")
    bias_var = property(lambda self: self._network_kernel.bias_var, doc="The bias variance(s) (read-only).")

    def __repr__(self):
        return call_repr(self, {"depth": self.depth, "activation": self.activation, "kernel": self.kernel,
                                "weight_var": self.weight_var, "bias_var": self.bias_var})

    def __eq__(self, other):
        if not isinstance(other, SphereKernel):
            return NotImplemented
        return self.network_kernel == other.network_kernel

    def __hash__(self):
        return hash(self.network_kernel)

    @property
    def closed_form(self) -> bool:
        """Whether every layer's activation has a closed form (then :meth:`kappa_mp` works)."""
        acts = self.activation if isinstance(self.activation, (list, tuple)) else [self.activation]
        return self.depth == 0 or all(get_activation(a).closed_form for a in acts)

    def kappa(self, u):
        r""":math:`\kappa(u)` in float64: :meth:`NTK.kappa <ntklib.kernels.NTK.kappa>` of :attr:`network_kernel`.

        Parameters
        ----------
        u : float, array_like or torch.Tensor
            Cosines in :math:`[-1, 1]`, any shape.

        Returns
        -------
        kappa : ndarray or torch.Tensor
            :math:`\kappa(u)` in float64, of the kind and shape of ``u`` (numpy in, numpy out;
            a tensor in, a tensor out on its device).

        Raises
        ------
        ValueError
            ``u`` outside :math:`[-1, 1]`.

        Examples
        --------
        >>> import numpy as np, ntklib as nk
        >>> nk.SphereKernel(1, kernel="nngp").kappa(np.array([-1.0, 0.0, 1.0])) * np.pi
        array([0.        , 1.        , 3.14159265])
        """
        return self.network_kernel.kappa(u)

    __call__ = kappa

    def kappa_mp(self, u):
        r""":math:`\kappa(u)` for one mpmath number, at the caller's current mpmath precision.

        :meth:`NTK.kappa_mp <ntklib.kernels.NTK.kappa_mp>` of :attr:`network_kernel`: the recursion
        of :func:`~ntklib.kernels.layer_step` in mpmath, with each default weight variance the
        exact :math:`c_\sigma`. It never changes the precision: set it around the call with
        ``mpmath.workdps``.

        Parameters
        ----------
        u : mpmath.mpf, float or str
            One cosine in :math:`[-1, 1]` (converted with ``mpmath.mpf``).

        Returns
        -------
        kappa : mpmath.mpf
            :math:`\kappa(u)`, correct to about the working precision.

        Raises
        ------
        TypeError
            Some layer's activation has no closed form (it is evaluated by quadrature, which has no
            high-precision path).
        ValueError
            ``u`` outside :math:`[-1, 1]`.

        Examples
        --------
        >>> import mpmath as mp, ntklib as nk
        >>> k = nk.SphereKernel(1, kernel="nngp")
        >>> with mp.workdps(40):                  # kappa_1(0) = 1/pi
        ...     print(k.kappa_mp(0) * mp.pi)
        1.0
        """
        return self.network_kernel.kappa_mp(u)


# ------------------------------------------------------------------------------------------------
# the quadrature rule in the angle theta = arccos t (``angle`` in code)
# ------------------------------------------------------------------------------------------------
def _panel_edges(kmax: int, d: int) -> np.ndarray:
    """Panel end points in [0, pi] for the integrand kappa(cos a) P_k(cos a) sin^(d-2) a, k <= kmax.

    Panel width: at most 2.5 periods of the fastest oscillation, sqrt(kmax (kmax + d - 2)) in the
    angle at a = pi/2 (it is ~kmax for kmax >> d, ~sqrt(kmax d) for kmax << d), and at most 2.5
    standard deviations of the weight's peak, sin^(d-2) a ~ exp(-(d-2)(a - pi/2)^2 / 2) (width
    1/sqrt(d-2)). Where the weight is below e^-_TAIL_EXPONENT of its peak the panels stop (large d:
    the window pi/2 +- sqrt(2 _TAIL_EXPONENT / (d - 2))); otherwise they cover [0, pi] and are graded
    geometrically into both endpoints, where kappa(cos a) ~ a^gamma may be singular.
    """
    width = min(math.pi / (math.ceil(max(kmax, 1) * math.pi / 16) + 8),
                16 / math.sqrt(max(kmax, 1) * (max(kmax, 1) + d - 2)))
    if d > 2:
        width = min(width, 2.5 / math.sqrt(d - 2))
    half = math.sqrt(2 * _TAIL_EXPONENT / (d - 2)) if d > 2 else math.inf
    if half < math.pi / 2:  # cos^(d-2) s <= exp(-(d-2) s^2 / 2): outside, kappa P_k sin^(d-2) < e^-_TAIL_EXPONENT
        n = math.ceil(2 * half / width)
        return math.pi / 2 + np.linspace(-half, half, n + 1)
    n = math.ceil(math.pi / width)
    bulk = np.linspace(0.0, math.pi, n + 1)
    graded = (math.pi / n) * 0.5 ** np.arange(1, _GRADING + 1)
    return np.unique(np.concatenate([bulk, graded, math.pi - graded]))


def _rule(edges: np.ndarray, q: int):
    z, w = np.polynomial.legendre.leggauss(q)
    a, b = edges[:-1, None], edges[1:, None]
    angle = (a + (b - a) * (z + 1) / 2).ravel()
    weight = ((b - a) / 2 * w).ravel()
    return angle, weight


def _norm_const(d: int) -> float:
    """omega_{d-2} / omega_{d-1} for the integral in the angle: Gamma(d/2) / (sqrt(pi) Gamma((d-1)/2))."""
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
    values = kappa(t)  # a tensor (from a kappa that was given numpy anyway) is copied to numpy
    try:
        values = real_array(values, "kappa(t)")
    except ValueError:
        values = None
    if values is None or values.shape != t.shape:
        raise ValueError("kappa must return a finite float array of the shape of its argument on [-1, 1]")
    return values


def _resolve(kernel):
    """(float64 kappa, kappa_mp or None) of a sphere kernel (the protocol of the module docstring)."""
    method = getattr(kernel, "kappa", None)
    if callable(method):
        kappa = method
    elif callable(kernel):
        kappa = kernel
    else:
        raise TypeError(
            "kernel must be a sphere kernel (an object with a kappa(u) method, e.g. nk.SphereKernel or "
            f"nk.Laplace()) or a callable t -> kappa(t) on [-1, 1]; got {type(kernel).__name__}"
        )
    kappa_mp = getattr(kernel, "kappa_mp", None)
    return kappa, (kappa_mp if callable(kappa_mp) and callable(method) else None)


def _probe(kappa_mp):
    """The TypeError with which ``kappa_mp`` says it has no high-precision form, or None."""
    import mpmath as mp

    try:
        with mp.workdps(_MP_DPS):
            kappa_mp(mp.mpf("0.5"))
    except TypeError as exc:
        return exc
    return None


def _float64_eigenvalues(kappa, d, kmax, edges):
    mus = []
    for q in (_Q, _Q_CHECK):
        angle, weight = _rule(edges, q)
        t = np.cos(angle)
        values = _kappa_values(kappa, t)
        base = _norm_const(d) * weight * np.sin(angle) ** (d - 2)
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
    # against the high-precision path (tests/test_sphere.py): up to ~0.13 k eps * size for
    # d = 2 and ~0.04 k for d = 3 at k <= 1000, within (16 + k / 8) eps * size. Discretization:
    # the coarser rule's difference (which also carries the round-off of a second set of nodes).
    k = np.arange(kmax + 1)
    discretization = np.abs(mu - mu_check)
    return mu_main, (16 + k / 8) * np.finfo(np.float64).eps * size_main + node + discretization, discretization


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


def _high_precision_eigenvalues(kappa_mp, d: int, kmax: int, edges, check: bool = True):
    """mu_0..mu_kmax and their error estimates, with kappa_mp (at _MP_DPS digits, whatever the
    caller's precision) and the Funk–Hecke sums in exact fixed point.

    Discretization: a second Gauss rule (_Q_CHECK nodes) on the same panels; the difference of the
    two over those panels is the estimate. It skips the panels graded into the end points except
    the two that touch them: each of the others spans [a, 2a] at distance a from the only
    singularity, where _Q nodes are exact to ~1e-37 of its part. The end points 0 and pi are exact
    (mpmath's pi, not float64's), so that nothing of [0, pi] is lost at the 1e-16 level.
    Fixed-point round-off: each f_i and t_i is rounded to 2^-_FIXED_BITS and each step of the
    recurrence adds about two units to P_k(t_i). ``check=False`` skips the second rule (a third of
    the time) and returns no estimate (None).
    """
    import mpmath as mp

    one = 1 << _FIXED_BITS
    fixed = lambda x: int(mp.nint(x * one))  # noqa: E731
    widths = np.diff(edges)
    checked = widths > 0.6 * widths.max()
    checked[[0, -1]] = True
    if not check:
        checked[:] = False
    order = np.r_[np.flatnonzero(checked), np.flatnonzero(~checked)]
    ts, fs = [], []
    with mp.workdps(_MP_DPS):
        c = mp.gamma(mp.mpf(d) / 2) / (mp.sqrt(mp.pi) * mp.gamma(mp.mpf(d - 1) / 2))
        ends = [mp.mpf(e) for e in edges]
        if edges[-1] == math.pi:
            ends[-1] = +mp.pi
        for q, panels in ((_Q, order), (_Q_CHECK, order[: int(checked.sum())])):
            if not len(panels):
                continue
            z, w = _mp_gauss_legendre(q)
            angles, weights = [], []
            for j in panels:
                lo, hi = ends[j], ends[j + 1]
                angles += [lo + (hi - lo) * (zi + 1) / 2 for zi in z]
                weights += [(hi - lo) / 2 * wi for wi in w]
            us = [mp.cos(angle) for angle in angles]
            ts += [fixed(u) for u in us]
            fs += [fixed(c * wi * mp.sin(th) ** (d - 2) * kappa_mp(u)) for wi, th, u in zip(weights, angles, us)]
    n_main, n_both = len(order) * _Q, int(checked.sum()) * _Q  # main nodes; those of checked panels
    t = np.array(ts, dtype=object)
    f = np.array(fs, dtype=object)
    mu, diff = np.empty(kmax + 1), np.empty(kmax + 1)
    scale = one * one
    p_prev, p = None, np.full(t.shape, one, dtype=object)
    for k in range(kmax + 1):
        if check:
            both = int(np.dot(f[:n_both], p[:n_both]))
            mu[k] = (both + int(np.dot(f[n_both:n_main], p[n_both:n_main]))) / scale  # exact, then rounded once
            diff[k] = abs(both - int(np.dot(f[n_main:], p[n_main:]))) / scale
        else:
            mu[k] = int(np.dot(f, p)) / scale
        nxt = t.copy() if k == 0 else ((2 * k + d - 2) * ((t * p) >> _FIXED_BITS) - k * p_prev) // (k + d - 2)
        p_prev, p = p, nxt
    if not check:
        return mu, None
    size = float(sum(abs(v) for v in fs[:n_main])) / one
    roundoff = (n_main + 4 * (np.arange(kmax + 1) + 1) * size) / one
    return mu, diff + roundoff + np.finfo(np.float64).eps / 2 * np.abs(mu)


def sphere_eigenvalues(kernel, d, kmax, *, rtol=1e-6, return_error=False, path="auto",
                       max_terms=MAX_TERMS):
    r"""Eigenvalues :math:`\mu_0, \dots, \mu_{k_{\max}}` of a dot-product kernel on :math:`S^{d-1}`.

    Uniform probability measure; :math:`\mu_k` is the eigenvalue of each of the :math:`N(d, k)`
    spherical harmonics of degree :math:`k` (see :mod:`ntklib.sphere` for the Funk–Hecke formula).

    Parameters
    ----------
    kernel : sphere kernel or callable
        An object with ``kappa(u)`` and optionally ``kappa_mp(u)`` (the protocol of
        :mod:`ntklib.sphere`: :class:`SphereKernel`, :class:`~ntklib.kernels.NTK`, :class:`~ntklib.classic.Laplace`,
        ...), or a vectorized float64 function of :math:`t\in[-1, 1]` (numpy array in, array of the
        same shape out).
    d : int
        Dimension of the ambient space, ``d >= 2`` (the circle is ``d = 2``).
    kmax : int
        Largest degree, ``kmax >= 0``.
    rtol : float, default 1e-6
        Requested relative accuracy of every :math:`\mu_k`, in :math:`(0, 1)`.
    return_error : bool, default False
        Also return the estimated absolute error of each :math:`\mu_k`. Where the high-precision
        path computes :math:`\mu_k`, the estimate needs a second quadrature rule there (about
        1.5 times the time), computed only when asked for.
    path : {"auto", "float64", "exact"}, default "auto"
        ``"auto"``: float64, and the high-precision path (or NaN, see Notes) where float64 misses
        ``rtol``. ``"float64"``: the float64 quadrature for every degree, unreliable ones included,
        without NaN or warning (the error estimate says which to trust); to study round-off.
        ``"exact"``: the high-precision path for every degree; needs a kernel with a working
        ``kappa_mp``.
    max_terms : int, default MAX_TERMS = 1e8
        The largest cost allowed, in Funk–Hecke terms (quadrature nodes times degrees, both rules):
        about 1 ns a term in float64 and 0.5 µs in high precision. d = 3 reaches it near
        kmax = 3200 (a minute or more when the high-precision path is needed); raise it knowingly.

    Returns
    -------
    mu : ndarray, shape (kmax + 1,)
        :math:`\mu_0, \dots, \mu_{k_{\max}}` (float64 numpy, whatever kind ``kappa`` returns).
    err : ndarray, shape (kmax + 1,)
        Only if ``return_error``: the estimated absolute error of each :math:`\mu_k`.

    Raises
    ------
    TooLargeError
        The estimated cost is over ``max_terms`` (refused before any work; a ValueError).
    ValueError
        Bad ``d``, ``kmax``, ``rtol`` or ``path``; ``kappa`` not finite, not real or of the wrong shape;
        ``path="exact"`` for a kernel whose ``kappa_mp`` has no high-precision form (say, an
        activation evaluated by quadrature).
    TypeError
        ``kernel`` neither a sphere kernel nor callable; ``kappa`` returning strings or complex
        values; ``path="exact"`` for a kernel without
        ``kappa_mp`` (a plain callable).

    Warns
    -----
    UnreliableEigenvalueWarning
        With ``path="auto"``, for a kernel without a high-precision form, when some
        :math:`\mu_k` miss ``rtol`` in float64 (they are NaN). The message says whether the
        quadrature's discretization error (a ``kappa`` the rule does not resolve) or float64
        round-off is the cause.

    Notes
    -----
    Gauss–Legendre quadrature in the angle :math:`\theta = \arccos t` on panels, each at most 2.5
    periods of the integrand's fastest oscillation (:math:`\sqrt{k_{\max}(k_{\max} + d - 2)}` at
    :math:`\theta = \pi/2`) and 2.5 widths :math:`1/\sqrt{d-2}` of the peak of
    :math:`\sin^{d-2}\theta`, graded geometrically into both endpoints so that
    :math:`\kappa(\cos\theta) \sim \theta^\gamma` is integrated accurately (for large ``d``, only
    the window :math:`|\theta - \pi/2| \le \sqrt{220/(d-2)}`, outside of which
    :math:`\sin^{d-2}\theta < e^{-110}`), with the recurrence for :math:`P_k`. Each :math:`\mu_k`
    gets an error estimate, the sum of three terms: round-off of the sums and of the float64 nodes,
    :math:`(16 + k/8)\,\epsilon\sum_i |f_i P_k(t_i)|` (a rounded node moves :math:`P_k(t_i)` by up
    to about :math:`k` ulps, hence the growth with :math:`k`);
    :math:`2\sum_i |c_i|\,|\kappa(t_i') - \kappa(t_i)|` over the nodes with
    :math:`1 - |t_i| < 10^{-2}` (:math:`f_i = c_i\kappa(t_i)`, :math:`t_i'` the next float inwards
    from :math:`t_i`), which is large only where :math:`\kappa` is singular at :math:`\pm 1` (the
    step kernels on the circle); and the difference to a coarser rule on the same panels (the
    discretization error). The estimate takes the values of ``kappa`` as exact to float64 rounding
    (a quadrature activation's own error, see :class:`~ntklib.activations.Activation`, is not in
    it). An eigenvalue is *reliable* if the estimate is at most ``rtol`` times its size (so a
    vanishing eigenvalue is never reliable in float64: it cannot be told from a tiny one). For a
    kernel with ``kappa_mp``, the degrees up to the last unreliable one are recomputed with
    ``kappa_mp`` at 45 digits (set here with a local ``mpmath.workdps``: the result does not depend
    on the caller's mpmath precision) and the sums in exact 130-bit fixed point, on the same panels,
    with the end points :math:`0` and :math:`\pi` exact (mpmath's :math:`\pi`). With
    ``return_error``, the coarser rule as well: its difference (on all but the inner graded panels,
    where the rule is exact to ~1e-37 of their part) plus the fixed-point round-off and the final
    rounding to float64 is the error estimate there. For a kernel without ``kappa_mp``, unreliable
    eigenvalues are NaN and an :class:`UnreliableEigenvalueWarning` names the first one and the
    cause. The high-precision values are accurate to about ``1e-35`` absolute (for large ``d``
    also where :math:`\mu_k` falls like :math:`d^{-k}`), so vanishing eigenvalues come out at that
    level.

    Cost: the float64 path is :math:`O(k_{\max}^2)` flops (d = 3, kmax = 1000: about 0.1 s); the
    high-precision path about 0.5 µs per node and degree, some seconds for kmax = 1000 (1.5 times
    that with ``return_error``). For large ``d`` the window needs fewer panels.
    The cost is estimated first and refused past ``max_terms``.

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
    >>> # a plain callable: the circle's Gaussian kernel, mu_k = e^{-1} I_k(1)
    >>> from scipy import special
    >>> mu = nk.sphere_eigenvalues(lambda t: np.exp(t - 1), 2, 4)
    >>> np.allclose(mu, special.ive(np.arange(5), 1.0), rtol=1e-12)
    True
    """
    d = _check_d(d)
    kmax = _check_k(kmax, "kmax")
    if isinstance(rtol, bool) or not (isinstance(rtol, numbers.Real) and 0 < rtol < 1):
        raise ValueError(f"rtol must be in (0, 1); got {rtol!r}")
    path = check_choice(path, "path", ("auto", "float64", "exact"))
    if not isinstance(return_error, bool):
        raise TypeError(f"return_error must be a bool; got {return_error!r}")
    kappa, kappa_mp = _resolve(kernel)
    edges = _panel_edges(kmax, d)
    # cost: every degree's sum over every node, in float64 and (at worst) again in high precision
    terms = (_Q + _Q_CHECK) * (len(edges) - 1) * (kmax + 1)
    check_budget(terms, max_terms, what=f"sphere_eigenvalues(d={d}, kmax={kmax})", unit="Funk-Hecke terms",
                 knob="max_terms")
    if path == "exact":
        refusal = None if kappa_mp is None else _probe(kappa_mp)
        if refusal is not None:
            raise ValueError(f"path='exact' needs a high-precision form (closed-form activations): {refusal}")
        if kappa_mp is None:
            raise TypeError("path='exact' needs a kernel with a kappa_mp method, e.g. an nk.SphereKernel "
                            "(a plain callable is float64 only)")
        mu, err = _high_precision_eigenvalues(kappa_mp, d, kmax, edges, check=return_error)
        return (mu, err) if return_error else mu
    mu, err, discretization = _float64_eigenvalues(kappa, d, kmax, edges)
    bad = err > rtol * np.abs(mu)
    if path == "auto" and bad.any():
        last = int(np.flatnonzero(bad)[-1])
        refusal = None if kappa_mp is None else _probe(kappa_mp)  # only now: a probe costs a kappa_mp
        if kappa_mp is not None and refusal is None:
            mu[: last + 1], hp_err = _high_precision_eigenvalues(kappa_mp, d, last, edges, check=return_error)
            err[: last + 1] = hp_err if return_error else 0.0
        else:
            first = int(np.flatnonzero(bad)[0])
            why = f"{refusal}" if refusal is not None else "the kernel has no kappa_mp"
            # which error dominates: the rule's (kappa not resolved by the panels: a kink or jump
            # inside (-1, 1), say) or the round-off of float64 sums of O(1) terms
            if discretization[first] > 0.5 * err[first]:
                cause = (f"the Funk-Hecke quadrature's discretization error dominates (about "
                         f"{discretization[first]:.1e} at k = {first}: kappa is not smooth enough for the rule, a kink "
                         "or jump inside (-1, 1), say)")
            else:
                cause = "they are at the round-off level of the Funk-Hecke integral in float64"
            warnings.warn(
                f"mu_k for k = {first} (and {int(bad.sum()) - 1} more up to k = {last}) cannot be computed to "
                f"rtol={rtol} in float64: {cause}. They are NaN ({why}); pass a kernel with a high-precision "
                "form, such as an nk.SphereKernel with closed-form activations, for exact values.",
                UnreliableEigenvalueWarning,
                stacklevel=2,
            )
            mu[bad] = np.nan
    return (mu, err) if return_error else mu
