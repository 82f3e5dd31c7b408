r"""Activations and their *duals*: the Gaussian expectations that drive every kernel recursion.

For a centred Gaussian pair :math:`(u, v) \sim \mathcal N\big(0, \begin{bmatrix} q_{11} & q_{12} \\
q_{12} & q_{22}\end{bmatrix}\big)` an activation :math:`\sigma` has

* the **dual** :math:`\hat\sigma(q_{11}, q_{12}, q_{22}) = \mathbb E[\sigma(u)\sigma(v)]`,
* the **derivative dual** :math:`\mathbb E[\sigma'(u)\sigma'(v)]`,
* the normalization :math:`c_\sigma = 1 / \mathbb E_{z\sim\mathcal N(0,1)}[\sigma(z)^2]` of Arora et al.
  (2019), which keeps :math:`\Sigma^{(h)}(x, x) = |x|^2` through the layers for ReLU.

Closed forms:

* ReLU\ :sup:`k` (``relu(k)``; ``relu(0)`` is the step, ``relu(1)`` the ReLU) through the arc-cosine
  functions of Cho & Saul (2009): :math:`\mathbb E[\mathrm{relu}(u)^k \mathrm{relu}(v)^k] =
  (q_{11}q_{22})^{k/2} J_k(\theta) / (2\pi)` with :math:`\cos\theta = \rho = q_{12}/\sqrt{q_{11}q_{22}}`;
* erf (Williams 1997), sin and cos (hyperbolic functions of :math:`q_{12}`), the identity;
* any other callable (tanh, gelu, softplus, sigmoid, a user's function) by two-dimensional
  Gauss–Hermite quadrature, see :class:`Activation`.

The Hermite view: :func:`hermite_coefficients` expands :math:`\sigma` in the orthonormal Hermite
polynomials of the standard Gaussian; for unit variances the dual is then the power series
:math:`\sum_i a_i^2 \rho^i` in the correlation, an independent check of every closed form.

Inside ntklib the duals are evaluated from the correlation :math:`\rho` rather than :math:`q_{12}`:
the recursion in :mod:`ntklib.kernels` keeps :math:`\rho` exact at :math:`\pm 1`, and every formula
here is written so that no digits are lost there (:math:`\sin\theta = \sqrt{(1-\rho)(1+\rho)}`,
:math:`\pi - \theta = \arccos(-\rho)`, never :math:`\sqrt{1-\rho^2}` or :math:`\pi - \arccos\rho`).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ._arrays import check_int, returns_like, to_tensor

__all__ = [
    "Activation",
    "ReLUk",
    "Erf",
    "Sin",
    "Cos",
    "Identity",
    "relu",
    "get_activation",
    "arc_cosine_J",
    "hermite_coefficients",
    "ACTIVATION_NAMES",
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


def _arc_cosine_pair(n: int, rho: torch.Tensor):
    """``(J_{n-1}(theta), J_n(theta))`` with ``cos(theta) = rho``, exact at ``rho = +-1``.

    ``sin(theta) = sqrt((1 - rho)(1 + rho))`` and ``pi - theta = arccos(-rho)`` keep every digit
    near the endpoints: ``rho = 1`` gives ``J_n = pi (2n-1)!!`` and ``rho = -1`` gives ``J_n = 0``
    for ``n >= 1`` (both to the last bit).
    """
    pi_minus_theta = torch.acos(-rho)
    if n == 0:
        return None, pi_minus_theta
    s2 = (1 - rho) * (1 + rho)
    j1 = torch.addcmul(torch.sqrt(s2), pi_minus_theta, rho)
    return _j_recursion(n, rho, s2, pi_minus_theta, j1)


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
    J : same kind and shape as ``theta`` (float64)

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
    return returns_like(theta, out) if isinstance(theta, torch.Tensor) else _scalar_or_array(theta, out)


def _scalar_or_array(template, t: torch.Tensor):
    out = t.cpu().numpy()
    return out[()] if np.ndim(template) == 0 else out


def _check_order(k) -> int:
    return check_int(k, "the power k", 0)


def _double_factorial_odd(k: int) -> int:
    """(2k - 1)!! with (-1)!! = 1."""
    return math.prod(range(1, 2 * k, 2))


# --------------------------------------------------------------------------------------------
# Activation objects
# --------------------------------------------------------------------------------------------
class Activation:
    r"""An activation with its dual, computed by two-dimensional Gauss–Hermite quadrature.

    Subclasses with closed forms (:class:`ReLUk`, :class:`Erf`, :class:`Sin`, :class:`Cos`,
    :class:`Identity`) override ``_dual`` and ``_dual_deriv``; this base class is the
    general path for any elementwise callable.

    Parameters
    ----------
    fn : callable
        :math:`\sigma`. It receives a float ``torch.Tensor`` of any shape and must act elementwise.
        Torch operations and Python operators (``lambda z: z**2``) work on any device; a numpy
        ufunc (``np.tanh``) is applied to a numpy copy and its result converted back.
    dfn : callable, optional
        :math:`\sigma'`, same calling convention. If omitted, it is taken by ``torch.autograd``
        when ``fn`` is differentiable in torch, else by a five-point central difference with step
        ``1e-3`` (error about ``1e-12`` for smooth ``fn``).
    name : str, optional
        Used in the repr and in error messages.
    order : int, default 64
        Number of Gauss–Hermite nodes per dimension; each kernel entry costs ``order**2``
        evaluations of ``fn`` (and of ``dfn`` for the NTK).

    Notes
    -----
    With :math:`u = \sqrt{q_{11}}\, z_1`, :math:`v = \sqrt{q_{22}}\,(\rho z_1 + \sqrt{1-\rho^2}\, z_2)`
    and :math:`z_1, z_2` i.i.d. standard normal, the dual is a double sum over the tensor-product
    Gauss–Hermite rule. The rule is exact for polynomials of degree ``2*order - 1`` in each variable,
    so polynomial activations are exact; for other activations the error depends on how sharp
    :math:`\sigma(\sqrt q\, z)` is, i.e. on the variances. Measured relative errors of the tanh dual
    (against adaptive quadrature; ``tests/test_activations.py`` checks the first column):

    ==========================  ===========  ===========  ===========
    covariance (q11, q12, q22)  order 32     order 64     order 128
    ==========================  ===========  ===========  ===========
    (1, 0.5, 1)                 8e-7         6e-10        2e-14
    (1, 0.99, 1)                5e-6         4e-9         1e-13
    (4, 1, 0.5)                 5e-4         1e-5         8e-8
    ==========================  ===========  ===========  ===========

    On the unit sphere with the Arora normalization every layer has :math:`q = 1`, the first row.
    Kinks converge slowly (a ReLU written as a lambda is off by about ``1e-4``): give such
    activations a closed form. :attr:`c_sigma` uses the same rule, so that
    :math:`c_\sigma\,\mathbb E[\sigma(z)^2] = 1` to rounding. The quadrature is not symmetric in
    :math:`(u, v)`: ``K(X, Y)`` and ``K(Y, X).T`` agree to the quadrature error, while ``K(X)`` is
    exactly symmetric.

    Examples
    --------
    >>> import torch, ntklib as nk
    >>> square = nk.Activation(lambda z: z**2, name="square")
    >>> round(float(square.c_sigma), 12)                 # E[z^4] = 3
    0.333333333333
    >>> # E[u^2 v^2] = 1 + 2 * 0.5**2
    >>> round(float(square.dual(1.0, 0.5, 1.0)), 12)
    1.5
    """

    closed_form = False

    def __init__(self, fn: Callable, dfn: Callable | None = None, *, name: str | None = None, order: int = 64):
        if not callable(fn):
            raise TypeError(f"activation must be a name, an Activation or a callable; got {fn!r}")
        if dfn is not None and not callable(dfn):
            raise TypeError(f"dfn must be callable or None; got {dfn!r}")
        check_int(order, "order", 2, "Gauss-Hermite nodes per dimension")
        self.fn = fn
        self.dfn = dfn
        self.name = name or getattr(fn, "__name__", "activation")
        self.order = int(order)
        self._c_sigma = None

    # -- the activation itself -------------------------------------------------------------
    def __call__(self, z):
        """Evaluate :math:`\\sigma` elementwise (tensor in, tensor out)."""
        return _call(self.fn, z)

    def derivative(self, z):
        """Evaluate :math:`\\sigma'` elementwise (tensor in, tensor out)."""
        if self.dfn is not None:
            return _call(self.dfn, z)
        return _numeric_derivative(self.fn, z)

    def __repr__(self):
        return f"Activation({self.name})"

    # -- normalization ---------------------------------------------------------------------
    @property
    def c_sigma(self) -> float:
        r""":math:`c_\sigma = 1/\mathbb E_{z\sim\mathcal N(0,1)}[\sigma(z)^2]` (Arora et al. 2019)."""
        if self._c_sigma is None:
            one = torch.ones((), dtype=torch.float64)
            second_moment = float(self._dual(one, one, one))
            if not second_moment > 0:
                raise ValueError(f"{self!r} has E[sigma(z)^2] = {second_moment}; c_sigma is undefined")
            self._c_sigma = 1.0 / second_moment
        return self._c_sigma

    # -- duals: public, (q11, q12, q22) like the formulas -----------------------------------
    def dual(self, q11, q12, q22):
        r""":math:`\mathbb E[\sigma(u)\sigma(v)]` for :math:`(u, v)\sim\mathcal N(0, [[q_{11}, q_{12}],
        [q_{12}, q_{22}]])`; arguments broadcast, and the result has the kind of ``q12``."""
        return self._public(self._dual, q11, q12, q22)

    def dual_deriv(self, q11, q12, q22):
        r""":math:`\mathbb E[\sigma'(u)\sigma'(v)]`, same conventions as :meth:`dual`."""
        return self._public(self._dual_deriv, q11, q12, q22)

    def _public(self, method, q11, q12, q22):
        a = to_tensor(q11, "q11", dtype=torch.float64)
        b = to_tensor(q22, "q22", dtype=torch.float64, device=a.device)
        c = to_tensor(q12, "q12", dtype=torch.float64, device=a.device)
        if bool((a < 0).any()) or bool((b < 0).any()):
            raise ValueError("q11 and q22 are variances and must be >= 0")
        den = torch.sqrt(a * b)
        if bool((c.abs() > den * (1 + 1e-12)).any()):
            raise ValueError("the covariance [[q11, q12], [q12, q22]] must be PSD: need q12**2 <= q11*q22")
        rho = torch.where(den > 0, c / den.clamp_min(torch.finfo(den.dtype).tiny), torch.zeros_like(c)).clamp(-1, 1)
        out = method(a, b, rho)
        if isinstance(q12, torch.Tensor):
            return out
        return _scalar_or_array(q12, out)

    # -- duals: internal, (q11, q22, rho) with rho exact at +-1 ------------------------------
    def _dual(self, q11, q22, rho):
        return self._quadrature(self.__call__, q11, q22, rho)

    def _dual_deriv(self, q11, q22, rho):
        return self._quadrature(self.derivative, q11, q22, rho)

    def _duals(self, q11, q22, rho, want_deriv: bool, root=None):
        """Both duals at once (closed forms share their expensive parts here).

        ``root``, if given, is ``sqrt(q11 * q22)`` already computed by the caller."""
        return self._dual(q11, q22, rho), (self._dual_deriv(q11, q22, rho) if want_deriv else None)

    def _mp_duals(self, q11, q22, rho):
        """(E[s(u)s(v)], E[s'(u)s'(v)]) in mpmath at the working precision (closed forms only)."""
        raise NotImplementedError(
            f"{self!r} has no closed-form dual, so it cannot be evaluated beyond float64; "
            "use nk.relu(k), 'step', 'erf', 'sin', 'cos' or 'identity'"
        )

    def _mp_c_sigma(self):
        raise NotImplementedError(f"{self!r} has no closed-form c_sigma")

    def _quadrature(self, f, q11, q22, rho):
        z, w = _gauss_hermite(self.order, rho.dtype, rho.device)
        q11, q22, rho = torch.broadcast_tensors(q11, q22, rho)
        s = torch.sqrt((1 - rho) * (1 + rho))
        e = (...,) + (None,) * 2
        zi, zj = z[:, None], z[None, :]
        fu = f(torch.sqrt(q11)[..., None] * z)                                   # (..., Q)
        fv = f(torch.sqrt(q22)[e] * (rho[e] * zi + s[e] * zj))                  # (..., Q, Q)
        inner = fv @ w                                                          # sum over z2
        return (fu * inner) @ w                                                 # sum over z1


def _call(fn, z: torch.Tensor) -> torch.Tensor:
    out = fn(z.cpu().numpy()) if isinstance(fn, np.ufunc) else fn(z)
    if not isinstance(out, torch.Tensor):
        out = torch.as_tensor(np.asarray(out), dtype=z.dtype, device=z.device)
    if out.shape != z.shape:
        raise ValueError(f"the activation must act elementwise: input shape {tuple(z.shape)}, output {tuple(out.shape)}")
    return out.to(z.dtype)


def _numeric_derivative(fn, z: torch.Tensor) -> torch.Tensor:
    """sigma'(z): torch autograd when ``fn`` is differentiable in torch, else a 5-point stencil."""
    with torch.enable_grad():
        zz = z.detach().clone().requires_grad_(True)
        out = None if isinstance(fn, np.ufunc) else fn(zz)
        if isinstance(out, torch.Tensor) and out.requires_grad and out.shape == zz.shape:
            (g,) = torch.autograd.grad(out.sum(), zz)
            return g.detach()
    h = 1e-3
    f = lambda t: _call(fn, t)  # noqa: E731
    return (f(z - 2 * h) - 8 * f(z - h) + 8 * f(z + h) - f(z + 2 * h)) / (12 * h)


_GH_CACHE: dict = {}


def _gauss_hermite(order: int, dtype, device):
    """Nodes and weights of the probabilists' Gauss–Hermite rule, weights summing to 1."""
    key = (order, dtype, str(device))
    if key not in _GH_CACHE:
        z, w = np.polynomial.hermite_e.hermegauss(order)
        w = w / w.sum()
        _GH_CACHE[key] = (torch.tensor(z, dtype=dtype, device=device), torch.tensor(w, dtype=dtype, device=device))
    return _GH_CACHE[key]


class ReLUk(Activation):
    r"""The ReLU power :math:`\sigma(z) = \max(z, 0)^k`; ``k = 0`` is the step, ``k = 1`` the ReLU.

    Closed forms (Cho & Saul 2009), with :math:`\cos\theta = \rho`:

    .. math::

        \mathbb E[\sigma(u)\sigma(v)] = \frac{(q_{11}q_{22})^{k/2}}{2\pi} J_k(\theta), \qquad
        \mathbb E[\sigma'(u)\sigma'(v)] = \frac{k^2 (q_{11}q_{22})^{(k-1)/2}}{2\pi} J_{k-1}(\theta),

    and :math:`c_\sigma = 2/(2k-1)!!` since :math:`J_k(0) = \pi (2k-1)!!`.

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

    closed_form = True

    def __init__(self, k: int = 1):
        self.k = _check_order(k)
        self.name = "step" if self.k == 0 else ("relu" if self.k == 1 else f"relu{self.k}")
        self.fn = self.dfn = None
        self.order = 0
        self._c_sigma = 2.0 / _double_factorial_odd(self.k)

    def __call__(self, z):
        if self.k == 0:
            return (z > 0).to(z.dtype)
        return torch.clamp(z, min=0) ** self.k

    def derivative(self, z):
        if self.k == 0:
            return torch.zeros_like(z)
        return self.k * (ReLUk(self.k - 1)(z))

    def __repr__(self):
        return f"relu({self.k})"

    def __eq__(self, other):
        return isinstance(other, ReLUk) and other.k == self.k

    def __hash__(self):
        return hash(("relu", self.k))

    def _duals(self, q11, q22, rho, want_deriv: bool, root=None):
        # J_k / (2 pi) is exactly 1/2 * (2k-1)!! at rho = 1, so the diagonal stays exact
        j_prev, j_k = _arc_cosine_pair(self.k, rho)
        if self.k == 0:
            dual = j_k / (2 * math.pi)
            deriv = torch.zeros_like(dual) if want_deriv else None
            return dual, deriv
        s = torch.sqrt(q11 * q22) if root is None else root
        dual = (s**self.k if self.k > 1 else s) * (j_k / (2 * math.pi))
        deriv = None
        if want_deriv:
            deriv = self.k**2 * (j_prev / (2 * math.pi))
            if self.k > 1:
                deriv = deriv * s ** (self.k - 1)
        return dual, deriv

    def _dual(self, q11, q22, rho):
        return self._duals(q11, q22, rho, False)[0]

    def _dual_deriv(self, q11, q22, rho):
        return self._duals(q11, q22, rho, True)[1]

    def _mp_duals(self, q11, q22, rho):
        import mpmath as mp

        k, s = self.k, mp.sqrt(q11 * q22)
        phi = mp.acos(-rho)  # pi - theta
        j_prev, j = phi, mp.sqrt((1 - rho) * (1 + rho)) + phi * rho
        if k == 0:
            return phi / (2 * mp.pi), mp.mpf(0)
        for m in range(1, k):
            j_prev, j = j, (2 * m + 1) * rho * j + m * m * (1 - rho) * (1 + rho) * j_prev
        return s**k * j / (2 * mp.pi), k * k * s ** (k - 1) * j_prev / (2 * mp.pi)

    def _mp_c_sigma(self):
        import mpmath as mp

        return mp.mpf(2) / _double_factorial_odd(self.k)


def relu(k: int = 1) -> ReLUk:
    """The activation :math:`\\max(z, 0)^k` with closed-form duals (``relu(0)`` is the step)."""
    return ReLUk(k)


class Erf(Activation):
    r""":math:`\sigma = \mathrm{erf}` with Williams' (1997) closed forms

    .. math::

        \mathbb E[\mathrm{erf}\,u\;\mathrm{erf}\,v] = \frac{2}{\pi}\arcsin\frac{2q_{12}}
        {\sqrt{(1+2q_{11})(1+2q_{22})}},\qquad
        \mathbb E[\mathrm{erf}'u\;\mathrm{erf}'v] = \frac{4}{\pi}\big((1+2q_{11})(1+2q_{22})
        - 4q_{12}^2\big)^{-1/2}.
    """

    closed_form = True

    def __init__(self):
        self.name, self.fn, self.dfn, self.order = "erf", None, None, 0
        self._c_sigma = math.pi / (2 * math.asin(2 / 3))

    def __call__(self, z):
        return torch.special.erf(z)

    def derivative(self, z):
        return (2 / math.sqrt(math.pi)) * torch.exp(-z * z)

    def __repr__(self):
        return "Erf()"

    def _dual(self, q11, q22, rho):
        q12 = rho * torch.sqrt(q11 * q22)
        return (2 / math.pi) * torch.asin(2 * q12 / torch.sqrt((1 + 2 * q11) * (1 + 2 * q22)))

    def _dual_deriv(self, q11, q22, rho):
        # (1+2a)(1+2b) - 4 q12^2 written without cancellation
        det = 1 + 2 * (q11 + q22) + 4 * (q11 * q22) * ((1 - rho) * (1 + rho))
        return (4 / math.pi) / torch.sqrt(det)

    def _mp_duals(self, q11, q22, rho):
        import mpmath as mp

        q12 = rho * mp.sqrt(q11 * q22)
        e = 2 / mp.pi * mp.asin(2 * q12 / mp.sqrt((1 + 2 * q11) * (1 + 2 * q22)))
        return e, 4 / mp.pi / mp.sqrt(1 + 2 * (q11 + q22) + 4 * q11 * q22 * (1 - rho) * (1 + rho))

    def _mp_c_sigma(self):
        import mpmath as mp

        return mp.pi / (2 * mp.asin(mp.mpf(2) / 3))


class Sin(Activation):
    r""":math:`\sigma = \sin`: :math:`\mathbb E[\sin u \sin v] = e^{-(q_{11}+q_{22})/2}\sinh q_{12}`,
    :math:`\mathbb E[\cos u\cos v] = e^{-(q_{11}+q_{22})/2}\cosh q_{12}`."""

    closed_form = True

    def __init__(self):
        self.name, self.fn, self.dfn, self.order = "sin", None, None, 0
        self._c_sigma = 2.0 / -math.expm1(-2.0)

    def __call__(self, z):
        return torch.sin(z)

    def derivative(self, z):
        return torch.cos(z)

    def __repr__(self):
        return "Sin()"

    def _dual(self, q11, q22, rho):
        return torch.exp(-(q11 + q22) / 2) * torch.sinh(rho * torch.sqrt(q11 * q22))

    def _dual_deriv(self, q11, q22, rho):
        return torch.exp(-(q11 + q22) / 2) * torch.cosh(rho * torch.sqrt(q11 * q22))

    def _mp_duals(self, q11, q22, rho):
        import mpmath as mp

        scale, q12 = mp.exp(-(q11 + q22) / 2), rho * mp.sqrt(q11 * q22)
        return scale * mp.sinh(q12), scale * mp.cosh(q12)

    def _mp_c_sigma(self):
        import mpmath as mp

        return 1 / (mp.exp(-1) * mp.sinh(1))


class Cos(Activation):
    r""":math:`\sigma = \cos` (duals of :class:`Sin` swapped)."""

    closed_form = True

    def __init__(self):
        self.name, self.fn, self.dfn, self.order = "cos", None, None, 0
        self._c_sigma = 2.0 / (1.0 + math.exp(-2.0))

    def __call__(self, z):
        return torch.cos(z)

    def derivative(self, z):
        return -torch.sin(z)

    def __repr__(self):
        return "Cos()"

    _dual = Sin._dual_deriv
    _dual_deriv = Sin._dual

    def _mp_duals(self, q11, q22, rho):
        return Sin._mp_duals(self, q11, q22, rho)[::-1]

    def _mp_c_sigma(self):
        import mpmath as mp

        return 1 / (mp.exp(-1) * mp.cosh(1))


class Identity(Activation):
    r""":math:`\sigma(z) = z`: dual :math:`q_{12}`, derivative dual 1, :math:`c_\sigma = 1`."""

    closed_form = True

    def __init__(self):
        self.name, self.fn, self.dfn, self.order = "identity", None, None, 0
        self._c_sigma = 1.0

    def __call__(self, z):
        return z

    def derivative(self, z):
        return torch.ones_like(z)

    def __repr__(self):
        return "Identity()"

    def _dual(self, q11, q22, rho):
        return rho * torch.sqrt(q11 * q22)

    def _dual_deriv(self, q11, q22, rho):
        return torch.ones(torch.broadcast_shapes(q11.shape, q22.shape, rho.shape), dtype=rho.dtype, device=rho.device)

    def _mp_duals(self, q11, q22, rho):
        import mpmath as mp

        return rho * mp.sqrt(q11 * q22), mp.mpf(1)

    def _mp_c_sigma(self):
        import mpmath as mp

        return mp.mpf(1)


def _gelu_deriv(z):
    return 0.5 * torch.special.erfc(-z / math.sqrt(2)) + z * torch.exp(-z * z / 2) / math.sqrt(2 * math.pi)


_FACTORIES = {
    "relu": lambda: ReLUk(1),
    "step": lambda: ReLUk(0),
    "erf": Erf,
    "sin": Sin,
    "cos": Cos,
    "identity": Identity,
    "linear": Identity,
    "tanh": lambda: Activation(torch.tanh, lambda z: 1 - torch.tanh(z) ** 2, name="tanh"),
    "gelu": lambda: Activation(torch.nn.functional.gelu, _gelu_deriv, name="gelu"),
    "softplus": lambda: Activation(torch.nn.functional.softplus, torch.sigmoid, name="softplus"),
    "sigmoid": lambda: Activation(torch.sigmoid, lambda z: torch.sigmoid(z) * torch.sigmoid(-z), name="sigmoid"),
}

#: Names understood by :func:`get_activation` (closed forms first, then quadrature).
ACTIVATION_NAMES = tuple(_FACTORIES)


def get_activation(activation) -> Activation:
    """Resolve a name, an :class:`Activation` or a callable to an :class:`Activation`.

    Examples
    --------
    >>> import ntklib as nk
    >>> [nk.get_activation(name) for name in ("relu", "step", "erf")]
    [relu(1), relu(0), Erf()]
    >>> nk.get_activation("swish")
    Traceback (most recent call last):
    ...
    ValueError: unknown activation 'swish'; known names: relu, step, erf, ...
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        try:
            return _FACTORIES[activation.lower()]()
        except KeyError:
            raise ValueError(
                f"unknown activation {activation!r}; known names: {', '.join(ACTIVATION_NAMES)} "
                "(or pass nk.relu(k), an nk.Activation or a callable)"
            ) from None
    if callable(activation):
        return Activation(activation)
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
    a : numpy.ndarray, shape (n,), float64

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
