r"""Classic radial kernels :math:`k(x, y) = \phi(|x - y|)`, to set the network kernels against.

Each kernel is a small object with the library's kernel contract, in the style of scikit-learn's
kernels: ``K = kernel(X, Y=None)`` gives the Gram matrix, ``kernel.diag(X)`` its diagonal in
:math:`O(n)`, ``kernel.profile(r)`` the function of the distance, and ``kernel.kappa(u)`` the
dot-product form on the unit sphere, where :math:`|x - y| = \sqrt{2(1 - u)}`; ``kernel.kappa_mp(u)``
is the same at mpmath's current precision. The sphere forms are what
:func:`~ntklib.sphere.sphere_eigenvalues` takes. Numpy in gives numpy out, a tensor gives a tensor on its
device. The repr reads back as code, and two kernels with the same parameters are equal (and hash
alike). Each profile is written once over a small math namespace, so the float64 (torch) and the
mpmath values come from the same formula.

On the sphere a profile that is smooth for :math:`r > 0` and whose first non-smooth term at
:math:`r = 0` is :math:`r^{2\nu}` (:math:`\nu` not an integer) has eigenvalues
:math:`\mu_k \sim k^{-d-2\nu+1}` (Bietti & Bach 2021, Thm. 1, with :math:`t = 1 - u = r^2/2`):
Laplace :math:`\nu = 1/2`, exponential-power :math:`\nu = \gamma/2`, Matérn :math:`\nu` itself.
At :math:`u = -1` (:math:`r = 2`) these profiles are smooth, so the theorem's :math:`c_{-1}` is 0 and
even and odd degrees decay alike. The Gaussian is analytic, and its eigenvalues decay faster than
any power.
"""
from __future__ import annotations

import math
import numbers

import mpmath
import numpy as np
import torch

from ._arrays import (as_points, cosine_argument, cosine_argument_mp, call_repr, check_budget, check_int, check_same_features, check_variance,
                      resolve_dtype, returns_like, scalar_or_array, to_tensor)
from ._math import MpMath, TorchMath
from ._tiles import mirror_upper

__all__ = ["Laplace", "Gaussian", "Matern", "ExpPower"]

#: The default limit on the terms of :class:`Matern`'s finite sum (:math:`p + 1` for
#: :math:`\nu = p + 1/2`, so :math:`\nu \le 1000.5`); each term costs a few passes over the values.
MATERN_MAX_TERMS = 1001


def _times_pow2(t, k: int):
    """``t * 2**k`` for a float64 tensor, in steps whose factors stay representable (exact unless the
    result over- or underflows, which it then does as the exact product would)."""
    while k:
        step = max(-1000, min(1000, k))
        t, k = t * 2.0**step, k - step
    return t


def _scaled_distances(x, y, scale):
    """``cdist(x, y) / scale`` in float64, with the points first scaled by a power of two so that
    the squares inside the distance neither overflow (|x| ~ 1e200) nor underflow (|x| ~ 1e-200)."""
    info = np.finfo(np.float64 if x.dtype == torch.float64 else np.float32)
    big = max(float(x.abs().max()) if x.numel() else 0.0, float(y.abs().max()) if y.numel() else 0.0)
    e = min(max(math.frexp(big)[1], info.minexp), info.maxexp) if big > 0 else 0  # big < 2**e
    c = 2.0**-e
    # the distance of the differences (no |x|^2 + |y|^2 - 2 x.y cancellation): exactly symmetric,
    # exactly 0 on the diagonal
    d = torch.cdist(x * c, y * c, compute_mode="donot_use_mm_for_euclid_dist").to(torch.float64)
    mantissa, exponent = math.frexp(scale)  # scale = mantissa * 2**exponent, mantissa in [1/2, 1)
    return _times_pow2(d / mantissa, e - exponent)


class _Radial:
    r"""Shared machinery: Gram matrices, diagonals and sphere forms from ``_profile(z, m)``, the
    profile as a function of the scaled distance :math:`z = r/\ell` (the division comes first, so
    that no power of a tiny or huge scale over- or underflows)."""

    _param_names = ("scale",)

    def __init__(self, scale=1.0):
        self.scale = check_variance(scale, "scale", positive=True)

    def __call__(self, X, Y=None, *, dtype=None):
        r"""The Gram matrix :math:`\phi(|x_i - y_j|)`.

        Parameters
        ----------
        X : (n, d) array_like or torch.Tensor
            Points, one per row.
        Y : (m, d) array_like or torch.Tensor, optional
            Second set of points; ``None`` means ``X`` (the result is then exactly symmetric).
        dtype : torch or numpy dtype, optional
            The dtype the kernel is computed and returned in: float64 (default) or float32.

        Returns
        -------
        (n, m) numpy.ndarray or torch.Tensor
            The Gram matrix, float64 unless ``dtype`` says otherwise: numpy for numpy input; a tensor on the device of ``X`` if ``X`` is a tensor.

        Raises
        ------
        ValueError
            If ``X`` or ``Y`` is not 2-D, has NaN or inf, or the two differ in their number of features.
        TypeError
            If ``dtype`` is not float64 or float32, or the input is not a real numeric array.

        Examples
        --------
        >>> import numpy as np, ntklib as nk
        >>> X = np.array([[0.0, 0.0], [3.0, 4.0]])
        >>> nk.Laplace(scale=5.0)(X).round(4).tolist()
        [[1.0, 0.3679], [0.3679, 1.0]]
        """
        x = as_points(X, "X", dtype=resolve_dtype(dtype))
        y = x if Y is None else as_points(Y, "Y", dtype=x.dtype, device=x.device)
        check_same_features(x, y)
        z = _scaled_distances(x, y, self.scale).to(x.dtype)
        K = self._profile(z, TorchMath)
        if Y is None:
            # z is exactly symmetric, but torch's vectorized pow/exp can round K_ij and K_ji apart
            # (a SIMD body and a scalar tail)
            K = mirror_upper(K)
        return returns_like(X, K)

    def diag(self, X, *, dtype=None):
        r"""The diagonal :math:`k(x_i, x_i) = \phi(0)` of ``self(X)``, without the matrix (:math:`O(n)`).

        Parameters
        ----------
        X : (n, d) array_like or torch.Tensor
            Points, one per row.
        dtype : torch or numpy dtype, optional
            The dtype of the result: float64 (default) or float32.

        Returns
        -------
        (n,) numpy.ndarray or torch.Tensor
            Of the kind (and device) of ``X``.

        Raises
        ------
        ValueError
            If ``X`` is not 2-D or has NaN or inf.

        Examples
        --------
        >>> import numpy as np, ntklib as nk
        >>> nk.Matern(nu=2.5).diag(np.ones((3, 2))).tolist()
        [1.0, 1.0, 1.0]
        """
        x = as_points(X, "X", dtype=resolve_dtype(dtype))
        return returns_like(X, self._profile(x.new_zeros(x.shape[0]), TorchMath))

    def profile(self, r):
        r""":math:`\phi(r)`, the kernel as a function of the distance.

        Parameters
        ----------
        r : array_like or torch.Tensor
            Distances :math:`\ge 0`.

        Returns
        -------
        numpy scalar, numpy.ndarray or torch.Tensor
            The values, float64, of the shape and kind of ``r`` (a tensor on its device for a tensor).

        Raises
        ------
        ValueError
            If some ``r`` is negative, NaN or inf.

        Examples
        --------
        >>> import ntklib as nk
        >>> float(nk.Gaussian(scale=1.0).profile(2.0))   # e^-2
        0.1353352832366127
        """
        t = to_tensor(r, "r", dtype=torch.float64)
        if t.numel() and bool((t < 0).any()):
            raise ValueError("distances r must be >= 0")
        return scalar_or_array(r, self._profile(t / self.scale, TorchMath))

    def kappa(self, u):
        r"""The kernel of two unit vectors with :math:`x\cdot y = u`: :math:`\phi(\sqrt{2(1-u)})`.

        Parameters
        ----------
        u : array_like or torch.Tensor
            Cosines in :math:`[-1, 1]`.

        Returns
        -------
        numpy scalar, numpy.ndarray or torch.Tensor
            The values, float64, of the shape and kind of ``u``.

        Raises
        ------
        ValueError
            If some ``u`` lies outside :math:`[-1, 1]` (by more than 8 ulps, taken as :math:`\pm1`) or is NaN.

        Examples
        --------
        >>> import ntklib as nk
        >>> float(nk.Laplace().kappa(-1.0))         # |x - y| = 2
        0.1353352832366127
        """
        t = cosine_argument(u)
        return scalar_or_array(u, self._profile(torch.sqrt(2 * (1 - t)) / self.scale, TorchMath))

    def kappa_mp(self, u):
        r""":meth:`kappa` at one point, in mpmath at its current precision (``mpmath.mp.dps``).

        Parameters
        ----------
        u : mpmath.mpf, float or int
            A cosine in :math:`[-1, 1]`.

        Returns
        -------
        mpmath.mpf
            The value at the current mpmath precision.

        Raises
        ------
        TypeError
            If ``u`` is not a real number.
        ValueError
            If ``u`` lies outside :math:`[-1, 1]` (by more than 8 float64 ulps, taken as :math:`\pm1`) or is
            NaN.

        Examples
        --------
        >>> import mpmath, ntklib as nk
        >>> with mpmath.workdps(30):
        ...     print(nk.Laplace().kappa_mp(mpmath.mpf(-1)))
        0.135335283236612691893999494972
        """
        if isinstance(u, bool) or not isinstance(u, (numbers.Real, mpmath.mpf)):
            raise TypeError(f"u must be a real number (an mpmath.mpf, float or int); got {u!r}")
        u = cosine_argument_mp(u)
        return self._profile(mpmath.sqrt(2 * (1 - u)) / mpmath.mpf(self.scale), MpMath)

    def _params(self):
        return {name: getattr(self, name) for name in self._param_names}

    def __repr__(self):
        return call_repr(self, self._params())

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._params() == other._params()

    def __hash__(self):
        return hash((type(self).__name__, *self._params().items()))


class Laplace(_Radial):
    r"""Laplace (exponential) kernel :math:`k(x, y) = e^{-|x-y|/\ell}`.

    Parameters
    ----------
    scale : float, default 1.0
        The length scale :math:`\ell > 0`.

    Raises
    ------
    ValueError
        If ``scale`` is not a finite number > 0.

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.Laplace(scale=2.0)
    Laplace(scale=2.0)
    >>> float(nk.Laplace().profile(1.0))        # e^-1
    0.36787944117144233
    """

    def _profile(self, z, m):
        return m.exp(-z)


class Gaussian(_Radial):
    r"""Gaussian kernel :math:`k(x, y) = e^{-|x-y|^2/(2\ell^2)}`.

    On the circle its eigenvalues are :math:`e^{-1/\ell^2} I_j(1/\ell^2)` (modified Bessel functions),
    faster than any power.

    Parameters
    ----------
    scale : float, default 1.0
        The length scale :math:`\ell > 0`.

    Raises
    ------
    ValueError
        If ``scale`` is not a finite number > 0.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> g = nk.Gaussian(scale=0.5)
    >>> bool(np.isclose(g.profile(1.0), np.exp(-2.0)))
    True
    """

    def _profile(self, z, m):
        return m.exp(-(z * z) / 2)


class Matern(_Radial):
    r"""Matérn kernel of half-integer smoothness :math:`\nu = p + 1/2`.

    .. math::

        k(r) = e^{-\sqrt{2\nu}\, r/\ell}\; \frac{p!}{(2p)!} \sum_{i=0}^{p} \frac{(p+i)!}{i!\,(p-i)!}
        \big(2\sqrt{2\nu}\, r/\ell\big)^{p-i}

    (Rasmussen & Williams 2006, eq. 4.16); :math:`\nu = 1/2` is the Laplace kernel. Its eigenvalues on
    the circle decay as :math:`j^{-(2\nu + 1)}`. As :math:`\nu \to \infty` it tends to
    ``Gaussian(scale)``.

    The sum is evaluated term by term from the ratio of consecutive terms (no factorial is formed,
    so a large :math:`\nu` does not overflow), at a cost of :math:`p + 1` terms per value. In
    float64 it is accurate to a few ulps times :math:`p`; where :math:`e^{z}` would overflow
    (:math:`z = \sqrt{2\nu}\, r/\ell > 700`, values below ~1e-250 unless :math:`\nu` is large) it is
    summed in logarithms, to about :math:`10^{-16} z p` relative.

    Parameters
    ----------
    nu : float, default 1.5
        The smoothness, a half-integer 1/2, 3/2, 5/2, ...
    scale : float, default 1.0
        The length scale :math:`\ell > 0`.
    max_terms : int, default ``ntklib.classic.MATERN_MAX_TERMS`` = 1001
        The most terms :math:`p + 1` allowed (so :math:`\nu \le 1000.5` by default); pass a larger
        value to allow a larger :math:`\nu`, at a cost linear in it. Not a parameter of the kernel
        (not in its repr, equality or hash).

    Raises
    ------
    ValueError
        If ``nu`` is not a half-integer >= 1/2 (``nu=inf``: the message points to
        :class:`Gaussian`) or ``scale`` not a finite number > 0.
    TooLargeError
        If :math:`p + 1 >` ``max_terms``, before any work.
    TypeError
        If ``max_terms`` is not an int.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> r = np.array([0.0, 0.5])
    >>> s = np.sqrt(3) * r
    >>> np.allclose(nk.Matern(nu=1.5).profile(r), (1 + s) * np.exp(-s))
    True
    """

    _param_names = ("nu", "scale")

    def __init__(self, nu=1.5, scale=1.0, *, max_terms=MATERN_MAX_TERMS):
        p = float(nu) - 0.5 if isinstance(nu, numbers.Real) and not isinstance(nu, bool) else -1.0
        if p == math.inf:
            raise ValueError("nu=inf is the Gaussian kernel exp(-r^2 / (2 scale^2)): use nk.Gaussian(scale=scale)")
        if not (p >= 0 and p == int(p)):  # (NaN fails the first test)
            raise ValueError(f"nu must be a half-integer 1/2, 3/2, 5/2, ...; got {nu!r}")
        max_terms = check_int(max_terms, "max_terms", 1)
        check_budget(p + 1, max_terms, what=f"the finite sum of Matern(nu={float(nu)!r})", unit="terms",
                     knob="max_terms (nu -> inf is nk.Gaussian)")
        super().__init__(scale)
        self.nu, self._p = float(nu), int(p)

    def _profile(self, z, m):
        p = self._p
        z = z * m.const(2 * p + 1) ** 0.5
        if m is MpMath or p == 0:
            return _matern_direct(z, p, m)
        # the direct sum is below e^z: safe while e^z is; beyond that, sum in logarithms
        limit = math.log(torch.finfo(z.dtype).max) - 10
        out = _matern_direct(z.clamp(max=limit), p, m)
        far = z > limit
        if bool(far.any()):
            out = torch.where(far, _matern_logs(z, p), out)
        return out


def _matern_direct(z, p, m):
    r"""The half-integer Matérn profile at :math:`z = \sqrt{2\nu}\,r/\ell`: :math:`e^{-z}\sum_i a_i` with
    :math:`a_p = 1` and :math:`a_{i-1} = a_i \cdot 2z\, i/((p+i)(p-i+1))` (the ratio of the terms of
    Rasmussen & Williams' eq. 4.16, so no factorial is ever formed). Each :math:`a_i \le e^z`."""
    term = total = torch.ones_like(z) if isinstance(z, torch.Tensor) else m.const(1)
    for i in range(p, 0, -1):
        term = term * (2 * z) * (m.const(i) / m.const((p + i) * (p - i + 1)))
        total = total + term
    return m.exp(-z) * total


def _matern_logs(z, p):
    """The same sum in logarithms (a running log-sum-exp) for the z where e^z overflows; inf gives 0."""
    log_2z = math.log(2) + torch.log(z)
    log_term = top = torch.zeros_like(z)
    scaled = torch.ones_like(z)  # sum of exp(log a_i - top)
    for i in range(p, 0, -1):
        log_term = log_term + log_2z + math.log(i / ((p + i) * (p - i + 1)))
        new_top = torch.maximum(top, log_term)
        scaled = scaled * torch.exp(top - new_top) + torch.exp(log_term - new_top)
        top = new_top
    out = torch.exp(top + torch.log(scaled) - z)
    return torch.where(torch.isinf(z), 0.0, out)


class ExpPower(_Radial):
    r"""Exponential-power (generalized Laplace) kernel :math:`k(x, y) = e^{-(|x-y|/\ell)^\gamma}`.

    Positive definite in every dimension exactly for :math:`0 < \gamma \le 2`; :math:`\gamma = 1` is
    Laplace and :math:`\gamma = 2` a Gaussian. On :math:`S^{d-1}` its eigenvalues decay as
    :math:`k^{-d-\gamma+1}` for :math:`\gamma < 2`, so a smaller :math:`\gamma` means a larger RKHS.

    Parameters
    ----------
    gamma : float, default 1.0
        The exponent :math:`\gamma \in (0, 2]`.
    scale : float, default 1.0
        The length scale :math:`\ell > 0`.

    Raises
    ------
    ValueError
        If ``gamma`` is outside :math:`(0, 2]` or ``scale`` is not a finite number > 0.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> bool(np.isclose(nk.ExpPower(gamma=0.5).profile(4.0), np.exp(-2.0)))
    True
    """

    _param_names = ("gamma", "scale")

    def __init__(self, gamma=1.0, scale=1.0):
        gamma = check_variance(gamma, "gamma", positive=True)
        if gamma > 2:
            raise ValueError(f"gamma must be in (0, 2] (exp(-r^gamma) is not positive definite beyond 2); got {gamma}")
        super().__init__(scale)
        self.gamma = gamma

    def _profile(self, z, m):
        return m.exp(-(z ** m.const(self.gamma)))
