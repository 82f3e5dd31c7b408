r"""Small helpers the chapters share: the ``NTK_SCALE`` knob, the relative Frobenius error, cosines.

Each was written again in several chapters and tests; here it is once, validated and tested.

* :func:`scale` reads the size knob ``NTK_SCALE`` (``small``, the default for tests, or ``full``, the
  published build) and refuses anything else, so a typo cannot silently pick a size;
* :func:`relative_error` is :math:`\|A - B\|_F / \|B\|_F`, the comparison of neural-tangents' tests;
* :func:`cosine_gram` is the matrix of cosines :math:`x_i\cdot y_j / (|x_i||y_j|)`, clipped to
  :math:`[-1, 1]`, with an exact 1 on the diagonal of the symmetric case: what ``kernel.kappa`` takes.
"""
from __future__ import annotations

import os

import torch

from ._arrays import as_points, check_choice, check_same_features, returns_like, to_tensor

__all__ = ["SCALES", "scale", "relative_error", "cosine_gram"]

#: the values ``NTK_SCALE`` may take
SCALES = ("small", "full")


def scale(name: str = "NTK_SCALE", default: str = "small") -> str:
    """The book's size knob: the environment variable ``name``, ``"small"`` or ``"full"``.

    Parameters
    ----------
    name : str, default "NTK_SCALE"
        The environment variable to read.
    default : {"small", "full"}, default "small"
        The value when the variable is not set.

    Returns
    -------
    str
        ``"small"`` or ``"full"``.

    Raises
    ------
    ValueError
        If the variable (or ``default``) holds anything else, the empty string included; the message
        lists the allowed values.

    Examples
    --------
    >>> import os, ntklib as nk
    >>> nk.book.scale("NTK_SCALE_EXAMPLE")            # not set: the default
    'small'
    >>> os.environ["NTK_SCALE_EXAMPLE"] = "full"
    >>> nk.book.scale("NTK_SCALE_EXAMPLE")
    'full'
    >>> os.environ["NTK_SCALE_EXAMPLE"] = "medium"
    >>> nk.book.scale("NTK_SCALE_EXAMPLE")
    Traceback (most recent call last):
    ...
    ValueError: NTK_SCALE_EXAMPLE must be one of 'small', 'full'; got 'medium'
    >>> del os.environ["NTK_SCALE_EXAMPLE"]
    """
    check_choice(default, "default", SCALES)
    return check_choice(os.environ.get(name, default), name, SCALES)


def relative_error(A, B) -> float:
    r"""The relative Frobenius error :math:`\|A - B\|_F / \|B\|_F` of ``A`` against the reference ``B``.

    Parameters
    ----------
    A : array_like or torch.Tensor
        The approximation (e.g. an empirical kernel).
    B : array_like or torch.Tensor
        The reference (e.g. the exact kernel), of the same shape as ``A``; not all zero.

    Returns
    -------
    float
        Computed in float64 (a float32 input is widened first), scaled so that entries near the
        ends of the float64 range neither overflow nor underflow.

    Raises
    ------
    ValueError
        If the shapes differ (no broadcasting), an entry is NaN or inf, or ``B`` is all zero.
    TypeError
        If an argument is not a real numeric array.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> B = np.array([[3.0, 0.0], [0.0, 4.0]])
    >>> nk.book.relative_error(B + np.array([[0.0, 0.5], [0.5, 0.0]]), B)
    0.1414213562373095
    """
    b = to_tensor(B, "B", dtype=torch.float64)
    a = to_tensor(A, "A", dtype=torch.float64, device=b.device)
    if a.shape != b.shape:
        raise ValueError(f"A and B must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}")
    m = b.abs().max() if b.numel() else b.new_zeros(())
    if not m > 0:
        raise ValueError("B is zero: the error relative to it is undefined")
    # divided by max|B| first, so that squares of huge or tiny entries neither overflow nor underflow
    return float(torch.linalg.vector_norm((a - b) / m) / torch.linalg.vector_norm(b / m))


def cosine_gram(X, Y=None):
    r"""The cosines :math:`u_{ij} = x_i\cdot y_j / (|x_i|\,|y_j|)`, clipped to :math:`[-1, 1]`.

    With ``Y=None`` the result is exactly symmetric with an exact 1 on its diagonal: a dot product
    of a unit vector with itself is :math:`1 \pm` an ulp, and :math:`\sqrt{2(1-u)}` would turn that
    ulp into a distance of 1.5e-8 (the Laplace kernel would see it).

    Parameters
    ----------
    X : (n, d) array_like or torch.Tensor
        Points, one per row, none zero.
    Y : (m, d) array_like or torch.Tensor, optional
        Second set of points; ``None`` means ``X``.

    Returns
    -------
    (n, m) numpy.ndarray or torch.Tensor
        The cosines, float64; a tensor on the device of ``X`` if ``X`` is a tensor.

    Raises
    ------
    ValueError
        If ``X`` or ``Y`` is not 2-D, has NaN, inf or a zero row, or the two differ in their number
        of features.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> X = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, -2.0]])
    >>> nk.book.cosine_gram(X).round(4).tolist()
    [[1.0, 0.7071, 0.0], [0.7071, 1.0, -0.7071], [0.0, -0.7071, 1.0]]
    >>> K = nk.Laplace()
    >>> S = nk.data.sphere(5, 3, seed=0)
    >>> bool(np.allclose(K.kappa(nk.book.cosine_gram(S)), K(S)))
    True
    """
    x = as_points(X, "X", dtype=torch.float64)
    y = x if Y is None else as_points(Y, "Y", dtype=torch.float64, device=x.device)
    check_same_features(x, y)

    def unit(t, name):
        norms = torch.linalg.vector_norm(t, dim=1, keepdim=True)
        if bool((norms == 0).any()):
            raise ValueError(f"{name} has a zero row: its cosine with anything is undefined")
        return t / norms

    xh = unit(x, "X")
    yh = xh if Y is None else unit(y, "Y")
    U = (xh @ yh.T).clamp(-1, 1)
    if Y is None:
        U = (U + U.T) / 2
        U.fill_diagonal_(1.0)
    return returns_like(X, U)
