"""Convolutional NTK/NNGP, the finite CNN beside it, and the image data tools."""
import hashlib
import io
import itertools
import math
import pickle
import tarfile

import numpy as np
import pytest
import torch

import ntklib as nk
from mpref import kernel as mp_kernel
cntk_grid = nk.cntk_grid


def images(n, c=2, h=5, w=5, seed=0):
    return np.random.default_rng(seed).standard_normal((n, c, h, w))


@pytest.mark.parametrize("pooling", ["vanilla", "gap"])
@pytest.mark.parametrize("kernel", ["ntk", "nngp"])
@pytest.mark.parametrize("depth", [1, 2, 4])
def test_one_pixel_image_is_the_fc_relu_kernel(pooling, kernel, depth):
    """A 1 x 1 image with 1 x 1 filters: the CNTK with depth L convolutional layers = the FC ReLU
    kernel with the same depth L (hidden layers), checked against the 40-digit reference recursion
    and against nk.ntk / nk.nngp themselves."""
    x = images(3, c=4, h=1, w=1)
    K = nk.cntk(x, depth=depth, pooling=pooling, filter_size=1, kernel=kernel)
    flat = x.reshape(3, 4)
    for i in range(3):
        for j in range(3):
            ref = float(mp_kernel(["relu"] * depth, flat[i].tolist(), flat[j].tolist(), ntk=kernel == "ntk"))
            assert K[i, j] == pytest.approx(ref, rel=1e-13)
    fc = nk.ntk if kernel == "ntk" else nk.nngp
    np.testing.assert_allclose(K, fc(flat, depth=depth), rtol=1e-14)


def arora_pixel_pairs(x, z, *, L, fix, q=3, kernel="ntk"):
    """Arora et al.'s CNTK (or CNN-GP) of two images (C, H, W) before the readout, shape (H, W, H, W).

    Written from the paper's appendix in the paper's own convention, independently of ntklib: layers
    h = 0..L (L convolutional layers), c_sigma / q^2 inside K^(h) and Kdot^(h), the patch operator a
    plain sum tr([A]_{D_ij,i'j'}) over the q x q patch (zero outside the image), Theta^(0) =
    Sigma^(0) (0 with fix), the readout layer without a patch sum (and without K^(L) with fix). The
    ReLU duals are Cho & Saul's arc-cosine formulas. Plain loops over pixel pairs and offsets.
    """
    _, H, W = x.shape
    r, c_sigma = q // 2, 2.0
    pairs = list(itertools.product(itertools.product(range(H), range(W)), repeat=2))
    shifts = list(itertools.product(range(-r, r + 1), repeat=2))

    def inside(i, j):
        return 0 <= i < H and 0 <= j < W

    def patch_sum(A):
        out = np.zeros_like(A)
        for (i, j), (k, l) in pairs:
            for a, b in shifts:
                if inside(i + a, j + b) and inside(k + a, l + b):
                    out[i, j, k, l] += A[i + a, j + b, k + a, l + b]
        return out

    def relu_step(S, Sx, Sz):
        K, Kdot = np.zeros_like(S), np.zeros_like(S)
        for (i, j), (k, l) in pairs:
            root = math.sqrt(Sx[i, j, i, j] * Sz[k, l, k, l])
            t = math.acos(max(-1.0, min(1.0, S[i, j, k, l] / root)))
            K[i, j, k, l] = c_sigma / q**2 * root * (math.sin(t) + (math.pi - t) * math.cos(t)) / (2 * math.pi)
            Kdot[i, j, k, l] = c_sigma / q**2 * (math.pi - t) / (2 * math.pi)
        return K, Kdot

    def sigma0(u, v):
        return patch_sum(np.einsum("cij,ckl->ijkl", u, v))

    Sxx, Szz, Sxz = sigma0(x, x), sigma0(z, z), sigma0(x, z)
    theta = np.zeros_like(Sxz) if fix else Sxz
    for h in range(1, L + 1):
        K, Kdot = relu_step(Sxz, Sxx, Szz)
        if h == L:
            if kernel == "nngp":
                return K
            return Kdot * theta + (0.0 if fix else K)
        theta = patch_sum(Kdot * theta + K)
        Sxx, Szz, Sxz = patch_sum(relu_step(Sxx, Sxx, Sxx)[0]), patch_sum(relu_step(Szz, Szz, Szz)[0]), patch_sum(K)


@pytest.mark.parametrize("shape, q", [((2, 4, 5), 3), ((1, 5, 4), 3), ((2, 3, 3), 1), ((1, 5, 5), 5), ((3, 2, 6), 3)])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_cntk_equals_a_brute_force_loop_of_arora_et_al_appendix(shape, q, depth):
    """Every pixel pair, both readouts, both fix settings and the NNGP against the loop above, in the
    paper's convention: the two conventions differ by an index shift and powers of q^2 that cancel."""
    x = np.random.default_rng(depth).standard_normal((3, *shape))
    H, W = shape[1:]
    for kernel, fix in [("ntk", False), ("ntk", True), ("nngp", False)]:
        ref = arora_pixel_pairs(x[0], x[2], L=depth, fix=fix, q=q, kernel=kernel)
        scale = np.abs(ref).max()
        if fix and depth == 1:
            assert scale == 0
            scale = 1.0
        P = nk.cntk_pixel_pairs(x[0], x[2], depth=depth, fix=fix, filter_size=q, kernel=kernel)
        assert np.abs(P - ref).max() <= 1e-13 * scale
        for pooling, value in [("vanilla", np.trace(ref.reshape(H * W, H * W))), ("gap", ref.mean())]:
            K = nk.cntk(x, depth=depth, pooling=pooling, fix=fix, filter_size=q, kernel=kernel)
            assert abs(K[0, 2] - value) <= 1e-13 * scale * H * W
            assert K[2, 0] == K[0, 2]


def test_readouts_are_trace_and_mean_of_the_pixel_pair_kernel():
    """The vanilla path (same-position pairs only) and the GAP path (all pairs) against the pixel-pair
    array: two code paths that share only the layer step."""
    x = images(3, h=6, w=5)
    for kernel in ("ntk", "nngp"):
        P = nk.cntk_pixel_pairs(x[0], x[2], depth=3, kernel=kernel)
        assert P.shape == (6, 5, 6, 5)
        v = nk.cntk(x, depth=3, pooling="vanilla", kernel=kernel)[0, 2]
        g = nk.cntk(x, depth=3, pooling="gap", kernel=kernel)[0, 2]
        assert np.trace(P.reshape(30, 30)) == pytest.approx(v, rel=1e-13)
        assert P.mean() == pytest.approx(g, rel=1e-13)


@pytest.mark.parametrize("kernel", ["ntk", "nngp"])
@pytest.mark.parametrize("q", [1, 3])
def test_vanilla_touches_only_same_position_pairs(kernel, q):
    """Reflect each pixel of x' (its channel vector) across the direction of x at that pixel: every
    same-position inner product x_p . x'_p and every pixel norm stays, the cross-position ones
    x_p . x'_p' change. The vanilla CNTK (trace over same-position pairs, patches shifted together)
    must not move; GAP, which reads every pixel pair, must."""
    rng = np.random.default_rng(4)
    x, z = rng.standard_normal((2, 3, 5, 5))
    u = x / np.linalg.norm(x, axis=0, keepdims=True)
    z2 = 2 * (u * z).sum(axis=0, keepdims=True) * u - z
    np.testing.assert_allclose((x * z2).sum(axis=0), (x * z).sum(axis=0), rtol=1e-12)
    assert not np.allclose(np.einsum("cij,ckl->ijkl", x, z2), np.einsum("cij,ckl->ijkl", x, z))
    for pooling, moves in (("vanilla", False), ("gap", True)):
        K = nk.cntk(np.stack([x, z]), depth=3, pooling=pooling, filter_size=q, kernel=kernel)
        K2 = nk.cntk(np.stack([x, z2]), depth=3, pooling=pooling, filter_size=q, kernel=kernel)
        if moves:
            assert abs(K2[0, 1] - K[0, 1]) > 1e-3 * abs(K[0, 1])
        else:
            assert K2[0, 1] == pytest.approx(K[0, 1], rel=1e-12)
            assert K2[1, 1] == pytest.approx(K[1, 1], rel=1e-12)  # z2's pixel norms are z's


@pytest.mark.parametrize("k", [nk.CNTK(depth=2), nk.CNTK(depth=1, pooling="vanilla", filter_size=1),
                               nk.CNTK(depth=3, fix=True, kernel="ntk"), nk.CNTK(depth=2, kernel="nngp")],
                         ids=repr)
def test_cntk_object_follows_the_contract(k):
    x, y = images(5, h=4, w=4), images(3, h=4, w=4, seed=1)
    params = dict(depth=k.depth, pooling=k.pooling, fix=k.fix, filter_size=k.filter_size, kernel=k.kernel)
    np.testing.assert_array_equal(k(x), nk.cntk(x, **params))
    np.testing.assert_array_equal(k(x, y), nk.cntk(x, y, **params))
    d = k.diag(x, pairs_per_block=2)
    assert isinstance(d, np.ndarray) and d.shape == (5,)
    np.testing.assert_allclose(d, np.diag(k(x)), rtol=1e-13, atol=0)
    dt = k.diag(torch.from_numpy(x))
    assert isinstance(dt, torch.Tensor)
    np.testing.assert_allclose(dt.numpy(), d, rtol=1e-14)
    assert eval(repr(k), {"CNTK": nk.CNTK}) == k and hash(eval(repr(k), {"CNTK": nk.CNTK})) == hash(k)
    assert k != nk.CNTK(depth=k.depth + 1, pooling=k.pooling, fix=k.fix, filter_size=k.filter_size, kernel=k.kernel)


def test_the_module_is_not_shadowed_by_the_function():
    import importlib

    assert importlib.import_module("ntklib.convolutional").cntk is nk.cntk
    assert callable(nk.cntk) and nk.CNTK is importlib.import_module("ntklib.convolutional").CNTK


@pytest.mark.parametrize("pooling", ["vanilla", "gap"])
@pytest.mark.parametrize("kernel", ["ntk", "nngp"])
def test_grid_is_the_single_kernels(pooling, kernel):
    """cntk_grid's one pass over depths and fix settings = separate nk.cntk calls, blocks included."""
    x, y = images(4, seed=2), images(3, seed=3)
    for Y in (None, y):
        grid = cntk_grid(x, Y, depths=[1, 2, 4], fix=[True, False], pooling=pooling, kernel=kernel, pairs_per_block=3)
        assert sorted(grid) == [(d, f) for d in (1, 2, 4) for f in (False, True)]
        for (depth, fix), K in grid.items():
            single = nk.cntk(x, Y, depth=depth, pooling=pooling, fix=fix, kernel=kernel)
            np.testing.assert_allclose(K, single, rtol=1e-14, atol=0)
    one = cntk_grid(x, depths=2, fix=True, pooling=pooling, kernel=kernel)
    assert list(one) == [(2, True)]
    np.testing.assert_array_equal(nk.cntk(x, depth=2, fix=np.True_, pooling=pooling, kernel=kernel), one[2, True])


def test_float32_batches_follow_the_byte_budget():
    """float32 GAP uses twice as many image pairs per batch as float64 (same bytes), same kernel."""
    x = images(6, c=1, h=8, w=8)
    K64 = nk.cntk(x, depth=2)
    K32 = nk.cntk(x.astype(np.float32), depth=2, dtype=np.float32)
    np.testing.assert_allclose(K32, K64, rtol=20 * np.finfo(np.float32).eps)
    assert nk.cntk(x, depth=2, pairs_per_block=1) == pytest.approx(K64, rel=1e-14)


@pytest.mark.parametrize("pooling", ["vanilla", "gap"])
def test_symmetric_psd_and_consistent_blocks(pooling):
    x, y = images(5), images(3, seed=1)
    K = nk.cntk(x, depth=2, pooling=pooling)
    assert np.array_equal(K, K.T) and np.linalg.eigvalsh(K).min() > -1e-12 * np.abs(K).max()
    Kxy = nk.cntk(x, y, depth=2, pooling=pooling, pairs_per_block=2)
    np.testing.assert_allclose(nk.cntk(np.concatenate([x, y]), depth=2, pooling=pooling)[:5, 5:], Kxy, rtol=1e-13)
    K32 = nk.cntk(x.astype(np.float32), depth=2, pooling=pooling, dtype=np.float32)
    assert K32.dtype == np.float32
    np.testing.assert_allclose(K32, K, rtol=1e-5)
    assert isinstance(nk.cntk(torch.from_numpy(x), depth=2, pooling=pooling), torch.Tensor)
    # several tiles of image pairs (pairs_per_block=4: tiles of 2 x 2 images), mirrored, = one tile
    np.testing.assert_allclose(nk.cntk(x, depth=2, pooling=pooling, pairs_per_block=4), K, rtol=1e-14, atol=0)
    assert np.array_equal(nk.cntk(x, depth=2, pooling=pooling, pairs_per_block=4),
                          nk.cntk(x, depth=2, pooling=pooling, pairs_per_block=4).T)


def test_fix_removes_first_and_last_layer():
    """fix=True: one conv layer has no trainable layer left (kernel 0); for 1 x 1 images and 1 x 1
    filters, two conv layers leave only the middle layer: Sigma^(1) * Sigmadot^(2) of the FC net."""
    x = images(3, c=4, h=1, w=1)
    assert np.all(nk.cntk(x, depth=1, fix=True) == 0)
    flat = x.reshape(3, 4)
    sig1 = nk.nngp(flat, depth=1)
    q = np.sqrt(np.outer(np.diag(sig1), np.diag(sig1)))
    sigdot2 = (np.pi - np.arccos(np.clip(sig1 / q, -1, 1))) / np.pi
    np.testing.assert_allclose(nk.cntk(x, depth=2, fix=True, filter_size=1), sig1 * sigdot2, rtol=1e-12)


@pytest.mark.parametrize("pooling", ["vanilla", "gap"])
@pytest.mark.slow
def test_wide_cnn_empirical_ntk_approaches_cntk_like_width_to_the_minus_half(pooling):
    """Relative Frobenius error of nk.CNN's empirical NTK against nk.cntk (fix=False: the CNN trains
    every layer) on 4 digits, widths 32 to 512, 6 seeds: the log-log slope of the RMS error over the
    seeds is -1/2 within its 95 % bootstrap interval over the seeds, and the error at width 512 is
    small. (Measured: slopes -0.65 vanilla, -0.44 GAP; RMS error 0.07-0.11 at 512; single seeds
    differ by factors up to ~7.)"""
    x, _ = nk.data.digits()
    X = x[:4]
    exact = nk.cntk(X, depth=2, pooling=pooling)  # and CNN(..., 2) below: 2 conv layers in both
    widths, seeds = [32, 128, 512], 6
    err = np.array([[np.linalg.norm(nk.empirical_ntk(nk.CNN(1, w, 2, image_shape=(8, 8), pooling=pooling, seed=s), X)
                                    - exact) / np.linalg.norm(exact) for s in range(seeds)] for w in widths])

    def slope(e):
        return np.polyfit(np.log(widths), np.log(np.sqrt((e**2).mean(axis=1))), 1)[0]

    rng = np.random.default_rng(0)
    boot = [slope(err[:, rng.integers(0, seeds, seeds)]) for _ in range(500)]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    assert lo < -0.5 < hi, (slope(err), lo, hi)
    assert np.sqrt((err[-1] ** 2).mean()) < 0.15


@pytest.mark.slow
def test_cnn_nngp_by_monte_carlo():
    x, _ = nk.data.digits()
    X = x[:3]
    exact = nk.cntk(X, depth=2, pooling="gap", kernel="nngp")  # and CNN(..., 2): 2 conv layers in both
    M = 300
    mc = nk.empirical_nngp(lambda s: nk.CNN(1, 128, 2, image_shape=(8, 8), pooling="gap", seed=s), X, n_models=M)
    se = np.sqrt((np.outer(np.diag(exact), np.diag(exact)) + exact**2) / M)
    assert np.all(np.abs(mc - exact) < 5 * se + 0.05 * np.abs(exact))


@pytest.mark.parametrize("call, err, match", [
    (lambda: nk.cntk(np.ones((2, 3, 4)), depth=3), ValueError, "4-D array of images"),
    (lambda: nk.cntk(np.ones((2, 1, 4, 4)), np.ones((2, 1, 5, 4)), depth=3), ValueError, "X and Y must hold samples of the same shape"),
    (lambda: nk.cntk(np.ones((2, 1, 4, 4)), depth=0), ValueError, "depth must be >= 1"),
    (lambda: nk.CNTK(depth=0), ValueError, "depth must be >= 1"),
    (lambda: nk.CNTK(depth=2, pooling="max"), ValueError, "pooling must be one of 'gap', 'vanilla'; got 'max'"),
    (lambda: nk.CNTK(depth=2, fix=1), TypeError, "fix must be True or False"),
    (lambda: nk.cntk(np.ones((2, 1, 4, 4)), depth=3, pooling="max"), ValueError, "pooling"),
    (lambda: nk.cntk(np.ones((2, 1, 4, 4)), depth=3, filter_size=2), ValueError, "odd"),
    (lambda: nk.cntk(np.full((2, 1, 4, 4), np.nan), depth=3), ValueError, "NaN"),
    (lambda: nk.cntk(np.ones((2, 1, 4, 4)), depth=3, fix="yes"), TypeError, "fix must be True or False"),
    (lambda: nk.cntk_pixel_pairs(np.ones((1, 4, 4)), np.ones((1, 4, 4)), depth=3, fix=1), TypeError, "fix"),
    (lambda: cntk_grid(np.ones((2, 1, 4, 4)), depths=[]), ValueError, "depths must not be empty"),
    (lambda: cntk_grid(np.ones((2, 1, 4, 4)), depths=[3, 3]), ValueError, "must not repeat"),
    (lambda: cntk_grid(np.ones((2, 1, 4, 4)), depths=[3, 0]), ValueError, "depth must be >= 1"),
    (lambda: cntk_grid(np.ones((2, 1, 4, 4)), depths=[3.0]), TypeError, "depth must be an int"),
    (lambda: cntk_grid(np.ones((2, 1, 4, 4)), depths=3, fix=[True, None]), TypeError, "fix"),
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
    # a tiny archive is not the official one: the loader verifies it against its own digests
    sums = {name: hashlib.md5(blob).hexdigest() for name, blob in members.items()}
    sums[path.name] = hashlib.md5(path.read_bytes()).hexdigest()
    xtr, ytr, xte, yte = nk.data.load_cifar10(path, checksums=sums)
    assert xtr.shape == (20, 3, 32, 32) and xte.shape == (4, 3, 32, 32) and xtr.dtype == np.uint8
    first = pickle.loads(members["data_batch_1"])
    np.testing.assert_array_equal(xtr[0].reshape(-1), first[b"data"][0])  # channel-major rows, as documented
    assert ytr[:4].tolist() == first[b"labels"]
    # the extracted folder and a cache directory work the same way
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    np.testing.assert_array_equal(nk.data.load_cifar10(tmp_path / "x", checksums=sums)[0], xtr)
    np.testing.assert_array_equal(nk.data.load_cifar10(cache_dir=tmp_path, checksums=sums)[2], xte)


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
    # whitened: every direction has variance lambda / (lambda + eps * mean lambda), i.e. 1 up to
    # eps * mean(lambda) / min(lambda) below (50 images in 48 dimensions: min(lambda) ~ 1e-3 of the
    # mean, so ~1e-3; we allow 1e-2) and never above 1 (rounding: 1e-9). The zero map gives 0.
    assert lam.min() > 1 - 1e-2 and lam.max() < 1 + 1e-9, (lam.min(), lam.max())
    raw = np.linalg.eigvalsh(np.cov(s_tr.reshape(50, -1), rowvar=False))
    np.testing.assert_allclose(lam, np.sort(raw / (raw + 1e-6 * raw.mean())), rtol=1e-8)


# ----------------------------------------------------------------------------------------------
# issue 10: extreme scales, size guard, flags, shapes, strides, dtypes
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pooling", ["vanilla", "gap"])
@pytest.mark.parametrize("kernel, fix", [("ntk", False), ("ntk", True), ("nngp", False)])
def test_cntk_of_tiny_and_huge_images_is_homogeneous(pooling, kernel, fix):
    """cntk(X * 1e-100) was 93 % off, cntk(X * 1e-160) had negative entries and cntk(X * 1e100) NaN. The
    CNTK is positively homogeneous (ReLU, no bias): K(aX, bY) = ab K(X, Y) for a, b > 0, and K(X) at unit
    scale is checked against the brute-force loop of Arora et al. above. Exact powers of two keep the
    reference exact; a subnormal result (2^-1070) is right to its own rounding."""
    x, y = images(3, h=4, w=4), images(2, h=4, w=4, seed=1)
    args = {"depth": 2, "pooling": pooling, "kernel": kernel, "fix": fix}
    K = nk.cntk(x, **args)
    for k in (-1070 // 2, -800, -332, 332, 500):
        scaled = nk.cntk(x * 2.0**k, **args)
        ref = K * 2.0**k * 2.0**k
        np.testing.assert_allclose(scaled, ref, rtol=1e-14, atol=2.0**-1074)
        assert np.all((scaled >= 0) == (K >= 0))
    np.testing.assert_allclose(nk.cntk(x * 1e-100, **args), K * 1e-200, rtol=1e-13)
    np.testing.assert_allclose(nk.cntk(x * 1e100, **args), K * 1e200, rtol=1e-13)
    np.testing.assert_allclose(nk.cntk(x * 1e-160, y * 1e160, **args), nk.cntk(x, y, **args), rtol=1e-13)
    # images of very different sizes in one batch: each pair scales with its own two sizes
    mixed = x * np.array([1e-150, 1.0, 1e150])[:, None, None, None]
    np.testing.assert_allclose(nk.cntk(mixed, **args), K * np.outer([1e-150, 1, 1e150], [1e-150, 1, 1e150]),
                               rtol=1e-13)
    np.testing.assert_allclose(nk.CNTK(**args).diag(mixed), np.diag(K) * [1e-300, 1, 1e300], rtol=1e-13)
    P = nk.cntk_pixel_pairs(x[0] * 1e-200, x[1] * 1e150, depth=2, kernel=kernel, fix=fix)
    np.testing.assert_allclose(P, nk.cntk_pixel_pairs(x[0], x[1], depth=2, kernel=kernel, fix=fix) * 1e-50,
                               rtol=1e-13, atol=1e-13 * np.abs(P).max())


def test_float32_cntk_of_large_images_is_finite_or_a_clear_error():
    """float32 images of 1e20 gave a NaN kernel (x * x overflowed): images of 2^60 now give 2^120 K(X);
    where the kernel itself passes float32's range (1e20: K ~ 1e40 > 3.4e38) the error says so."""
    x = images(3, h=4, w=4).astype(np.float32)
    K = nk.cntk(x, depth=2, dtype=np.float32)
    np.testing.assert_allclose(nk.cntk(x * np.float32(2.0**60), depth=2, dtype=np.float32), K * 2.0**120, rtol=1e-6)
    with pytest.raises(ValueError, match=r"the CNTK values overflow torch.float32.*max \|X\| = .*e\+20.*"
                                         r"pass dtype=torch.float64.*homogeneous"):
        nk.cntk(x * np.float32(1e20), depth=2, dtype=np.float32)
    with pytest.raises(ValueError, match=r"the CNTK values overflow torch.float64"):
        nk.cntk(x.astype(np.float64) * 1e160, depth=2)
    with pytest.raises(ValueError, match=r"the CNTK values overflow torch.float64"):
        nk.CNTK(depth=2).diag(x.astype(np.float64) * 1e160)


def test_zero_image_gives_zero_rows_at_any_scale():
    x = images(3, h=4, w=4)
    x[1] = 0
    for s in (1e-150, 1.0, 1e150):
        for pooling in ("gap", "vanilla"):
            K = nk.cntk(x * s, depth=3, pooling=pooling)
            assert np.all(K[1] == 0) and np.all(K[:, 1] == 0) and np.all(np.isfinite(K))


def test_gap_and_pixel_pairs_refuse_past_max_bytes_before_the_work():
    """A pair of 100 x 100 images holds 1e8 pixel pairs per array (~13 GB for the recursion): refused at
    once with nk.TooLargeError naming max_bytes, not allocated; a larger max_bytes lets a call through."""
    big = np.ones((2, 1, 100, 100))
    for call in (lambda: nk.cntk(big, depth=1), lambda: nk.CNTK(depth=1).diag(big),
                 lambda: nk.cntk_grid(big, depths=[1, 2]), lambda: nk.cntk_pixel_pairs(big[0], big[1], depth=1)):
        with pytest.raises(nk.TooLargeError, match=r"would need 1.\d+e\+10 bytes, over the limit of 4.29e\+09 bytes; "
                                                   "pass a larger max_bytes"):
            call()
    assert nk.cntk(big, depth=1, pooling="vanilla").shape == (2, 2)  # O(HW) per pair: fine
    x = images(3, h=6, w=6)
    with pytest.raises(nk.TooLargeError, match="max_bytes"):
        nk.cntk(x, depth=2, max_bytes=10_000)
    with pytest.raises(nk.TooLargeError, match="max_bytes"):
        nk.cntk(x, depth=2, pairs_per_block=10**9, max_bytes=10**6)  # the batch is counted too
    np.testing.assert_array_equal(nk.cntk(x, depth=2, max_bytes=10**8), nk.cntk(x, depth=2))
    np.testing.assert_array_equal(nk.CNTK(depth=2)(x, max_bytes=10**8), nk.cntk(x, depth=2))
    with pytest.raises(TypeError, match="max_bytes must be a positive number"):
        nk.cntk(x, depth=2, max_bytes="lots")


@pytest.mark.slow
def test_gap_memory_estimate_bounds_the_measured_peak():
    """The guard's estimate (16 arrays of a batch's size) against the peak resident memory of one GAP
    pair of 32 x 32 images (8 MB per array), measured in a fresh process."""
    import subprocess
    import sys

    code = ("import resource, numpy as np, ntklib as nk\n"
            "x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)); nk.cntk(x[:, :, :2, :2], depth=1)\n"
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "nk.cntk_grid(x, depths=[1, 4], fix=[False, True])\n"
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)\n")
    grown = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    estimate = 16 * (32 * 32) ** 2 * 8
    assert grown < estimate


@pytest.mark.parametrize("call", [
    lambda: nk.cntk(np.ones((2, 1, 4, 4)), depth=2, fix="no"),
    lambda: nk.cntk_grid(np.ones((2, 1, 4, 4)), depths=2, fix=["no"]),
    lambda: nk.cntk_pixel_pairs(np.ones((1, 4, 4)), np.ones((1, 4, 4)), depth=2, fix="no"),
    lambda: nk.CNTK(depth=2, fix="no"),
    lambda: nk.CNTK(depth=2, fix=None),
])
def test_fix_no_is_not_true(call):
    """fix="no" meant fix=True (a non-empty string is truthy): every flag is a bool or refused."""
    with pytest.raises(TypeError, match="fix must be True or False; got"):
        call()


def test_pixel_pairs_take_lists_and_say_which_shape_they_expect():
    """A 3-D list was not expanded (it has no .ndim) and the message asked for a 4-D batch of images."""
    a, b = images(2, c=2, h=3, w=3)
    P = nk.cntk_pixel_pairs(a, b, depth=2)
    np.testing.assert_array_equal(nk.cntk_pixel_pairs(a.tolist(), b.tolist(), depth=2), P)
    np.testing.assert_array_equal(nk.cntk_pixel_pairs(a[None], b[None], depth=2), P)
    for bad in (a[0].tolist(), np.stack([a, b]), np.ones((1, 1, 2, 3, 3))):
        with pytest.raises(ValueError, match=r"x must be one image of shape \(channels, height, width\), or "
                                             r"\(1, channels, height, width\); got shape"):
            nk.cntk_pixel_pairs(bad, b, depth=2)
    with pytest.raises(ValueError, match="x and y must be two images of the same shape"):
        nk.cntk_pixel_pairs(a, b[:, :2], depth=2)


def test_flipped_images_give_the_contiguous_result():
    """np.flip views (negative strides) crashed every torch-backed function."""
    x = np.flip(images(3, h=4, w=5), axis=3)
    y = images(2, h=4, w=5, seed=1)[::-1, ::-1]
    xc, yc = np.ascontiguousarray(x), np.ascontiguousarray(y)
    for pooling in ("gap", "vanilla"):
        np.testing.assert_array_equal(nk.cntk(x, depth=2, pooling=pooling), nk.cntk(xc, depth=2, pooling=pooling))
        np.testing.assert_array_equal(nk.cntk(x, y, depth=2, pooling=pooling), nk.cntk(xc, yc, depth=2, pooling=pooling))
        k = nk.CNTK(depth=2, pooling=pooling)
        np.testing.assert_array_equal(k.diag(x), k.diag(xc))
        np.testing.assert_array_equal(k(x, y), k(xc, yc))
    grid, gridc = nk.cntk_grid(x, depths=[1, 2]), nk.cntk_grid(xc, depths=[1, 2])
    for key in grid:
        np.testing.assert_array_equal(grid[key], gridc[key])
    np.testing.assert_array_equal(nk.cntk_pixel_pairs(x[0], y[1], depth=2), nk.cntk_pixel_pairs(xc[0], yc[1], depth=2))


def test_requires_grad_and_bfloat16_images_are_computed_on_their_values():
    x = torch.tensor(images(3, h=4, w=4))
    xg = x.clone().requires_grad_(True)
    K = nk.cntk(xg, depth=2)
    assert not K.requires_grad
    torch.testing.assert_close(K, nk.cntk(x, depth=2), rtol=0, atol=0)
    xb = x.to(torch.bfloat16)
    Kb = nk.cntk(xb, depth=2)
    assert Kb.dtype == torch.float64
    torch.testing.assert_close(Kb, nk.cntk(xb.double(), depth=2), rtol=0, atol=0)
    assert not nk.CNTK(depth=2).diag(xg).requires_grad
    assert not nk.cntk_pixel_pairs(xg[0], xg[1], depth=2).requires_grad
