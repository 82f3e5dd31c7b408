"""ntklib.spectra: multiplicities, Legendre polynomials and Funk–Hecke eigenvalues.

The eigenvalues are checked against an independent 30-digit computation: tests/mpref.py's kernel
recursion, mpmath's own Legendre/Gegenbauer functions and mpmath's adaptive quadrature over
[0, pi] cut into periods of P_k. None of it shares code with ntklib.
"""
import math
import warnings

import mpmath as mp
import numpy as np
import pytest
from scipy import special

import mpref
import ntklib as nk


# ----------------------------------------------------------------------------------------------
# multiplicities and polynomials
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", range(0, 30))
def test_multiplicity_known_cases(k):
    assert nk.multiplicity(2, k) == (1 if k == 0 else 2)
    assert nk.multiplicity(3, k) == 2 * k + 1
    assert nk.multiplicity(4, k) == (k + 1) ** 2
    if k >= 1:  # the formula of DESIGN.md
        for d in (5, 7, 10):
            assert nk.multiplicity(d, k) == (2 * k + d - 2) * math.comb(k + d - 3, d - 2) // k


def test_multiplicity_counts_polynomials():
    """Harmonics of degree <= k and degree <= k-1 polynomials restricted to the sphere:
    sum_{j <= k} N(d, j) = C(k+d-1, d-1) + C(k+d-2, d-1) (all monomials of degree k and k-1)."""
    for d in (2, 3, 6):
        for k in range(1, 12):
            total = sum(nk.multiplicity(d, j) for j in range(k + 1))
            assert total == math.comb(k + d - 1, d - 1) + math.comb(k + d - 2, d - 1)
    np.testing.assert_array_equal(nk.multiplicity(5, np.arange(4)), [1.0, 5.0, 14.0, 30.0])


@pytest.mark.parametrize("d", [2, 3, 4, 7, 10])
def test_legendre_normalization_recurrence_and_orthogonality(d):
    t = np.linspace(-1, 1, 101)
    P = [nk.legendre(k, d, t) for k in range(12)]
    for k in range(12):
        assert nk.legendre(k, d, 1.0) == pytest.approx(1.0, rel=1e-14)
    for k in range(1, 11):  # P_{k+1} = ((2k+d-2) t P_k - k P_{k-1}) / (k+d-2)
        np.testing.assert_allclose(P[k + 1], ((2 * k + d - 2) * t * P[k] - k * P[k - 1]) / (k + d - 2), atol=1e-13)
    # orthogonality with weight (1-t^2)^((d-3)/2): Gauss-Jacobi quadrature, exact for these degrees
    a = (d - 3) / 2
    x, w = special.roots_jacobi(20, a, a)
    gram = np.array([[w @ (nk.legendre(i, d, x) * nk.legendre(j, d, x)) for j in range(8)] for i in range(8)])
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-13)


# ----------------------------------------------------------------------------------------------
# eigenvalues against an independent 30-digit Funk-Hecke integral
# ----------------------------------------------------------------------------------------------
def mp_eigenvalue(names, kernel, d, k):
    """mu_k by mpmath quadrature in theta, one subinterval per half period of P_k."""
    with mp.workdps(30):
        lam = mp.mpf(d - 2) / 2

        def P(t):
            if d == 2:
                return mp.chebyt(k, t)
            if d == 3:
                return mp.legendre(k, t)
            return mp.gegenbauer(k, lam, t) / mp.gegenbauer(k, lam, 1)

        def f(th):
            t = mp.cos(th)
            return mpref.kappa(names, t, ntk=kernel == "ntk") * P(t) * mp.sin(th) ** (d - 2)

        cuts = [mp.pi * j / (k + 2) for j in range(k + 3)]
        c = mp.gamma(mp.mpf(d) / 2) / (mp.sqrt(mp.pi) * mp.gamma(mp.mpf(d - 1) / 2))
        return c * mp.quad(f, cuts)


CASES = [  # (d, depth, kernel, degrees); larger k are covered by benchmarks/check_spectra_tail.py
    (2, 2, "nngp", [0, 1, 5, 30]),
    (3, 1, "ntk", [0, 1, 2, 3, 31]),
    (3, 3, "nngp", [1, 7, 25]),
    (3, 5, "ntk", [2, 12]),
    (5, 2, "ntk", [0, 3, 30]),
    (10, 1, "nngp", [0, 3, 4, 30]),
    (10, 4, "ntk", [5, 20]),
]


@pytest.mark.parametrize("d, depth, kernel, ks", CASES, ids=[f"d{c[0]}-L{c[1]}-{c[2]}" for c in CASES])
def test_eigenvalues_match_independent_30_digit_integral(d, depth, kernel, ks):
    mu = nk.sphere_eigenvalues(nk.SphereKernel(depth, kernel=kernel), d, max(ks))
    mu0 = abs(mu[0])
    for k in ks:
        ref = float(mp_eigenvalue(["relu"] * depth, kernel, d, k))
        if abs(ref) < 1e-20 * mu0:  # vanishing (two-layer NTK/NNGP at odd k >= 3, say)
            assert abs(mu[k]) < 1e-15 * mu0, (k, mu[k])
        else:
            assert mu[k] == pytest.approx(ref, rel=1e-6), (k, mu[k], ref)


def test_far_tail_d3_matches_independent_integral():
    """The high-precision path (forced by rtol = 1e-9, beyond float64 here) against the reference:
    the NNGP at d = 3, k = 90 (~1e-10 mu_0), agreeing to 1e-9 relative."""
    kern = nk.SphereKernel(2, kernel="nngp")
    mu, err = nk.sphere_eigenvalues(kern, 3, 90, rtol=1e-9, return_error=True)
    assert err[90] == 0  # computed by the high-precision path
    ref = float(mp_eigenvalue(["relu", "relu"], "nngp", 3, 90))
    assert mu[90] == pytest.approx(ref, rel=1e-9)


def test_float64_path_error_estimates_are_honest():
    """Where the float64 path says an eigenvalue is reliable, it agrees with the high-precision path."""
    kern = nk.SphereKernel(3)
    mu64, err = nk.sphere_eigenvalues(lambda t: kern(t), 3, 400, return_error=True)
    edges = nk.spectra._panel_edges(400)
    exact = nk.spectra._high_precision_eigenvalues(kern, 3, 400, edges)
    ok = ~np.isnan(mu64)
    assert ok.sum() > 300
    assert np.all(np.abs(mu64[ok] - exact[ok]) <= err[ok])
    assert np.all(np.abs(mu64[ok] - exact[ok]) <= 1e-6 * np.abs(exact[ok]))


def test_gaussian_kernel_on_circle_has_bessel_eigenvalues():
    """exp(-|x-y|^2 / (2 s^2)) = e^{-1/s^2} e^{t/s^2} on the circle: mu_j = e^{-1/s^2} I_j(1/s^2)."""
    s2 = 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nk.UnreliableEigenvalueWarning)
        mu = nk.sphere_eigenvalues(lambda t: np.exp((t - 1) / s2), 2, 40)
    exact = special.ive(np.arange(41), 1 / s2)  # e^{-x} I_j(x)
    ok = ~np.isnan(mu)
    assert ok[:10].all()  # mu_12 ~ 3e-10 is already at float64's round-off for this integral
    np.testing.assert_allclose(mu[ok], exact[ok], rtol=1e-6)


def test_plain_callable_tail_is_nan_with_a_warning_naming_k():
    kern = nk.SphereKernel(3, kernel="nngp")
    with pytest.warns(nk.UnreliableEigenvalueWarning, match=r"mu_k for k = (\d+)") as rec:
        mu = nk.sphere_eigenvalues(lambda t: kern(t), 3, 400)
    first = int(__import__("re").search(r"k = (\d+)", str(rec[0].message)).group(1))
    assert np.isnan(mu[first]) and not np.isnan(mu[:first]).any()
    exact = nk.sphere_eigenvalues(kern, 3, 400)
    assert not np.isnan(exact).any()


@pytest.mark.parametrize("d", [3, 10])
def test_two_layer_relu_ntk_odd_eigenvalues_vanish(d):
    """Bietti & Mairal 2019: the bias-free two-layer ReLU NTK has mu_k = 0 for odd k >= 3."""
    kmax = 60 if d == 10 else 200
    mu = nk.sphere_eigenvalues(nk.SphereKernel(1), d, kmax)
    odd = np.arange(3, kmax + 1, 2)
    assert np.all(np.abs(mu[odd]) < 1e-15 * mu[0])
    assert np.all(mu[np.arange(0, kmax + 1, 2)] > 0) and mu[1] > 0


@pytest.mark.parametrize("d", [2, 3, 5])
def test_trace_and_reconstruction(d):
    """kappa(t) = sum_k mu_k N(d, k) P_k(t); at t = 1 the trace identity sum N mu = kappa(1).

    For the analytic kernel exp(t) the terms fall super-exponentially. The eigenvalues float64 cannot
    resolve (NaN, below err_k / rtol each) are left out; the tolerance is what they can add up to.
    """
    f = lambda t: np.exp(t)  # noqa: E731
    rtol = 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nk.UnreliableEigenvalueWarning)
        mu, err = nk.sphere_eigenvalues(f, d, 40, rtol=rtol, return_error=True)
    N = nk.multiplicity(d, np.arange(41))
    ok = ~np.isnan(mu)
    assert ok[:8].all()
    dropped = np.sum(N[~ok] * err[~ok] / rtol)
    for t in (1.0, 0.3, -0.8):
        rebuilt = sum(mu[k] * N[k] * nk.legendre(k, d, t) for k in np.flatnonzero(ok))
        assert abs(rebuilt - f(t)) <= dropped + np.sum(N[ok] * err[ok]) + 1e-14


# ----------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, err, match",
    [
        (lambda: nk.sphere_eigenvalues(np.cos, 1, 5), ValueError, "d must be >= 2"),
        (lambda: nk.sphere_eigenvalues(np.cos, 3.0, 5), TypeError, "d must be an int"),
        (lambda: nk.sphere_eigenvalues(np.cos, 3, -1), ValueError, "kmax must be >= 0"),
        (lambda: nk.sphere_eigenvalues("relu", 3, 5), TypeError, "kappa must be"),
        (lambda: nk.sphere_eigenvalues(lambda t: t[:3], 3, 5), ValueError, "same shape|shape of its argument"),
        (lambda: nk.sphere_eigenvalues(lambda t: np.full_like(t, np.nan), 3, 5), ValueError, "finite"),
        (lambda: nk.sphere_eigenvalues(np.cos, 3, 5, rtol=0), ValueError, "rtol"),
        (lambda: nk.legendre(2, 3, 1.5), ValueError, "t must lie"),
        (lambda: nk.multiplicity(3, -1), ValueError, "k must be >= 0"),
        (lambda: nk.SphereKernel(2, kernel="cntk"), ValueError, "kernel must be"),
    ],
)
def test_bad_input_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_quadrature_activation_kernel_falls_back_to_warning():
    """A SphereKernel whose activation has no closed form cannot go beyond float64: NaN + warning."""
    with pytest.warns(nk.UnreliableEigenvalueWarning):
        mu = nk.sphere_eigenvalues(nk.SphereKernel(2, activation="gelu"), 3, 40)
    assert np.isnan(mu).any() and not np.isnan(mu[:5]).any()


def test_sphere_kernel_high_precision_values_match_float64_per_layer_weights():
    """mp_values uses each layer's own weight (c_sigma exactly where weight_var is None)."""
    for wv in ([None, 1.0], [1.5, None], None):
        k = nk.SphereKernel(2, weight_var=wv, bias_var=0.2, kernel="ntk")
        with mp.workdps(30):
            hp = [float(v) for v in k.mp_values([mp.mpf(u) for u in ("-0.7", "0.3", "1")])]
        np.testing.assert_allclose(hp, k(np.array([-0.7, 0.3, 1.0])), rtol=1e-14)
