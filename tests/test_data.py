"""ntklib.data: samplers and preprocessing, their invariants and the errors bad arguments get."""
import numpy as np
import pytest

import ntklib as nk


def test_sphere_is_seeded_and_on_the_sphere():
    X = nk.data.sphere(50, 4, seed=3)
    assert X.shape == (50, 4) and np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-15)
    assert np.array_equal(X, nk.data.sphere(50, 4, seed=3))
    assert not np.array_equal(X, nk.data.sphere(50, 4, seed=4))
    assert np.array_equal(nk.data.sphere(5, 3, seed=np.random.default_rng(7)), nk.data.sphere(5, 3, seed=7))


def test_zca_whitens_and_applies_the_same_map():
    """The whitened covariance has eigenvalues lam / (lam + eps * mean lam), and others get train's map."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 4))
    x = (rng.standard_normal((400, 4)) @ A).reshape(400, 2, 2, 1)
    eps = 0.3
    w, w_again = nk.data.zca_whiten(x, x[:7], eps=eps)
    assert w.shape == x.shape and np.array_equal(w[:7], w_again)
    lam = np.linalg.eigvalsh(np.cov(x.reshape(400, -1), rowvar=False))
    got = np.linalg.eigvalsh(np.cov(w.reshape(400, -1), rowvar=False))
    np.testing.assert_allclose(got, np.sort(lam / (lam + eps * lam.mean())), rtol=1e-10)
    # the map is symmetric (zero-phase): W = (x - mean)^+ w recovers a symmetric matrix
    flat = x.reshape(400, -1)
    W = np.linalg.lstsq(flat - flat.mean(0), w.reshape(400, -1), rcond=None)[0]
    np.testing.assert_allclose(W, W.T, atol=1e-10)


def test_uint8_pixels_are_scaled_the_same_way_in_both_preprocessors():
    a = np.random.default_rng(1).integers(0, 256, (20, 1, 3, 3), dtype=np.uint8)
    np.testing.assert_allclose(nk.data.zca_whiten(a)[0], nk.data.zca_whiten(a / 255.0)[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(nk.data.standardize(a)[0], nk.data.standardize(a / 255.0)[0], rtol=1e-12)


@pytest.mark.parametrize("call, err, match", [
    (lambda: nk.data.sphere(0, 3, seed=0), ValueError, "n must be >= 1"),
    (lambda: nk.data.sphere(5, 1, seed=0), ValueError, "d must be >= 2"),
    (lambda: nk.data.sphere(5, 3, seed=-1), ValueError, "seed must be >= 0"),
    (lambda: nk.data.sphere(5, 3, seed=1.5), TypeError, "seed must be an int"),
    (lambda: nk.data.circle(2.0), TypeError, "n must be an int"),
    (lambda: nk.data.zca_whiten(np.ones((5, 3)), eps=0), ValueError, "eps must be > 0"),
    (lambda: nk.data.zca_whiten(np.ones((5, 3)), eps="0.1"), TypeError, "eps must be a real number"),
    (lambda: nk.data.zca_whiten(np.ones((5, 3))), ValueError, "train is constant"),
    (lambda: nk.data.zca_whiten(np.ones((1, 3))), ValueError, "at least 2 samples"),
    (lambda: nk.data.zca_whiten(np.ones(3)), ValueError, "train must have shape"),
    (lambda: nk.data.zca_whiten(np.eye(3), np.ones((2, 4))), ValueError, r"train and others\[0\] must have the same number"),
    (lambda: nk.data.zca_whiten(np.eye(3), np.full((2, 3), np.nan)), ValueError, r"others\[0\] contains NaN"),
    (lambda: nk.data.standardize(np.ones((2, 3))), ValueError, r"train must have shape \(n, channels"),
    (lambda: nk.data.standardize(np.ones((2, 1, 3, 3)), np.ones((2, 1, 4, 4))), ValueError,
     r"train and others\[0\] must hold samples of the same shape"),
    (lambda: nk.data.standardize(np.array([["a"]])), TypeError, "train must be a real numeric array"),
    (lambda: nk.data.load_cifar10("/nonexistent", download="yes"), TypeError, "download must be True or False"),
])
def test_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()
