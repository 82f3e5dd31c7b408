"""Classic radial kernels, samplers and the Gram-spectrum tools of ntklib.spectra."""
import math

import numpy as np
import pytest
from scipy import special

import ntklib as nk

KERNELS = [nk.Laplace(), nk.Laplace(scale=0.5), nk.Gaussian(scale=0.7), nk.Matern(nu=0.5), nk.Matern(nu=1.5),
           nk.Matern(nu=2.5, scale=2.0), nk.ExpPower(gamma=0.5), nk.ExpPower(gamma=1.5)]


@pytest.mark.parametrize("kern", KERNELS, ids=repr)
def test_contract(kern):
    X = np.random.default_rng(0).standard_normal((30, 4))
    K = kern(X)
    assert K.shape == (30, 30) and np.allclose(K, K.T) and np.allclose(np.diag(K), 1.0)
    assert np.linalg.eigvalsh(K).min() > -1e-12
    # the repr reads back as code
    assert repr(eval("nk." + repr(kern))) == repr(kern)
    # kappa on the sphere is the Gram matrix of unit vectors
    S = nk.data.sphere(20, 3, seed=1)
    U = np.clip(S @ S.T, -1, 1)
    np.fill_diagonal(U, 1.0)  # a BLAS x.x is 1 - ulp, and sqrt(2 ulp) = 1.5e-8 would enter the Laplace kernel
    np.testing.assert_allclose(kern(S), kern.kappa(U), rtol=1e-7, atol=1e-12)


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


def test_degree_index_and_multiplicities():
    mu = 1.0 / (1 + np.arange(6)) ** 3
    lam = nk.spectra.expand_multiplicities(mu, 3)
    assert len(lam) == sum(2 * k + 1 for k in range(6))
    for i in range(len(lam)):
        assert lam[i] == mu[nk.spectra.degree_of_index(i, 3)]


def test_fit_decay_exact_and_refuses_round_off():
    i = np.arange(1, 201)
    v = 3.0 * i ** -2.5
    slope, intercept = nk.fit_decay(v, (10, 100))
    assert slope == pytest.approx(-2.5, abs=1e-12) and intercept == pytest.approx(math.log(3), abs=1e-10)
    v2 = v.copy()
    v2[150:] = 1e-17
    with pytest.raises(ValueError, match=r"values\[150\].*round-off"):
        nk.fit_decay(v2, (100, 160))
    assert nk.fit_decay(v2, (100, 150))[0] == pytest.approx(-2.5)
    with pytest.raises(ValueError, match="at least 2"):
        nk.fit_decay(v, (5, 6))


def test_gram_eigenvalues_checks_symmetry():
    with pytest.raises(ValueError, match="symmetric"):
        nk.gram_eigenvalues(np.array([[1.0, 0.5], [0.1, 1.0]]))
    ev = nk.gram_eigenvalues(np.diag([1.0, 3.0, 2.0]))
    np.testing.assert_allclose(ev, [1.0, 2 / 3, 1 / 3])


def test_local_exponents_of_power_law_and_gaussian():
    k = np.arange(1, 60, dtype=float)
    np.testing.assert_allclose(nk.spectra.local_exponents(k**-3.0, k), -3.0, atol=1e-12)
    loc = nk.spectra.local_exponents(special.ive(k, 4.0), k)
    assert np.all(np.diff(loc[5:]) < 0)  # faster than any power: the local exponent keeps falling
