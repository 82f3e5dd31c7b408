r"""The convolutional NTK (CNTK) and NNGP of Arora et al. (2019), vanilla and with global average pooling.

A convolutional ReLU network of ``depth`` :math:`= d` (Arora et al.'s Table 1 count: :math:`d - 1`
convolutional layers and the readout) on images :math:`x \in \mathbb R^{C\times H\times W}` has, for
every pair of pixels :math:`p, p'` of two images :math:`x, x'`, a covariance :math:`\Sigma^{(h)}_{pp'}`
and an NTK :math:`\Theta^{(h)}_{pp'}`. With :math:`\mathcal P` the *patch mean*, which averages a
pixel-pair array over the :math:`q\times q` patches around :math:`p` and :math:`p'` shifted together
(zero padding, divisor :math:`q^2`):

.. math::

    S_{pp'} &= \textstyle\sum_c x_{c,p}\, x'_{c,p'}, \qquad
    \Sigma^{(1)} = \mathcal P(S), \qquad \Theta^{(1)} = \Sigma^{(1)} \ (\text{or } 0 \text{ with ``fix``}),\\
    K^{(h)} &= 2\,\mathbb E[\mathrm{relu}(u)\,\mathrm{relu}(v)], \quad
    \dot K^{(h)} = 2\,\mathbb E[\mathbf 1_{u>0}\mathbf 1_{v>0}], \quad
    (u, v) \sim \mathcal N\Big(0, \begin{bmatrix}\Sigma^{(h-1)}_{pp}(x, x) & \Sigma^{(h-1)}_{pp'}\\
    \Sigma^{(h-1)}_{pp'} & \Sigma^{(h-1)}_{p'p'}(x', x')\end{bmatrix}\Big),\\
    \Sigma^{(h)} &= \mathcal P(K^{(h)}), \qquad \Theta^{(h)} = \mathcal P\big(\Theta^{(h-1)}\odot\dot K^{(h)}
    + K^{(h)}\big), \qquad h = 2, \dots, d - 1,\\
    \Theta^{\text{out}} &= \Theta^{(d-1)}\odot\dot K^{(d)} + K^{(d)} \ (\text{without } K^{(d)}
    \text{ with ``fix''}).

The readout of **vanilla** CNTK (CNTK-V, a fully connected layer on the flattened last layer) is the
trace :math:`\sum_p \Theta^{\text{out}}_{pp}`; with **global average pooling** (CNTK-GAP) it is the mean
over all pixel pairs. The NNGP replaces :math:`\Theta^{\text{out}}` by :math:`K^{(d)}`. Because
:math:`\mathcal P` shifts both pixels together, the vanilla kernel only ever needs same-position pairs
:math:`(p, p)`: :math:`O(HW)` work per image pair against :math:`O(H^2W^2)` for GAP.

``filter_size=1`` makes every pixel an independent fully connected network: for a :math:`1\times 1`
image the CNTK of depth :math:`d` is exactly ``nk.ntk`` with ``depth = d - 1``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._arrays import check_int, resolve_dtype, returns_like, to_tensor
from .activations import ReLUk
from .kernels import _correlation

__all__ = ["cntk", "cntk_pixel_pairs"]

_RELU = ReLUk(1)
#: float entries per intermediate array of the GAP recursion: 8 MB in float64, so that the ~10 arrays
#: of a batch stay in a 32 MB L3 cache (4x faster than larger batches on the 2-core machine)
_GAP_BUDGET = 1 << 20


def _images(x, name, dtype, device=None):
    t = to_tensor(x, name, dtype=dtype, device=device)
    if t.ndim != 4:
        raise ValueError(f"{name} must be a 4-D array of images (n, channels, height, width); got shape {tuple(t.shape)}")
    if min(t.shape[1:]) < 1:
        raise ValueError(f"{name} must have at least one channel and pixel; got shape {tuple(t.shape)}")
    return t


def _patch_same_position(D, q):
    """Patch mean of same-position pairs: a q x q box average of (B, H, W), zero padded, divisor q^2."""
    if q == 1:
        return D
    return F.avg_pool2d(D[:, None], kernel_size=q, stride=1, padding=q // 2, count_include_pad=True)[:, 0]


def _patch_all_pairs(S, q):
    """Patch mean of all pixel pairs: S (B, H, W, H, W), both pixels shifted together, divisor q^2.

    Separable: shift (i, i') together over the q row offsets, then (j, j') over the column offsets
    (2q shifted adds instead of q^2).
    """
    if q == 1:
        return S
    r = q // 2
    H, W = S.shape[1], S.shape[2]
    P = F.pad(S, (0, 0, r, r, 0, 0, r, r))          # pad the two row axes (dims 1 and 3)
    rows = P[:, 0:H, :, 0:H, :].clone()
    for a in range(1, q):
        rows += P[:, a:a + H, :, a:a + H, :]
    P = F.pad(rows, (r, r, 0, 0, r, r))              # pad the two column axes (dims 2 and 4)
    out = P[:, :, 0:W, :, 0:W].clone()
    for b in range(1, q):
        out += P[:, :, b:b + W, :, b:b + W]
    return out / (q * q)


def _relu_layer(sigma, lx, ly):
    """(K, Kdot) of the ReLU with c_sigma = 2 from pixel-pair covariances and per-pixel variances."""
    rho, root = _correlation(sigma, lx, ly)
    e, ed = _RELU._duals(lx, ly, rho, True, root)
    return 2 * e, 2 * ed


def _self_variances(x, depth, q):
    """Sigma^(h)_pp(x, x) for h = 1..depth-1, each (n, H, W): the recursion of each image with itself."""
    L = [_patch_same_position((x * x).sum(dim=1), q)]
    for _ in range(2, depth):
        K, _ = _relu_layer(L[-1], L[-1], L[-1])
        L.append(_patch_same_position(K, q))
    return L


def _recursion(S, lxs, lys, depth, q, fix, ntk, patch):
    """Theta^out (or K^(d)) for a batch of pixel-pair arrays S; see the module docstring."""
    sigma = patch(S, q)
    theta = torch.zeros_like(sigma) if fix else sigma
    for h in range(2, depth):
        K, Kdot = _relu_layer(sigma, lxs[h - 2], lys[h - 2])
        if ntk:
            theta = patch(theta * Kdot + K, q)
        sigma = patch(K, q)
    K, Kdot = _relu_layer(sigma, lxs[depth - 2], lys[depth - 2])
    if not ntk:
        return K
    return theta * Kdot if fix else theta * Kdot + K


def _check_args(depth, pooling, filter_size, kernel):
    depth = check_int(depth, "depth", 2, "convolutional layers + 1, as in Arora et al.'s Table 1")
    if pooling not in ("gap", "vanilla"):
        raise ValueError(f"pooling must be 'gap' or 'vanilla'; got {pooling!r}")
    q = check_int(filter_size, "filter_size", 1)
    if q % 2 == 0:
        raise ValueError(f"filter_size must be odd (the patch is centred on its pixel); got {q}")
    if kernel not in ("ntk", "nngp"):
        raise ValueError(f"kernel must be 'ntk' or 'nngp'; got {kernel!r}")
    return depth, q


def cntk(X, Y=None, *, depth, pooling="gap", fix=False, filter_size=3, kernel="ntk", dtype=None, pairs_per_block=None):
    r"""The convolutional NTK (or NNGP) of Arora et al. (2019) on raw images, as their algorithm defines it.

    Parameters
    ----------
    X : (n, C, H, W) array or tensor
        Images (preprocess them first, e.g. :func:`ntklib.data.standardize`).
    Y : (m, C, H, W), optional
        ``None`` means ``X`` (then only pairs i <= j are computed).
    depth : int
        Convolutional layers + 1 (the depth column of Arora et al.'s Table 1), ``>= 2``.
    pooling : {"gap", "vanilla"}
        Global average pooling (mean over all pixel pairs, :math:`O(H^2W^2)` per image pair) or the
        vanilla readout (trace over same-position pairs, :math:`O(HW)` per image pair).
    fix : bool
        Arora et al.'s "fix" option: first and last layer not trained.
    filter_size : int, default 3
        :math:`q` of the :math:`q\times q` convolutions (stride 1, zero "same" padding).
    kernel : {"ntk", "nngp"}
    dtype : float64 (default) or float32
    pairs_per_block : int, optional
        Image pairs per batch; by default as many as keep each GAP intermediate at about 2**20
        entries (8 MB in float64: the batch stays in cache), and 4096 for vanilla.

    Returns
    -------
    K : (n, m) array (a tensor on the input's device if ``X`` is a tensor)

    References
    ----------
    S. Arora et al., "On exact computation with an infinitely wide neural net", NeurIPS 2019,
    arXiv:1904.11955 (Section 4 and Appendix; Table 1).

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> # three 1 x 1 "images" with two channels
    >>> x = np.random.default_rng(0).standard_normal((3, 2, 1, 1))
    >>> K = nk.cntk(x, depth=4, filter_size=1, pooling="vanilla")
    >>> np.allclose(K, nk.ntk(x.reshape(3, 2), depth=3))  # = the FC ReLU NTK
    True
    """
    depth, q = _check_args(depth, pooling, filter_size, kernel)
    dtype = resolve_dtype(dtype)
    x = _images(X, "X", dtype)
    symmetric = Y is None
    y = x if symmetric else _images(Y, "Y", dtype, device=x.device)
    if y.shape[1:] != x.shape[1:]:
        raise ValueError(f"X and Y must hold images of the same shape; got {tuple(x.shape[1:])} and {tuple(y.shape[1:])}")
    n, m = x.shape[0], y.shape[0]
    C, H, W = x.shape[1:]
    gap = pooling == "gap"
    if pairs_per_block is None:
        pairs_per_block = max(1, _GAP_BUDGET // (H * W) ** 2) if gap else 4096
    block = check_int(pairs_per_block, "pairs_per_block", 1)
    ntk = kernel == "ntk"
    with torch.no_grad():
        lx = _self_variances(x, depth, q)
        ly = lx if symmetric else _self_variances(y, depth, q)
        I, J = torch.triu_indices(n, n) if symmetric else torch.cartesian_prod(torch.arange(n), torch.arange(m)).T
        I, J = I.to(x.device), J.to(x.device)
        values = torch.empty(I.numel(), dtype=dtype, device=x.device)
        for s in range(0, I.numel(), block):
            i, j = I[s:s + block], J[s:s + block]
            if gap:
                S = torch.einsum("bcp,bcq->bpq", x[i].reshape(-1, C, H * W), y[j].reshape(-1, C, H * W))
                S = S.reshape(-1, H, W, H, W)
                out = _recursion(S, [l[i][:, :, :, None, None] for l in lx], [l[j][:, None, None, :, :] for l in ly],
                                 depth, q, fix, ntk, _patch_all_pairs)
                values[s:s + block] = out.mean(dim=(1, 2, 3, 4))
            else:
                S = (x[i] * y[j]).sum(dim=1)
                out = _recursion(S, [l[i] for l in lx], [l[j] for l in ly], depth, q, fix, ntk, _patch_same_position)
                values[s:s + block] = out.sum(dim=(1, 2))
        K = torch.empty((n, m), dtype=dtype, device=x.device)
        K[I, J] = values
        if symmetric:
            K[J, I] = values
    return returns_like(X, K)


def cntk_pixel_pairs(x, y, *, depth, fix=False, filter_size=3, kernel="ntk", dtype=None):
    r"""The per-pixel-pair kernel :math:`\Theta^{\text{out}}_{pp'}(x, y)` of two images, shape (H, W, H, W).

    Its trace is the vanilla CNTK and its mean the CNTK-GAP (see :func:`cntk`).
    """
    depth, q = _check_args(depth, "gap", filter_size, kernel)
    dtype = resolve_dtype(dtype)
    a = _images(x[None] if getattr(x, "ndim", 0) == 3 else x, "x", dtype)
    b = _images(y[None] if getattr(y, "ndim", 0) == 3 else y, "y", dtype, device=a.device)
    if a.shape[0] != 1 or b.shape[0] != 1 or a.shape[1:] != b.shape[1:]:
        raise ValueError("x and y must be two single images (C, H, W) of the same shape")
    C, H, W = a.shape[1:]
    with torch.no_grad():
        la, lb = _self_variances(a, depth, q), _self_variances(b, depth, q)
        S = (a.reshape(C, H * W).T @ b.reshape(C, H * W)).reshape(1, H, W, H, W)
        out = _recursion(S, [l[:, :, :, None, None] for l in la], [l[:, None, None, :, :] for l in lb],
                         depth, q, fix, kernel == "ntk", _patch_all_pairs)[0]
    return returns_like(x, out)
