"""Inputs for the chapters: points on spheres and circles (generated, seeded, offline)."""
from __future__ import annotations

import numpy as np

from ._arrays import check_int

__all__ = ["sphere", "circle", "digits", "load_cifar10", "standardize", "zca_whiten"]


def sphere(n, d, *, seed):
    """``n`` points drawn uniformly on the unit sphere S^(d-1) in R^d (normalized Gaussians).

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> X = nk.data.sphere(5, 3, seed=0)
    >>> X.shape, bool(np.allclose(np.linalg.norm(X, axis=1), 1))
    ((5, 3), True)
    """
    n, d = check_int(n, "n", 1), check_int(d, "d", 2)
    g = np.random.default_rng(seed).standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def circle(n):
    """``n`` equispaced points on the unit circle, angles ``2 pi j / n`` (``endpoint=False``: the point
    at angle 2 pi would repeat the one at 0). Returns ``(X, angles)`` with ``X`` of shape (n, 2).

    Their Gram matrix under a dot-product kernel is circulant, with eigenvalues ``n`` times the
    aliased sums of the circle's eigenvalues (:func:`ntklib.spectra.aliased_eigenvalues`).

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
    """scikit-learn's bundled handwritten digits (offline): ``(images, labels)``.

    ``images`` has shape (1797, 1, 8, 8), float64 in [0, 1] (the 0..16 grey levels divided by 16);
    ``labels`` are ints 0..9.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0)[:, None].astype(np.float64), d.target.astype(np.int64)


CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_CIFAR_DIR = "cifar-10-batches-py"


def load_cifar10(path=None, *, cache_dir=None, download=False):
    """The CIFAR-10 data set from the official python-pickle archive, as uint8 images.

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

    Returns
    -------
    (x_train, y_train, x_test, y_test)
        uint8 images (50000, 3, 32, 32) and (10000, 3, 32, 32), int64 labels.

    Raises
    ------
    FileNotFoundError
        If the data is not found and ``download`` is False (the message says where it looked).
    """
    import os
    import pickle
    import tarfile
    from pathlib import Path

    cache = Path(cache_dir or os.environ.get("NTK_DATA", Path.home() / ".cache" / "ntklib"))
    root = Path(path) if path is not None else cache
    candidates = [root, root / _CIFAR_DIR, root / "cifar-10-python.tar.gz"]
    found = next((c for c in candidates if (c.is_dir() and (c / "test_batch").exists()) or
                  (c.is_file() and c.name.endswith((".tar.gz", ".tgz")))), None)
    if found is None:
        if not download:
            raise FileNotFoundError(
                f"CIFAR-10 not found in {root} (looked for {_CIFAR_DIR}/ or cifar-10-python.tar.gz); "
                "pass path=..., or download=True to fetch the official archive"
            )
        import urllib.request

        cache.mkdir(parents=True, exist_ok=True)
        found = cache / "cifar-10-python.tar.gz"
        urllib.request.urlretrieve(CIFAR10_URL, found)  # explicit opt-in only

    def batches(names):
        xs, ys = [], []
        if found.is_dir():
            for name in names:
                with open(found / name, "rb") as fh:
                    d = pickle.load(fh, encoding="bytes")
                xs.append(d[b"data"]), ys.append(d[b"labels"])
        else:
            with tarfile.open(found, "r:gz") as tar:
                for name in names:
                    d = pickle.load(tar.extractfile(f"{_CIFAR_DIR}/{name}"), encoding="bytes")
                    xs.append(d[b"data"]), ys.append(d[b"labels"])
        x = np.concatenate(xs).reshape(-1, 3, 32, 32).astype(np.uint8)
        return x, np.concatenate([np.asarray(y, dtype=np.int64) for y in ys])

    train = batches([f"data_batch_{i}" for i in range(1, 6)])
    test = batches(["test_batch"])
    return train[0], train[1], test[0], test[1]


def standardize(train, *others):
    """Arora et al.'s preprocessing: pixels / 255 (for uint8), then per-channel standardization with
    the *training* set's mean and standard deviation. Returns the transformed arrays in order.

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
    def scale(a):
        a = np.asarray(a)
        return a / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)

    train = scale(train)
    if train.ndim != 4:
        raise ValueError(f"images must have shape (n, channels, height, width); got {train.shape}")
    mean = train.mean(axis=(0, 2, 3), keepdims=True)
    std = train.std(axis=(0, 2, 3), keepdims=True)
    std = np.where(std > 0, std, 1.0)
    return tuple((scale(a) - mean) / std for a in (train, *others))


def zca_whiten(train, *others, eps=0.1):
    """ZCA whitening fitted on ``train`` (images flattened; regularized by ``eps`` times the mean
    eigenvalue): :math:`x \\mapsto U(\\Lambda + \\epsilon\\bar\\lambda I)^{-1/2}U^\\top (x - \\bar x)`.
    Returns the transformed arrays, same shapes."""
    train = np.asarray(train, dtype=np.float64)
    shape = train.shape[1:]
    flat = train.reshape(len(train), -1)
    mean = flat.mean(axis=0)
    cov = np.cov(flat - mean, rowvar=False)
    lam, U = np.linalg.eigh(cov)
    lam = np.clip(lam, 0, None)
    W = (U / np.sqrt(lam + eps * lam.mean())) @ U.T
    return tuple(((np.asarray(a, dtype=np.float64).reshape(len(a), -1) - mean) @ W).reshape(-1, *shape)
                 for a in (train, *others))
