r"""Classic radial kernels :math:`k(x, y) = \phi(|x - y|)`, to set the network kernels against.

Each kernel is a small object in the style of scikit-learn's kernels: ``K = kernel(X, Y=None)`` gives
the Gram matrix, ``kernel.profile(r)`` the function of the distance, and ``kernel.kappa(u)`` the
dot-product form on the unit sphere, where :math:`|x - y| = \sqrt{2(1 - u)}`. That last form is what
:func:`~ntklib.spectra.sphere_eigenvalues` takes. The repr reads back as code.

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

import torch

from ._arrays import as_points, check_variance, resolve_dtype, returns_like, to_tensor

__all__ = ["Laplace", "Gaussian", "Matern", "ExpPower"]


class _Radial:
    """Shared machinery: Gram matrices and sphere forms from ``profile(r)``."""

    def __call__(self, X, Y=None):
        """Gram matrix :math:`\\phi(|x_i - y_j|)` (numpy in, numpy out; tensors stay tensors)."""
        x = as_points(X, "X", dtype=resolve_dtype(None))
        y = x if Y is None else as_points(Y, "Y", dtype=x.dtype, device=x.device)
        if y.shape[1] != x.shape[1]:
            raise ValueError(f"X and Y must have the same number of features; got {x.shape[1]} and {y.shape[1]}")
        r = torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")
        return returns_like(X, self._profile(r))

    def profile(self, r):
        """:math:`\\phi(r)` for distances ``r >= 0`` (numpy array or scalar)."""
        t = to_tensor(r, "r", dtype=torch.float64)
        if t.numel() and bool((t < 0).any()):
            raise ValueError("distances r must be >= 0")
        out = self._profile(t).numpy()
        return out[()] if out.ndim == 0 else out

    def kappa(self, u):
        """The kernel of two unit vectors with :math:`x\\cdot y = u`: :math:`\\phi(\\sqrt{2(1-u)})`."""
        t = to_tensor(u, "u", dtype=torch.float64)
        if t.numel() and bool((t.abs() > 1).any()):
            raise ValueError("u must lie in [-1, 1]")
        out = self._profile(torch.sqrt(2 * (1 - t))).numpy()
        return out[()] if out.ndim == 0 else out

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


class Laplace(_Radial):
    r"""Laplace (exponential) kernel :math:`e^{-|x-y|/\ell}` (``scale`` :math:`= \ell`).

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.Laplace(scale=2.0)
    Laplace(scale=2.0)
    >>> float(nk.Laplace().profile(1.0))        # e^-1
    0.36787944117144233
    """

    def __init__(self, scale=1.0):
        self.scale = check_variance(scale, "scale", positive=True)

    def _params(self):
        return {"scale": self.scale}

    def _profile(self, r):
        return torch.exp(-r / self.scale)


class Gaussian(_Radial):
    r"""Gaussian kernel :math:`e^{-|x-y|^2/(2\ell^2)}`. On the circle its eigenvalues are
    :math:`e^{-1/\ell^2} I_j(1/\ell^2)` (modified Bessel functions)."""

    def __init__(self, scale=1.0):
        self.scale = check_variance(scale, "scale", positive=True)

    def _params(self):
        return {"scale": self.scale}

    def _profile(self, r):
        return torch.exp(-(r * r) / (2 * self.scale**2))


class Matern(_Radial):
    r"""Matérn kernel of half-integer smoothness :math:`\nu = p + 1/2`:

    .. math::

        k(r) = e^{-\sqrt{2\nu}\, r/\ell}\; \frac{p!}{(2p)!} \sum_{i=0}^{p} \frac{(p+i)!}{i!\,(p-i)!}
        \big(2\sqrt{2\nu}\, r/\ell\big)^{p-i}

    (Rasmussen & Williams 2006, eq. 4.16); :math:`\nu = 1/2` is the Laplace kernel. Its eigenvalues on
    the circle decay as :math:`j^{-(2\nu + 1)}`.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> r = np.array([0.0, 0.5])
    >>> s = np.sqrt(3) * r
    >>> np.allclose(nk.Matern(nu=1.5).profile(r), (1 + s) * np.exp(-s))
    True
    """

    def __init__(self, nu=1.5, scale=1.0):
        p = float(nu) - 0.5 if isinstance(nu, numbers.Real) and not isinstance(nu, bool) else -1.0
        if p < 0 or p != int(p):
            raise ValueError(f"nu must be a half-integer 1/2, 3/2, 5/2, ...; got {nu!r}")
        self.nu, self.scale, self._p = float(nu), check_variance(scale, "scale", positive=True), int(p)

    def _params(self):
        return {"nu": self.nu, "scale": self.scale}

    def _profile(self, r):
        p = self._p
        z = math.sqrt(2 * self.nu) * r / self.scale
        poly = sum(
            math.factorial(p + i) / (math.factorial(i) * math.factorial(p - i)) * (2 * z) ** (p - i)
            for i in range(p + 1)
        )
        return torch.exp(-z) * poly * (math.factorial(p) / math.factorial(2 * p))


class ExpPower(_Radial):
    r"""Exponential-power (generalized Laplace) kernel :math:`e^{-(|x-y|/\ell)^\gamma}`, :math:`0 < \gamma \le 2`.

    Positive definite in every dimension exactly for :math:`0 < \gamma \le 2`; :math:`\gamma = 1` is
    Laplace and :math:`\gamma = 2` a Gaussian. On :math:`S^{d-1}` its eigenvalues decay as
    :math:`k^{-d-\gamma+1}` for :math:`\gamma < 2`, so a smaller :math:`\gamma` means a larger RKHS.
    """

    def __init__(self, gamma=1.0, scale=1.0):
        gamma = check_variance(gamma, "gamma", positive=True)
        if gamma > 2:
            raise ValueError(f"gamma must be in (0, 2] (exp(-r^gamma) is not positive definite beyond 2); got {gamma}")
        self.gamma, self.scale = gamma, check_variance(scale, "scale", positive=True)

    def _params(self):
        return {"gamma": self.gamma, "scale": self.scale}

    def _profile(self, r):
        return torch.exp(-((r / self.scale) ** self.gamma))

