"""ntklib.decay: Gram-matrix spectra, aliasing on the circle, decay fits and local exponents.

References are independent of the code under test: closed-form spectra (circulant matrices, power
laws, Bessel functions) and dense eigendecompositions. The tests of fit_decay, gram_eigenvalues and
local_exponents from tests/test_classic.py are here too (the lead removes them there).
"""
import math

import numpy as np
import pytest
import torch
from scipy import special

import ntklib as nk


# ----------------------------------------------------------------------------------------------
# gram_eigenvalues
# ----------------------------------------------------------------------------------------------
def test_gram_eigenvalues_checks_symmetry():
    with pytest.raises(ValueError, match="symmetric"):
        nk.gram_eigenvalues(np.array([[1.0, 0.5], [0.1, 1.0]]))
    ev = nk.gram_eigenvalues(np.diag([1.0, 3.0, 2.0]))
    np.testing.assert_allclose(ev, [1.0, 2 / 3, 1 / 3])


def test_gram_eigenvalues_of_a_random_psd_matrix_match_a_dense_svd():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((40, 7))
    K = A @ A.T
    ev = nk.gram_eigenvalues(K)
    sv = np.linalg.svd(A, compute_uv=False) ** 2 / 40  # independent: singular values of the factor
    np.testing.assert_allclose(ev[:7], sv, rtol=1e-12)
    assert np.all(np.abs(ev[7:]) < 1e-13 * ev[0])
    assert np.all(np.diff(ev) <= 0)
    assert np.sum(ev) == pytest.approx(np.trace(K) / 40, rel=1e-13)


def test_gram_eigenvalues_keeps_a_tensor_a_tensor():
    K = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    ev = nk.gram_eigenvalues(K)
    assert isinstance(ev, torch.Tensor) and ev.dtype == torch.float64 and ev.device == K.device
    np.testing.assert_allclose(ev.numpy(), [1.5, 0.5], rtol=1e-15)
    np.testing.assert_allclose(nk.gram_eigenvalues(K.float()).numpy(), [1.5, 0.5], rtol=1e-6)
    with pytest.raises(ValueError, match="symmetric"):
        nk.gram_eigenvalues(torch.tensor([[1.0, 0.5], [0.1, 1.0]]))


@pytest.mark.parametrize("K, match", [(np.ones((2, 3)), "square"), (np.ones(3), "square"),
                                      (np.array([[1.0, np.nan], [np.nan, 1.0]]), "NaN or inf"),
                                      (torch.full((2, 2), float("inf")), "NaN or inf")])
def test_gram_eigenvalues_bad_input(K, match):
    with pytest.raises(ValueError, match=match):
        nk.gram_eigenvalues(K)


# ----------------------------------------------------------------------------------------------
# aliased_eigenvalues
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 5, 16, 33])
def test_aliased_eigenvalues_are_the_spectrum_of_the_circulant_gram(n):
    """kappa(cos a) = mu_0 + 2 sum_k mu_k cos(k a) on equispaced points: the Gram matrix's own
    eigenvalues (dense eigvalsh) equal the aliased sums."""
    kmax = 400
    k = np.arange(kmax + 1)
    mu = 1.0 / (1.0 + k) ** 3
    a = 2 * np.pi * np.arange(n) / n
    diff = a[:, None] - a[None, :]
    K = mu[0] + 2 * np.tensordot(mu[1:], np.cos(k[1:, None, None] * diff), axes=1)
    lam = nk.aliased_eigenvalues(mu, n)
    np.testing.assert_allclose(np.sort(lam), np.sort(nk.gram_eigenvalues(K)), rtol=1e-11, atol=1e-14)
    # and the circulant's eigenvalue j is the DFT of its first row
    np.testing.assert_allclose(lam, np.fft.fft(K[0]).real / n, rtol=1e-11, atol=1e-14)


def test_aliased_eigenvalues_bad_input():
    with pytest.raises(ValueError, match="n must be >= 1"):
        nk.aliased_eigenvalues([1.0, 0.5], 0)
    with pytest.raises(TypeError, match="n must be an int"):
        nk.aliased_eigenvalues([1.0, 0.5], 2.0)
    with pytest.raises(ValueError, match="one-dimensional"):
        nk.aliased_eigenvalues([[1.0, 0.5]], 2)
    with pytest.raises(ValueError, match="non-empty"):
        nk.aliased_eigenvalues([], 2)


# ----------------------------------------------------------------------------------------------
# fit_decay
# ----------------------------------------------------------------------------------------------
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


def test_fit_decay_uses_the_given_index():
    """mu_k = k^-4 for degrees k = 5, 6, ...: the slope is -4 in k, and not in the 1-based position
    (the default abscissa), where it is shallower."""
    k = np.arange(5, 85)
    mu = k ** -4.0
    assert nk.fit_decay(mu, (0, 80), index=k)[0] == pytest.approx(-4.0, abs=1e-12)
    assert abs(nk.fit_decay(mu, (0, 80))[0] + 4.0) > 0.5


@pytest.mark.parametrize("values, window, kw, err, match", [
    (np.ones(5), (0, 9), {}, ValueError, "inside the array"),
    (np.ones(5), (0.0, 3), {}, TypeError, "window start must be an int"),
    (np.ones(5), 3, {}, TypeError, "window must be a pair"),
    (np.ones((2, 5)), (0, 3), {}, ValueError, "one-dimensional"),
    (np.ones(5), (0, 3), {"index": np.ones(4)}, ValueError, "index must have the shape"),
    (np.ones(5), (0, 3), {"index": np.array([0.0, 1, 2, 3, 4])}, ValueError, "index must be positive"),
    (np.array([1.0, np.nan, 0.5]), (0, 3), {}, ValueError, r"values\[1\]"),
    (np.array([1.0, -0.5, 0.5]), (0, 3), {}, ValueError, r"values\[1\]"),
])
def test_fit_decay_bad_input(values, window, kw, err, match):
    with pytest.raises(err, match=match):
        nk.fit_decay(values, window, **kw)


# ----------------------------------------------------------------------------------------------
# local_exponents
# ----------------------------------------------------------------------------------------------
def test_local_exponents_of_power_law_and_gaussian():
    k = np.arange(1, 60, dtype=float)
    np.testing.assert_allclose(nk.local_exponents(k**-3.0, k), -3.0, atol=1e-12)
    loc = nk.local_exponents(special.ive(k, 4.0), k)
    assert np.all(np.diff(loc[5:]) < 0)  # faster than any power: the local exponent keeps falling


def test_local_exponents_of_a_stretched_exponential_on_an_uneven_grid():
    """v = exp(-i^(1/2)): d log v / d log i = -i^(1/2) / 2, to second order on a geometric grid."""
    i = np.geomspace(10, 1e4, 400)
    loc = nk.local_exponents(np.exp(-np.sqrt(i)), i)
    np.testing.assert_allclose(loc[1:-1], -np.sqrt(i[1:-1]) / 2, rtol=1e-3)


@pytest.mark.parametrize("values, index, match", [
    (np.ones(3), np.arange(1, 4.0)[:2], "same length"),
    (np.ones(1), np.ones(1), "at least 2"),
    (np.array([1.0, 0.0]), np.array([1.0, 2.0]), "positive"),
    (np.array([1.0, np.nan]), np.array([1.0, 2.0]), "positive"),
    (np.array([1.0, 2.0]), np.array([0.0, 2.0]), "positive"),
    (np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0]), "strictly increasing"),
])
def test_local_exponents_bad_input(values, index, match):
    with pytest.raises(ValueError, match=match):
        nk.local_exponents(values, index)


def test_decay_tools_read_tensors():
    k = torch.arange(1, 30, dtype=torch.float64)
    np.testing.assert_allclose(nk.local_exponents(k**-2.0, k), -2.0, atol=1e-12)
    assert nk.fit_decay(k**-2.0, (0, 29), index=k)[0] == pytest.approx(-2.0, abs=1e-12)
    lam = nk.aliased_eigenvalues(torch.tensor([1.0, 0.5, 0.25]), 2)
    np.testing.assert_allclose(lam, [1.0 + 0.25 + 0.25, 0.5 + 0.5])


@pytest.mark.parametrize("kind", [np.asarray, torch.as_tensor])
def test_gram_eigenvalues_uses_the_one_gram_tolerance(kind):
    """The tolerance of every Gram matrix in ntklib (GRAM_RTOL = 1e-10 of max|K|), in both kinds."""
    K = np.array([[2.0, 1.0], [1.0, 2.0]])
    near = K + np.array([[0.0, 2e-11 * 2], [0.0, 0.0]])   # asymmetry 2e-11 max|K|: accepted
    np.testing.assert_allclose(np.asarray(nk.gram_eigenvalues(kind(near))), [1.5, 0.5], rtol=1e-10)
    far = K + np.array([[0.0, 5e-10 * 2], [0.0, 0.0]])    # 5e-10 max|K|: refused, with the number
    with pytest.raises(ValueError, match=r"K must be symmetric: max \|K - K\^T\| = 1e-09 exceeds 1e-10"):
        nk.gram_eigenvalues(kind(far))


# ----------------------------------------------------------------------------------------------
# issue 10: hangs, messages, input types
# ----------------------------------------------------------------------------------------------
def test_aliased_eigenvalues_large_n_is_vectorized_and_huge_n_refused():
    """aliased_eigenvalues(mu, 10**8) ran a Python loop over n for ever. Reference: the closed form
    of the aliased geometric series mu_k = r^k (k <= kmax) summed by hand for n >> kmax, where
    lambda_j = r^j for 0 < j <= kmax, r^(n-j) for n - j <= kmax, mu_0 at j = 0, else 0."""
    import time

    r, kmax, n = 0.5, 60, 10**6
    mu = r ** np.arange(kmax + 1)
    t0 = time.perf_counter()
    lam = nk.aliased_eigenvalues(mu, n)
    assert time.perf_counter() - t0 < 1
    expected = np.zeros(n)
    expected[0] = 1.0
    expected[1:kmax + 1] = mu[1:]
    expected[n - kmax:] = mu[1:][::-1]
    np.testing.assert_array_equal(lam, expected)
    with pytest.raises(nk.TooLargeError, match="max_bytes"):
        nk.aliased_eigenvalues(mu, 10**8)
    small = nk.aliased_eigenvalues(mu, 7, max_bytes=10**4)
    # n < kmax: every frequency folds onto j = k mod 7 (independent loop over +-k)
    ref = np.zeros(7)
    for k in range(-kmax, kmax + 1):
        ref[k % 7] += mu[abs(k)]
    np.testing.assert_allclose(small, ref, rtol=1e-15)


def test_fit_decay_inf_outside_the_window_is_named_not_blamed_on_round_off():
    """An inf outside the window made every value 'at or below 1e-13 x the largest'."""
    v = np.r_[np.inf, 1.0, 0.5, 0.25, 0.125]
    with pytest.raises(ValueError, match=r"values\[0\] = inf \(outside the window") as exc:
        nk.fit_decay(v, (1, 5))
    assert "round-off" not in str(exc.value).split(";")[0]
    with pytest.raises(ValueError, match=r"values\[2\] = -inf \(inside"):
        nk.fit_decay(np.r_[1.0, 0.5, -np.inf], (0, 3))
    # NaN outside the window (unreliable eigenvalues) stays allowed: v = 1/i at i = 1, 2, 4
    slope, _ = nk.fit_decay(np.r_[1.0, 0.5, 0.25, np.nan], (0, 3), index=np.array([1.0, 2.0, 4.0, 8.0]))
    assert slope == pytest.approx(-1.0, rel=1e-12)


def test_fit_decay_three_entry_window_is_a_clear_value_error():
    """window=(0, 3, 1) failed to unpack ('a pair ... of ints' TypeError for a tuple of ints)."""
    with pytest.raises(ValueError, match="got 3 entries"):
        nk.fit_decay(np.ones(5) / np.arange(1, 6), (0, 3, 1))
    with pytest.raises(ValueError, match="got 1 entries"):
        nk.fit_decay(np.ones(5) / np.arange(1, 6), [2])


@pytest.mark.parametrize("bad, match", [
    (np.array([1.0, 0.5, 0.25]) + 0j, "complex"),
    (np.array(["1.0", "0.5", "0.25"]), "dtype <U"),
])
def test_decay_tools_refuse_strings_and_complex(bad, match):
    """Complex parts were dropped with only a ComplexWarning; strings of numbers were parsed."""
    with pytest.raises(TypeError, match=match):
        nk.fit_decay(bad, (0, 3))
    with pytest.raises(TypeError, match=match):
        nk.local_exponents(bad, np.arange(1.0, 4.0))
    with pytest.raises(TypeError, match=match):
        nk.aliased_eigenvalues(bad, 2)


@pytest.mark.parametrize("K", [np.eye(2) * (1 + 1j), np.array([["1", "0"], ["0", "1"]]),
                               torch.eye(2, dtype=torch.complex128)])
def test_gram_eigenvalues_refuses_strings_and_complex(K):
    with pytest.raises(TypeError, match="real numeric"):
        nk.gram_eigenvalues(K)
