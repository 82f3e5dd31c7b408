"""Classic radial kernels, samplers and the Gram-spectrum tools of ntklib.spectra."""
import math

import mpmath
import numpy as np
import pytest
import torch
from scipy import special

import ntklib as nk

KERNELS = [nk.Laplace(), nk.Laplace(scale=0.5), nk.Gaussian(scale=0.7), nk.Matern(nu=0.5), nk.Matern(nu=1.5),
           nk.Matern(nu=2.5, scale=2.0), nk.ExpPower(gamma=0.5), nk.ExpPower(gamma=1.5)]


@pytest.mark.parametrize("kern", KERNELS, ids=repr)
def test_unit_diagonal_and_positive_definite(kern):
    """phi(0) = 1, and distinct points give a positive definite matrix (tests/test_contract.py runs the rest)."""
    X = np.random.default_rng(0).standard_normal((30, 4))
    K = kern(X)
    assert np.all(np.diag(K) == 1.0) and np.all(kern.diag(X) == 1.0)
    assert np.linalg.eigvalsh(K).min() > 0


def test_equality_and_hash_follow_the_parameters():
    assert nk.Laplace(2.0) == nk.Laplace(scale=2) and hash(nk.Laplace(2.0)) == hash(nk.Laplace(scale=2))
    assert nk.Laplace() != nk.Laplace(scale=2.0)
    assert nk.Laplace() != nk.Gaussian() and nk.Laplace() != nk.ExpPower(gamma=1.0)  # same values, other class
    assert nk.Matern(nu=1.5) != nk.Matern(nu=2.5)
    assert len({nk.Matern(nu=1.5), nk.Matern(nu=1.5, scale=1.0), nk.ExpPower(0.5)}) == 2


def test_profile_and_kappa_keep_the_kind():
    r = torch.tensor([0.0, 1.0], dtype=torch.float32)
    out = nk.Matern(nu=0.5).profile(r)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), [1.0, math.exp(-1)], rtol=1e-15)
    assert isinstance(nk.Laplace().kappa(0.0), np.floating)
    assert isinstance(nk.Laplace().kappa(np.zeros(3)), np.ndarray)


@pytest.mark.parametrize("kern", KERNELS, ids=repr)
def test_kappa_mp_at_high_precision(kern):
    """kappa_mp follows mpmath's precision: at 50 digits it is the exact formula, not float64."""
    with mpmath.workdps(50):
        u = mpmath.mpf(1) / 7
        r = mpmath.sqrt(2 * (1 - u))
        if isinstance(kern, nk.Matern):
            z = mpmath.sqrt(2 * mpmath.mpf(kern.nu)) * r / kern.scale
            p = int(kern.nu - 0.5)
            exact = mpmath.exp(-z) * mpmath.factorial(p) / mpmath.factorial(2 * p) * mpmath.fsum(
                mpmath.factorial(p + i) / (mpmath.factorial(i) * mpmath.factorial(p - i)) * (2 * z) ** (p - i)
                for i in range(p + 1))
        elif isinstance(kern, nk.Gaussian):
            exact = mpmath.exp(-r**2 / (2 * mpmath.mpf(kern.scale) ** 2))
        else:
            gamma = getattr(kern, "gamma", 1.0)
            exact = mpmath.exp(-(r / kern.scale) ** gamma)
        assert abs(kern.kappa_mp(u) - exact) <= mpmath.mpf(10) ** -45 * abs(exact)
        assert kern.kappa_mp(1) == 1


def test_special_cases_agree():
    r = np.linspace(0, 3, 31)
    np.testing.assert_allclose(nk.Matern(nu=0.5, scale=1.3).profile(r), nk.Laplace(scale=1.3).profile(r), rtol=1e-15)
    np.testing.assert_allclose(nk.ExpPower(gamma=1.0).profile(r), nk.Laplace().profile(r), rtol=1e-15)
    np.testing.assert_allclose(nk.ExpPower(gamma=2.0, scale=1.0).profile(r), nk.Gaussian(scale=1 / math.sqrt(2)).profile(r), rtol=1e-14)
    z = math.sqrt(5) * r / 2.0
    np.testing.assert_allclose(nk.Matern(nu=2.5, scale=2.0).profile(r), (1 + z + z**2 / 3) * np.exp(-z), rtol=1e-14)


@pytest.mark.parametrize("call, err, match", [
    (lambda: nk.Matern(nu=1.0), ValueError, "half-integer"),
    (lambda: nk.ExpPower(gamma=2.5), ValueError, "gamma must be in"),
    (lambda: nk.Laplace(scale=-1), ValueError, "scale must be > 0"),
    (lambda: nk.Laplace()(np.ones(3)), ValueError, "2-D"),
    (lambda: nk.Laplace().kappa(1.2), ValueError, "u must lie"),
    (lambda: nk.Laplace().profile(-1.0), ValueError, ">= 0"),
    (lambda: nk.Laplace().kappa_mp(1.5), ValueError, "u must lie"),
    (lambda: nk.Laplace().kappa_mp(mpmath.nan), ValueError, "u must lie"),
    (lambda: nk.Laplace().kappa_mp("0.5"), TypeError, "u must be a real number"),
    (lambda: nk.Laplace()(np.ones((2, 3)), np.ones((2, 4))), ValueError, "same number of features"),
    (lambda: nk.Laplace()(np.ones((2, 3)), dtype="int64"), TypeError, "dtype must be"),
])
def test_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_circle_points_and_aliasing_identity():
    """n equispaced points: the circulant Gram matrix's eigenvalues / n are the aliased sums of mu."""
    X, angles = nk.data.circle(16)
    assert angles[-1] < 2 * np.pi - 1e-9 and np.allclose(np.linalg.norm(X, axis=1), 1)
    g = nk.Gaussian(scale=0.4)
    # an absolute accuracy of ~1e-16 is what this identity needs, so accept any relative error
    # (rtol=0.99) rather than NaN for the eigenvalues far below float64's relative reach
    with pytest.warns(nk.UnreliableEigenvalueWarning):  # mu_k < 1e-16 for k > 24: NaN, then 0 below
        mu, err = nk.sphere_eigenvalues(g.kappa, 2, 120, rtol=0.99, return_error=True)
    mu = np.nan_to_num(mu)
    lam = np.sort(nk.aliased_eigenvalues(mu, 16))
    # each aliased sum collects at most all estimated errors (plus eigvalsh's own ~1e-15)
    np.testing.assert_allclose(np.sort(nk.gram_eigenvalues(g(X))), lam, rtol=0, atol=2 * err.sum() + 1e-15)
    # and the Bessel closed form, e^{-1/s^2} I_j(1/s^2)
    assert np.all(np.abs(mu[:25] - special.ive(np.arange(25), 1 / 0.16)) <= err[:25] + 1e-15 * np.abs(mu[:25]))
