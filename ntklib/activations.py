r"""Activations and their *duals*: the Gaussian expectations that drive every kernel recursion.

For a centred Gaussian pair :math:`(u, v) \sim \mathcal N\big(0, \begin{bmatrix} q_{11} & q_{12} \\
q_{12} & q_{22}\end{bmatrix}\big)` an activation :math:`\sigma` has

* the **dual** :math:`\hat\sigma(q_{11}, q_{12}, q_{22}) = \mathbb E[\sigma(u)\sigma(v)]`,
* the **derivative dual** :math:`\mathbb E[\sigma'(u)\sigma'(v)]`,
* the normalization :math:`c_\sigma = 1 / \mathbb E_{z\sim\mathcal N(0,1)}[\sigma(z)^2]` of Arora et al.
  (2019), which keeps :math:`\Sigma^{(h)}(x, x) = |x|^2` through the layers for ReLU.

The classes: :class:`Activation` is the abstract base (what kernel code may use: ``duals``,
``c_sigma``, ``c_sigma_mp``, ``tile_cost``, ``name``); :class:`ClosedForm` its closed forms, each
written once against a small math namespace so that the same formula runs on float64 tensors and
on mpmath numbers at any precision; :class:`Quadrature` any other callable.

Closed forms, each with a lowercase factory that is also its repr and a name that
:func:`get_activation` parses back:

* ReLU\ :sup:`k` (``relu(k)``, named ``"relu"``, ``"relu2"``, ...; ``step()`` = ``relu(0)``)
  through the arc-cosine functions of Cho & Saul (2009): :math:`\mathbb E[\mathrm{relu}(u)^k
  \mathrm{relu}(v)^k] = (q_{11}q_{22})^{k/2} J_k(\theta) / (2\pi)` with :math:`\cos\theta = \rho =
  q_{12}/\sqrt{q_{11}q_{22}}`;
* ``erf()`` (Williams 1997), ``sin()`` and ``cos()`` (hyperbolic functions of :math:`q_{12}`),
  ``identity()``;
* the two-slope ReLUs ``abrelu(a, b)`` :math:`= a\max(z, 0) + b\min(z, 0)` (``leaky_relu(alpha)``,
  named ``"leaky_relu"``; ``"abs"``) from :math:`J_0, J_1`, ``sign()`` (the arcsine), and
  ``gelu()`` :math:`= z\Phi(z)` (bivariate normal integrals, see :class:`GELU`);
* any other callable (tanh, softplus, sigmoid by name, or a user's function) by
  a two-dimensional quadrature that estimates its error, see :class:`Quadrature`.

The Hermite view: :func:`hermite_coefficients` expands :math:`\sigma` in the orthonormal Hermite
polynomials of the standard Gaussian; for unit variances the dual is then the power series
:math:`\sum_i a_i^2 \rho^i` in the correlation, an independent check of every closed form.

Inside ntklib the duals are evaluated from the correlation :math:`\rho` rather than :math:`q_{12}`:
the recursion in :mod:`ntklib.kernels` keeps :math:`\rho` exact at :math:`\pm 1`, and every formula
here is written so that no digits are lost there (:math:`\sin\theta = \sqrt{(1-\rho)(1+\rho)}`,
:math:`\pi - \theta = \arccos(-\rho)`, never :math:`\sqrt{1-\rho^2}` or :math:`\pi - \arccos\rho`;
erf's and GELU's arcsines as an ``atan2`` of a determinant computed without cancellation, in ratios
:math:`q/(q + c)` that do not overflow; sin's and cos's :math:`e^{-(q_{11}+q_{22})/2}\sinh q_{12}`
without overflow). Tested against 50-digit references:
a few ulps at and near :math:`\rho = \pm 1`. One limit, stated: just inside :math:`\rho = -1`,
where the ReLU\ :sup:`k` duals vanish like :math:`(\pi - \theta)^{2k+1}`, the :math:`J_k`
recursion cancels, and they are accurate to rounding relative to the kernel's scale (the value at
:math:`\rho = 1`), not relative to their own tiny size (at :math:`\rho = -1` itself they are 0,
exactly).
"""
from __future__ import annotations

import abc
import functools
import math
import numbers
import re
import sys
import warnings
from collections.abc import Callable

import mpmath as mp
import numpy as np
import torch

from . import quadrature as _quadrature
from ._arrays import check_bool, check_int, scalar_or_array, to_tensor
from ._math import MpMath as _MpMath, TorchMath as _TorchMath, covers as _covers

__all__ = [
    # the classes: an abstract base, the closed forms, the quadrature
    "Activation",
    "ClosedForm",
    "ReLUk",
    "Erf",
    "Sin",
    "Cos",
    "Identity",
    "ABReLU",
    "Sign",
    "GELU",
    "Quadrature",
    # the factories of the closed forms, and names
    "relu",
    "step",
    "erf",
    "sin",
    "cos",
    "identity",
    "abrelu",
    "leaky_relu",
    "sign",
    "gelu",
    "get_activation",
    "ACTIVATION_NAMES",
    # the mathematics behind them
    "arc_cosine_J",
    "hermite_coefficients",
]


# --------------------------------------------------------------------------------------------
# The arc-cosine functions J_n of Cho & Saul (2009)
# --------------------------------------------------------------------------------------------
def _j_recursion(n: int, c, s2, j0, j1):
    """Return ``(J_{n-1}, J_n)`` from ``J_0, J_1`` by the three-term recursion.

    ``J_{m+1} = (2m+1) cos(theta) J_m + m^2 sin(theta)^2 J_{m-1}``; ``c = cos(theta)``,
    ``s2 = sin(theta)^2``. For ``n = 0`` the first entry is ``None``.
    """
    if n == 0:
        return None, j0
    prev, cur = j0, j1
    for m in range(1, n):
        prev, cur = cur, (2 * m + 1) * c * cur + (m * m) * s2 * prev
    return prev, cur


def arc_cosine_J(n: int, theta):
    r"""Cho & Saul's arc-cosine function :math:`J_n(\theta)`.

    .. math::

        \mathbb E_{w\sim\mathcal N(0, I)}\big[\mathrm{relu}(w\cdot x)^n\,\mathrm{relu}(w\cdot y)^n\big]
        = \frac{|x|^n |y|^n}{2\pi} J_n(\theta),

    with :math:`\theta` the angle between :math:`x` and :math:`y`. :math:`J_0 = \pi - \theta`,
    :math:`J_1 = \sin\theta + (\pi - \theta)\cos\theta`, and for :math:`n \ge 1`
    :math:`J_{n+1} = (2n+1)\cos\theta\, J_n + n^2 \sin^2\theta\, J_{n-1}`.

    Parameters
    ----------
    n : int
        Order, ``n >= 0``.
    theta : array_like or torch.Tensor
        Angles in :math:`[0, \pi]`.

    Returns
    -------
    numpy.ndarray, numpy scalar or torch.Tensor
        :math:`J_n(\theta)` in float64, of the kind and shape of ``theta``.

    References
    ----------
    Y. Cho and L. Saul, "Kernel methods for deep learning", NeurIPS 2009.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> float(nk.arc_cosine_J(2, 0.0) / np.pi)      # J_n(0) = pi (2n-1)!!
    3.0
    >>> float(nk.arc_cosine_J(1, np.pi / 2))         # sin(pi/2) + (pi/2) cos(pi/2)
    1.0
    """
    n = _check_order(n)
    t = to_tensor(theta, "theta", dtype=torch.float64)
    if t.numel() and (bool((t < 0).any()) or bool((t > math.pi).any())):
        raise ValueError("theta must lie in [0, pi]")
    c, s = torch.cos(t), torch.sin(t)
    j0 = math.pi - t
    j1 = s + j0 * c
    out = _j_recursion(n, c, s * s, j0, j1)[1]
    return scalar_or_array(theta, out)


def _check_order(k) -> int:
    return check_int(k, "the power k", 0)


def _double_factorial_odd(k: int) -> int:
    """(2k - 1)!! with (-1)!! = 1."""
    return math.prod(range(1, 2 * k, 2))


def _times(M, t, scale):
    """``scale * t``: in place for a tensor (the formulas return new tensors), exact for mpmath."""
    return t.mul_(scale) if M is _TorchMath else t * scale


def _namespace(q11, q22, rho, root, check=True):
    """Pick the math namespace from the arguments' kind and bring them all to that kind.

    Any torch tensor among them makes it the torch path (the others are converted to its dtype and
    device); otherwise every argument must be a real number and the mpmath path is taken.
    """
    if isinstance(rho, torch.Tensor) and isinstance(q11, torch.Tensor) and isinstance(q22, torch.Tensor):
        return _TorchMath, q11, q22, rho, root  # the recursion's hot path: no conversion
    mpf = mp.mpf
    if (type(q11) is mpf and type(q22) is mpf and type(rho) is mpf and (root is None or type(root) is mpf)
            and (not check or (q11 >= 0 and q22 >= 0 and -1 <= rho <= 1 and (root is None or root >= 0)))):
        return _MpMath, q11, q22, rho, root  # the high-precision recursion's hot path: valid already
    named = {"q11": q11, "q22": q22, "rho": rho, "root": root}
    ref = next((v for v in named.values() if isinstance(v, torch.Tensor)), None)
    if ref is not None:
        out = [v if v is None or isinstance(v, torch.Tensor) else _tensor_like(v, ref, k) for k, v in named.items()]
        return (_TorchMath, *out)
    out = [None if v is None else _mp_real(v, k) for k, v in named.items()]
    for k, v in zip(("q11", "q22", "root"), (out[0], out[1], out[3])):
        if v is not None and not v >= 0:
            raise ValueError(f"{k} must be >= 0 (a variance or a product of standard deviations); got {v}")
    if not -1 <= out[2] <= 1:
        raise ValueError(f"rho must lie in [-1, 1] (a correlation); got {out[2]}")
    return (_MpMath, *out)


def _tensor_like(value, ref: torch.Tensor, name: str) -> torch.Tensor:
    if isinstance(value, mp.mpf):
        raise TypeError(f"{name} is an mpmath number but another argument is a torch tensor; give one kind")
    try:
        return torch.as_tensor(value, dtype=ref.dtype, device=ref.device)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a torch tensor or a real number; got {type(value).__name__}") from None


def _mp_real(value, name: str):
    if isinstance(value, mp.mpf):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return mp.mpf(value)  # a float converts exactly
    raise TypeError(
        f"{name} must be a torch tensor or a real (mpmath) number; got {type(value).__name__} "
        "(for numpy arrays use dual(q11, q12, q22) and dual_deriv(q11, q12, q22))"
    )


# --------------------------------------------------------------------------------------------
# Activation objects
# --------------------------------------------------------------------------------------------
class Activation(abc.ABC):
    r"""An activation :math:`\sigma` together with its duals: the abstract base of every activation.

    The subclasses are the closed forms (:class:`ClosedForm`: :class:`ReLUk`, :class:`Erf`,
    :class:`Sin`, :class:`Cos`, :class:`Identity`, :class:`ABReLU`, :class:`Sign`, :class:`GELU`),
    exact in float64 and in arbitrary precision, and
    :class:`Quadrature`, a two-dimensional quadrature with an error estimate for any other
    elementwise callable.
    Kernel code uses only what this class defines: :meth:`duals`, :attr:`c_sigma`,
    :meth:`c_sigma_mp`, :attr:`tile_cost`, and the activation itself for finite networks.

    ``Activation(fn, dfn=None, *, name=None, order=None, rtol=1e-10)`` with a callable ``fn``
    returns ``Quadrature(fn, dfn, name=name, order=order, rtol=rtol)``: the base class itself is never instantiated,
    and code written when the quadrature was the base class keeps working. A subclass calls
    ``super().__init__(name)`` with the activation's name, which :func:`get_activation` parses back
    to an equal activation for every activation the library makes, and by which
    ``ntklib.style.COLORS`` is keyed.

    Parameters
    ----------
    *args, **kwargs
        Called as ``Activation(...)``: the arguments of :class:`Quadrature`.

    Attributes
    ----------
    closed_form : bool
        True for the closed forms, whose duals have a high-precision (mpmath) path.

    See Also
    --------
    get_activation : Names, activations and callables to activations.

    Notes
    -----
    Activations are values: two are equal (and hash alike) when they have the same class and
    parameters, and ``repr`` gives the code that makes them (for :class:`Quadrature` when its
    functions can be named, see there).

    Examples
    --------
    >>> import torch, ntklib as nk
    >>> a = nk.get_activation("relu2")
    >>> a, a.name, a == nk.relu(2), a.closed_form
    (relu(2), 'relu2', True, True)
    >>> nk.Activation(torch.tanh, name="tanh by hand")      # the quadrature class
    Quadrature(torch.tanh, name='tanh by hand')
    """

    closed_form = False

    def __new__(cls, *args, **kwargs):
        # Activation(fn, ...) is the quadrature activation, as it was before the split
        return super().__new__(Quadrature if cls is Activation else cls)

    def __init__(self, name: str):
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty str; got {name!r}")
        self._name = name
        self._c_sigma = None

    # -- what a subclass supplies ----------------------------------------------------------
    @abc.abstractmethod
    def _sigma(self, z: torch.Tensor) -> torch.Tensor:
        """sigma(z) elementwise."""

    @abc.abstractmethod
    def _dsigma(self, z: torch.Tensor) -> torch.Tensor:
        """sigma'(z) elementwise."""

    @abc.abstractmethod
    def _evaluate_duals(self, M, q11, q22, rho, deriv: bool, root):
        """Both duals in the namespace ``M`` (:class:`_TorchMath` or :class:`_MpMath`)."""

    @abc.abstractmethod
    def _key(self) -> tuple:
        """The parameters that decide equality and the hash."""

    @abc.abstractmethod
    def _cost(self) -> int:
        """Relative cost of one kernel entry."""

    # -- the activation itself -------------------------------------------------------------
    @property
    def name(self) -> str:
        """The name; ``get_activation(a.name) == a`` for every activation the library makes.

        Examples
        --------
        >>> import ntklib as nk
        >>> nk.relu(0).name, nk.relu(3).name, nk.erf().name
        ('step', 'relu3', 'erf')
        """
        return self._name

    def __call__(self, z):
        r"""Evaluate :math:`\sigma` elementwise.

        Parameters
        ----------
        z : torch.Tensor
            Any shape, float dtype.

        Returns
        -------
        torch.Tensor
            :math:`\sigma(z)`, same shape, dtype and device.

        Examples
        --------
        >>> import torch, ntklib as nk
        >>> nk.relu(2)(torch.tensor([-1.0, 3.0]))
        tensor([0., 9.])
        """
        return self._sigma(z)

    def derivative(self, z):
        r"""Evaluate :math:`\sigma'` elementwise.

        Parameters
        ----------
        z : torch.Tensor
            Any shape, float dtype.

        Returns
        -------
        torch.Tensor
            :math:`\sigma'(z)`, same shape, dtype and device (0 for the step, see :class:`ReLUk`).

        Examples
        --------
        >>> import torch, ntklib as nk
        >>> nk.relu(2).derivative(torch.tensor([-1.0, 3.0]))
        tensor([0., 6.])
        """
        return self._dsigma(z)

    # -- duals -----------------------------------------------------------------------------
    def duals(self, q11, q22, rho, *, deriv=True, root=None, scale=1, check=True):
        r"""Both duals from the variances and the correlation: the step every kernel recursion takes.

        For :math:`(u, v) \sim \mathcal N\big(0, \begin{bmatrix} q_{11} & \rho\sqrt{q_{11}q_{22}} \\
        \rho\sqrt{q_{11}q_{22}} & q_{22}\end{bmatrix}\big)`, return :math:`\mathbb E[\sigma(u)\sigma(v)]`
        and :math:`\mathbb E[\sigma'(u)\sigma'(v)]`.

        Parameters
        ----------
        q11, q22 : torch.Tensor or real number
            The variances, :math:`\ge 0`.
        rho : torch.Tensor or real number
            The correlation, in :math:`[-1, 1]`; the closed forms keep every digit at :math:`\pm 1`.
        deriv : bool, default True
            Also return the derivative dual (else ``None`` in its place).
        root : torch.Tensor or real number, optional
            :math:`\sqrt{q_{11} q_{22}}` if the caller has it (saves a pass).
        scale : real number, default 1
            Both duals are returned times ``scale`` (a layer's weight variance :math:`c_h`). ReLU and
            the step fold it into their constant :math:`1/(2\pi)`, so it costs no pass there; the
            other activations scale their fresh results in place.
        check : bool, default True
            Check mpmath arguments (variances and ``root`` non-negative, :math:`|\rho| \le 1`).
            ``False`` skips those comparisons, for a caller that guarantees them: the kernels'
            high-precision recursion, whose variances come from the previous layer and whose
            correlation it has clipped (the comparisons were a tenth of its time). Tensors are never
            checked here (the public entry points validate them once).

        Returns
        -------
        dual : torch.Tensor or mpmath.mpf
            ``scale`` times :math:`\mathbb E[\sigma(u)\sigma(v)]`.
        dual_deriv : torch.Tensor, mpmath.mpf or None
            ``scale`` times :math:`\mathbb E[\sigma'(u)\sigma'(v)]`, or ``None`` if ``deriv`` is false.

        Raises
        ------
        TypeError
            An argument that is neither a tensor nor a real number; mpmath input to a
            :class:`Quadrature` activation, which has no high-precision path.
        ValueError
            On the mpmath path, a negative variance or a correlation outside :math:`[-1, 1]`.

        Notes
        -----
        If any argument is a torch tensor, the torch path runs: the arguments broadcast and the
        results are tensors of their dtype on their device. Tensors are not validated (this is the
        inner loop of every kernel); :meth:`dual` and :meth:`dual_deriv` are the checked entry for
        a covariance matrix. Otherwise every argument is taken as an exact real number and the
        closed form is evaluated in mpmath at the current precision (``mpmath.mp.dps``, or a
        ``mpmath.workdps`` block). Each closed form is written once, against a small namespace of
        operations that is torch's on the first path and mpmath's on the second. The tensors
        returned are new (never views of the arguments), so a caller may change them in place. ReLU
        and the step (``relu(1)``, ``relu(0)``) have a fused torch path, used when ``rho`` has the
        full shape and dtype and needs no gradient (the kernels' inner loop): ten elementwise
        passes for both ReLU duals, ``scale = 2`` included, and the same bits as the generic formula.

        Examples
        --------
        >>> import math, mpmath, torch, ntklib as nk
        >>> rho = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
        >>> q = torch.ones(3, dtype=torch.float64)
        >>> e, ed = nk.relu(1).duals(q, q, rho)
        >>> e * 2 * math.pi
        tensor([0.0000, 1.0000, 3.1416], dtype=torch.float64)
        >>> ed
        tensor([0.0000, 0.2500, 0.5000], dtype=torch.float64)
        >>> half = mpmath.mpf(1) / 2
        >>> with mpmath.workdps(30):                     # (2/pi) asin(1/3)
        ...     print(nk.erf().duals(1, 1, half, deriv=False)[0])
        0.216346895938785459658288881555
        >>> nk.relu(1).duals(q, q, rho, scale=2.0)[1]    # c_sigma kappa_0
        tensor([0.0000, 0.5000, 1.0000], dtype=torch.float64)
        """
        M, q11, q22, rho, root = _namespace(q11, q22, rho, root, check)
        return self._scaled_duals(M, q11, q22, rho, bool(deriv), root, scale)

    def _scaled_duals(self, M, q11, q22, rho, deriv: bool, root, scale):
        """``scale`` times both duals; a subclass with a cheaper way to scale overrides it."""
        e, ed = self._evaluate_duals(M, q11, q22, rho, deriv, root)
        if scale == 1:
            return e, ed
        return _times(M, e, scale), (None if ed is None else _times(M, ed, scale))

    def dual(self, q11, q12, q22):
        r""":math:`\mathbb E[\sigma(u)\sigma(v)]` for a covariance matrix, checked.

        Parameters
        ----------
        q11, q12, q22 : array_like or torch.Tensor
            The entries of :math:`\begin{bmatrix} q_{11} & q_{12} \\ q_{12} & q_{22}\end{bmatrix}`;
            they broadcast.

        Returns
        -------
        numpy.ndarray, numpy scalar or torch.Tensor
            The dual in float64, of the kind of ``q12`` (a scalar for a scalar).

        Raises
        ------
        ValueError
            A negative variance, a matrix that is not PSD, NaN or inf.

        Examples
        --------
        >>> import ntklib as nk
        >>> float(nk.relu(1).dual(1.0, 0.0, 1.0))     # 1 / (2 pi)
        0.15915494309189535
        """
        return self._checked(q11, q12, q22, deriv=False)

    def dual_deriv(self, q11, q12, q22):
        r""":math:`\mathbb E[\sigma'(u)\sigma'(v)]` for a covariance matrix, checked.

        Parameters
        ----------
        q11, q12, q22 : array_like or torch.Tensor
            As in :meth:`dual`.

        Returns
        -------
        numpy.ndarray, numpy scalar or torch.Tensor
            The derivative dual in float64, of the kind of ``q12``.

        Raises
        ------
        ValueError
            As in :meth:`dual`.

        Examples
        --------
        >>> import ntklib as nk
        >>> float(nk.relu(1).dual_deriv(1.0, 0.0, 1.0))   # P(u > 0, v > 0) = 1/4
        0.25
        """
        return self._checked(q11, q12, q22, deriv=True)

    def _checked(self, q11, q12, q22, deriv: bool):
        a, b, rho, den = _covariance(q11, q12, q22)
        e, ed = self.duals(a, b, rho, deriv=deriv, root=den)
        return scalar_or_array(q12, ed if deriv else e)

    # -- normalization and cost ------------------------------------------------------------
    @property
    def c_sigma(self) -> float:
        r""":math:`c_\sigma = 1/\mathbb E_{z\sim\mathcal N(0,1)}[\sigma(z)^2]` (Arora et al. 2019), a float.

        For a closed form it is :meth:`c_sigma_mp` at 40 digits rounded once, so correctly rounded;
        for a quadrature activation the same rule as its duals.

        Raises
        ------
        ValueError
            If :math:`\mathbb E[\sigma(z)^2]` is not positive; for a closed form whose
            :math:`c_\sigma` is outside float64's normal range (``relu(k)`` for ``k > 150``:
            :math:`2/(2k-1)!! < 2^{-1022}`), naming the value and the high-precision path.

        Examples
        --------
        >>> import ntklib as nk
        >>> nk.relu(1).c_sigma, nk.relu(2).c_sigma, nk.identity().c_sigma
        (2.0, 0.6666666666666666, 1.0)
        """
        if self._c_sigma is None:
            if self.closed_form:
                value = _closed_form_c_sigma(self)  # shared by equal activations
                if not sys.float_info.min <= value < math.inf:
                    with mp.workdps(15):
                        exact = self.c_sigma_mp()
                    raise ValueError(
                        f"{self!r} has c_sigma = {mp.nstr(exact, 6)}, outside float64's normal range: the "
                        "float64 kernels cannot carry it (its duals at unit variance overflow or vanish); use "
                        "the high-precision path (c_sigma_mp, kappa_mp) or a smaller power"
                    )
            else:
                one = torch.ones((), dtype=torch.float64)
                value = 1.0 / self._positive(float(self.duals(one, one, one, deriv=False)[0]))
            self._c_sigma = value
        return self._c_sigma

    def c_sigma_mp(self):
        r""":math:`c_\sigma` in mpmath at the current precision (closed forms only).

        Returns
        -------
        mpmath.mpf
            :math:`1/\mathbb E[\sigma(z)^2]` from the same formula as :meth:`duals` at
            :math:`q_{11} = q_{22} = \rho = 1`.

        Raises
        ------
        TypeError
            For a :class:`Quadrature` activation (no high-precision path).

        Examples
        --------
        >>> import mpmath, ntklib as nk
        >>> with mpmath.workdps(30):
        ...     print(nk.sin().c_sigma_mp())           # 2 / (1 - exp(-2))
        2.31303528549933130363616124693
        """
        one = mp.mpf(1)
        return 1 / self._positive(self.duals(one, one, one, deriv=False)[0])

    def _positive(self, second_moment):
        if not second_moment > 0:
            raise ValueError(f"{self!r} has E[sigma(z)^2] = {second_moment}; c_sigma is undefined")
        return second_moment

    @property
    def tile_cost(self) -> int:
        """The relative cost of one kernel entry (1 for a closed form; for a quadrature its evaluations).

        Tiled kernels size their tiles by it, so that a tile's temporaries stay bounded.

        Examples
        --------
        >>> import ntklib as nk
        >>> nk.relu(1).tile_cost, nk.get_activation("tanh").tile_cost
        (1, 387)
        """
        return self._cost()

    # -- values ----------------------------------------------------------------------------
    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        return hash((type(self).__name__, self._key()))


def _covariance(q11, q12, q22):
    """(q11, q22, rho, sqrt(q11 q22)) float64 tensors from a covariance matrix's entries, checked (PSD,
    variances >= 0); the root is formed without overflowing the product."""
    a = to_tensor(q11, "q11", dtype=torch.float64)
    b = to_tensor(q22, "q22", dtype=torch.float64, device=a.device)
    c = to_tensor(q12, "q12", dtype=torch.float64, device=a.device)
    if bool((a < 0).any()) or bool((b < 0).any()):
        raise ValueError("q11 and q22 are variances and must be >= 0")
    den = torch.sqrt(a * b)
    if not bool(torch.isfinite(den).all()):  # the product overflows from 1e154 on, the root not
        den = torch.where(torch.isfinite(den), den, torch.sqrt(a) * torch.sqrt(b))
    if bool((c.abs() > den * (1 + 1e-12)).any()):
        raise ValueError("the covariance [[q11, q12], [q12, q22]] must be PSD: need q12**2 <= q11*q22")
    rho = torch.where(den > 0, c / den.clamp_min(torch.finfo(den.dtype).tiny), torch.zeros_like(c)).clamp(-1, 1)
    return a, b, rho, den


@functools.lru_cache(maxsize=None)
def _closed_form_c_sigma(activation) -> float:
    """c_sigma of a closed form: its mpmath value at 40 digits, rounded once (so correctly rounded).

    Cached on the activation's value: every kernel call resolves names to fresh activations."""
    with mp.workdps(40):
        return float(activation.c_sigma_mp())


class ClosedForm(Activation):
    r"""An activation whose duals have a closed form, written once for float64 tensors and mpmath.

    A subclass implements ``_formula(M, q11, q22, rho, deriv, root)`` with the operations of the
    namespace ``M`` (``M.sqrt``, ``M.acos``, ``M.atan2``, ``M.exp``, ``M.expm1``, ``M.sign``,
    ``M.addcmul``, ``M.full``, ``M.broadcast``, ``M.pi``), which are torch's for tensors and mpmath's for mpmath
    numbers, so one formula serves the float64 recursion and the high-precision spectra. Its
    ``__init__`` calls ``super().__init__(name)``.

    Parameters
    ----------
    *args, **kwargs
        The arguments of the subclass's ``__init__``.

    Examples
    --------
    >>> import ntklib as nk
    >>> all(isinstance(nk.get_activation(n), nk.activations.ClosedForm)
    ...     for n in ("relu", "step", "relu3", "erf", "sin", "cos", "identity",
    ...               "abs", "leaky_relu", "sign", "gelu"))
    True
    """

    closed_form = True

    @abc.abstractmethod
    def _formula(self, M, q11, q22, rho, deriv: bool, root):
        """(dual, derivative dual or None) in the namespace ``M``."""

    def _evaluate_duals(self, M, q11, q22, rho, deriv, root):
        return self._formula(M, q11, q22, rho, deriv, root)

    def _cost(self) -> int:
        return 1

    def __repr__(self):
        return f"{self._name}()"


class ReLUk(ClosedForm):
    r"""The ReLU power :math:`\sigma(z) = \max(z, 0)^k`; ``k = 0`` is the step, ``k = 1`` the ReLU.

    Closed forms (Cho & Saul 2009), with :math:`\cos\theta = \rho`:

    .. math::

        \mathbb E[\sigma(u)\sigma(v)] = \frac{(q_{11}q_{22})^{k/2}}{2\pi} J_k(\theta), \qquad
        \mathbb E[\sigma'(u)\sigma'(v)] = \frac{k^2 (q_{11}q_{22})^{(k-1)/2}}{2\pi} J_{k-1}(\theta),

    and :math:`c_\sigma = 2/(2k-1)!!` since :math:`J_k(0) = \pi (2k-1)!!`; past ``k = 150`` it is
    below float64's range and :attr:`~Activation.c_sigma` raises (the mpmath path,
    :meth:`~Activation.c_sigma_mp`, has no limit). Made by :func:`relu`
    (and :func:`step`); named ``"step"``, ``"relu"``, ``"relu2"``, ``"relu3"``, ...

    Parameters
    ----------
    k : int, default 1
        The power, ``k >= 0``.

    Raises
    ------
    TypeError
        ``k`` not an int.
    ValueError
        ``k < 0``.

    Notes
    -----
    The step (``k = 0``) is a convention: its derivative vanishes almost everywhere, and that is
    what ``derivative`` returns and what ``torch.autograd`` computes through a step network, so its
    derivative dual is 0. The true (distributional) derivative is a Dirac mass
    :math:`\delta(z)`, whose "dual" :math:`\mathbb E[\delta(u)\delta(v)]` is the Gaussian density
    at the origin, :math:`1/(2\pi\sqrt{q_{11}q_{22}(1-\rho^2)})`, infinite at :math:`\rho = \pm1`.
    With the convention only the last layer's weights contribute, and the step's NTK equals its
    NNGP.

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.relu(2), nk.relu(2).c_sigma
    (relu(2), 0.6666666666666666)
    >>> # E[relu(u) relu(v)] = 1/(2 pi) for independent u, v
    >>> float(nk.relu(1).dual(1.0, 0.0, 1.0))
    0.15915494309189535
    """

    def __init__(self, k: int = 1):
        self._k = _check_order(k)
        super().__init__("step" if self._k == 0 else ("relu" if self._k == 1 else f"relu{self._k}"))

    @property
    def k(self) -> int:
        """The power :math:`k` of :math:`\\max(z, 0)^k`.

        Examples
        --------
        >>> import ntklib as nk
        >>> nk.get_activation("relu3").k
        3
        """
        return self._k

    def _key(self):
        return (self._k,)

    def __repr__(self):
        return "step()" if self._k == 0 else f"relu({self._k})"

    def _sigma(self, z):
        if self._k == 0:
            return (z > 0).to(z.dtype)
        return torch.clamp(z, min=0) ** self._k

    def _dsigma(self, z):
        if self._k == 0:
            return torch.zeros_like(z)
        if self._k == 1:
            return (z > 0).to(z.dtype)
        return self._k * torch.clamp(z, min=0) ** (self._k - 1)

    def _scaled_duals(self, M, q11, q22, rho, deriv, root, scale):
        if M is _MpMath and scale == 1:  # the high-precision recursion: no indirection
            return self._formula(M, q11, q22, rho, deriv, root)
        if (self._k <= 1 and M is _TorchMath and not rho.requires_grad and _covers(rho, q11, q22, root)
                and q11.dtype == q22.dtype == rho.dtype and (root is None or root.dtype == rho.dtype)):
            return _relu_fused(self._k, q11, q22, rho, deriv, root, scale)
        return super()._scaled_duals(M, q11, q22, rho, deriv, root, scale)

    def _formula(self, M, q11, q22, rho, deriv, root):
        # sin(theta) = sqrt((1 - rho)(1 + rho)) and pi - theta = arccos(-rho) keep every digit at
        # rho = +-1: J_k / (2 pi) is exactly (2k-1)!!/2 at rho = 1 and 0 at rho = -1 (k >= 1)
        k = self._k
        pi_minus_theta = M.acos(-rho)
        if k == 0:
            # step(u) step(v) = 0 where a variance is 0 (u = 0 surely, and step(0) = 0)
            dual = M.broadcast(pi_minus_theta / (2 * M.pi) * (M.sign(q11) * M.sign(q22)), q11, q22)
            return dual, (M.full(0.0, q11, q22, rho) if deriv else None)
        s2 = (1 - rho) * (1 + rho)
        j1 = M.addcmul(M.sqrt(s2), pi_minus_theta, rho)
        j_prev, j_k = _j_recursion(k, rho, s2, pi_minus_theta, j1)
        s = M.sqrt(q11 * q22) if root is None else root
        dual = (s**k if k > 1 else s) * (j_k / (2 * M.pi))
        if not deriv:
            return dual, None
        dual_deriv = k**2 * (j_prev / (2 * M.pi))
        if k > 1:
            dual_deriv = dual_deriv * s ** (k - 1)
        return dual, (M.broadcast(dual_deriv, q11, q22) if k == 1 else dual_deriv)


def _relu_fused(k: int, q11, q22, rho, deriv: bool, root, scale):
    r"""``scale`` times the duals of the ReLU (``k = 1``) or the step (``k = 0``) on tensors, fused.

    The generic formula's numbers in fewer passes (the kernels' inner loop, e.g. the CNTK's pixel
    step): :math:`c\,J_1/(2\pi) = (J_1/\pi)(c/2)`, where dividing by :math:`\pi` (not multiplying by
    :math:`1/\pi`) keeps :math:`J_1/\pi = 1` and :math:`J_0/\pi = 1` exact at :math:`\rho = 1`, the
    factor :math:`c/2` is skipped for :math:`c_\sigma = 2`, and every intermediate is overwritten in
    place. Since :math:`J/\pi = 2\,(J/(2\pi))` exactly, the bits are those of the generic formula.
    ``rho`` has the full shape and the arguments one dtype (checked by the caller).
    """
    half = scale / 2
    pi_minus_theta = torch.neg(rho).acos_()  # arccos(-rho): exact at rho = +-1
    if k == 0:
        dual = pi_minus_theta.div_(math.pi).mul_(torch.sign(q11)).mul_(torch.sign(q22))  # step(0) = 0
        if half != 1:
            dual.mul_(half)
        return dual, (torch.zeros_like(rho) if deriv else None)
    s = torch.sqrt(q11 * q22) if root is None else root
    # J_1 = sin(theta) + (pi - theta) cos(theta), sin(theta) = sqrt((1 - rho)(1 + rho))
    dual = torch.sub(1, rho).mul_(rho + 1).sqrt_().addcmul_(pi_minus_theta, rho).div_(math.pi).mul_(s)
    if half != 1:
        dual.mul_(half)
    if not deriv:
        return dual, None
    dual_deriv = pi_minus_theta.div_(math.pi)
    if half != 1:
        dual_deriv.mul_(half)
    return dual, dual_deriv


def _ratios(M, q, c):
    """``(q / (q + c), c / (q + c))`` without overflow (``q + c`` stays finite where ``q`` is)."""
    d = q + c
    return q / d, c / d


class Erf(ClosedForm):
    r""":math:`\sigma = \mathrm{erf}`, with Williams' (1997) closed forms.

    .. math::

        \mathbb E[\mathrm{erf}\,u\;\mathrm{erf}\,v] = \frac{2}{\pi}\arcsin\frac{2q_{12}}
        {\sqrt{(1+2q_{11})(1+2q_{22})}},\qquad
        \mathbb E[\mathrm{erf}'u\;\mathrm{erf}'v] = \frac{4}{\pi}\big((1+2q_{11})(1+2q_{22})
        - 4q_{12}^2\big)^{-1/2}.

    Made by :func:`erf`; named ``"erf"``. Divided by :math:`D = \sqrt{1+2q_{11}}\sqrt{1+2q_{22}}`:
    with :math:`a_i = q_{ii}/(q_{ii} + \frac12)` and :math:`b_i = 1 - a_i`, the arcsine's argument
    is :math:`\rho\sqrt{a_1}\sqrt{a_2}` and the determinant :math:`\Delta = (1+2q_{11})(1+2q_{22})
    - 4q_{12}^2` is :math:`D^2 (b_1 + a_1b_2 + a_1a_2(1-\rho)(1+\rho))`, a sum without
    cancellation; the arcsine is evaluated as an ``atan2`` of the two, which keeps its digits where
    its argument nears 1 (large variances, :math:`\rho \to \pm1`), and nothing overflows for any
    finite variances (the plain products overflowed from :math:`q \approx 10^{154}` on).

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.Erf() == nk.erf(), nk.erf().c_sigma      # pi / (2 arcsin(2/3))
    (True, 2.1525788606075986)
    """

    def __init__(self):
        super().__init__("erf")

    def _key(self):
        return ()

    def _sigma(self, z):
        return torch.special.erf(z)

    def _dsigma(self, z):
        return (2 / math.sqrt(math.pi)) * torch.exp(-z * z)

    def _formula(self, M, q11, q22, rho, deriv, root):
        # divided by D = sqrt(1 + 2 q11) sqrt(1 + 2 q22): 2 q12 / D = rho g with g = sqrt(a1 a2),
        # a_i = q_ii / (q_ii + 1/2), and det / D^2 = b1 + a1 b2 + a1 a2 (1 - rho)(1 + rho) with
        # b_i = 1 - a_i: no cancellation, none in arcsin near 1, and no overflow (q11 q22 was inf
        # from q ~ 1e154 on, and 0 * inf = NaN)
        a1, b1 = _ratios(M, q11, 0.5)
        a2, b2 = _ratios(M, q22, 0.5)
        root_d = M.sqrt(b1 + a1 * b2 + (a1 * a2) * ((1 - rho) * (1 + rho)))
        dual = (2 / M.pi) * M.atan2(rho * (M.sqrt(a1) * M.sqrt(a2)), root_d)
        if not deriv:
            return dual, None
        # 4 / (pi sqrt(det)) with sqrt(det) = 2 sqrt(q11 + 1/2) sqrt(q22 + 1/2) root_d
        return dual, (2 / M.pi) / (M.sqrt(q11 + 0.5) * M.sqrt(q22 + 0.5) * root_d)


def _trigonometric(M, q11, q22, rho, root, deriv: bool, odd_first: bool):
    r"""The duals of sin (``odd_first``) and cos, from one pair of hyperbolic parts.

    :math:`e^{-(q_{11}+q_{22})/2}\sinh q_{12}` and :math:`e^{-(q_{11}+q_{22})/2}\cosh q_{12}` are
    evaluated as :math:`\frac12 e^{-\delta/2}(1 \mp e^{-2t})` with :math:`t = |q_{12}|` and
    :math:`\delta = q_{11} + q_{22} - 2t = (\sqrt{q_{11}} - \sqrt{q_{22}})^2 + 2\sqrt{q_{11}q_{22}}
    (1 - |\rho|) \ge 0`: nothing overflows (the plain product is 0 * inf = NaN from
    :math:`q \approx 745` on), :math:`\delta` has no cancellation, and ``expm1`` keeps the odd part
    accurate for small :math:`t`.
    """
    root = M.sqrt(q11 * q22) if root is None else root
    r = abs(rho)
    delta = (M.sqrt(q11) - M.sqrt(q22)) ** 2 + 2 * root * (1 - r)
    half = M.exp(-delta / 2) / 2
    m = M.expm1(-2 * (r * root))  # e^{-2t} - 1
    odd = M.sign(rho) * (half * -m)
    even = half * (2 + m)
    first, second = (odd, even) if odd_first else (even, odd)
    return first, (second if deriv else None)


class Sin(ClosedForm):
    r""":math:`\sigma = \sin`, with closed-form duals.

    :math:`\mathbb E[\sin u \sin v] = e^{-(q_{11}+q_{22})/2}\sinh q_{12}` and
    :math:`\mathbb E[\cos u\cos v] = e^{-(q_{11}+q_{22})/2}\cosh q_{12}`, evaluated without
    overflow for any variances. Made by :func:`sin`; named ``"sin"``.

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.Sin() == nk.sin(), nk.sin().c_sigma       # 2 / (1 - exp(-2))
    (True, 2.3130352854993315)
    """

    def __init__(self):
        super().__init__("sin")

    def _key(self):
        return ()

    def _sigma(self, z):
        return torch.sin(z)

    def _dsigma(self, z):
        return torch.cos(z)

    def _formula(self, M, q11, q22, rho, deriv, root):
        return _trigonometric(M, q11, q22, rho, root, deriv, odd_first=True)


class Cos(ClosedForm):
    r""":math:`\sigma = \cos`: the duals of :class:`Sin` swapped.

    :math:`\mathbb E[\cos u\cos v] = e^{-(q_{11}+q_{22})/2}\cosh q_{12}` and
    :math:`\mathbb E[\sin u\sin v] = e^{-(q_{11}+q_{22})/2}\sinh q_{12}`. Made by :func:`cos`;
    named ``"cos"``.

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.Cos() == nk.cos(), nk.cos().c_sigma       # 2 / (1 + exp(-2))
    (True, 1.7615941559557649)
    """

    def __init__(self):
        super().__init__("cos")

    def _key(self):
        return ()

    def _sigma(self, z):
        return torch.cos(z)

    def _dsigma(self, z):
        return -torch.sin(z)

    def _formula(self, M, q11, q22, rho, deriv, root):
        return _trigonometric(M, q11, q22, rho, root, deriv, odd_first=False)


class Identity(ClosedForm):
    r""":math:`\sigma(z) = z`: dual :math:`q_{12}`, derivative dual 1, :math:`c_\sigma = 1`.

    Made by :func:`identity`; named ``"identity"`` (``"linear"`` parses to it too).

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.Identity() == nk.get_activation("linear")
    True
    >>> float(nk.identity().dual(2.0, 0.5, 1.0))
    0.5
    """

    def __init__(self):
        super().__init__("identity")

    def _key(self):
        return ()

    def _sigma(self, z):
        return z

    def _dsigma(self, z):
        return torch.ones_like(z)

    def _formula(self, M, q11, q22, rho, deriv, root):
        dual = rho * (M.sqrt(q11 * q22) if root is None else root)
        return dual, (M.full(1.0, q11, q22, rho) if deriv else None)


class ABReLU(ClosedForm):
    r"""The two-slope ReLU :math:`\sigma(z) = a\max(z, 0) + b\min(z, 0)`: leaky ReLU, abs, ...

    From the arc-cosine integrals :math:`J_0, J_1` of the positive and negative parts (the pair
    :math:`(u, -v)` has the angle :math:`\pi - \theta`), with :math:`s = \sqrt{q_{11}q_{22}}` and
    :math:`\cos\theta = \rho`:

    .. math::

        \mathbb E[\sigma(u)\sigma(v)] = \frac{s}{2\pi}\big[(a^2+b^2) J_1(\theta) - 2ab\,J_1(\pi-\theta)\big]
        = s\Big[\frac{(a-b)^2\sin\theta}{2\pi} + \rho\,D\Big], \qquad
        \mathbb E[\sigma'(u)\sigma'(v)] = D = \frac{(a^2+b^2)(\pi-\theta) + 2ab\,\theta}{2\pi},

    and :math:`c_\sigma = 2/(a^2+b^2)`. Made by :func:`abrelu` and :func:`leaky_relu`; named
    ``"leaky_relu"`` (:math:`a = 1, b = 0.01`), ``"leaky_relu(<b>)"`` (:math:`a = 1`), ``"abs"``
    (:math:`a = 1, b = -1`) and ``"abrelu(<a>, <b>)"`` otherwise, names :func:`get_activation`
    parses back.

    Parameters
    ----------
    a : float, default 1.0
        The slope for :math:`z > 0`.
    b : float, default 0.0
        The slope for :math:`z < 0`.

    Raises
    ------
    TypeError
        ``a`` or ``b`` not a real number.
    ValueError
        ``a`` or ``b`` not finite, or both 0 (:math:`c_\sigma` undefined).

    Notes
    -----
    Exact endpoints: :math:`(\pi - \theta)/(2\pi)` and :math:`\theta/(2\pi)` are evaluated as
    :math:`\arccos(\mp\rho)/(2\pi)`, exactly 0 and 1/2 at :math:`\rho = \pm 1`, and
    :math:`\sin\theta = \sqrt{(1-\rho)(1+\rho)}` is exactly 0 there: the dual is :math:`s(a^2+b^2)/2`
    at :math:`\rho = 1` and :math:`-ab\,s` at :math:`\rho = -1`, the derivative dual
    :math:`(a^2+b^2)/2` and :math:`ab`. When :math:`ab < 0` (abs), :math:`D` changes sign and is
    evaluated as :math:`(a+b)^2/4 + (a-b)^2 \arcsin(\rho)/(2\pi)` (the arcsine as an ``atan2``),
    accurate relative to its own size near its zero. At the kink the derivative is taken as
    :math:`b` (``torch.where(z > 0, a, b)``, what autograd gives), a set of measure zero.

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.abrelu(1, -1).name, nk.abrelu(1, -1).c_sigma       # |z|: E[z^2] = 1
    ('abs', 1.0)
    >>> nk.leaky_relu(), nk.leaky_relu().name, nk.leaky_relu(0.2).name
    (leaky_relu(0.01), 'leaky_relu', 'leaky_relu(0.2)')
    >>> # rho = -1: E[sigma(u) sigma(-u)] = -a b q
    >>> float(nk.abrelu(2, 0.5).dual(3.0, -3.0, 3.0))
    -3.0
    """

    def __init__(self, a: float = 1.0, b: float = 0.0):
        self._a, self._b = _slope(a, "a"), _slope(b, "b")
        if self._a == 0 and self._b == 0:
            raise ValueError("a and b must not both be 0 (sigma = 0 has no c_sigma)")
        a, b = self._a, self._b
        if a == 1 and b == -1:
            name = "abs"
        elif a == 1:
            name = "leaky_relu" if b == 0.01 else f"leaky_relu({b!r})"
        else:
            name = f"abrelu({a!r}, {b!r})"
        super().__init__(name)

    @property
    def a(self) -> float:
        """The slope for :math:`z > 0`.

        Examples
        --------
        >>> import ntklib as nk
        >>> nk.leaky_relu(0.1).a, nk.leaky_relu(0.1).b
        (1.0, 0.1)
        """
        return self._a

    @property
    def b(self) -> float:
        """The slope for :math:`z < 0`.

        Examples
        --------
        >>> import ntklib as nk
        >>> nk.get_activation("abs").b
        -1.0
        """
        return self._b

    def _key(self):
        return (self._a, self._b)

    def __repr__(self):
        if self._a == 1 and self._b != -1:
            return f"leaky_relu({self._b!r})"
        return f"abrelu({self._a!r}, {self._b!r})"

    def _sigma(self, z):
        return torch.where(z > 0, self._a * z, self._b * z)

    def _dsigma(self, z):
        return torch.where(z > 0, torch.full_like(z, self._a), torch.full_like(z, self._b))

    def _formula(self, M, q11, q22, rho, deriv, root):
        a, b = M.const(self._a), M.const(self._b)  # exact at the working precision on mpmath
        s2 = (1 - rho) * (1 + rho)
        sin_theta = M.sqrt(s2)
        if self._a * self._b >= 0:  # both terms >= 0; arccos(-+rho) / (2 pi) exactly 0 and 1/2 at rho = +-1
            d = (a * a + b * b) * (M.acos(-rho) / (2 * M.pi)) + (2 * a * b) * (M.acos(rho) / (2 * M.pi))
        else:  # D has a zero: the arcsine form keeps its relative accuracy there
            d = (a + b) ** 2 / 4 + (a - b) ** 2 * (M.atan2(rho, sin_theta) / (2 * M.pi))
        s = M.sqrt(q11 * q22) if root is None else root
        dual = s * ((a - b) ** 2 * (sin_theta / (2 * M.pi)) + rho * d)
        return dual, (M.broadcast(d, q11, q22) if deriv else None)


def _slope(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number (a slope); got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite (a slope); got {value}")
    return value + 0.0  # -0.0 -> 0.0: one name per activation


class Sign(ClosedForm):
    r""":math:`\sigma(z) = \operatorname{sign}(z)`: dual :math:`\frac2\pi\arcsin\rho`, :math:`c_\sigma = 1`.

    :math:`\mathbb E[\operatorname{sign}u\,\operatorname{sign}v] = 1 - 2\theta/\pi =
    \frac{2}{\pi}\arcsin\rho`, independent of the variances (0 when one of them is 0), evaluated
    as :math:`\frac2\pi\operatorname{atan2}(\rho, \sqrt{(1-\rho)(1+\rho)})`: exactly :math:`\pm1` at
    :math:`\rho = \pm1` and accurate relative to its size near :math:`\rho = 0`. Made by :func:`sign`;
    named ``"sign"``.

    Notes
    -----
    The derivative dual is 0, by the convention of the step (see :class:`ReLUk`): the derivative of
    :math:`\operatorname{sign}` vanishes almost everywhere, which is what ``derivative`` returns and
    what ``torch.autograd`` computes through a sign network; its distributional derivative
    :math:`2\delta(z)` is not a function. With the convention the sign's NTK equals its NNGP.

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.Sign() == nk.sign(), nk.sign().c_sigma
    (True, 1.0)
    >>> float(nk.sign().dual(1.0, 0.5, 1.0)) * 3        # (2/pi) arcsin(1/2) = 1/3
    1.0
    """

    def __init__(self):
        super().__init__("sign")

    def _key(self):
        return ()

    def _sigma(self, z):
        return torch.sign(z)

    def _dsigma(self, z):
        return torch.zeros_like(z)

    def _formula(self, M, q11, q22, rho, deriv, root):
        # sign(u) sign(v) = 0 where a variance is 0 (u = 0 surely); not sign(sqrt(q11 q22)), whose
        # product underflows for tiny variances
        dual = M.atan2(rho, M.sqrt((1 - rho) * (1 + rho))) * (2 / M.pi) * (M.sign(q11) * M.sign(q22))
        return M.broadcast(dual, q11, q22), (M.full(0.0, q11, q22, rho) if deriv else None)


class GELU(ClosedForm):
    r""":math:`\sigma(z) = z\,\Phi(z)` (Hendrycks & Gimpel 2016), with closed-form duals.

    With :math:`c_i = 1 + q_{ii}`, :math:`\Delta = c_1c_2 - q_{12}^2` and
    :math:`r = q_{12}/\sqrt{c_1c_2}` (derived in ``book/ntk.md`` by Stein's lemma, writing
    :math:`\Phi(u) = P(X \le u)` for an independent standard normal :math:`X`):

    .. math::

        \mathbb E[\sigma(u)\sigma(v)] &= q_{12}\Big(\frac14 + \frac{\arcsin r}{2\pi}\Big)
            + \frac{q_{11}q_{22}\Delta + q_{12}^2}{2\pi\,c_1c_2\sqrt\Delta}, \\
        \mathbb E[\sigma'(u)\sigma'(v)] &= \frac14 + \frac{\arcsin r}{2\pi}
            + \frac{q_{12}}{2\pi\sqrt\Delta}\Big(\frac1{c_1} + \frac1{c_2} + \frac1\Delta\Big),

    :math:`\sigma'(z) = \Phi(z) + z\varphi(z)`. Made by :func:`gelu`; named ``"gelu"``.

    Notes
    -----
    Evaluated in the ratios :math:`a_i = q_{ii}/c_i` and :math:`b_i = 1/c_i`: with
    :math:`g = \sqrt{a_1}\sqrt{a_2}`, :math:`1 - r^2 = \Delta/(c_1c_2) = b_1 + a_1b_2 +
    a_1a_2(1-\rho)(1+\rho)` (no cancellation) and :math:`\frac14 + \frac{\arcsin r}{2\pi} =
    \operatorname{atan2}(\sqrt{1-r^2}, -\rho g)/(2\pi)`, so that nothing overflows for any finite
    variances (the dual grows like :math:`q`). Accurate to a few ulps against a 50-digit reference;
    just inside :math:`\rho = -1` at large variances the dual is a small difference of terms of size
    :math:`\sqrt{q_{11}q_{22}}` and accurate to rounding relative to that scale (as the ReLU's).

    Examples
    --------
    >>> import math, ntklib as nk
    >>> g = nk.gelu()
    >>> g, g == nk.get_activation("gelu"), g.closed_form
    (gelu(), True, True)
    >>> # independent u, v: E[u Phi(u)] E[v Phi(v)] = q^2 / (2 pi (1 + q))
    >>> bool(math.isclose(g.dual(1.0, 0.0, 1.0), 1 / (4 * math.pi)))
    True
    """

    def __init__(self):
        super().__init__("gelu")

    def _key(self):
        return ()

    def _sigma(self, z):
        return torch.nn.functional.gelu(z)

    def _dsigma(self, z):
        return _gelu_deriv(z)

    def _formula(self, M, q11, q22, rho, deriv, root):
        a1, b1 = _ratios(M, q11, 1)
        a2, b2 = _ratios(M, q22, 1)
        g = M.sqrt(a1) * M.sqrt(a2)
        d = b1 + a1 * b2 + (a1 * a2) * ((1 - rho) * (1 + rho))  # 1 - r^2, r = rho g
        root_d = M.sqrt(d)
        angle = M.atan2(root_d, -rho * g) / (2 * M.pi)  # 1/4 + arcsin(r) / (2 pi)
        s = M.sqrt(q11 * q22) if root is None else root
        dual = s * (rho * angle + g * (d + rho * rho * (b1 * b2)) / (2 * M.pi * root_d))
        if not deriv:
            return dual, None
        return dual, angle + (rho * g / root_d) * (b1 + b2 + b1 * b2 / d) / (2 * M.pi)


class Quadrature(Activation):
    r"""Any elementwise callable, its duals by a two-dimensional quadrature that knows its accuracy.

    Parameters
    ----------
    fn : callable
        :math:`\sigma`. It receives a float ``torch.Tensor`` of any shape and must act elementwise.
        Torch operations and Python operators (``lambda z: z**2``) work on any device; a numpy
        ufunc (``np.tanh``) runs as the torch function of its name where torch has one (so finite
        networks train through it), else on a numpy copy; a function calling numpy
        (``lambda z: np.tanh(z)``) runs on a detached copy, with its gradient from ``dfn`` or
        finite differences.
    dfn : callable, optional
        :math:`\sigma'`, same calling convention. If omitted, it is taken by ``torch.autograd``
        when ``fn`` is differentiable in torch, else by a five-point central difference with step
        ``1e-3`` (error about ``1e-12`` for smooth ``fn``).
    name : str, optional
        Used in the repr and in error messages; default ``fn.__name__``.
    order : int, optional
        ``None`` (default): the adaptive polar rule of :mod:`ntklib.quadrature`, accurate to
        ``rtol`` for activations smooth away from 0 at any variance. An int: the legacy tensor
        Gauss–Hermite rule of ``order`` nodes per dimension (``2 <= order <= 370``, the range of
        numpy's node generator), accurate only for small variances.
    rtol : float, default 1e-10
        The tolerance, relative to the dual's scale (:math:`\mathbb E|\sigma(u)\sigma(v)|` for the
        two-dimensional rule, :math:`\sqrt{\mathbb E\sigma(u)^2\,\mathbb E\sigma(v)^2}` for the
        series): an estimated error above it (or above a thousand ulps of the dtype, for float32)
        raises a :class:`~ntklib.quadrature.QuadratureAccuracyWarning` giving the accuracy reached.

    Raises
    ------
    TypeError
        ``fn`` or ``dfn`` not callable, ``order`` not an int or None, ``name`` not a str, ``rtol`` not
        a real number; when evaluated, a function that cannot take a tensor (``math.tanh``).
    ValueError
        ``order < 2`` or ``order > 370``; ``rtol`` not in ``(0, 1)``; and, when the duals are
        evaluated, an activation returning NaN or inf at the quadrature nodes.

    Warns
    -----
    QuadratureAccuracyWarning
        When the estimated error of a dual exceeds ``rtol`` (a kink or jump away from 0, e.g.
        ``lambda z: torch.clamp(z - 1, min=0)``, or the legacy rule at a large variance).

    Notes
    -----
    The default rule (see :mod:`ntklib.quadrature`) integrates in polar coordinates split at the
    lines :math:`u = 0` and :math:`v = 0`, with Gauss–Legendre panels graded geometrically towards
    them and towards the origin at the width of the sharp zone, :math:`\sim 1/\sqrt q`. It converges
    exponentially for activations analytic near the real axis at any variance, and integrates kinks
    and jumps at 0 (ReLU or the step as a lambda) exactly. Each dual also runs at 3/4 and 1/2 of the
    nodes per panel, and the three values give the error estimate; :meth:`dual_error` returns it and
    :attr:`accuracy` holds the worst relative estimate of the last evaluation. Where Mehler's series
    in :math:`\rho` converges to ``rtol`` (a bound on its tail decides, entry by entry) it is used
    instead, with one-dimensional Hermite coefficients, and :math:`\rho = \pm 1` is a
    one-dimensional integral; there the estimate compares grids of 16 and 8 nodes per panel.
    Measured worst relative errors of the tanh dual over :math:`\rho \in \{-1, -0.5, 0, 0.5,
    0.999, 1\}` at :math:`(q_{11}, q_{22}) = (q, 0.7q)`, relative to
    :math:`\sqrt{\mathbb E\tanh^2 u\; \mathbb E\tanh^2 v}`, against scipy's nested adaptive
    quadrature (``tests/test_quadrature.py::test_tanh_dual_accurate_at_large_variance`` checks the
    first row to 1e-10):

    ==============================  ===========  ===========  ===========  ===========
    rule                            q = 1e-3     q = 1        q = 100      q = 1000
    ==============================  ===========  ===========  ===========  ===========
    default                         2e-16        3e-16        1e-13        3e-13
    ``order=64`` (legacy)           3e-16        2e-9         6e-2         4e-2
    ==============================  ===========  ===========  ===========  ===========

    Oscillating activations are the limit: ``Quadrature(torch.sin)`` meets 1e-10 up to
    :math:`q \approx 10` and warns beyond (at :math:`q = 100` it is off by 1e-4).
    Closed forms through this path (``Quadrature(torch.special.erf)``, ``Quadrature(torch.sin)``,
    ``Quadrature(lambda z: torch.clamp(z, min=0))``) agree with :func:`erf`, :func:`sin` and
    :func:`relu` to 1e-10 of the kernel's scale (``test_closed_forms_through_the_callable_path``;
    sin up to :math:`q = 10`).

    Cost: one dual by the two-dimensional rule takes 66 816 evaluations of ``fn`` (its three
    levels; 7 424 for ``order=64``). In a kernel tile, whose variances come as a column and a row,
    the series needs only the Hermite coefficients of each row and column, and 129 terms per entry
    (:attr:`~Activation.tile_cost` = 387 passes); the diagonal is one-dimensional, and only the
    entries with :math:`|\rho|` too near 1 for the series at their variances take the
    two-dimensional rule. Measured on one core: ``nk.ntk(X, depth=2, activation="tanh")`` for 200
    points in :math:`\mathbb R^{10}` takes 0.26 s (7.7 s with the former order-64 rule), 34 times
    the closed form ``"erf"`` (0.008 s). At variances near 1000 most entries need the
    two-dimensional rule, some milliseconds each.
    :attr:`~Activation.c_sigma` uses the same rule, so that :math:`c_\sigma\,\mathbb E[\sigma(z)^2]
    = 1` to rounding. The quadrature is not symmetric in :math:`(u, v)`: ``K(X, Y)`` and
    ``K(Y, X).T`` agree to the quadrature error, while ``K(X)`` is exactly symmetric. There is no
    high-precision path: :meth:`~Activation.duals` and :meth:`~Activation.c_sigma_mp` refuse mpmath
    numbers.

    Two quadrature activations are equal when they have the same ``fn`` and ``dfn`` (the same
    objects), ``order``, ``rtol`` and ``name``. The repr reads back as code when ``fn`` and ``dfn``
    are public functions of torch, numpy or math or module-level functions (a lambda cannot be
    named); the named ones of :func:`get_activation` read ``get_activation('tanh')``.

    Examples
    --------
    >>> import torch, ntklib as nk
    >>> square = nk.Quadrature(lambda z: z**2, name="square")
    >>> round(float(square.c_sigma), 12)                 # E[z^4] = 3
    0.333333333333
    >>> # E[u^2 v^2] = 1 + 2 * 0.5**2
    >>> round(float(square.dual(1.0, 0.5, 1.0)), 12)
    1.5
    >>> tanh = nk.Quadrature(torch.tanh)
    >>> print(f"{float(tanh.dual(100.0, 90.0, 100.0)):.10f}")  # not 0.71220
    0.7023...
    >>> float(tanh.dual_error(100.0, 90.0, 100.0)) < 1e-10
    True
    >>> q = nk.Quadrature(torch.special.erf, name="erf by quadrature", order=128)
    >>> q
    Quadrature(torch.special.erf, name='erf by quadrature', order=128)
    >>> eval(repr(q), {"Quadrature": nk.Quadrature, "torch": torch}) == q
    True
    """

    def __init__(self, fn: Callable, dfn: Callable | None = None, *, name: str | None = None,
                 order: int | None = None, rtol: float = 1e-10):
        if not callable(fn):
            raise TypeError(f"activation must be a name, an Activation or a callable; got {fn!r}")
        if dfn is not None and not callable(dfn):
            raise TypeError(f"dfn must be callable or None; got {dfn!r}")
        if order is not None:
            order = _quadrature.check_order(check_int(order, "order", 2, "Gauss-Hermite nodes per dimension, or None"))
        if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real):
            raise TypeError(f"rtol must be a real number in (0, 1); got {rtol!r}")
        if not 0 < rtol < 1:
            raise ValueError(f"rtol must lie in (0, 1) (a relative tolerance); got {rtol!r}")
        self._order, self._rtol = order, float(rtol)
        self._fn, self._dfn = fn, dfn
        self._accuracy = None
        super().__init__(getattr(fn, "__name__", "activation") if name is None else name)

    @property
    def fn(self) -> Callable:
        """The activation :math:`\\sigma` as given.

        Examples
        --------
        >>> import torch, ntklib as nk
        >>> nk.get_activation("tanh").fn is torch.tanh
        True
        """
        return self._fn

    @property
    def dfn(self) -> Callable | None:
        """The derivative :math:`\\sigma'` as given, or None (autograd or finite differences).

        Examples
        --------
        >>> import torch, ntklib as nk
        >>> nk.Quadrature(torch.tanh).dfn is None
        True
        """
        return self._dfn

    @property
    def order(self) -> int | None:
        """Gauss–Hermite nodes per dimension of the legacy rule, or None for the adaptive rule.

        Examples
        --------
        >>> import torch, ntklib as nk
        >>> nk.Quadrature(torch.tanh, order=32).order, nk.Quadrature(torch.tanh).order
        (32, None)
        """
        return self._order

    @property
    def rtol(self) -> float:
        """The relative tolerance past which a :class:`~ntklib.quadrature.QuadratureAccuracyWarning` is raised.

        Examples
        --------
        >>> import torch, ntklib as nk
        >>> nk.Quadrature(torch.tanh).rtol
        1e-10
        """
        return self._rtol

    @property
    def accuracy(self) -> float | None:
        """The worst estimated relative error of the last evaluation of the duals (None before any).

        Relative to the dual's scale (see ``rtol``); over every entry and both duals of the last
        :meth:`~Activation.duals` call (for a tiled kernel, of the last tile; not thread-safe).

        Examples
        --------
        >>> import torch, ntklib as nk
        >>> a = nk.Quadrature(torch.tanh)
        >>> _ = a.dual(1.0, 0.5, 1.0)
        >>> a.accuracy < 1e-12
        True
        """
        return self._accuracy

    def dual_error(self, q11, q12, q22, *, deriv=False):
        r"""The estimated absolute error of :meth:`~Activation.dual` (or :meth:`~Activation.dual_deriv`).

        Parameters
        ----------
        q11, q12, q22 : array_like or torch.Tensor
            As in :meth:`~Activation.dual`.
        deriv : bool, default False
            The error of the derivative dual instead.

        Returns
        -------
        numpy.ndarray, numpy scalar or torch.Tensor
            The estimate in float64, of the kind of ``q12``.

        Raises
        ------
        ValueError
            As in :meth:`~Activation.dual`.

        Examples
        --------
        >>> import torch, ntklib as nk
        >>> float(nk.Quadrature(torch.sin).dual_error(4.0, 1.0, 9.0)) < 1e-10
        True
        """
        a, b, rho, _ = _covariance(q11, q12, q22)
        f = self._dsigma if check_bool(deriv, "deriv") else self._sigma
        return scalar_or_array(q12, self._rule(f, a, b, rho)[1])

    def _key(self):
        return (id(self._fn), id(self._dfn), self._order, self._rtol, self._name)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return (self._fn is other._fn and self._dfn is other._dfn and self._order == other._order
                and self._rtol == other._rtol and self._name == other._name)

    __hash__ = Activation.__hash__

    def _cost(self) -> int:
        if self._order is None:  # Mehler's series: a few passes per term (the polar rule goes in chunks)
            return 3 * (_quadrature._SERIES_TERMS + 1)
        n = self._order
        return n**2 + max(2, -(-3 * n // 4)) ** 2 + max(2, n // 2) ** 2

    def __repr__(self):
        factory = _FACTORIES.get(self._name)
        if self._name in _QUADRATURE_NAMES and factory() == self:
            return f"get_activation({self._name!r})"
        parts = [_code_name(self._fn)]
        if self._dfn is not None:
            parts.append(_code_name(self._dfn))
        if self._name != getattr(self._fn, "__name__", "activation"):
            parts.append(f"name={self._name!r}")
        if self._order is not None:
            parts.append(f"order={self._order}")
        if self._rtol != 1e-10:
            parts.append(f"rtol={self._rtol!r}")
        return f"Quadrature({', '.join(parts)})"

    def _sigma(self, z):
        return _quadrature.call(self._fn, z, self._dfn)

    def _dsigma(self, z):
        if self._dfn is not None:
            return _quadrature.call(self._dfn, z)
        return _quadrature.derivative(self._fn, z)

    def _evaluate_duals(self, M, q11, q22, rho, deriv, root):
        if M is not _TorchMath:
            raise TypeError(
                f"{self!r} is evaluated by float64 quadrature and has no high-precision path: give "
                "torch tensors, or use a closed form (relu(k), step, erf, sin, cos, identity, abrelu, leaky_relu, "
                "abs, sign, gelu) for mpmath"
            )
        dual, error, size = self._rule(self._sigma, q11, q22, rho)
        worst = self._check(dual, error, size, q11, q22, rho, "dual")
        if not deriv:
            self._accuracy = worst
            return dual, None
        dual_deriv, error, size = self._rule(self._dsigma, q11, q22, rho)
        self._accuracy = max(worst, self._check(dual_deriv, error, size, q11, q22, rho, "derivative dual"))
        return dual, dual_deriv

    def _rule(self, f, q11, q22, rho):
        """(value, error estimate, scale) of E[f(u) f(v)]: Mehler's series where it converges, the
        one-dimensional rule at rho = +-1, else the polar rule (or the legacy Gauss-Hermite rule)."""
        with torch.no_grad():
            if self._order is not None:
                return _quadrature.gauss_hermite_expectation(f, f, q11, q22, rho, self._order)
            return _quadrature.dual_expectation(f, q11, q22, rho, self._rtol)

    def _check(self, value, error, size, q11, q22, rho, what) -> float:
        """Refuse a non-finite dual; warn past rtol; return the worst relative error estimate."""
        if not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).nonzero()[0, 0]) if value.dim() else 0
            q = float(torch.maximum(q11, q22).max()) if q11.numel() else 0.0
            raise ValueError(
                f"the activation {self!r} returned NaN or inf at the quadrature nodes of its {what} "
                f"(pre-activations up to {_quadrature._TRUNCATION * math.sqrt(q):.3g} in size, entry {bad}); "
                "an activation must be finite on the real line"
            )
        if not value.numel():
            return 0.0
        rel = error / size.clamp_min(torch.finfo(size.dtype).tiny)
        rel = torch.where(size > 0, rel, torch.zeros_like(rel))
        worst = float(rel.max())
        # float32 tensors cannot hold rtol = 1e-10: the tolerance is never below a thousand ulps
        if worst > max(self._rtol, 1000 * torch.finfo(value.dtype).eps):
            i = int(rel.argmax())
            at = ", ".join(f"{float(t.reshape(-1)[i]):.4g}" for t in torch.broadcast_tensors(q11, q22, rho))
            warnings.warn(
                f"{self!r}: the quadrature {what} reached a relative accuracy of {worst:.1e} only "
                f"(rtol={self._rtol:g}; at q11, q22, rho = {at}): the activation has a kink or jump away "
                "from 0, or is too rough for the rule; give it a closed form if it has one",
                _quadrature.QuadratureAccuracyWarning, stacklevel=4,
            )
        return worst


#: public namespaces searched for a function's importable name (for reprs)
_CODE_MODULES = ("torch.special", "torch.nn.functional", "torch", "numpy", "math")


def _code_name(fn) -> str:
    """``module.name`` if ``fn`` is reachable so, else its plain repr (a lambda cannot be named)."""
    import importlib
    import sys

    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    public = module == "__main__" or (module and not any(p.startswith("_") for p in module.split(".")))
    if public and qualname and "<" not in qualname:
        obj = sys.modules.get(module)
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
        if obj is fn:
            return qualname if module == "__main__" else f"{module}.{qualname}"
    for name in _CODE_MODULES:
        for attr, value in vars(importlib.import_module(name)).items():
            if value is fn and not attr.startswith("_"):
                return f"{name}.{attr}"
    return repr(fn)


QuadratureAccuracyWarning = _quadrature.QuadratureAccuracyWarning


# --------------------------------------------------------------------------------------------
# Factories and names
# --------------------------------------------------------------------------------------------
def relu(k: int = 1) -> ReLUk:
    r"""The ReLU power :math:`\max(z, 0)^k` with closed-form duals.

    Parameters
    ----------
    k : int, default 1
        The power, ``k >= 0``; ``relu(0)`` is the step (also :func:`step`).

    Returns
    -------
    ReLUk
        Named ``"relu"`` for ``k = 1``, ``"step"`` for ``k = 0`` and ``f"relu{k}"`` otherwise.

    Raises
    ------
    TypeError
        ``k`` not an int.
    ValueError
        ``k < 0``.

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.relu(), nk.relu(3), nk.relu(3).name, nk.relu(0) == nk.step()
    (relu(1), relu(3), 'relu3', True)
    """
    return ReLUk(k)


def step() -> ReLUk:
    r"""The step :math:`\mathbf 1[z > 0]`, i.e. ``relu(0)``, named ``"step"``.

    Returns
    -------
    ReLUk
        ``ReLUk(0)``; its derivative dual is 0 by convention (see :class:`ReLUk`).

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.step(), nk.step().name, nk.step().c_sigma
    (step(), 'step', 2.0)
    """
    return ReLUk(0)


def erf() -> Erf:
    r"""The error function :math:`\mathrm{erf}` with Williams' closed-form duals, named ``"erf"``.

    Returns
    -------
    Erf
        The closed form of erf (all instances are equal).

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.erf(), nk.get_activation("erf") == nk.erf()
    (erf(), True)
    """
    return Erf()


def sin() -> Sin:
    r""":math:`\sin` with closed-form duals, named ``"sin"``.

    Returns
    -------
    Sin
        The closed form of sin (all instances are equal).

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.sin(), nk.get_activation("sin") == nk.sin()
    (sin(), True)
    """
    return Sin()


def cos() -> Cos:
    r""":math:`\cos` with closed-form duals, named ``"cos"``.

    Returns
    -------
    Cos
        The closed form of cos (all instances are equal).

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.cos(), nk.get_activation("cos") == nk.cos()
    (cos(), True)
    """
    return Cos()


def identity() -> Identity:
    r"""The identity :math:`\sigma(z) = z` (a linear network), named ``"identity"``.

    Returns
    -------
    Identity
        The closed form of the identity (all instances are equal).

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.identity(), nk.get_activation("linear") == nk.identity()
    (identity(), True)
    """
    return Identity()


def abrelu(a: float = 1.0, b: float = 0.0) -> ABReLU:
    r"""The two-slope ReLU :math:`a\max(z, 0) + b\min(z, 0)` with closed-form duals.

    Parameters
    ----------
    a : float, default 1.0
        The slope for :math:`z > 0`.
    b : float, default 0.0
        The slope for :math:`z < 0`; ``abrelu(1, -1)`` is :math:`|z|` (named ``"abs"``),
        ``abrelu(1, alpha)`` the leaky ReLU (:func:`leaky_relu`).

    Returns
    -------
    ABReLU
        Equal to every other ``abrelu`` with the same slopes.

    Raises
    ------
    TypeError
        A slope that is not a real number.
    ValueError
        A slope that is not finite, or both 0.

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.abrelu(2, 0.5), nk.abrelu(1, -1) == nk.get_activation("abs")
    (abrelu(2.0, 0.5), True)
    >>> nk.abrelu(2, 0.5).c_sigma                   # 2 / (a^2 + b^2)
    0.47058823529411764
    """
    return ABReLU(a, b)


def leaky_relu(alpha: float = 0.01) -> ABReLU:
    r"""The leaky ReLU :math:`\max(z, 0) + \alpha\min(z, 0)`, i.e. ``abrelu(1, alpha)``.

    Parameters
    ----------
    alpha : float, default 0.01
        The slope for :math:`z < 0` (torch's default).

    Returns
    -------
    ABReLU
        Named ``"leaky_relu"`` for ``alpha = 0.01`` and ``f"leaky_relu({alpha!r})"`` otherwise.

    Raises
    ------
    TypeError
        ``alpha`` not a real number.
    ValueError
        ``alpha`` not finite.

    Examples
    --------
    >>> import ntklib as nk
    >>> leaky = nk.leaky_relu(0.1)
    >>> leaky, nk.get_activation("leaky_relu(0.1)") == leaky
    (leaky_relu(0.1), True)
    """
    return ABReLU(1.0, alpha)


def sign() -> Sign:
    r"""The sign :math:`\operatorname{sign}(z)` with the arcsine dual, named ``"sign"``.

    Returns
    -------
    Sign
        The closed form of sign (all instances are equal); its derivative dual is 0 by the
        step's convention (see :class:`Sign`).

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.sign(), nk.get_activation("sign") == nk.sign()
    (sign(), True)
    """
    return Sign()


def gelu() -> GELU:
    r"""GELU :math:`z\Phi(z)` with closed-form duals, named ``"gelu"``.

    Returns
    -------
    GELU
        The closed form of GELU (all instances are equal).

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.gelu(), nk.get_activation("gelu") == nk.gelu()
    (gelu(), True)
    """
    return GELU()


def _tanh_deriv(z):
    return 1 - torch.tanh(z) ** 2


def _gelu_deriv(z):
    return 0.5 * torch.special.erfc(-z / math.sqrt(2)) + z * torch.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def _sigmoid_deriv(z):
    return torch.sigmoid(z) * torch.sigmoid(-z)


# each factory returns an equal activation on every call (module-level functions, not lambdas)
_FACTORIES = {
    "relu": relu,
    "step": step,
    "relu2": lambda: relu(2),
    "relu3": lambda: relu(3),
    "erf": erf,
    "sin": sin,
    "cos": cos,
    "identity": identity,
    "linear": identity,
    "abs": lambda: abrelu(1.0, -1.0),
    "leaky_relu": leaky_relu,
    "sign": sign,
    "gelu": gelu,
    "tanh": lambda: Quadrature(torch.tanh, _tanh_deriv, name="tanh"),
    "softplus": lambda: Quadrature(torch.nn.functional.softplus, torch.sigmoid, name="softplus"),
    "sigmoid": lambda: Quadrature(torch.sigmoid, _sigmoid_deriv, name="sigmoid"),
}
_QUADRATURE_NAMES = ("tanh", "softplus", "sigmoid")
_RELU_POWER = re.compile(r"relu(0|[1-9][0-9]*)")
#: the names of the two-slope ReLUs: leaky_relu(<b>) and abrelu(<a>, <b>), slopes as Python floats
_LEAKY = re.compile(r"leaky_relu\(([^,()]+)\)")
_ABRELU = re.compile(r"abrelu\(([^,()]+),([^,()]+)\)")

#: The names :func:`get_activation` parses: closed forms first (``"linear"`` is the identity,
#: ``"abs"`` and ``"leaky_relu"`` two-slope ReLUs), then the quadrature activations. ``"relu<k>"``
#: parses for every ``k >= 0`` (``relu0`` is the step, ``relu1`` the ReLU); the tuple lists the
#: powers 2 and 3 that the book uses. ``"leaky_relu(<b>)"`` and ``"abrelu(<a>, <b>)"`` parse for
#: any finite slopes (the names of :func:`leaky_relu` and :func:`abrelu`).
ACTIVATION_NAMES = tuple(_FACTORIES)


def get_activation(activation) -> Activation:
    """Resolve a name, an :class:`Activation` or a callable to an :class:`Activation`.

    Parameters
    ----------
    activation : str, Activation or callable
        A name of :data:`ACTIVATION_NAMES`, ``"relu<k>"``, ``"leaky_relu(<b>)"`` or
        ``"abrelu(<a>, <b>)"`` (case-insensitive); an activation, returned as it is; any other
        callable, wrapped in :class:`Quadrature`.

    Returns
    -------
    Activation
        For every activation ``a`` the library makes, ``get_activation(a.name) == a``.

    Raises
    ------
    ValueError
        An unknown name; the message lists the known ones.
    TypeError
        Anything else.

    Examples
    --------
    >>> import ntklib as nk
    >>> [nk.get_activation(name) for name in ("relu", "step", "relu2", "erf")]
    [relu(1), step(), relu(2), erf()]
    >>> nk.get_activation(nk.relu(5).name) == nk.relu(5)
    True
    >>> nk.get_activation("swish")
    Traceback (most recent call last):
    ...
    ValueError: unknown activation 'swish'; known names: relu, step, ...
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        key = activation.lower()
        if key in _FACTORIES:
            return _FACTORIES[key]()
        power = _RELU_POWER.fullmatch(key)
        if power:
            return relu(int(power.group(1)))
        slopes = _LEAKY.fullmatch(key.replace(" ", "")) or _ABRELU.fullmatch(key.replace(" ", ""))
        if slopes:
            try:
                values = [float(v) for v in slopes.groups()]
            except ValueError:
                values = None
            if values is not None:
                return abrelu(1.0, *values) if len(values) == 1 else abrelu(*values)
        raise ValueError(
            f"unknown activation {activation!r}; known names: {', '.join(ACTIVATION_NAMES)}, relu<k> "
            "for any integer k >= 0, leaky_relu(<b>) and abrelu(<a>, <b>) for slopes a, b (or pass nk.relu(k), "
            "an nk.Activation or a callable)"
        )
    if callable(activation):
        return Quadrature(activation)
    raise TypeError(f"activation must be a name, an nk.Activation or a callable; got {type(activation).__name__}")


# --------------------------------------------------------------------------------------------
# The Hermite view of a dual
# --------------------------------------------------------------------------------------------
#: the Gaussian weight is integrated over [-_HERMITE_CUTOFF, _HERMITE_CUTOFF]
_HERMITE_CUTOFF = 16.0
#: Gauss–Legendre nodes per panel
_HERMITE_NODES = 32


def hermite_coefficients(activation, n, *, breakpoints=(0.0,)):
    r"""The first ``n`` normalized Hermite coefficients :math:`a_0, \dots, a_{n-1}` of an activation.

    With :math:`h_i = \mathrm{He}_i/\sqrt{i!}` the Hermite polynomials orthonormal for
    :math:`z \sim \mathcal N(0, 1)`, :math:`\sigma = \sum_i a_i h_i` in :math:`L^2` and
    :math:`a_i = \mathbb E[\sigma(z)\, h_i(z)]`. Since :math:`\mathbb E[h_i(u) h_j(v)] =
    \delta_{ij}\rho^i` for standard Gaussians of correlation :math:`\rho` (Mehler's formula), the
    duals at unit variances are power series with non-negative coefficients,

    .. math::

        \mathbb E[\sigma(u)\sigma(v)] = \sum_{i\ge0} a_i^2 \rho^i, \qquad
        \mathbb E[\sigma'(u)\sigma'(v)] = \sum_{i\ge1} i\, a_i^2 \rho^{i-1},

    and :math:`\sum_i a_i^2 = \mathbb E[\sigma(z)^2] = 1/c_\sigma`. How fast :math:`a_i^2` decays
    decides the kernel's behaviour at :math:`\rho = 1`: a tail :math:`a_i^2 \sim C i^{-1-\nu}`
    (:math:`\nu > 0` not an integer) goes with a term :math:`\propto t^{\nu}` in the dual at
    :math:`\rho = 1 - t`.

    Parameters
    ----------
    activation : str, Activation or callable
        As in :func:`get_activation`; evaluated on float64 tensors.
    n : int
        Number of coefficients, ``n >= 1``.
    breakpoints : sequence of float, default (0.0,)
        Points where :math:`\sigma` or a derivative jumps (the kinks of ReLU\ :sup:`k`, the step,
        leaky ReLU, ``abs`` are at 0). The integral is split there.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``: :math:`a_0, \dots, a_{n-1}` in float64.

    Notes
    -----
    :math:`a_i = \int \sigma(z)\, \psi_i(z)\, \varphi(z)^{1/2}\, dz` with the Hermite functions
    :math:`\psi_i = h_i \varphi^{1/2}` (:math:`\varphi` the standard normal density), computed by
    their stable three-term recurrence and integrated by composite 32-point Gauss–Legendre
    quadrature on :math:`[-16, 16]`, in panels split at ``breakpoints`` and short enough to
    resolve the oscillations of :math:`\psi_{n-1}`. Since :math:`|\psi_i| \le 0.63` for every
    :math:`i`, the part beyond :math:`|z| = 16` is below :math:`\int_{16}^\infty |\sigma|
    \varphi^{1/2}`, negligible for any activation growing slower than :math:`e^{z^2/8}`.
    Gauss–Hermite quadrature on the whole line is not used: across a kink it converges only like
    1/(number of nodes) (an error of 8e-4 with 200 nodes for the ReLU's :math:`a_i`), while the
    split rule is exact to rounding for piecewise smooth activations
    (``tests/test_activations.py`` checks ReLU, step, erf, sin, cos and the identity against
    their closed forms).

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> a = nk.activations.hermite_coefficients("relu", 3)
    >>> a.round(6)   # 1/sqrt(2 pi), 1/2, 1/(2 sqrt(pi))
    array([0.398942, 0.5     , 0.282095])
    >>> # Mehler: E[sin u sin v] = sum a_i^2 rho^i = exp(-1) sinh(rho)
    >>> s = nk.activations.hermite_coefficients("sin", 20)
    >>> rho = 0.5
    >>> bool(np.isclose(np.sum(s**2 * rho ** np.arange(20)),
    ...                 np.exp(-1) * np.sinh(rho), rtol=1e-14))
    True
    """
    act = get_activation(activation)
    n = check_int(n, "n", 1, "the number of coefficients")
    try:
        cuts = sorted({float(b) for b in breakpoints})
    except (TypeError, ValueError):
        raise TypeError(f"breakpoints must be a sequence of numbers; got {breakpoints!r}") from None
    if not all(math.isfinite(b) for b in cuts):
        raise ValueError(f"breakpoints must be finite; got {breakpoints!r}")
    edges = [-_HERMITE_CUTOFF] + [b for b in cuts if abs(b) < _HERMITE_CUTOFF] + [_HERMITE_CUTOFF]
    # psi_{n-1} oscillates with wavenumber about sqrt(n); a panel spans at most ~1 radian per node
    width = min(0.5, 8.0 / math.sqrt(n))
    x, w = np.polynomial.legendre.leggauss(_HERMITE_NODES)
    nodes, weights = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        panels = max(1, math.ceil((hi - lo) / width))
        step = (hi - lo) / panels
        left = lo + step * np.arange(panels)[:, None]
        nodes.append((left + step * (x + 1) / 2).ravel())
        weights.append(np.broadcast_to(step * w / 2, (panels, _HERMITE_NODES)).ravel())
    z, w = np.concatenate(nodes), np.concatenate(weights)
    with torch.no_grad():
        values = act(torch.from_numpy(z)).to(torch.float64).cpu().numpy()
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{act!r} is not finite on [-{_HERMITE_CUTOFF:g}, {_HERMITE_CUTOFF:g}]")
    f = values * np.sqrt(np.exp(-z * z / 2) / math.sqrt(2 * math.pi)) * w  # sigma phi^(1/2) dz
    out = np.empty(n)
    prev, cur = np.zeros_like(z), np.exp(-z * z / 4) / (2 * math.pi) ** 0.25  # psi_{-1}, psi_0
    for i in range(n):
        out[i] = cur @ f
        prev, cur = cur, (z * cur - math.sqrt(i) * prev) / math.sqrt(i + 1)
    return out
