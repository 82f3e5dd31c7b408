"""Convolutional NTK/NNGP, the finite CNN beside it, and the image data tools."""
import io
import pickle
import tarfile

import numpy as np
import pytest
import torch

import ntklib as nk
from mpref import kernel as mp_kernel


def images(n, c=2, h=5, w=5, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, h, w))


@pytest.mark.parametrize("pooling", ["vanilla", "gap"])
@pytest.mark.parametrize("kernel", ["ntk", "nngp"])
@pytest.mark.parametrize("depth", [2, 3, 5])
def test_one_pixel_image_is_the_fc_relu_kernel(pooling, kernel, depth):
    """A 1 x 1 image with 1 x 1 filters: CNTK of depth d = FC ReLU kernel with d - 1 hidden layers,
    checked against the 40-digit reference recursion."""
    x = images(3, c=4, h=1, w=1)
    K = nk.cntk(x, depth=depth, pooling=pooling, filter_size=1, kernel=kernel)
    flat = x.reshape(3, 4)
    for i in range(3):
        for j in range(3):
            ref = float(mp_kernel(["relu"] * (depth - 1), flat[i].tolist(), flat[j].tolist(), ntk=kernel == "ntk"))
            assert K[i, j] == pytest.approx(ref, rel=1e-13)


def test_readouts_are_trace_and_mean_of_the_pixel_pair_kernel():
    x = images(3, h=6, w=5)
    for kernel in ("ntk", "nngp"):
        P = nk.cntk_pixel_pairs(x[0], x[2], depth=4, kernel=kernel)
        assert P.shape == (6, 5, 6, 5)
        v = nk.cntk(x, depth=4, pooling="vanilla", kernel=kernel)[0, 2]
        g = nk.cntk(x, depth=4, pooling="gap", kernel=kernel)[0, 2]
        assert np.trace(P.reshape(30, 30)) == pytest.approx(v, rel=1e-13)
        assert P.mean() == pytest.approx(g, rel=1e-13)


def test_vanilla_touches_only_same_position_pairs():
    """Changing the off-diagonal pixel-pair inputs cannot change vanilla CNTK: swapping two pixels
    in both images changes GAP's neighbourhoods but the vanilla value depends only on S_pp."""
    x = images(2, h=4, w=4)
    P = nk.cntk_pixel_pairs(x[0], x[1], depth=3)
    # the vanilla value recomputed from the diagonal of the pixel-pair recursion alone
    assert np.trace(P.reshape(16, 16)) == pytest.approx(nk.cntk(x, depth=3, pooling="vanilla")[0, 1], rel=1e-13)


@pytest.mark.parametrize("pooling", ["vanilla", "gap"])
def test_symmetric_psd_and_consistent_blocks(pooling):
    x, y = images(5), images(3, seed=1)
    K = nk.cntk(x, depth=3, pooling=pooling)
    assert np.array_equal(K, K.T) and np.linalg.eigvalsh(K).min() > -1e-12 * np.abs(K).max()
    Kxy = nk.cntk(x, y, depth=3, pooling=pooling, pairs_per_block=2)
    np.testing.assert_allclose(nk.cntk(np.concatenate([x, y]), depth=3, pooling=pooling)[:5, 5:], Kxy, rtol=1e-13)
    K32 = nk.cntk(x.astype(np.float32), depth=3, pooling=pooling, dtype=np.float32)
    assert K32.dtype == np.float32
    np.testing.assert_allclose(K32, K, rtol=1e-5)
    assert isinstance(nk.cntk(torch.from_numpy(x), depth=3, pooling=pooling), torch.Tensor)


def test_fix_removes_first_and_last_layer():
    """fix=True: depth 2 has no trainable layer left (kernel 0); for 1 x 1 images and 1 x 1 filters,
    depth 3 leaves only the middle layer: Sigma^(1) * Sigmadot^(2) of the FC net."""
    x = images(3, c=4, h=1, w=1)
    assert np.all(nk.cntk(x, depth=2, fix=True) == 0)
    flat = x.reshape(3, 4)
    sig1 = nk.nngp(flat, depth=1)
    q = np.sqrt(np.outer(np.diag(sig1), np.diag(sig1)))
    sigdot2 = (np.pi - np.arccos(np.clip(sig1 / q, -1, 1))) / np.pi
    np.testing.assert_allclose(nk.cntk(x, depth=3, fix=True, filter_size=1), sig1 * sigdot2, rtol=1e-12)


@pytest.mark.parametrize("pooling", ["vanilla", "gap"])
def test_wide_cnn_empirical_ntk_approaches_cntk(pooling):
    """Relative Frobenius error of a width-1024 CNN on 4 digits images, mean of 2 seeds: below 0.15,
    and below the width-64 error (measured ~0.4-0.5 at 64, ~0.05-0.09 at 1024)."""
    x, _ = nk.data.digits()
    X = x[:4]
    exact = nk.cntk(X, depth=3, pooling=pooling)

    def err(width):
        return np.mean([np.linalg.norm(nk.empirical_ntk(nk.CNN(1, width, 3, image_shape=(8, 8), pooling=pooling, seed=s), X)
                                       - exact) / np.linalg.norm(exact) for s in range(2)])

    wide = err(1024)
    assert wide < 0.15 and wide < err(64)


def test_cnn_nngp_by_monte_carlo():
    x, _ = nk.data.digits()
    X = x[:3]
    exact = nk.cntk(X, depth=3, pooling="gap", kernel="nngp")
    M = 300
    mc = nk.empirical_nngp(lambda s: nk.CNN(1, 128, 3, image_shape=(8, 8), pooling="gap", seed=s), X, n_models=M)
    se = np.sqrt((np.outer(np.diag(exact), np.diag(exact)) + exact**2) / M)
    assert np.all(np.abs(mc - exact) < 5 * se + 0.05 * np.abs(exact))


@pytest.mark.parametrize("call, err, match", [
    (lambda: nk.cntk(np.ones((2, 3, 4)), depth=3), ValueError, "4-D array of images"),
    (lambda: nk.cntk(np.ones((2, 1, 4, 4)), np.ones((2, 1, 5, 4)), depth=3), ValueError, "same shape"),
    (lambda: nk.cntk(np.ones((2, 1, 4, 4)), depth=1), ValueError, "depth must be >= 2"),
    (lambda: nk.cntk(np.ones((2, 1, 4, 4)), depth=3, pooling="max"), ValueError, "pooling"),
    (lambda: nk.cntk(np.ones((2, 1, 4, 4)), depth=3, filter_size=2), ValueError, "odd"),
    (lambda: nk.cntk(np.full((2, 1, 4, 4), np.nan), depth=3), ValueError, "NaN"),
])
def test_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------
def test_digits_offline():
    x, y = nk.data.digits()
    assert x.shape == (1797, 1, 8, 8) and y.shape == (1797,)
    assert x.min() == 0 and x.max() == 1 and set(np.unique(y)) == set(range(10))


def _tiny_cifar(folder, n_per_batch=4):
    """Write a CIFAR-10 archive in the official format, with n_per_batch images per batch."""
    rng = np.random.default_rng(0)
    members = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {b"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
             b"labels": rng.integers(0, 10, n_per_batch).tolist(), b"batch_label": name.encode()}
        members[name] = pickle.dumps(d)
    path = folder / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path, members


def test_cifar_loader_reads_the_official_format(tmp_path):
    path, members = _tiny_cifar(tmp_path)
    xtr, ytr, xte, yte = nk.data.load_cifar10(path)
    assert xtr.shape == (20, 3, 32, 32) and xte.shape == (4, 3, 32, 32) and xtr.dtype == np.uint8
    first = pickle.loads(members["data_batch_1"])
    np.testing.assert_array_equal(xtr[0].reshape(-1), first[b"data"][0])  # channel-major rows, as documented
    assert ytr[:4].tolist() == first[b"labels"]
    # the extracted folder and a cache directory work the same way
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    np.testing.assert_array_equal(nk.data.load_cifar10(tmp_path / "x")[0], xtr)
    np.testing.assert_array_equal(nk.data.load_cifar10(cache_dir=tmp_path)[2], xte)


def test_cifar_missing_is_a_clear_error_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        nk.data.load_cifar10(cache_dir=tmp_path)


def test_standardize_and_zca():
    rng = np.random.default_rng(0)
    tr = rng.integers(0, 256, (50, 3, 4, 4), dtype=np.uint8)
    te = rng.integers(0, 256, (10, 3, 4, 4), dtype=np.uint8)
    s_tr, s_te = nk.data.standardize(tr, te)
    np.testing.assert_allclose(s_tr.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(s_tr.std(axis=(0, 2, 3)), 1, atol=1e-12)
    mean = (tr / 255).mean(axis=(0, 2, 3), keepdims=True)
    std = (tr / 255).std(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(s_te, (te / 255 - mean) / std, rtol=1e-12)  # training statistics
    z_tr, = nk.data.zca_whiten(s_tr, eps=1e-6)
    flat = z_tr.reshape(50, -1)
    cov = np.cov(flat, rowvar=False)
    lam = np.linalg.eigvalsh(cov)
    assert lam[-1] < 1.01  # whitened: no direction has variance above 1
