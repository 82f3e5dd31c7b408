"""ntklib.sphere: multiplicities, Legendre polynomials, the sphere-kernel protocol and Funk–Hecke
eigenvalues.

The eigenvalues are checked against an independent 30-digit computation, mpref.eigenvalue:
tests/mpref.py's kernel recursion, mpmath's own Legendre/Gegenbauer functions and mpmath's adaptive
quadrature over [0, pi] cut into periods of P_k. None of it shares code with ntklib.
"""
import importlib
import math
import warnings
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
from scipy import special

import mpref
import torch

import ntklib as nk


# ----------------------------------------------------------------------------------------------
# multiplicities and polynomials
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", range(0, 30))
def test_multiplicity_known_cases(k):
    """Closed forms, not the telescoping difference of binomials that multiplicity() computes."""
    assert nk.multiplicity(2, k) == (1 if k == 0 else 2)
    assert nk.multiplicity(3, k) == 2 * k + 1
    assert nk.multiplicity(4, k) == (k + 1) ** 2
    if k >= 1:  # N(d, k) = (2k + d - 2)/k * C(k + d - 3, d - 2), exactly (no integer division)
        for d in range(3, 13):
            assert nk.multiplicity(d, k) == Fraction(2 * k + d - 2, k) * math.comb(k + d - 3, d - 2)


@pytest.mark.parametrize("d, k", [(3, 5), (4, 3), (5, 4), (7, 3), (10, 2)])
def test_multiplicity_is_the_rank_of_the_legendre_kernel(d, k):
    """Addition theorem: P_k(x . y) = (1/N) sum_j Y_kj(x) Y_kj(y), so the matrix P_k(x_i . x_j) of
    n > N random points has rank exactly N(d, k): an independent count of dim H_k."""
    X = nk.data.sphere(3 * nk.multiplicity(d, k) + 20, d, seed=k)
    ev = np.linalg.eigvalsh(nk.legendre(d, k, np.clip(X @ X.T, -1, 1)))[::-1]
    assert int(np.sum(ev > 1e-9 * ev[0])) == nk.multiplicity(d, k)
    np.testing.assert_array_equal(nk.multiplicity(5, np.arange(4)), [1.0, 5.0, 14.0, 30.0])


def test_legendre_takes_d_before_k_like_multiplicity():
    """legendre(d, k, t), the order of multiplicity(d, k): known polynomials, not the recurrence."""
    t = np.linspace(-1, 1, 9)
    np.testing.assert_allclose(nk.legendre(3, 2, t), (3 * t**2 - 1) / 2, atol=1e-15)  # Legendre P_2
    np.testing.assert_allclose(nk.legendre(2, 3, t), 4 * t**3 - 3 * t, atol=1e-15)  # Chebyshev T_3
    np.testing.assert_allclose(nk.legendre(4, 1, t), t, atol=1e-15)
    np.testing.assert_allclose(nk.legendre(5, 2, t), (5 * t**2 - 1) / 4, atol=1e-15)  # C_2^(3/2) / C_2^(3/2)(1)


@pytest.mark.parametrize("d", [2, 3, 4, 7, 10])
def test_legendre_normalization_recurrence_and_orthogonality(d):
    t = np.linspace(-1, 1, 101)
    P = [nk.legendre(d, k, t) for k in range(12)]
    for k in range(12):
        assert nk.legendre(d, k, 1.0) == pytest.approx(1.0, rel=1e-14)
    for k in range(1, 11):  # P_{k+1} = ((2k+d-2) t P_k - k P_{k-1}) / (k+d-2)
        np.testing.assert_allclose(P[k + 1], ((2 * k + d - 2) * t * P[k] - k * P[k - 1]) / (k + d - 2), atol=1e-13)
    # orthogonality with weight (1-t^2)^((d-3)/2): Gauss-Jacobi quadrature, exact for these degrees
    a = (d - 3) / 2
    x, w = special.roots_jacobi(20, a, a)
    gram = np.array([[w @ (nk.legendre(d, i, x) * nk.legendre(d, j, x)) for j in range(8)] for i in range(8)])
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-13)


# ----------------------------------------------------------------------------------------------
# eigenvalues against an independent 30-digit Funk-Hecke integral
# ----------------------------------------------------------------------------------------------
CASES = [  # (d, depth, kernel, degrees); larger k: tests/check_spectra_tail.py
    (2, 2, "nngp", [0, 1, 5, 30]),
    (3, 1, "ntk", [0, 1, 2, 3, 31]),
    (3, 3, "nngp", [1, 7, 25]),
    (3, 5, "ntk", [2, 12]),
    (5, 2, "ntk", [0, 3, 30]),
    (10, 1, "nngp", [0, 3, 4, 30]),
    (10, 4, "ntk", [5, 20]),
]


@pytest.mark.parametrize("d, depth, kernel, ks", CASES, ids=[f"d{c[0]}-L{c[1]}-{c[2]}" for c in CASES])
@pytest.mark.slow
def test_eigenvalues_match_independent_30_digit_integral(d, depth, kernel, ks):
    mu = nk.sphere_eigenvalues(nk.SphereKernel(depth, kernel=kernel), d, max(ks))
    mu0 = abs(mu[0])
    for k in ks:
        ref = float(mpref.eigenvalue(["relu"] * depth, kernel, d, k))
        if abs(ref) < 1e-20 * mu0:  # vanishing (two-layer NTK/NNGP at odd k >= 3, say)
            assert abs(mu[k]) < 1e-15 * mu0, (k, mu[k])
        else:
            assert mu[k] == pytest.approx(ref, rel=1e-6), (k, mu[k], ref)


@pytest.mark.slow
def test_far_tail_d3_matches_independent_integral():
    """The high-precision path (forced by rtol = 1e-9, beyond float64 here) against the reference:
    the NNGP at d = 3, k = 90 (~1e-10 mu_0), agreeing to 1e-9 relative."""
    kern = nk.SphereKernel(2, kernel="nngp")
    mu, err = nk.sphere_eigenvalues(kern, 3, 90, rtol=1e-9, return_error=True)
    assert err[90] <= 1e-15 * mu[90]  # the high-precision path (float64 cannot reach 1e-9 here)
    ref = float(mpref.eigenvalue(["relu", "relu"], "nngp", 3, 90))
    assert mu[90] == pytest.approx(ref, rel=1e-9)


HONEST = [  # (d, kernel, kmax): the worst cases found for round-off and for rounded nodes
    (2, nk.SphereKernel(2), 1000),  # round-off grows ~ 0.13 k eps * size on the circle
    (2, nk.SphereKernel(2, "step", kernel="nngp"), 600),  # kappa ~ 1 - c t^(1/4): node rounding
    (3, nk.SphereKernel(3), 1000),
    (3, nk.SphereKernel(2, kernel="nngp"), 400),
    (5, nk.SphereKernel(2), 300),
]


@pytest.mark.parametrize("d, kern, kmax", HONEST, ids=[f"d{c[0]}-{c[1].activation}{c[1].depth}-{c[2]}" for c in HONEST])
@pytest.mark.slow
def test_float64_error_estimates_are_honest(d, kern, kmax):
    """The float64 path's error estimate covers its actual error, measured against the high-precision
    path on the same quadrature rule (so the difference is round-off alone), at every degree."""
    mu64, err = nk.sphere_eigenvalues(kern, d, kmax, path="float64", return_error=True)
    exact = nk.sphere_eigenvalues(kern, d, kmax, path="exact")
    assert not np.isnan(mu64).any()
    assert np.all(np.abs(mu64 - exact) <= err)


@pytest.mark.slow
def test_auto_path_agrees_with_high_precision_where_reliable():
    kern = nk.SphereKernel(3)
    mu64, err = nk.sphere_eigenvalues(lambda t: kern(t), 3, 400, return_error=True)
    exact = nk.sphere_eigenvalues(kern, 3, 400, path="exact")
    ok = ~np.isnan(mu64)
    assert ok.sum() > 300
    assert np.all(np.abs(mu64[ok] - exact[ok]) <= err[ok])
    assert np.all(np.abs(mu64[ok] - exact[ok]) <= 1e-6 * np.abs(exact[ok]))


def test_path_float64_gives_every_degree_without_warning_and_exact_needs_a_closed_form():
    kern = nk.SphereKernel(2, kernel="nngp")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mu = nk.sphere_eigenvalues(lambda t: kern(t), 3, 300, path="float64")
    assert not np.isnan(mu).any()
    with pytest.raises(TypeError, match="path='exact' needs a kernel with a kappa_mp method"):
        nk.sphere_eigenvalues(lambda t: kern(t), 3, 10, path="exact")
    with pytest.raises(ValueError, match="closed-form"):
        nk.sphere_eigenvalues(nk.SphereKernel(2, activation="tanh"), 3, 10, path="exact")
    mu, err = nk.sphere_eigenvalues(kern, 3, 10, path="exact", return_error=True)
    assert np.all(err <= 1e-15 * np.abs(mu) + 1e-33) and mu[0] > 0


def _two_layer_rationals(kmax):
    """Exact mu_k on S^2 of kappa_0 (step NNGP), kappa_1 (ReLU NNGP) and u kappa_0 + kappa_1 (ReLU
    NTK), one hidden layer (derivation in the eigen-decay chapter): with a_m = C(2m, m) / 4^m,
    mu_k[kappa_0] = a_{(k-1)/2}^2 / (2 (k+1)^2) for odd k, 0 for even k >= 2, 1/2 for k = 0;
    mu_k[kappa_1] = (mu_{k-1}[kappa_0] - mu_{k+1}[kappa_0]) / (2k + 1), mu_0 = 1/2 - mu_1[kappa_0];
    mu_k[u kappa_0] = ((k+1) mu_{k+1}[kappa_0] + k mu_{k-1}[kappa_0]) / (2k + 1)."""
    def a2(m):
        return Fraction(math.comb(2 * m, m), 4**m) ** 2

    k0 = [Fraction(1, 2)] + [a2((k - 1) // 2) / (2 * (k + 1) ** 2) if k % 2 else Fraction(0)
                             for k in range(1, kmax + 2)]
    k1 = [Fraction(1, 2) - k0[1]] + [(k0[k - 1] - k0[k + 1]) / (2 * k + 1) for k in range(1, kmax + 1)]
    uk0 = [k0[1]] + [((k + 1) * k0[k + 1] + k * k0[k - 1]) / (2 * k + 1) for k in range(1, kmax + 1)]
    return {"step": k0[: kmax + 1], "nngp": k1, "ntk": [a + b for a, b in zip(uk0, k1)]}


def test_two_layer_kernels_on_s2_match_exact_rationals():
    kmax = 120
    exact = _two_layer_rationals(kmax)
    assert exact["ntk"][:5] == [Fraction(1, 2), Fraction(1, 3), Fraction(5, 64), 0, Fraction(1, 192)]
    kernels = {"step": nk.SphereKernel(1, "step", kernel="nngp"), "nngp": nk.SphereKernel(1, kernel="nngp"),
               "ntk": nk.SphereKernel(1)}
    eps = np.finfo(np.float64).eps
    for name, kern in kernels.items():
        mu, err = nk.sphere_eigenvalues(kern, 3, kmax, return_error=True)
        ref = np.array([float(q) for q in exact[name]])
        assert np.all(np.abs(mu - ref) <= err + 4 * eps * np.abs(ref) + 1e-34), name
        # and the float64 path alone, to its own error estimate
        mu64, err64 = nk.sphere_eigenvalues(kern, 3, kmax, path="float64", return_error=True)
        assert np.all(np.abs(mu64 - ref) <= err64), name


@pytest.mark.slow
def test_parity_constant_of_bietti_bach():
    """Bietti & Bach 2021, Thm 1: mu_k ~ (c_1 + (-1)^k c_-1) C k^(-d-2nu+1). The depth-2 ReLU NTK has
    Theta(1 - t) = 3 - 3 (sqrt2/pi) t^(1/2) + ... and Theta(-1 + t) = -(sqrt2 / (2 pi)) t^(1/2) + ...,
    so even eigenvalues sit (c_1 + c_-1) / (c_1 - c_-1) = 7/5 times above their odd neighbours."""
    for d in (2, 3, 5):
        mu = nk.sphere_eigenvalues(nk.SphereKernel(2), d, 400)
        k = np.arange(200, 399, 2)
        np.testing.assert_allclose(mu[k] / np.sqrt(mu[k - 1] * mu[k + 1]), 1.4, rtol=2e-3)


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


@pytest.mark.slow
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
        rebuilt = sum(mu[k] * N[k] * nk.legendre(d, k, t) for k in np.flatnonzero(ok))
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
        (lambda: nk.sphere_eigenvalues("relu", 3, 5), TypeError, "kernel must be a sphere kernel"),
        (lambda: nk.sphere_eigenvalues(np.cos, 3, 5, rtol=True), ValueError, "rtol"),
        (lambda: nk.sphere_eigenvalues(np.cos, 3, 5, return_error=1), TypeError, "return_error must be a bool"),
        (lambda: nk.sphere_eigenvalues(lambda t: t[:3], 3, 5), ValueError, "same shape|shape of its argument"),
        (lambda: nk.sphere_eigenvalues(lambda t: np.full_like(t, np.nan), 3, 5), ValueError, "finite"),
        (lambda: nk.sphere_eigenvalues(np.cos, 3, 5, rtol=0), ValueError, "rtol"),
        (lambda: nk.sphere_eigenvalues(np.cos, 3, 5, path="mpmath"), ValueError,
         "path must be one of 'auto', 'float64', 'exact'"),
        (lambda: nk.legendre(3, 2, 1.5), ValueError, "t must lie"),
        (lambda: nk.legendre(3, 2, np.nan), ValueError, "t must be finite; got NaN or inf"),
        (lambda: nk.legendre(3, 2, [0.5, np.inf]), ValueError, "t must be finite"),
        (lambda: nk.legendre(1, 2, 0.5), ValueError, "d must be >= 2"),
        (lambda: nk.legendre(3, -1, 0.5), ValueError, "k must be >= 0"),
        (lambda: nk.legendre(3, 2.0, 0.5), TypeError, "k must be an int"),
        (lambda: nk.expand_multiplicities([[1.0]], 3), ValueError, "one-dimensional"),
        (lambda: nk.expand_multiplicities([1.0, np.nan], 3), ValueError, "NaN"),
        (lambda: nk.degree_of_index(-1, 3), ValueError, "i must be >= 0"),
        (lambda: nk.SphereKernel(2).kappa_mp(2), ValueError, "u must lie in"),
        (lambda: nk.SphereKernel(2, activation="tanh").kappa_mp(0.5), TypeError, "no high-precision path"),
        (lambda: nk.multiplicity(3, -1), ValueError, "k must be >= 0"),
        (lambda: nk.SphereKernel(2, kernel="cntk"), ValueError, "kernel must be one of 'ntk', 'nngp'"),
    ],
)
def test_bad_input_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()


@pytest.mark.slow
def test_quadrature_activation_kernel_falls_back_to_warning():
    """A SphereKernel whose activation has no closed form cannot go beyond float64: NaN + warning."""
    with pytest.warns(nk.UnreliableEigenvalueWarning):
        mu = nk.sphere_eigenvalues(nk.SphereKernel(2, activation="softplus"), 3, 40)
    assert np.isnan(mu).any() and not np.isnan(mu[:5]).any()


def test_sphere_kernel_high_precision_values_match_float64_per_layer_weights():
    """kappa_mp uses each layer's own weight (c_sigma exactly where weight_var is None)."""
    for wv in ([None, 1.0], [1.5, None], None):
        k = nk.SphereKernel(2, weight_var=wv, bias_var=0.2, kernel="ntk")
        with mp.workdps(30):
            hp = [float(k.kappa_mp(mp.mpf(u))) for u in ("-0.7", "0.3", "1")]
        np.testing.assert_allclose(hp, k.kappa(np.array([-0.7, 0.3, 1.0])), rtol=1e-14)


@pytest.mark.parametrize("names, kernel", [(["relu", "relu"], "ntk"), (["erf", "relu"], "nngp"),
                                           (["sin", "cos", "step"], "nngp"), (["relu3"], "ntk")])
def test_kappa_mp_matches_the_independent_recursion_to_30_digits(names, kernel):
    """Against mpref's recursion (no ntklib code), at the caller's precision of 40 digits: to 1e-32
    of kappa(1) (near u = -1 the closed forms cancel to absolute, not relative, accuracy: ~1e-37)."""
    acts = [nk.relu(3) if n == "relu3" else n for n in names]
    k = nk.SphereKernel(len(names), acts, kernel=kernel)
    us = ("-1", "-0.9999999999", "-0.3", "0.5", "0.99999999999999", "1")
    with mp.workdps(60):  # the reference's arccos loses ~10 digits at u = 1 - 1e-14: give it 60
        scale = abs(mpref.kappa(names, 1, ntk=kernel == "ntk"))
        refs = [mpref.kappa(names, u, ntk=kernel == "ntk") for u in us]
    with mp.workdps(40):
        for u, ref in zip(us, refs):
            assert abs(k.kappa_mp(mp.mpf(u)) - ref) <= mp.mpf(10) ** -32 * scale, (u, names)


def test_kappa_mp_works_at_the_callers_precision_and_sets_none():
    k = nk.SphereKernel(3, kernel="nngp")
    dps = mp.mp.dps
    with mp.workdps(15):
        low = k.kappa_mp(mp.mpf("0.3"))
    with mp.workdps(60):
        high = k.kappa_mp(mp.mpf("0.3"))
        assert abs(low - high) > mp.mpf(10) ** -40  # really computed at 15 digits, not at 60
        assert abs(low - high) < mp.mpf(10) ** -13
        ref = mpref.kappa(["relu"] * 3, mp.mpf("0.3"), ntk=False)
        assert abs(high - ref) < mp.mpf(10) ** -38
    assert mp.mp.dps == dps


def test_importing_mpref_leaves_mpmath_precision_alone():
    with mp.workdps(17):
        importlib.reload(mpref)
        assert mp.mp.dps == 17
        mpref.kappa(["relu"], "0.5")  # and computing with it neither
        assert mp.mp.dps == 17


@pytest.mark.slow
def test_eigenvalues_do_not_depend_on_the_callers_mpmath_precision():
    kern = nk.SphereKernel(2, kernel="nngp")
    results = []
    for dps in (8, 15, 90):
        with mp.workdps(dps):
            results.append(nk.sphere_eigenvalues(kern, 3, 60, path="exact"))
            assert mp.mp.dps == dps
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])


# ----------------------------------------------------------------------------------------------
# the sphere-kernel protocol
# ----------------------------------------------------------------------------------------------
class _FloatOnly:
    """kappa alone: the protocol's float64 half (calling it is not kappa, as for a Gram kernel)."""

    def __init__(self, inner):
        self.inner = inner

    def __call__(self, X, Y=None):
        raise AssertionError("sphere_eigenvalues must use .kappa, not call the object")

    def kappa(self, u):
        return self.inner.kappa(u)


class _WithMp(_FloatOnly):
    def kappa_mp(self, u):
        return self.inner.kappa_mp(u)


@pytest.mark.slow
def test_protocol_objects_plain_callables_and_sphere_kernels_agree():
    kern = nk.SphereKernel(3, kernel="nngp")
    exact = nk.sphere_eigenvalues(kern, 3, 300)
    # kappa and kappa_mp: the same high-precision tail as the SphereKernel itself
    np.testing.assert_array_equal(nk.sphere_eigenvalues(_WithMp(kern), 3, 300), exact)
    # the kernel object itself is a sphere kernel, with the same recursion: the same numbers
    np.testing.assert_array_equal(nk.sphere_eigenvalues(nk.NNGP(depth=3), 3, 300), exact)
    # kappa alone (and a plain callable): float64 only, NaN and a warning where float64 fails
    for obj in (_FloatOnly(kern), kern.kappa):
        with pytest.warns(nk.UnreliableEigenvalueWarning, match="no kappa_mp"):
            mu = nk.sphere_eigenvalues(obj, 3, 300)
        ok = ~np.isnan(mu)
        assert 50 < ok.sum() < 301
        np.testing.assert_allclose(mu[ok], exact[ok], rtol=1e-6)
    with pytest.raises(TypeError, match="kappa_mp method"):
        nk.sphere_eigenvalues(_FloatOnly(kern), 3, 10, path="exact")


def test_a_classic_kernel_object_is_a_sphere_kernel():
    """nk.Laplace() called on points is a Gram matrix; sphere_eigenvalues must read its .kappa."""
    lap = nk.Laplace()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nk.UnreliableEigenvalueWarning)
        mu = nk.sphere_eigenvalues(lap, 3, 30)
        ref = nk.sphere_eigenvalues(lap.kappa, 3, 30)
    np.testing.assert_array_equal(mu, ref)
    assert mu[0] > 0


def test_kappa_mp_refusal_means_float64_only_with_the_reason():
    tanh = nk.SphereKernel(2, activation="tanh")
    with pytest.warns(nk.UnreliableEigenvalueWarning, match="tanh.*quadrature"):
        nk.sphere_eigenvalues(tanh, 3, 40)
    with pytest.raises(ValueError, match="no high-precision path"):
        nk.sphere_eigenvalues(tanh, 3, 10, path="exact")


def test_sphere_kernel_call_equals_kappa_and_keeps_tensors():
    k = nk.SphereKernel(2, ["erf", "relu"], kernel="nngp", bias_var=0.1)
    u = np.linspace(-1, 1, 7)
    np.testing.assert_array_equal(k(u), k.kappa(u))
    np.testing.assert_array_equal(k.kappa(u), nk.kappa(u, depth=2, activation=["erf", "relu"], kernel="nngp",
                                                       bias_var=0.1))
    out = k.kappa(torch.as_tensor(u))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    # one recursion: a SphereKernel is a view of the kernel object, in float64 and in mpmath
    net = nk.NNGP(depth=2, activation=["erf", "relu"], bias_var=0.1)
    assert k.network_kernel == net
    np.testing.assert_array_equal(k.kappa(u), net.kappa(u))
    with mp.workdps(30):
        assert k.kappa_mp(mp.mpf("0.3")) == net.kappa_mp(mp.mpf("0.3"))
    np.testing.assert_array_equal(out.numpy(), k.kappa(u))


@pytest.mark.parametrize("kern", [nk.SphereKernel(2), nk.SphereKernel(1, "step", kernel="nngp"),
                                  nk.SphereKernel(3, ["relu", "erf", "sin"], weight_var=[None, 1.5, None],
                                                  bias_var=0.25),
                                  nk.SphereKernel(0, kernel="nngp")], ids=repr)
def test_sphere_kernel_repr_reads_back_and_equality_is_on_the_parameters(kern):
    again = eval(repr(kern), {"SphereKernel": nk.SphereKernel})
    assert again == kern and hash(again) == hash(kern) and again is not kern
    assert kern != nk.SphereKernel(4) and kern != "relu"
    assert len({kern, again}) == 1


def test_sphere_kernel_equality_sees_every_parameter():
    base = nk.SphereKernel(2, "relu", "ntk", None, 0.0)
    for other in (nk.SphereKernel(3), nk.SphereKernel(2, "erf"), nk.SphereKernel(2, kernel="nngp"),
                  nk.SphereKernel(2, weight_var=2.0), nk.SphereKernel(2, bias_var=0.1)):
        assert other != base
    assert nk.SphereKernel(2, nk.get_activation("relu")) == base  # the same activation, another spelling


# ----------------------------------------------------------------------------------------------
# multiplicities by index (copied from tests/test_classic.py, where the lead removes them)
# ----------------------------------------------------------------------------------------------
def test_degree_index_and_multiplicities():
    mu = 1.0 / (1 + np.arange(6)) ** 3
    lam = nk.expand_multiplicities(mu, 3)
    assert len(lam) == sum(2 * k + 1 for k in range(6))
    for i in range(len(lam)):
        assert lam[i] == mu[nk.degree_of_index(i, 3)]


@pytest.mark.parametrize("d", [2, 3, 4, 6])
def test_degree_of_index_counts_multiplicities(d):
    """The first index of degree k is sum_{j<k} N(d, j) = C(k+d-2, d-1) + C(k+d-3, d-1), by an
    independent telescoping count."""
    for k in range(1, 12):
        first = math.comb(k + d - 2, d - 1) + math.comb(k + d - 3, d - 1)
        assert nk.degree_of_index(first, d) == k
        assert nk.degree_of_index(first - 1, d) == k - 1


def test_expand_multiplicities_sorts_a_non_monotone_spectrum():
    mu = np.array([0.1, 0.5, 0.0, 0.2])  # N(3, k) = 1, 3, 5, 7
    lam = nk.expand_multiplicities(mu, 3)
    np.testing.assert_array_equal(lam, [0.5] * 3 + [0.2] * 7 + [0.1] + [0.0] * 5)


# ----------------------------------------------------------------------------------------------
# issue 10: large d (item 3), the exact pi (item 4), overflow, cost guards, input types
# ----------------------------------------------------------------------------------------------
def _funk_hecke_of_power(n, k, d):
    """mu_k of kappa(u) = u^n on S^(d-1), in mpmath: Rodrigues' formula and k integrations by parts
    give c n! / ((n-k)! 2^k ((d-1)/2)_k) B((n-k+1)/2, k+(d-1)/2) for n - k even >= 0, else 0."""
    if n < k or (n - k) % 2:
        return mp.mpf(0)
    half = mp.mpf(d - 1) / 2
    c = mp.gamma(mp.mpf(d) / 2) / (mp.sqrt(mp.pi) * mp.gamma(half))
    return (c * mp.factorial(n) / (mp.factorial(n - k) * 2**k * mp.rf(half, k))
            * mp.beta(mp.mpf(n - k + 1) / 2, k + half))


class _Polynomial:
    """kappa(u) = sum_n coef[n] u^n, with a kappa_mp: a sphere kernel with known eigenvalues."""

    def __init__(self, coef):
        self.coef = coef

    def kappa(self, u):
        return np.polynomial.polynomial.polyval(u, self.coef)

    def kappa_mp(self, u):
        return mp.fsum(c * mp.mpf(u) ** n for n, c in enumerate(self.coef))

    def mu(self, k, d):
        return mp.fsum(c * _funk_hecke_of_power(n, k, d) for n, c in enumerate(self.coef))


LARGE_D = [784, 3072, 10**4, 10**5]


def test_funk_hecke_closed_form_of_powers_checks_out_at_small_d():
    """The reference itself, against mpmath quadrature of the Funk-Hecke integral at d = 5."""
    with mp.workdps(30):
        for n, k in [(4, 2), (5, 1), (6, 6), (3, 0)]:
            c = mp.gamma(mp.mpf(5) / 2) / (mp.sqrt(mp.pi) * mp.gamma(mp.mpf(2)))
            quad = c * mp.quad(lambda t, n=n, k=k: t**n * mp.gegenbauer(k, 1.5, t) / mp.gegenbauer(k, 1.5, 1)
                               * (1 - t * t), [-1, 0, 1])
            assert abs(quad - _funk_hecke_of_power(n, k, 5)) < mp.mpf(10) ** -25


@pytest.mark.parametrize("d", LARGE_D)
def test_depth0_eigenvalues_are_exact_at_large_d_with_an_honest_error(d):
    """Item 3: SphereKernel(depth=0) is kappa(u) = u + beta^2: mu_0 = beta^2, mu_1 = 1/d, no other.
    It was 1.267e-4 for 1e-4 at d = 1e4 (7x off at 1e5) with a reported error of 0."""
    for bias, kern in [(0.0, nk.SphereKernel(depth=0)), (0.5, nk.SphereKernel(depth=0, bias_var=0.5))]:
        mu, err = nk.sphere_eigenvalues(kern, d, 5, return_error=True)
        exact = np.array([bias, 1 / d, 0, 0, 0, 0])
        assert abs(mu[1] - 1 / d) <= 1e-15 / d
        assert np.all(np.abs(mu - exact) <= err + 1e-300)
        assert np.all(np.abs(mu[2:]) < 1e-33) and abs(mu[0] - bias) < 1e-33


@pytest.mark.parametrize("d", LARGE_D)
def test_polynomial_kernel_eigenvalues_match_the_closed_form_at_large_d(d):
    """Item 3: mu_k of u^3 + u^4/2 + u^7/5, far below float64 round-off (mu_7 ~ d^-7), against the
    closed form; the reported error covers the difference."""
    kern = _Polynomial([0.1, 0, 0, 1, 0.5, 0, 0, 0.2])
    mu, err = nk.sphere_eigenvalues(kern, d, 9, return_error=True)
    with mp.workdps(50):
        ref = np.array([float(kern.mu(k, d)) for k in range(10)])
    nonzero = ref != 0  # atol: the high-precision path's absolute accuracy (mu_6 ~ 1e-32 at d = 1e5)
    np.testing.assert_allclose(mu[nonzero], ref[nonzero], rtol=1e-13, atol=1e-38)
    assert np.all(np.abs(mu[~nonzero]) < 1e-33)
    assert np.all(np.abs(mu - ref) <= err + 2 * np.finfo(float).eps * np.abs(ref))


def _relu_ntk1_series(n_terms):
    """Taylor coefficients of the two-layer ReLU NTK kappa(u) = u k0(u) + k1(u) (arc-cosine kernels):
    u + (2/pi) sum_m b_m u^(2m+2) + (1/pi) sqrt(1-u^2), b_m = (2m)! / (4^m m!^2 (2m+1)), in mpmath."""
    a = [mp.mpf(0)] * n_terms
    a[1] = mp.mpf(1)
    for j in range(n_terms // 2):
        if 2 * j < n_terms:
            a[2 * j] += mp.binomial(mp.mpf(1) / 2, j) * (-1) ** j / mp.pi
        if 2 * j + 2 < n_terms:
            a[2 * j + 2] += 2 * mp.factorial(2 * j) / (4**j * mp.factorial(j) ** 2 * (2 * j + 1)) / mp.pi
    return a


def test_relu_ntk_at_cifar_dimension_matches_its_taylor_series_for_every_kmax():
    """Item 3: d = 3072, depth 1: mu_3 came out negative, mu_6 1400x too big, and both depended on
    kmax. Reference: the kernel's Taylor series through the closed form for powers (the terms fall
    like (n/d)^(1/2) per degree, 200 terms are plenty); mu_k for odd k >= 3 vanish."""
    d = 3072
    with mp.workdps(40):
        a = _relu_ntk1_series(220)
        u = mp.mpf("0.3")
        assert abs(mp.fsum(c * u**n for n, c in enumerate(a)) - nk.SphereKernel(1).kappa_mp(u)) < 1e-12
        ref = np.array([float(mp.fsum(c * _funk_hecke_of_power(n, k, d) for n, c in enumerate(a)))
                        for k in range(7)])
    for kmax in (6, 20, 50):
        mu, err = nk.sphere_eigenvalues(nk.SphereKernel(depth=1), d, kmax, return_error=True)
        for k in (0, 1, 2, 4, 6):
            assert abs(mu[k] - ref[k]) <= 1e-12 * ref[k], (kmax, k)
        assert abs(mu[3]) < 1e-33 and abs(mu[5]) < 1e-33
        assert np.all(np.abs(mu[:7] - ref) <= err[:7] + 1e-12 * np.abs(ref))


def test_d784_eigenvalues_meet_rtol_whatever_kmax():
    """Item 3: at d = 784 an eigenvalue was 2.6e-6 off (rtol 1e-6). The two-layer ReLU NTK against
    its Taylor series (as above), with kmax 4 and 60 (different panels): within rtol and within
    the error estimate."""
    d = 784
    with mp.workdps(40):
        a = _relu_ntk1_series(400)
        ref = np.array([float(mp.fsum(c * _funk_hecke_of_power(n, k, d) for n, c in enumerate(a)))
                        for k in range(5)])
    for kmax in (4, 60):
        mu, err = nk.sphere_eigenvalues(nk.SphereKernel(depth=1), d, kmax, return_error=True)
        for k in (0, 1, 2, 4):
            assert abs(mu[k] - ref[k]) <= 1e-6 * ref[k], (kmax, k)
            assert abs(mu[k] - ref[k]) <= err[k] + 1e-15 * ref[k], (kmax, k)
        assert abs(mu[3]) < 1e-33


@pytest.mark.parametrize("kernel", ["ntk", "nngp"])
def test_high_precision_path_integrates_to_the_exact_pi(kernel):
    """Item 4: the erf kernels on the circle gave mu_38..40 = [8.7e-17, -7.6e-17, 8.7e-17] (NTK)
    from the sliver [fl(pi), pi]. Both are odd (even mu_k vanish): with c = 1 / arcsin(2/3),
    Sigma(u) = c arcsin(2u/3) and the NTK adds u c (2 / sqrt(9 - 4u^2)) (from E[erf' erf']).
    Reference: mpmath quadrature of (1/pi) int_0^pi kappa(cos a) cos(k a) da at 40 digits."""
    kern = nk.SphereKernel(depth=1, activation="erf", kernel=kernel)
    mu, err = nk.sphere_eigenvalues(kern, 2, 40, return_error=True)
    with mp.workdps(40):
        c = 1 / mp.asin(mp.mpf(2) / 3)

        def kappa(u):
            sigma = c * mp.asin(2 * u / 3)
            return sigma + u * c * 2 / mp.sqrt(9 - 4 * u * u) if kernel == "ntk" else sigma

        assert abs(kappa(mp.mpf("0.3")) - kern.kappa_mp(mp.mpf("0.3"))) < 1e-30  # the formula is the kernel
        cuts = mp.linspace(0, mp.pi, 81)
        mu39 = float(mp.quad(lambda a: kappa(mp.cos(a)) * mp.cos(39 * a), cuts) / mp.pi)
    assert abs(mu[39] - mu39) <= 1e-12 * abs(mu39)
    assert abs(mu[39] - mu39) <= err[39] + 1e-12 * abs(mu39)
    assert np.all(np.abs(mu[0::2]) < 1e-34)


def test_high_precision_error_estimate_sees_discretization():
    """Item 3: the high-precision path reported 0 error. With a rule too coarse for the kernel (the
    panels of kmax = 2 asked for degree 40 of a kernel with mu_k ~ k^-3), the two-rule difference
    shows up in the estimate; with enough panels the estimate covers the true error."""
    from ntklib import sphere

    kern = nk.SphereKernel(depth=1)
    coarse = np.linspace(0, np.pi, 4)  # three panels: degree 40 is 6.7 periods in each
    mu_c, err_c = sphere._high_precision_eigenvalues(kern.kappa_mp, 3, 40, coarse)
    mu = nk.sphere_eigenvalues(kern, 3, 40, path="exact")
    assert np.max(np.abs(mu_c - mu)) > 1e-15  # the rule is poor (float64 level)...
    assert np.all(np.abs(mu_c - mu) <= err_c)  # ... and the estimate says so


def test_legendre_finite_at_large_d_and_k():
    """legendre(500, 1000, t) was NaN (the normalizer C_k^lambda(1) overflows). Reference: mpmath's
    Gegenbauer functions at 40 digits."""
    t = np.array([-0.999, -0.3, 0.0, 0.01, 0.5, 0.9999, 1.0])
    got = nk.legendre(500, 1000, t)
    with mp.workdps(40):
        ref = [float(mp.gegenbauer(1000, 249, mp.mpf(x)) / mp.gegenbauer(1000, 249, 1)) for x in t]
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-300)
    assert np.all(np.isfinite(got))


def test_legendre_refuses_strings_complex_and_a_huge_cost():
    with pytest.raises(TypeError, match="t must be"):
        nk.legendre(5, 2, "0.5")
    with pytest.raises(TypeError, match="complex"):
        nk.legendre(5, 2, np.array([0.5 + 1j]))
    with pytest.raises(TypeError, match="complex"):
        nk.legendre(3, 2, np.array([0.5 + 1j]))
    with pytest.raises(nk.TooLargeError, match="max_terms"):
        nk.legendre(5, 10**12, 0.5)


def test_multiplicity_array_overflow_is_a_clear_error_and_int_stays_exact():
    """multiplicity(1000, [1000]) raised OverflowError 'int too large to convert to float'."""
    exact = math.comb(1999, 999) - math.comb(1997, 999)  # binom(k+d-1, d-1) - binom(k+d-3, d-1)
    assert nk.multiplicity(1000, 1000) == exact
    with pytest.raises(ValueError, match=r"N\(d=1000, k=1000\).*float64"):
        nk.multiplicity(1000, [1000])
    big = nk.multiplicity(100, np.array([[50, 0], [50, 3]]))
    assert big.shape == (2, 2) and big[0, 0] == float(nk.multiplicity(100, 50)) and big[0, 1] == 1


def test_sphere_eigenvalues_huge_kmax_is_refused_before_the_work():
    """sphere_eigenvalues(kmax=10**7) had no guard (kmax = 3000 took over a minute)."""
    import time

    t0 = time.perf_counter()
    with pytest.raises(nk.TooLargeError, match="max_terms"):
        nk.sphere_eigenvalues(nk.SphereKernel(1), 3, 10**7)
    with pytest.raises(nk.TooLargeError, match="max_terms"):
        nk.sphere_eigenvalues(np.exp, 3, 1000, max_terms=10**6)
    assert time.perf_counter() - t0 < 1
    mu = nk.sphere_eigenvalues(np.exp, 3, 30, max_terms=10**7, path="float64")  # within the raised limit
    assert mu.shape == (31,)


def test_degree_of_index_is_instant_for_huge_indices():
    """degree_of_index(10**12, 2) ran a Python loop for ever. N(2, k) = 2: index i has degree
    ceil(i / 2); on S^2 the first index of degree k is k^2."""
    assert nk.degree_of_index(10**12, 2) == 5 * 10**11
    assert nk.degree_of_index(10**12 - 1, 2) == 5 * 10**11
    assert nk.degree_of_index(10**40, 3) == 10**20
    assert nk.degree_of_index(10**40 - 1, 3) == 10**20 - 1
    i = 10**30  # on S^6: sum_{j < k} N(7, j) <= i < sum_{j <= k} N(7, j), by the binomial closed form
    k = nk.degree_of_index(i, 7)
    assert math.comb(k + 5, 6) + math.comb(k + 4, 6) <= i < math.comb(k + 6, 6) + math.comb(k + 5, 6)


def test_unreliable_warning_names_discretization_or_round_off():
    """The warning blamed round-off when the quadrature error was the cause (a kink inside (-1, 1))."""
    with pytest.warns(nk.UnreliableEigenvalueWarning, match="discretization error dominates"):
        nk.sphere_eigenvalues(lambda u: np.abs(u - 0.3), 3, 10)
    with pytest.warns(nk.UnreliableEigenvalueWarning, match="round-off level") as rec:
        nk.sphere_eigenvalues(np.exp, 3, 30)
    assert "discretization" not in str(rec[0].message)


def test_callable_kappa_returning_strings_or_complex_is_a_type_error():
    """Complex parts were dropped with a ComplexWarning only (and a string kappa accepted)."""
    with pytest.raises(TypeError, match="complex"):
        nk.sphere_eigenvalues(lambda t: t + 0j, 3, 2)
    with pytest.raises(TypeError, match="real numeric"):
        nk.sphere_eigenvalues(lambda t: t.astype(str), 3, 2)
    with pytest.raises(ValueError, match="finite"):
        nk.sphere_eigenvalues(lambda t: np.full_like(t, np.nan), 3, 2)


def test_expand_multiplicities_refuses_an_unbounded_allocation_and_complex():
    """sum_k N(1000, k) for k <= 4 is ~4e10 eigenvalues (320 GB): refused before np.repeat."""
    with pytest.raises(nk.TooLargeError, match="max_bytes"):
        nk.expand_multiplicities(np.ones(5), 1000)
    lam = nk.expand_multiplicities([1.0, 0.5], 1000)  # N(1000, 1) = 1000
    assert lam.shape == (1001,) and lam[0] == 1.0 and np.all(lam[1:] == 0.5)
    with pytest.raises(TypeError, match="complex"):
        nk.expand_multiplicities(np.array([1.0, 0.5j]), 3)
    with pytest.raises(TypeError, match="real numeric"):
        nk.expand_multiplicities(["1.0", "0.5"], 3)
