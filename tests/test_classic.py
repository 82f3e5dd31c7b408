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


def matern_reference(nu, r, scale=1.0):
    """Rasmussen & Williams eq. 4.16 with its exact integer coefficients, in mpmath at 40 digits."""
    p = int(nu - 0.5)
    coef = [1]  # (p+i)! / (i! (p-i)!), exactly
    for i in range(p):
        coef.append(coef[-1] * (p + i + 1) * (p - i) // (i + 1))
    with mpmath.workdps(40):
        z = mpmath.sqrt(2 * mpmath.mpf(nu)) * mpmath.mpf(r) / scale
        total = mpmath.fsum(mpmath.mpf(c) * (2 * z) ** (p - i) for i, c in enumerate(coef))
        return mpmath.exp(-z) * math.factorial(p) / mpmath.mpf(math.factorial(2 * p)) * total


@pytest.mark.parametrize("nu", [10.5, 150.5, 1000.5])
def test_matern_large_nu_does_not_overflow(nu):
    """Issue 10: Matern(nu=150.5) raised OverflowError (its integer coefficients exceed float64).
    Checked against the factorial formula in mpmath and, where scipy's scaled Bessel function is
    finite, against 2^{1-nu}/Gamma(nu) z^nu K_nu(z)."""
    k = nk.Matern(nu=nu)
    r = np.array([0.0, 1e-8, 0.3, 1.0, 3.0, 10.0, 40.0])
    got = k.profile(r)
    ref = np.array([float(matern_reference(nu, ri)) for ri in r])
    # z = sqrt(2 nu) r > 700 at r = 40 for nu = 1000.5: summed in logarithms there
    np.testing.assert_allclose(got, ref, rtol=1e-13 if nu < 1000 else 1e-10, atol=0)
    z = math.sqrt(2 * nu) * r[3:]
    kve = special.kve(nu, z)  # overflows for z << nu
    ok = np.isfinite(kve)
    assert ok.any()
    bessel = np.exp((1 - nu) * math.log(2) - special.gammaln(nu) + nu * np.log(z[ok]) + np.log(kve[ok]) - z[ok])
    np.testing.assert_allclose(got[3:][ok], bessel, rtol=1e-10)
    with mpmath.workdps(30):
        u = mpmath.mpf("0.5")
        assert abs(k.kappa_mp(u) - matern_reference(nu, 1.0)) <= mpmath.mpf(10) ** -25 * matern_reference(nu, 1.0)
    X = np.random.default_rng(0).standard_normal((6, 3))
    assert np.all(np.isfinite(k(X))) and np.all(np.diag(k(X)) == 1.0)


def test_matern_huge_nu_is_refused_before_the_work():
    """Issue 10: Matern(nu=1e5 + 0.5).profile(1) hung (1e5 factorials of ~2e5). Now the sum's
    1e5 + 1 terms are over the documented max_terms; a caller who raises it gets the value."""
    with pytest.raises(nk.TooLargeError, match="max_terms"):
        nk.Matern(nu=1e5 + 0.5)
    k = nk.Matern(nu=2000.5, max_terms=2001)
    assert k == nk.Matern(nu=2000.5, max_terms=5000) and repr(k) == "Matern(nu=2000.5)"
    assert float(k.profile(1.0)) == pytest.approx(float(matern_reference(2000.5, 1.0)), rel=1e-12)
    with pytest.raises(TypeError, match="max_terms must be an int"):
        nk.Matern(nu=1.5, max_terms=10.0)


@pytest.mark.parametrize("nu, match", [(np.nan, "half-integer"), (math.inf, "nk.Gaussian"),
                                       (-math.inf, "half-integer"), ("1.5", "half-integer")])
def test_matern_nu_nan_or_inf_is_refused(nu, match):
    """Issue 10: nu=nan/inf crashed converting to an int; inf is the Gaussian, and the message says so."""
    with pytest.raises(ValueError, match=match):
        nk.Matern(nu=nu)


def closed_forms(kern, z):
    """phi as a function of z = r / scale, written out in numpy."""
    z = np.asarray(z, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):  # z = inf or z^2 = inf: phi = 0
        return np.where(np.isinf(z), 0.0, _closed_forms(kern, z))


def _closed_forms(kern, z):
    if isinstance(kern, nk.Gaussian):
        return np.exp(-z**2 / 2)
    if isinstance(kern, nk.Matern):
        s = math.sqrt(2 * kern.nu) * z
        phi = {0.5: np.exp(-s), 1.5: (1 + s) * np.exp(-s), 2.5: (1 + s + s**2 / 3) * np.exp(-s)}[kern.nu]
        return np.where(s > 1e3, 0.0, phi)  # (where it underflows, inf * 0 for s ~ 1e170)
    return np.exp(-z ** getattr(kern, "gamma", 1.0))


@pytest.mark.parametrize("scale", [1e-170, 1e-300, 5e-324, 1e200, 1e300], ids=str)
@pytest.mark.parametrize("kind", [nk.Laplace, nk.Gaussian, lambda scale: nk.Matern(2.5, scale),
                                  lambda scale: nk.ExpPower(0.5, scale)], ids=["laplace", "gaussian", "matern", "exppower"])
def test_classic_kernels_at_extreme_scales(kind, scale):
    """Issue 10: Gaussian(scale=1e-170) had a NaN diagonal (scale^2 underflows: 0/0) and
    Gaussian(scale=1e200) overflowed (scale^2). Every kernel, every entry point, at tiny and huge
    scales, against the closed form in the scaled distance: k_{c l}(c X) = k_l(X)."""
    kern, unit = kind(scale=scale), kind(scale=1.0)
    X = np.random.default_rng(0).standard_normal((6, 3))
    np.testing.assert_array_equal(kern.diag(X * scale), np.ones(6))
    z = np.array([0.0, 1.0, 2.0, 3.0])  # z * scale exact even for the subnormal 5e-324
    np.testing.assert_allclose(kern.profile(z * scale), closed_forms(unit, z), rtol=1e-14)
    assert float(kern.kappa(1.0)) == 1.0 and kern.kappa_mp(1) == 1
    if scale > 1e-300:  # the points X * scale are representable with all their digits
        D = np.linalg.norm(X[:, None] - X[None], axis=-1)
        np.testing.assert_allclose(kern(X * scale), closed_forms(unit, D), rtol=1e-13)
    # on the sphere the distance is at most 2: e^{-(2/scale)^...} underflows to 0, or is 1 - O(1/scale^2)
    u = np.array([1.0, 0.5, -1.0])
    with np.errstate(over="ignore"):
        zu = np.sqrt(2 * (1 - u)) / scale
    expected = closed_forms(unit, zu)
    np.testing.assert_allclose(kern.kappa(u), expected, rtol=1e-15)
    with mpmath.workdps(20):
        assert float(kern.kappa_mp(0.5)) == pytest.approx(float(closed_forms(unit, zu[1])), rel=1e-15, abs=0)


def test_gram_of_huge_and_tiny_points_in_float32():
    """The distances are taken between points scaled by a power of two, so that |x| ~ 1e30 in float32
    (whose squares overflow) and a scale that float32 cannot hold (1e-170) still give the right values."""
    X = np.random.default_rng(1).standard_normal((5, 2))
    ref = nk.Gaussian()(X)
    got = nk.Gaussian(scale=1e30)((X * 1e30).astype(np.float32), dtype="float32")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-7)
    tiny = nk.Laplace(scale=1e-170)(X.astype(np.float32), dtype="float32")
    np.testing.assert_array_equal(tiny, np.eye(5, dtype=np.float32))


@pytest.mark.parametrize("kernel", [nk.Laplace(), nk.Gaussian(), nk.Matern(nu=2.5), nk.ExpPower(1.5)])
def test_classic_kappa_accepts_cosines_a_few_ulps_past_one(kernel):
    """x . y of unit vectors lands a few ulps past 1 (1 + 2.3e-16): kappa took it as an error. Up to 8
    ulps is +-1 (the same rule as nk.kappa); 1e-6 past is still refused."""
    over = np.nextafter(np.nextafter(1.0, 2.0), 2.0)
    assert float(kernel.kappa(over)) == float(kernel.kappa(1.0)) == 1.0
    assert float(kernel.kappa(-over)) == float(kernel.kappa(-1.0))
    assert float(kernel.kappa_mp(over)) == 1.0
    with pytest.raises(ValueError, match="u must lie in"):
        kernel.kappa(1 + 1e-6)
    with pytest.raises(ValueError, match="u must lie in"):
        kernel.kappa_mp(1 + 1e-6)
