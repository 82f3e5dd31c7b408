"""Inputs for the chapters: points on spheres and circles (generated, seeded, offline), images.

Everything here is numpy in, numpy out (float64 points; uint8 or float64 images): these are the
arrays a chapter starts from, before any kernel.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import re
import tarfile
import tempfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ._arrays import check_bool, check_int, check_same_features, check_variance

__all__ = ["sphere", "circle", "digits", "load_cifar10", "standardize", "zca_whiten"]


def _check_seed(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    return check_int(seed, "seed", 0, "or a numpy.random.Generator")


def sphere(n, d, *, seed):
    """``n`` points drawn uniformly on the unit sphere S^(d-1) in R^d (normalized Gaussians).

    Parameters
    ----------
    n : int
        The number of points, >= 1.
    d : int
        The dimension of the ambient space, >= 2 (the sphere S^(d-1)).
    seed : int or numpy.random.Generator
        The seed (>= 0) of the points, or a generator to draw them from.

    Returns
    -------
    (n, d) numpy.ndarray
        The points, float64, each row of norm 1 (up to round-off).

    Raises
    ------
    TypeError
        If ``n``, ``d`` or ``seed`` is not an int (``seed`` may also be a generator).
    ValueError
        If ``n < 1``, ``d < 2`` or ``seed < 0``.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> X = nk.data.sphere(5, 3, seed=0)
    >>> X.shape, bool(np.allclose(np.linalg.norm(X, axis=1), 1))
    ((5, 3), True)
    """
    n, d = check_int(n, "n", 1), check_int(d, "d", 2)
    g = np.random.default_rng(_check_seed(seed)).standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def circle(n):
    """``n`` equispaced points on the unit circle, at the angles ``2 pi j / n``.

    The angles stop short of 2 pi (``endpoint=False``: that point would repeat the one at 0). Their
    Gram matrix under a dot-product kernel is circulant, with eigenvalues ``n`` times the aliased
    sums of the circle's eigenvalues (:func:`ntklib.decay.aliased_eigenvalues`).

    Parameters
    ----------
    n : int
        The number of points, >= 1.

    Returns
    -------
    X : (n, 2) numpy.ndarray
        The points ``(cos a, sin a)``.
    angles : (n,) numpy.ndarray
        Their angles ``a`` in [0, 2 pi).

    Raises
    ------
    TypeError
        If ``n`` is not an int.
    ValueError
        If ``n < 1``.

    Examples
    --------
    >>> import ntklib as nk
    >>> X, angles = nk.data.circle(4)
    >>> angles.round(4).tolist()
    [0.0, 1.5708, 3.1416, 4.7124]
    """
    n = check_int(n, "n", 1)
    angles = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1), angles


# ------------------------------------------------------------------------------------------------
# images
# ------------------------------------------------------------------------------------------------
def digits():
    """The handwritten digits bundled with scikit-learn (offline).

    Returns
    -------
    images : (1797, 1, 8, 8) numpy.ndarray
        Grey levels, float64 in [0, 1] (the 0..16 grey levels divided by 16), channels first.
    labels : (1797,) numpy.ndarray
        The digits 0..9, int64.

    Raises
    ------
    ImportError
        If scikit-learn (the ``data`` extra) is not installed.

    Examples
    --------
    >>> import ntklib as nk
    >>> images, labels = nk.data.digits()
    >>> images.shape, float(images.max())
    ((1797, 1, 8, 8), 1.0)
    >>> sorted(set(labels.tolist())) == list(range(10))
    True
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0)[:, None].astype(np.float64), d.target.astype(np.int64)


CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_BATCHES = (*_CIFAR_TRAIN, "test_batch")

#: The md5 digests of the official CIFAR-10 python archive (published on
#: https://www.cs.toronto.edu/~kriz/cifar.html) and of the six batches in it (those torchvision's
#: ``CIFAR10`` checks), keyed by file name: :func:`load_cifar10`'s default ``checksums``.
CIFAR10_MD5 = MappingProxyType({
    _CIFAR_ARCHIVE: "c58f30108f718f92721af3b95e74349a",
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
})


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


# Every global a CIFAR-10 batch pickle references (a dict of bytes, a list of ints and one uint8 array),
# under the spelling of the numpy that wrote the official files (numpy.core) and of numpy >= 2.
_BATCH_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`_BATCH_GLOBALS`: nothing else can be called."""

    def __init__(self, file):
        super().__init__(file, encoding="bytes")

    def find_class(self, module, name):
        try:
            return _BATCH_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"the pickle references {module}.{name}; a CIFAR-10 batch references only numpy's "
                "ndarray, dtype and _reconstruct, so it was refused before anything was called"
            ) from None


def _md5(data):
    """The md5 hex digest of bytes or of the file at a path (read in 1 MiB blocks)."""
    digest = hashlib.md5()
    if isinstance(data, bytes):
        digest.update(data)
        return digest.hexdigest()
    with open(data, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(data, expected, source):
    got = _md5(data)
    if got != expected:
        raise ValueError(
            f"{source} has md5 {got}, not the expected {expected}: it is not the official CIFAR-10 file "
            "(corrupt, truncated by an interrupted download, or another file); delete it and fetch the "
            "archive again (download=True)"
        )


def _check_checksums(checksums):
    if not isinstance(checksums, Mapping):
        raise TypeError(f"checksums must be a mapping from file name to md5 hex digest; got {type(checksums).__name__}")
    out = {}
    for name in (_CIFAR_ARCHIVE, *_CIFAR_BATCHES):
        value = checksums.get(name)
        if not isinstance(value, str) or not re.fullmatch(r"[0-9a-fA-F]{32}", value):
            raise ValueError(f"checksums[{name!r}] must be an md5 hex digest (32 hex digits); got {value!r}")
        out[name] = value.lower()
    return out


def _batch(data, source):
    """The (images, labels) of one batch file's bytes, unpickled with the restricted unpickler."""
    try:
        d = _BatchUnpickler(io.BytesIO(data)).load()
    except Exception as exc:  # the stream is untrusted: any failure means it is no CIFAR-10 batch
        raise ValueError(f"{source} is not a CIFAR-10 batch: {exc}") from exc
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise ValueError(f"{source} is not a CIFAR-10 batch: expected a dict with b'data' and b'labels'")
    x, y = d[b"data"], d[b"labels"]
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
        what = f"{x.dtype} array of shape {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"{source}: b'data' must be a uint8 array of shape (n, 3072); got a {what}")
    if not (isinstance(y, list) and all(type(v) is int for v in y)):
        raise ValueError(f"{source}: b'labels' must be a list of ints")
    if len(y) != len(x):
        raise ValueError(f"{source} holds {len(x)} images but {len(y)} labels")
    y = np.asarray(y, dtype=np.int64)
    if y.size and not (y.min() >= 0 and y.max() <= 9):
        raise ValueError(f"{source}: labels must lie in 0..9; got {y.min()}..{y.max()}")
    return x.reshape(-1, 3, 32, 32), y


def _download(url, fh):
    """Write the bytes at ``url`` to the open binary file ``fh`` (ntklib's only network access)."""
    import shutil
    import urllib.request

    with urllib.request.urlopen(url, timeout=60) as response:  # a fixed https address
        shutil.copyfileobj(response, fh)


def _fetch(cache, expected):
    """Download the archive into ``cache`` under a temporary name, verify it, then rename it."""
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{_CIFAR_ARCHIVE}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            _download(CIFAR10_URL, fh)
        _verify(tmp, expected, f"the archive downloaded from {CIFAR10_URL}")
        os.replace(tmp, cache / _CIFAR_ARCHIVE)
    except BaseException:  # interrupted, failed or wrong: leave nothing that a later call would read
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return cache / _CIFAR_ARCHIVE


def _read_batches(found, checksums):
    """Name -> the verified bytes of each batch, from the extracted folder or the archive."""
    if found.is_dir():
        out = {}
        for name in _CIFAR_BATCHES:
            try:
                out[name] = (found / name).read_bytes()
            except OSError as exc:
                raise ValueError(f"{found / name} cannot be read: {exc}") from exc
            _verify(out[name], checksums[name], found / name)
        return out
    _verify(found, checksums[_CIFAR_ARCHIVE], found)
    try:
        with tarfile.open(found, "r:gz") as tar:
            out = {}
            for name in _CIFAR_BATCHES:
                fh = tar.extractfile(f"{_CIFAR_DIR}/{name}")  # read in memory: nothing extracted to disk
                if fh is None:
                    raise KeyError(f"{_CIFAR_DIR}/{name} is not a file")
                out[name] = fh.read()
    except (tarfile.TarError, EOFError, OSError, zlib.error, KeyError) as exc:
        raise ValueError(f"{found} is not a readable CIFAR-10 archive: {exc}") from exc
    for name, data in out.items():
        _verify(data, checksums[name], f"{found}: {_CIFAR_DIR}/{name}")
    return out


def load_cifar10(path=None, *, cache_dir=None, download=False, checksums=CIFAR10_MD5):
    """The CIFAR-10 data set from the official python-pickle archive, as uint8 images.

    Every file is verified before it is read: the archive's md5 before it is opened, each batch's md5
    before it is unpickled (batches in an extracted folder too), and a download before it is renamed
    to its final name (it is written under a temporary name in the same folder, so an interrupted or
    wrong download leaves nothing behind). The batches are then unpickled by an unpickler that admits
    only numpy's array reconstruction (``ndarray``, ``dtype``, ``_reconstruct``): even a file that
    passed a wrong checksum cannot run code. Finally the images and labels are checked (uint8, 3072
    pixel values per image, one label in 0..9 per image).

    Parameters
    ----------
    path : str or Path, optional
        The archive ``cifar-10-python.tar.gz`` or its extracted folder ``cifar-10-batches-py``
        (or a folder containing either). Defaults to ``cache_dir``.
    cache_dir : str or Path, optional
        Where to look for (and, with ``download=True``, put) the archive; default
        ``$NTK_DATA`` or ``~/.cache/ntklib``.
    download : bool, default False
        Fetch the archive (170 MB) from the official address if it is not found. Never done
        implicitly: builds and tests stay offline.
    checksums : mapping, default CIFAR10_MD5
        The md5 hex digest of ``"cifar-10-python.tar.gz"`` and of each batch (``"data_batch_1"`` ..
        ``"data_batch_5"``, ``"test_batch"``): the published digests of the official files. Pass
        others only for files you made yourself (the tests use tiny synthetic archives).

    Returns
    -------
    tuple of numpy.ndarray
        ``(x_train, y_train, x_test, y_test)``: uint8 images (50000, 3, 32, 32) and
        (10000, 3, 32, 32), int64 labels.

    Raises
    ------
    FileNotFoundError
        If the data is not found and ``download`` is False (the message says where it looked).
    TypeError
        If ``download`` is not a bool or ``checksums`` not a mapping.
    ValueError
        Naming the file: if a file's md5 is not the expected one, the archive is corrupt or truncated,
        a batch is missing, a pickle references anything but numpy's array reconstruction, or a batch
        does not hold uint8 images with one label in 0..9 each; also if an entry of ``checksums`` is
        not an md5 hex digest.
    OSError
        If a download fails (the partial file is removed).

    Examples
    --------
    >>> import ntklib as nk
    >>> nk.data.load_cifar10("/nonexistent")        # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: CIFAR-10 not found in /nonexistent ...
    >>> nk.data.CIFAR10_MD5["cifar-10-python.tar.gz"]
    'c58f30108f718f92721af3b95e74349a'
    """
    download = check_bool(download, "download")
    checksums = _check_checksums(checksums)
    cache = Path(cache_dir or os.environ.get("NTK_DATA", Path.home() / ".cache" / "ntklib"))
    root = Path(path) if path is not None else cache
    candidates = [root, root / _CIFAR_DIR, root / _CIFAR_ARCHIVE]
    found = next((c for c in candidates if (c.is_dir() and (c / "test_batch").exists()) or
                  (c.is_file() and c.name.endswith((".tar.gz", ".tgz")))), None)
    if found is None:
        if not download:
            raise FileNotFoundError(
                f"CIFAR-10 not found in {root} (looked for {_CIFAR_DIR}/ or {_CIFAR_ARCHIVE}); "
                "pass path=..., or download=True to fetch the official archive"
            )
        found = _fetch(cache, checksums[_CIFAR_ARCHIVE])  # explicit opt-in only
    data = _read_batches(found, checksums)
    source = (lambda name: found / name) if found.is_dir() else (lambda name: f"{found}: {_CIFAR_DIR}/{name}")
    parts = {name: _batch(data.pop(name), source(name)) for name in _CIFAR_BATCHES}
    train = [parts[name] for name in _CIFAR_TRAIN]
    x_test, y_test = parts["test_batch"]
    return np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), x_test, y_test


def _images(a, name):
    """Images as float64: uint8 pixels divided by 255, anything else as it is."""
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array; got dtype {a.dtype}")
    a = a / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _fitted_on(train, others, min_ndim, what):
    """``train`` and ``others`` as float64 images, each of ``train``'s per-sample shape."""
    train = _images(train, "train")
    if train.ndim < min_ndim:
        raise ValueError(f"train must have shape {what}; got {train.shape}")
    others = [_images(a, f"others[{i}]") for i, a in enumerate(others)]
    for i, a in enumerate(others):
        check_same_features(train, a, names=("train", f"others[{i}]"))
    return train, others


def standardize(train, *others):
    """Arora et al.'s preprocessing: per-channel standardization with the training set's statistics.

    Pixels of uint8 images are divided by 255 first; then every array gets the per-channel mean and
    standard deviation of ``train`` removed (a channel with no spread keeps its scale).

    Parameters
    ----------
    train : (n, channels, height, width) array_like
        The images the statistics come from.
    *others : (m, channels, height, width) array_like
        Further images (test sets) transformed with the same statistics.

    Returns
    -------
    tuple of numpy.ndarray
        The transformed ``train`` and ``others``, in order, float64, shapes kept.

    Raises
    ------
    ValueError
        If ``train`` is not 4-D, an array contains NaN or inf, or an array of ``others`` has another
        image shape.
    TypeError
        If an array is not numeric.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> rng = np.random.default_rng(0)
    >>> a = rng.integers(0, 256, (10, 3, 4, 4), dtype=np.uint8)
    >>> s, = nk.data.standardize(a)
    >>> per_channel = (0, 2, 3)
    >>> bool(np.allclose(s.mean(axis=per_channel), 0))
    True
    >>> bool(np.allclose(s.std(axis=per_channel), 1))
    True
    """
    train, others = _fitted_on(train, others, 4, "(n, channels, height, width)")
    if train.ndim != 4:
        raise ValueError(f"train must have shape (n, channels, height, width); got {train.shape}")
    mean = train.mean(axis=(0, 2, 3), keepdims=True)
    std = train.std(axis=(0, 2, 3), keepdims=True)
    std = np.where(std > 0, std, 1.0)
    return tuple((a - mean) / std for a in (train, *others))


def zca_whiten(train, *others, eps=0.1):
    r"""ZCA whitening fitted on ``train``, regularized by ``eps`` times the mean eigenvalue.

    With :math:`\bar x` the mean and :math:`U\Lambda U^\top` the covariance of the flattened
    training samples, every sample becomes

    .. math::

        x \mapsto U(\Lambda + \epsilon\bar\lambda I)^{-1/2}U^\top (x - \bar x),

    :math:`\bar\lambda` the mean eigenvalue. The map is symmetric, the whitening closest to the
    identity ("zero-phase"), so whitened images still look like images (Bell & Sejnowski 1997;
    Coates et al. 2011 analyse its effect on image features).

    Parameters
    ----------
    train : (n, ...) array_like
        The samples the statistics come from (images are flattened: (n, C, H, W) works), n >= 2.
        uint8 pixels are divided by 255 first.
    *others : (m, ...) array_like
        Further samples (test sets) transformed with the same map.
    eps : float, default 0.1
        The regularization :math:`\epsilon > 0`, relative to the mean eigenvalue. A small ``eps``
        whitens fully (the whitened covariance tends to the identity on the data's span); a large
        one barely changes the data beyond centring.

    Returns
    -------
    tuple of numpy.ndarray
        The transformed ``train`` and ``others``, in order, float64, shapes kept. The covariance of
        the whitened ``train`` has the eigenvalues :math:`\lambda_i / (\lambda_i + \epsilon\bar\lambda)`.

    Raises
    ------
    ValueError
        If ``train`` has fewer than 2 samples or dimensions, an array contains NaN or inf, an array of
        ``others`` has another sample shape, ``eps`` is not > 0, or ``train`` is constant.
    TypeError
        If an array is not numeric or ``eps`` not a number.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> z = np.random.default_rng(0).standard_normal((2000, 3))
    >>> x = z @ np.diag([1.0, 2.0, 5.0])
    >>> w, = nk.data.zca_whiten(x, eps=1e-8)
    >>> bool(np.allclose(np.cov(w, rowvar=False), np.eye(3), atol=1e-6))
    True
    >>> w.shape
    (2000, 3)
    """
    eps = check_variance(eps, "eps", positive=True)
    train, others = _fitted_on(train, others, 2, "(n_samples, ...) with at least 2 dimensions")
    if len(train) < 2:
        raise ValueError(f"train must hold at least 2 samples to have a covariance; got {len(train)}")
    shape = train.shape[1:]
    flat = train.reshape(len(train), -1)
    mean = flat.mean(axis=0)
    cov = np.cov(flat - mean, rowvar=False).reshape(flat.shape[1], flat.shape[1])
    lam, U = np.linalg.eigh(cov)
    lam = np.clip(lam, 0, None)
    if not lam.mean() > 0:
        raise ValueError("train is constant: it has no covariance to whiten")
    W = (U / np.sqrt(lam + eps * lam.mean())) @ U.T
    return tuple(((a.reshape(len(a), -1) - mean) @ W).reshape(-1, *shape) for a in (train, *others))
