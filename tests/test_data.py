"""ntklib.data: samplers and preprocessing, their invariants and the errors bad arguments get."""
import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

import ntklib as nk
import ntklib.data


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


def test_standardize_refuses_a_test_set_with_other_channels():
    """A 3-channel train and a 1-channel test set broadcast silently (the test set got three channels)."""
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"train and others\[0\] must hold samples of the same shape; got train "
                                         r"with \(3, 4, 4\) and others\[0\] with \(1, 4, 4\)"):
        nk.data.standardize(rng.random((5, 3, 4, 4)), rng.random((2, 1, 4, 4)))


@pytest.mark.parametrize("train, eps, match", [
    (np.ones((6, 1, 2, 2)), 0.1, "train is constant"),          # all-NaN before: 0 / sqrt(0)
    (np.random.default_rng(0).random((6, 4)), 0.0, "eps must be > 0"),
    (np.random.default_rng(0).random((6, 4)), -1e-3, "eps must be > 0"),
    (np.random.default_rng(0).random((1, 4)), 0.1, "at least 2 samples"),  # LinAlgError before
])
def test_zca_whiten_eps_zero_constant_images_or_one_sample_are_refused_not_nan(train, eps, match):
    with pytest.raises(ValueError, match=match):
        nk.data.zca_whiten(train, eps=eps)


def test_zca_whiten_is_finite_for_rank_deficient_data_at_tiny_eps():
    """Fewer samples than dimensions (rank 2 in R^4): finite, and on the data's span the whitened
    covariance is the identity to O(eps), the reference lam / (lam + eps mean lam)."""
    x = np.random.default_rng(1).standard_normal((3, 4))
    w, = nk.data.zca_whiten(x, eps=1e-10)
    assert np.all(np.isfinite(w))
    lam = np.linalg.eigvalsh(np.cov(x, rowvar=False))
    got = np.linalg.eigvalsh(np.cov(w, rowvar=False))
    np.testing.assert_allclose(got[-2:], lam[-2:] / (lam[-2:] + 1e-10 * lam.mean()), rtol=1e-8)
    np.testing.assert_allclose(got[:2], 0, atol=1e-8)  # the directions the data does not span stay empty


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
    (lambda: nk.data.zca_whiten(np.arange(3.0)[None]), ValueError, "at least 2 samples"),
    (lambda: nk.data.zca_whiten(np.eye(3), eps=-0.1), ValueError, "eps must be > 0"),
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


# ----------------------------------------------------------------------------------------------
# load_cifar10 on tiny synthetic archives (never the network: the downloader is monkeypatched)
# ----------------------------------------------------------------------------------------------
BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def _batch_bytes(n, seed, labels=None):
    """A batch pickled as the official ones are: a dict of bytes keys, a uint8 (n, 3072) array and a
    list of ints, the array reconstructed through numpy.core.multiarray (the files' spelling)."""
    rng = np.random.default_rng(seed)
    d = {b"batch_label": b"synthetic", b"labels": rng.integers(0, 10, n).tolist() if labels is None else labels,
         b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
    return pickle.dumps(d, protocol=3).replace(b"numpy._core.multiarray", b"numpy.core.multiarray"), d


def _md5(data):
    return hashlib.md5(data).hexdigest()


def _archive(tmp_path, members):
    """A tar.gz of name -> bytes under cifar-10-batches-py/, and the checksums of it and its members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(buf.getvalue())
    return path, {"cifar-10-python.tar.gz": _md5(buf.getvalue()), **{k: _md5(v) for k, v in members.items()}}


def _tiny(n=2):
    pickled = {name: _batch_bytes(n, seed) for seed, name in enumerate(BATCHES)}
    return {k: v[0] for k, v in pickled.items()}, {k: v[1] for k, v in pickled.items()}


class _Evil:
    """A pickle whose __reduce__ calls os.system: it writes the marker file if it is ever loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_load_cifar10_reads_a_verified_tiny_archive_and_folder(tmp_path):
    members, batches = _tiny()
    path, sums = _archive(tmp_path, members)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, data in members.items():
        (folder / name).write_bytes(data)
    expected_train = np.concatenate([batches[n][b"data"] for n in BATCHES[:5]]).reshape(-1, 3, 32, 32)
    for where in (path, folder, tmp_path):  # the folder is found first inside tmp_path
        x, y, xt, yt = nk.data.load_cifar10(where, checksums=sums)
        assert x.dtype == np.uint8 and x.shape == (10, 3, 32, 32) and xt.shape == (2, 3, 32, 32)
        np.testing.assert_array_equal(x, expected_train)
        np.testing.assert_array_equal(y, np.concatenate([batches[n][b"labels"] for n in BATCHES[:5]]))
        np.testing.assert_array_equal(xt.reshape(2, -1), batches["test_batch"][b"data"])
        assert yt.dtype == np.int64 and yt.tolist() == batches["test_batch"][b"labels"]


def test_load_cifar10_refuses_an_archive_without_the_official_checksum(tmp_path):
    path, _ = _archive(tmp_path, _tiny()[0])
    with pytest.raises(ValueError, match=r"cifar-10-python.tar.gz has md5 \w+, not the expected c58f3010"):
        nk.data.load_cifar10(path)


@pytest.mark.parametrize("packed", [False, True])
def test_load_cifar10_malicious_pickle_does_not_run_code(tmp_path, packed):
    """The checksums match (as if a forged digest were given): the unpickler itself refuses os.system."""
    marker = tmp_path / "pwned"
    members, _ = _tiny()
    members["test_batch"] = pickle.dumps({b"data": _Evil(marker), b"labels": []}, protocol=3)
    if packed:
        where, sums = _archive(tmp_path, members)
    else:
        where = tmp_path / "cifar-10-batches-py"
        where.mkdir()
        for name, data in members.items():
            (where / name).write_bytes(data)
        sums = {"cifar-10-python.tar.gz": "0" * 32, **{k: _md5(v) for k, v in members.items()}}
    with pytest.raises(ValueError, match=r"test_batch is not a CIFAR-10 batch: .*references posix.system|"
                                         r"test_batch is not a CIFAR-10 batch: .*references nt.system"):
        nk.data.load_cifar10(where, checksums=sums)
    assert not marker.exists()


def test_load_cifar10_corrupt_truncated_or_unrelated_archive_names_the_file(tmp_path):
    members, _ = _tiny()
    path, sums = _archive(tmp_path, members)
    good = path.read_bytes()
    cases = {
        "truncated": good[: len(good) // 2],
        "corrupt": good[:20] + bytes(b ^ 0xFF for b in good[20:60]) + good[60:],
        "not gzip": b"hello, world" * 10,
    }
    for data in cases.values():
        path.write_bytes(data)
        with pytest.raises(ValueError, match="cifar-10-python.tar.gz has md5"):  # the official digest
            nk.data.load_cifar10(path)
        # even with its own digest given, the damage is found and the file named
        with pytest.raises(ValueError, match="cifar-10-python.tar.gz is not a readable CIFAR-10 archive"):
            nk.data.load_cifar10(path, checksums={**sums, "cifar-10-python.tar.gz": _md5(data)})
    unrelated, sums = _archive(tmp_path, {"readme.txt": b"not CIFAR"})
    with pytest.raises(ValueError, match="cifar-10-python.tar.gz is not a readable CIFAR-10 archive.*data_batch_1"):
        nk.data.load_cifar10(unrelated, checksums={**{k: "0" * 32 for k in BATCHES}, **sums})


def test_load_cifar10_label_image_count_mismatch(tmp_path):
    members, _ = _tiny()
    members["data_batch_3"] = _batch_bytes(3, 7, labels=[1, 2])[0]
    path, sums = _archive(tmp_path, members)
    with pytest.raises(ValueError, match="data_batch_3 holds 3 images but 2 labels"):
        nk.data.load_cifar10(path, checksums=sums)
    members["data_batch_3"] = _batch_bytes(2, 7, labels=[1, 10])[0]
    path, sums = _archive(tmp_path, members)
    with pytest.raises(ValueError, match=r"data_batch_3: labels must lie in 0..9"):
        nk.data.load_cifar10(path, checksums=sums)


def test_load_cifar10_download_goes_to_a_temporary_name_then_is_verified_and_renamed(tmp_path, monkeypatch):
    members, _ = _tiny()
    source, sums = _archive(tmp_path, members)
    payload = source.read_bytes()
    cache = tmp_path / "cache"

    def interrupted(url, fh):
        fh.write(payload[:100])
        raise ConnectionError("connection reset")

    monkeypatch.setattr(ntklib.data, "_download", interrupted)
    with pytest.raises(ConnectionError):
        nk.data.load_cifar10(cache_dir=cache, download=True, checksums=sums)
    assert list(cache.iterdir()) == []  # no partial file, under the final name or any other

    monkeypatch.setattr(ntklib.data, "_download", lambda url, fh: fh.write(b"<html>moved</html>"))
    with pytest.raises(ValueError, match="the archive downloaded from https://www.cs.toronto.edu/.* has md5"):
        nk.data.load_cifar10(cache_dir=cache, download=True, checksums=sums)
    assert list(cache.iterdir()) == []

    calls = []
    monkeypatch.setattr(ntklib.data, "_download", lambda url, fh: calls.append(url) or fh.write(payload))
    x, *_ = nk.data.load_cifar10(cache_dir=cache, download=True, checksums=sums)
    assert x.shape == (10, 3, 32, 32) and calls == [nk.data.CIFAR10_URL]
    assert [p.name for p in cache.iterdir()] == ["cifar-10-python.tar.gz"]
    nk.data.load_cifar10(cache_dir=cache, download=True, checksums=sums)  # found: not fetched again
    assert len(calls) == 1


def test_load_cifar10_download_no_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(ntklib.data, "_download", lambda url, fh: pytest.fail("downloaded"))
    with pytest.raises(TypeError, match="download must be True or False; got 'no'"):
        nk.data.load_cifar10(cache_dir=tmp_path, download="no")


def test_load_cifar10_checksums_must_be_md5_digests(tmp_path):
    with pytest.raises(ValueError, match=r"checksums\['test_batch'\] must be an md5 hex digest"):
        nk.data.load_cifar10(tmp_path, checksums={k: "0" * 32 for k in ["cifar-10-python.tar.gz", *BATCHES[:5]]})
    with pytest.raises(TypeError, match="checksums must be a mapping"):
        nk.data.load_cifar10(tmp_path, checksums="c58f30108f718f92721af3b95e74349a")
