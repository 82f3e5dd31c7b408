r"""The convolutional NTK (CNTK) and NNGP of Arora et al. (2019), vanilla and with global average pooling.

A convolutional ReLU network of ``depth`` :math:`= L` convolutional layers (as everywhere in
ntklib, ``depth`` counts hidden layers; Arora et al.'s Table 1 counts the readout too, so their depth
:math:`d` is ``depth = d - 1`` here) on images :math:`x \in \mathbb R^{C\times H\times W}` has, for
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
    + K^{(h)}\big), \qquad h = 2, \dots, L,\\
    \Theta^{\text{out}} &= \Theta^{(L)}\odot\dot K^{(L+1)} + K^{(L+1)} \ (\text{without } K^{(L+1)}
    \text{ with ``fix''}).

The readout of **vanilla** CNTK (CNTK-V, a fully connected layer on the flattened last layer) is the
trace :math:`\sum_p \Theta^{\text{out}}_{pp}`; with **global average pooling** (CNTK-GAP) it is the mean
over all pixel pairs. The NNGP replaces :math:`\Theta^{\text{out}}` by :math:`K^{(L+1)}`. Because
:math:`\mathcal P` shifts both pixels together, the vanilla kernel only ever needs same-position pairs
:math:`(p, p)`: :math:`O(HW)` work per image pair against :math:`O(H^2W^2)` for GAP.

**Arora et al.'s notation.** Their appendix counts layers from 0 and puts the :math:`1/q^2` of the
patch into the activation step: their :math:`K^{(h)}` is :math:`\frac{c_\sigma}{q^2}\mathbb E[\dots]`
and their patch operator is a plain sum over :math:`\mathcal D_{ij,i'j'}`. The two conventions differ
by a shift of index and powers of :math:`q^2` only: their :math:`\Sigma^{(h-1)}` and
:math:`\Theta^{(h-1)}` are :math:`q^2` times :math:`\Sigma^{(h)}` and :math:`\Theta^{(h)}` here, their
:math:`K^{(h-1)}` is :math:`K^{(h)}` here and their :math:`\dot K^{(h-1)}` is :math:`\dot K^{(h)}/q^2`,
so the final kernels (vanilla and GAP, NTK and NNGP) are the same numbers. Their official code runs
the same steps (sum over the patch, :math:`c_\sigma/q^2` in the activation step).

**fix.** Arora et al. also define (their Section 4.2, which their code's ``--fix`` option cites) the
kernel of a network whose first and last layers are not trained (``fix=True``:
:math:`\Theta^{(1)} = 0` and no :math:`K^{(L+1)}` term). Their official code
(github.com/ruosongwang/CNTK) has ``--fix yes`` as its default, and its README reproduces the
**CNTK-GAP** column of Table 1 with ``--gap yes --fix yes`` and the **CNTK-V** column with
``--gap no --fix no``. So the paper's CNTK-GAP is ``nk.cntk(..., pooling="gap", fix=True)`` and its
CNTK-V is ``nk.cntk(..., pooling="vanilla", fix=False)``. The default here, ``fix=False``, is the NTK
of a network that trains every layer: the limit of the empirical NTK of
:class:`ntklib.networks.CNN`.

``filter_size=1`` makes every pixel an independent fully connected network: for a :math:`1\times 1`
image the CNTK of ``depth = L`` is exactly ``nk.ntk`` with the same ``depth = L``.

**Scale and memory.** Every kernel here is positively homogeneous, :math:`K(aX, bY) = ab\,K(X, Y)`
for :math:`a, b > 0` (ReLU, no bias), so each image is divided by a power of two (exact) that puts its
largest pixel in :math:`[1/2, 1)` and the kernel is multiplied back: images of :math:`10^{-160}` or
:math:`10^{150}` give the same digits as at unit scale, and only a kernel that itself overflows the dtype
is an error. GAP and :func:`cntk_pixel_pairs` hold :math:`(HW)^2` entries per image pair; a call whose
estimated memory passes ``max_bytes`` (default :data:`MAX_BYTES`, 4 GiB) raises
:class:`~ntklib.TooLargeError` before it starts.

The per-pixel step :math:`(\Sigma^{(h-1)}, \Theta^{(h-1)}) \mapsto (K^{(h)}, \dot K^{(h)})` is the fully
connected one, :func:`ntklib.kernels.layer_duals` (ReLU with :math:`c_\sigma = 2`, no bias); the Gram
matrix is filled by the one tiled loop of ``ntklib._tiles``, tiles of image pairs.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ._arrays import (
    call_repr,
    check_bool,
    check_budget,
    check_choice,
    check_int,
    check_same_features,
    max_abs,
    resolve_dtype,
    returns_like,
    to_tensor,
)
from ._tiles import tiled_gram
from .activations import relu
from .kernels import Layer, layer_duals, pow2_scale

__all__ = ["cntk", "cntk_grid", "cntk_pixel_pairs", "CNTK", "MAX_BYTES"]

#: the CNTK's hidden layers: ReLU, weight variance c_sigma = 2, no bias
_RELU = Layer(relu(1), 2.0, 0.0, True)

#: bytes per intermediate array of a batch of image pairs (2**18 float64 or 2**19 float32 entries), so
#: that the ~15 arrays of a batch stay in cache. It was 8 MB (and 4096 pairs for vanilla) before issue
#: 21; 2 MB made the 200-digit GAP Gram about 15 % and the vanilla one about 2x faster on the 2-core
#: machine, and with the fused ReLU step of ntklib.activations it still beats 8 MB (200 digits GAP,
#: one thread: 3.6 s against 5.1 s)
_BATCH_BUDGET_BYTES = 2 << 20

#: the default of ``max_bytes``: the most memory (bytes) one call of :func:`cntk`, :func:`cntk_grid`,
#: :func:`cntk_pixel_pairs` or :class:`CNTK` may plan for, its result included (4 GiB). A GAP batch holds
#: every pixel pair of its image pairs, (H W)^2 entries each: one pair of 100 x 100 images needs about
#: 13 GB, and is refused unless the caller passes a larger ``max_bytes``.
MAX_BYTES = 4 << 30

#: arrays of a batch's size alive at once at the peak of the recursion (upper bound for the memory
#: estimate): the peak resident memory of one GAP image pair of 40 x 40 and 50 x 50 images measured
#: 7 to 14 batch-sized arrays (depth 1 to 6, one and both fix settings, NTK and NNGP)
_LIVE_ARRAYS = 16


def _images(x, name, dtype, device=None, expected="a 4-D array of images (n, channels, height, width)"):
    t = to_tensor(x, name, dtype=dtype, device=device)
    if t.ndim != 4:
        raise ValueError(f"{name} must be {expected}; got shape {tuple(t.shape)}")
    if min(t.shape[1:]) < 1:
        raise ValueError(f"{name} must have at least one channel and pixel; got shape {tuple(t.shape)}")
    return t


def _unit_images(t):
    """Each image divided by the power of two 2^e_i that puts its largest |pixel| in [1/2, 1), and the
    exponents e_i (0 for a zero image).

    The CNTK is positively homogeneous, K(a x, b y) = ab K(x, y) for a, b > 0 (ReLU, no bias), and a
    power of two scales exactly: computed on these images and multiplied by 2^(e_i + e_j) the kernel
    has the same bits as computed on the inputs, but no square of a pixel, no variance and no product
    of two variances underflows or overflows on the way (issue 10: images of 1e-160 gave negative
    entries, float32 images of 1e20 gave NaN)."""
    e = torch.frexp(t.abs().amax(dim=(1, 2, 3)))[1]
    return pow2_scale(t, -e[:, None, None, None]), e


def _rescaled(values, exponents, names, largest, dtype):
    """``values * 2**exponents``, or a ValueError when the kernel itself overflows the dtype."""
    out = pow2_scale(values, exponents)
    if not bool(torch.isfinite(out).all()):
        sizes = ", ".join(f"max |{n}| = {v:.3g}" for n, v in zip(names, largest))
        advice = " or pass dtype=torch.float64" if dtype != torch.float64 else ""
        raise ValueError(
            f"the CNTK values overflow {dtype} (the largest is {torch.finfo(dtype).max:.3g}; {sizes}); rescale "
            f"the images{advice} (the CNTK is positively homogeneous: K(aX, bY) = ab K(X, Y) for a, b > 0)"
        )
    return out


def _check_memory(pairs, entries_per_pair, outputs, dtype, max_bytes, what):
    """Refuse (:class:`~ntklib.TooLargeError`) a call whose batches and result would pass ``max_bytes``."""
    limit = MAX_BYTES if max_bytes is None else max_bytes
    if isinstance(limit, bool) or not isinstance(limit, (int, float, np.integer, np.floating)) or not limit > 0:
        raise TypeError(f"max_bytes must be a positive number of bytes (or None for MAX_BYTES); got {max_bytes!r}")
    itemsize = torch.finfo(dtype).bits // 8
    needed = (pairs * entries_per_pair * _LIVE_ARRAYS + outputs) * itemsize
    check_budget(needed, limit, what=what, unit="bytes", knob="max_bytes")


def _patch_same_position(D, q):
    """Patch mean of same-position pairs: a q x q box average of (B, H, W), zero padded, divisor q^2."""
    if q == 1:
        return D
    return F.avg_pool2d(D[:, None], kernel_size=q, stride=1, padding=q // 2, count_include_pad=True)[:, 0]


def _patch_all_pairs(S, q):
    """Patch mean of all pixel pairs: S (B, H, W, H, W), both pixels shifted together, divisor q^2.

    Separable: shift (i, i') together over the q row offsets, then (j, j') over the column offsets,
    as in-place adds of shifted slices (zero padding = the slices that fall outside are left out).
    """
    if q == 1:
        return S
    r = q // 2
    rows = S.clone()
    for a in range(1, r + 1):
        rows[:, a:, :, a:, :] += S[:, :-a, :, :-a, :]
        rows[:, :-a, :, :-a, :] += S[:, a:, :, a:, :]
    out = rows.clone()
    for b in range(1, r + 1):
        out[:, :, b:, :, b:] += rows[:, :, :-b, :, :-b]
        out[:, :, :-b, :, :-b] += rows[:, :, b:, :, b:]
    return out.div_(q * q)


def _self_variances(x, depth, q):
    """Sigma^(h)_pp(x, x) for h = 1..depth-1 (old count: depth = conv layers + 1), each (n, H, W), and
    their square roots: each image's recursion with itself (the ReLU with c_sigma = 2 keeps the
    variance, K^(h)_pp = Sigma^(h-1)_pp, then the patch mean)."""
    v = [_patch_same_position((x * x).sum(dim=1), q)]
    for _ in range(2, depth):
        v.append(_patch_same_position(v[-1], q))
    return v, [torch.sqrt(a) for a in v]


def _recursion(S, lxs, lys, depths, q, fixes, ntk, patch, readout):
    """``{(depth, fix): readout(Theta^out)}`` (or of K^(depth)) for a batch of pixel-pair arrays S.

    One pass serves every depth and both ``fix`` settings: the recursion up to layer h does not depend
    on the final depth, and ``fix`` only changes the starting Theta^(1) and the last term. See the
    module docstring for the formulas.
    """
    sigma = patch(S, q)
    thetas = {f: (torch.zeros_like(sigma) if f else sigma) for f in fixes} if ntk else {}
    out = {}
    last = max(depths)
    (vxs, lxs), (vys, lys) = lxs, lys
    for h in range(2, last + 1):
        K, Kdot = layer_duals(_RELU, vxs[h - 2], sigma, vys[h - 2], deriv=ntk, root=lxs[h - 2] * lys[h - 2])
        if h in depths:
            for f in fixes:
                if not ntk:
                    out[h, f] = readout(K)
                else:
                    out[h, f] = readout(thetas[f] * Kdot if f else torch.addcmul(K, thetas[f], Kdot))
        if h < last:
            if ntk:
                thetas = {f: patch(torch.addcmul(K, t, Kdot), q) for f, t in thetas.items()}
            sigma = patch(K, q)
    return out


def _check_depth(depth) -> int:
    return check_int(depth, "depth", 1, "convolutional layers; Arora et al.'s Table 1 depth minus 1")


def _check_args(depth, pooling, filter_size, kernel):
    depth = _check_depth(depth)
    check_choice(pooling, "pooling", ("gap", "vanilla"))
    q = check_int(filter_size, "filter_size", 1)
    if q % 2 == 0:
        raise ValueError(f"filter_size must be odd (the patch is centred on its pixel); got {q}")
    check_choice(kernel, "kernel", ("ntk", "nngp"))
    return depth, q


def _as_list(value, name, check):
    """A non-empty list of distinct values from one value or a sequence of them."""
    many = isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str)
    values = list(value) if many else [value]
    if not values:
        raise ValueError(f"{name} must not be empty")
    values = [check(v) for v in values]
    if len(set(values)) != len(values):
        raise ValueError(f"{name} must not repeat a value; got {values}")
    return values


def _pick(variances, idx, gap, first):
    """The self-variances (and their roots) of images ``idx``, shaped to broadcast over pixel pairs."""
    def shape(v):
        v = v[idx]
        if not gap:
            return v
        return v[:, :, :, None, None] if first else v[:, None, None, :, :]

    vs, roots = variances
    return [shape(v) for v in vs], [shape(r) for r in roots]


class _Pairs:
    """The CNTK recursion on batches of image pairs (x[i], y[j]): ``{(depth, fix): values}``."""

    def __init__(self, x, y, depths, fixes, q, ntk, gap):
        self.x, self.y, self.q, self.ntk, self.gap = x, y, q, ntk, gap
        self.depths = [d + 1 for d in depths]  # the recursion below counts the readout, as Arora et al.
        self.fixes = fixes
        last = max(self.depths)
        self.vx = _self_variances(x, last, q)
        self.vy = self.vx if y is x else _self_variances(y, last, q)

    def __call__(self, i, j):
        x, y = self.x, self.y
        C, H, W = x.shape[1:]
        if self.gap:
            S = torch.einsum("bcp,bcq->bpq", x[i].reshape(-1, C, H * W), y[j].reshape(-1, C, H * W))
            S = S.reshape(-1, H, W, H, W)
            patch, readout = _patch_all_pairs, (lambda a: a.mean(dim=(1, 2, 3, 4)))
        else:
            S = (x[i] * y[j]).sum(dim=1)
            patch, readout = _patch_same_position, (lambda a: a.sum(dim=(1, 2)))
        out = _recursion(S, _pick(self.vx, i, self.gap, True), _pick(self.vy, j, self.gap, False),
                         self.depths, self.q, self.fixes, self.ntk, patch, readout)
        return torch.stack([out[d + 1, f] for d, f in self.keys()])

    def keys(self):
        return [(d - 1, f) for d in self.depths for f in self.fixes]


def _pair_block(pairs_per_block, dtype, H, W, gap) -> int:
    """Image pairs per batch: by default about 2 MB per intermediate array (at least one pair)."""
    if pairs_per_block is None:
        entries = _BATCH_BUDGET_BYTES * 8 // torch.finfo(dtype).bits  # array entries per batch
        pairs_per_block = max(1, entries // ((H * W) ** 2 if gap else H * W))
    return check_int(pairs_per_block, "pairs_per_block", 1)


def _grid(X, Y, depths, fixes, pooling, filter_size, kernel, dtype, pairs_per_block, max_bytes):
    q = _check_args(depths[0], pooling, filter_size, kernel)[1]
    dtype = resolve_dtype(dtype)
    x = _images(X, "X", dtype)
    symmetric = Y is None
    y = x if symmetric else _images(Y, "Y", dtype, device=x.device)
    check_same_features(x, y)
    n, m = x.shape[0], y.shape[0]
    H, W = x.shape[2:]
    gap = pooling == "gap"
    side = max(1, math.isqrt(_pair_block(pairs_per_block, dtype, H, W, gap)))  # tiles of side x side pairs
    keys = [(d, f) for d in depths for f in fixes]  # the order of _Pairs.keys()
    _check_memory(min(side, n) * min(side, m), (H * W) ** 2 if gap else H * W, len(keys) * n * m, dtype, max_bytes,
                  f"the {pooling} CNTK of {n} x {m} images of {H} x {W} pixels")
    with torch.no_grad():
        largest = [max_abs(x)] + ([] if symmetric else [max_abs(y)])
        x, ex = _unit_images(x)
        y, ey = (x, ex) if symmetric else _unit_images(y)
        pairs = _Pairs(x, y, depths, fixes, q, kernel == "ntk", gap)

        def tile(rows, cols, diagonal):
            r = torch.arange(rows.start, rows.stop, device=x.device)
            c = torch.arange(cols.start, cols.stop, device=x.device)
            if diagonal:  # the upper triangle only
                a, b = torch.triu_indices(len(r), len(c), device=x.device)
            else:
                a, b = (t.reshape(-1) for t in torch.meshgrid(torch.arange(len(r), device=x.device),
                                                             torch.arange(len(c), device=x.device),
                                                             indexing="ij"))
            block = torch.zeros((len(keys), len(r), len(c)), dtype=dtype, device=x.device)
            block[:, a, b] = pairs(r[a], c[b])
            return block

        out = torch.empty((len(keys), n, m), dtype=dtype, device=x.device)
        tiled_gram(tile, n, None if symmetric else m, block=side, out=out)  # torch threads each batch
        out = _rescaled(out, ex[:, None] + ey[None, :], ("X",) if symmetric else ("X", "Y"), largest, dtype)
    return {key: returns_like(X, out[k]) for k, key in enumerate(keys)}


def cntk_grid(X, Y=None, *, depths, fix=(False, True), pooling="gap", filter_size=3, kernel="ntk", dtype=None,
              pairs_per_block=None, max_bytes=None):
    r"""The CNTK (or NNGP) of :func:`cntk` at several depths and ``fix`` settings, in one pass.

    The recursion up to layer :math:`h` is the same whatever the final depth, and ``fix`` changes only
    the start and the last term, so one pass over the image pairs gives every combination: for
    depths 2 and 5 with both settings it costs about as much as depth 5 alone.

    Parameters
    ----------
    X, Y, pooling, filter_size, kernel, dtype, pairs_per_block, max_bytes
        As in :func:`cntk`.
    depths : int or sequence of int
        Depths (numbers of convolutional layers), each ``>= 1``.
    fix : bool or sequence of bool, default (False, True)
        The ``fix`` settings to compute (see :func:`cntk`; ignored by ``kernel="nngp"``, which has no
        ``fix``: every setting gets the same NNGP).

    Returns
    -------
    dict
        ``{(depth, fix): K}`` with each ``K`` as :func:`cntk` returns it.

    Raises
    ------
    ValueError, TypeError
        As in :func:`cntk`; also an empty or repeating ``depths`` or ``fix``.
    TooLargeError
        As in :func:`cntk`: the memory estimate (the result holds one (n, m) matrix per combination)
        passes ``max_bytes``.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> x = np.random.default_rng(0).standard_normal((3, 1, 4, 4))
    >>> grid = nk.cntk_grid(x, depths=[1, 2], fix=[False, True])
    >>> sorted(grid)
    [(1, False), (1, True), (2, False), (2, True)]
    >>> bool(np.allclose(grid[2, True], nk.cntk(x, depth=2, fix=True)))
    True
    """
    depths = _as_list(depths, "depths", lambda d: _check_args(d, pooling, filter_size, kernel)[0])
    fixes = _as_list(fix, "fix", lambda f: check_bool(f, "fix"))
    return _grid(X, Y, depths, fixes, pooling, filter_size, kernel, dtype, pairs_per_block, max_bytes)


def cntk(X, Y=None, *, depth, pooling="gap", fix=False, filter_size=3, kernel="ntk", dtype=None, pairs_per_block=None,
         max_bytes=None):
    r"""The convolutional NTK (or NNGP) of Arora et al. (2019) on raw images, as their algorithm defines it.

    Parameters
    ----------
    X : (n, C, H, W) array or tensor
        Images (preprocess them first, e.g. :func:`ntklib.data.standardize`).
    Y : (m, C, H, W), optional
        ``None`` means ``X`` (then only pairs i <= j are computed, and the result is exactly symmetric).
    depth : int
        The number of convolutional (hidden) layers, ``>= 1``. Arora et al.'s Table 1 counts the
        readout layer too: their depth :math:`d` is ``depth = d - 1`` here (their CNTK-GAP of depth 11
        is ``depth=10``).
    pooling : {"gap", "vanilla"}
        Global average pooling (mean over all pixel pairs, :math:`O(H^2W^2)` per image pair) or the
        vanilla readout (trace over same-position pairs, :math:`O(HW)` per image pair).
    fix : bool, default False
        Arora et al.'s "fix" option: the first and the last layer are not trained (:math:`\Theta^{(1)}
        = 0`, no :math:`K^{(L+1)}` term). **The paper's CNTK-GAP column uses** ``fix=True``: their
        official code reproduces it with ``--gap yes --fix yes`` (README), and ``fix`` is that code's
        default; its CNTK-V column uses ``--gap no --fix no``. ``False`` (the default here) is the
        NTK of a network that trains every layer, the limit of :class:`ntklib.networks.CNN`'s empirical NTK.
        A network with one convolutional layer and ``fix=True`` has nothing left to train: the kernel is 0.
    filter_size : int, default 3
        :math:`q` of the :math:`q\times q` convolutions (stride 1, zero "same" padding), odd.
    kernel : {"ntk", "nngp"}
        The NNGP has no ``fix`` (it ignores the option).
    dtype : float64 (default) or float32
        Precision of the computation and of the result.
    pairs_per_block : int, optional
        Image pairs per batch (tiles of :math:`\lfloor\sqrt{\text{pairs\_per\_block}}\rfloor^2` pairs);
        by default as many as keep each intermediate array at about 2 MB (2**18 float64 or 2**19
        float32 entries: the batch stays in cache; at least one pair).
    max_bytes : int, optional
        The most memory the call may plan for, in bytes; ``None`` is :data:`MAX_BYTES` (4 GiB). The
        estimate, made before any work, is 16 arrays of one batch (a GAP batch holds :math:`(HW)^2`
        entries per image pair, vanilla :math:`HW`) plus the result. One pair of 100 x 100 images under
        GAP needs about 13 GB and is refused unless ``max_bytes`` is raised.

    Returns
    -------
    K : (n, m) array (a tensor on the input's device if ``X`` is a tensor)

    Raises
    ------
    ValueError
        Images that are not 4-D or not of one shape, NaN/inf, ``depth < 1``, an even ``filter_size``,
        an unknown ``pooling`` or ``kernel`` (the message lists the allowed values), or images so large
        that the kernel values themselves overflow the dtype (the message gives the largest pixel).
    TooLargeError
        (a ValueError) If the memory estimate passes ``max_bytes``; nothing is computed.
    TypeError
        A non-integer ``depth`` or ``filter_size``, a ``fix`` that is not a bool (``"no"`` is refused,
        not taken as true), a ``max_bytes`` that is not a positive number.

    See Also
    --------
    cntk_grid : several depths and both ``fix`` settings in one pass.
    CNTK : the same as a kernel object (``diag`` without the Gram matrix).

    Notes
    -----
    Any real input dtype (integers, float16, bfloat16) is converted exactly to ``dtype``; a tensor that
    requires grad is computed on its detached values. The CNTK is positively homogeneous,
    :math:`K(aX, bY) = ab\,K(X, Y)` for :math:`a, b > 0`: each image is divided by the power of two that
    brings its largest pixel into :math:`[1/2, 1)` and the kernel multiplied back, exactly, so images of
    any finite size give the kernel to full precision until the kernel itself under- or overflows.

    References
    ----------
    S. Arora et al., "On exact computation with an infinitely wide neural net", NeurIPS 2019,
    arXiv:1904.11955 (Section 4 and Appendix; Table 1). Official code:
    https://github.com/ruosongwang/CNTK (``CNTK.py``, README).

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> # three 1 x 1 "images" with two channels
    >>> x = np.random.default_rng(0).standard_normal((3, 2, 1, 1))
    >>> K = nk.cntk(x, depth=3, filter_size=1, pooling="vanilla")
    >>> # = the FC ReLU NTK of the same depth
    >>> np.allclose(K, nk.ntk(x.reshape(3, 2), depth=3))
    True
    >>> # the paper's CNTK-GAP: fix=True (first and last layer not trained)
    >>> img = np.random.default_rng(1).standard_normal((2, 1, 5, 5))
    >>> K_paper = nk.cntk(img, depth=2, pooling="gap", fix=True)
    >>> K_paper.shape
    (2, 2)
    >>> # one conv layer and the readout: nothing left to train
    >>> float(np.abs(nk.cntk(img, depth=1, fix=True)).max())
    0.0
    """
    depth = _check_args(depth, pooling, filter_size, kernel)[0]
    fix = check_bool(fix, "fix")
    return _grid(X, Y, [depth], [fix], pooling, filter_size, kernel, dtype, pairs_per_block, max_bytes)[depth, fix]


def cntk_pixel_pairs(x, y, *, depth, fix=False, filter_size=3, kernel="ntk", dtype=None, max_bytes=None):
    r"""The per-pixel-pair kernel :math:`\Theta^{\text{out}}_{pp'}(x, y)` of two images, shape (H, W, H, W).

    Its trace is the vanilla CNTK and its mean the CNTK-GAP (see :func:`cntk`).

    Parameters
    ----------
    x, y : (C, H, W) arrays, nested lists or tensors (or (1, C, H, W))
        Two images of the same shape.
    depth, fix, filter_size, kernel, dtype
        As in :func:`cntk` (``depth`` counts convolutional layers).
    max_bytes : int, optional
        As in :func:`cntk` (default :data:`MAX_BYTES`, 4 GiB): the result alone has :math:`(HW)^2`
        entries, and the recursion about 16 arrays of that size.

    Returns
    -------
    P : (H, W, H, W) array (a tensor if ``x`` is one)

    Raises
    ------
    ValueError, TypeError
        As in :func:`cntk`; also ``x``, ``y`` that are not two images of one shape (the message gives
        the expected shapes).
    TooLargeError
        (a ValueError) If the memory estimate passes ``max_bytes``.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> a, b = np.random.default_rng(0).standard_normal((2, 1, 4, 4))
    >>> P = nk.cntk_pixel_pairs(a, b, depth=2)
    >>> P.shape
    (4, 4, 4, 4)
    >>> K = nk.cntk(np.stack([a, b]), depth=2)
    >>> bool(np.isclose(P.mean(), K[0, 1], rtol=1e-13))
    True
    """
    depth, q = _check_args(depth, "gap", filter_size, kernel)
    fix = check_bool(fix, "fix")
    dtype = resolve_dtype(dtype)
    a = _one_image(x, "x", dtype)
    b = _one_image(y, "y", dtype, device=a.device)
    if a.shape != b.shape:
        raise ValueError(f"x and y must be two images of the same shape; got shapes {tuple(a.shape[1:])} and "
                         f"{tuple(b.shape[1:])}")
    C, H, W = a.shape[1:]
    _check_memory(1, (H * W) ** 2, (H * W) ** 2, dtype, max_bytes, f"the pixel pairs of two images of {H} x {W} pixels")
    D = depth + 1  # the recursion counts the readout, as Arora et al.
    with torch.no_grad():
        largest = [max_abs(a), max_abs(b)]
        (a, ea), (b, eb) = _unit_images(a), _unit_images(b)
        zero = torch.zeros(1, dtype=torch.long, device=a.device)
        va, vb = _pick(_self_variances(a, D, q), zero, True, True), _pick(_self_variances(b, D, q), zero, True, False)
        S = (a.reshape(C, H * W).T @ b.reshape(C, H * W)).reshape(1, H, W, H, W)
        out = _recursion(S, va, vb, [D], q, [fix], kernel == "ntk", _patch_all_pairs, lambda t: t[0])[D, fix]
        out = _rescaled(out, ea[0] + eb[0], ("x", "y"), largest, dtype)
    return returns_like(x, out)


def _one_image(x, name, dtype, device=None):
    """One image (C, H, W), or a batch of one (1, C, H, W), as a (1, C, H, W) tensor."""
    expected = "one image of shape (channels, height, width), or (1, channels, height, width)"
    t = to_tensor(x, name, dtype=dtype, device=device)
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4 or t.shape[0] != 1:
        raise ValueError(f"{name} must be {expected}; got shape {tuple(t.shape)}")
    return _images(t, name, dtype, device, expected)


class CNTK:
    r"""The convolutional NTK (or NNGP) of :func:`cntk` as a kernel object.

    ``k(X, Y=None)`` is :func:`cntk`; ``k.diag(X)`` the values :math:`K(x_i, x_i)` from each image's
    pairs with itself (:math:`O(n)` image pairs, no Gram matrix). Numpy in gives numpy out, a tensor a
    tensor on its device. The repr reads back as code; two kernels are equal when their parameters
    are.

    Parameters
    ----------
    depth : int
        Convolutional layers, ``>= 1`` (Arora et al.'s Table 1 depth minus 1).
    pooling, fix, filter_size, kernel
        As in :func:`cntk`.

    Raises
    ------
    ValueError, TypeError
        Invalid parameters, as in :func:`cntk`.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> k = nk.CNTK(depth=2, pooling="vanilla")
    >>> k
    CNTK(depth=2, pooling='vanilla')
    >>> x = np.random.default_rng(0).standard_normal((3, 2, 4, 4))
    >>> bool(np.allclose(k.diag(x), np.diag(k(x)), rtol=1e-13))
    True
    >>> eval(repr(k), {"CNTK": nk.CNTK}) == k
    True
    """

    def __init__(self, depth, pooling="gap", fix=False, filter_size=3, kernel="ntk"):
        _check_args(depth, pooling, filter_size, kernel)
        self.depth, self.pooling, self.fix = depth, pooling, check_bool(fix, "fix")
        self.filter_size, self.kernel = filter_size, kernel

    def _params(self):
        return dict(depth=self.depth, pooling=self.pooling, fix=self.fix, filter_size=self.filter_size,
                    kernel=self.kernel)

    def __call__(self, X, Y=None, *, dtype=None, pairs_per_block=None, max_bytes=None):
        """The Gram matrix :math:`K(x_i, y_j)` of :func:`cntk`.

        Parameters
        ----------
        X : (n, C, H, W) array or tensor
            Images, as in :func:`cntk`.
        Y : (m, C, H, W), optional
            Second set of images; ``None`` means ``X``.
        dtype, pairs_per_block, max_bytes
            As in :func:`cntk`.

        Returns
        -------
        K : (n, m) array or tensor

        Raises
        ------
        ValueError, TypeError, TooLargeError
            As in :func:`cntk`.

        Examples
        --------
        >>> import numpy as np, ntklib as nk
        >>> x = np.ones((2, 1, 3, 3))
        >>> bool(np.array_equal(nk.CNTK(depth=1)(x), nk.cntk(x, depth=1)))
        True
        """
        return cntk(X, Y, dtype=dtype, pairs_per_block=pairs_per_block, max_bytes=max_bytes, **self._params())

    def diag(self, X, *, dtype=None, pairs_per_block=None, max_bytes=None):
        """The diagonal :math:`K(x_i, x_i)`: each image's recursion with itself, :math:`O(n)` pairs.

        Parameters
        ----------
        X : (n, C, H, W) array or tensor
            Images, as in :func:`cntk`.
        dtype, pairs_per_block, max_bytes
            As in :func:`cntk` (the estimate counts one batch of ``pairs_per_block`` image pairs).

        Returns
        -------
        d : (n,) array or tensor (the kind of ``X``)

        Raises
        ------
        ValueError, TypeError, TooLargeError
            As in :func:`cntk` (also when the diagonal itself overflows the dtype).

        Examples
        --------
        >>> import numpy as np, ntklib as nk
        >>> x = np.random.default_rng(0).standard_normal((2, 1, 1, 1))
        >>> diag = nk.CNTK(depth=3, filter_size=1).diag(x)
        >>> bool(np.allclose(diag, 4 * x.ravel() ** 2))
        True
        """
        q = check_int(self.filter_size, "filter_size", 1)
        dtype = resolve_dtype(dtype)
        x = _images(X, "X", dtype)
        n, H, W = x.shape[0], *x.shape[2:]
        gap = self.pooling == "gap"
        block = _pair_block(pairs_per_block, dtype, H, W, gap)
        _check_memory(min(block, n), (H * W) ** 2 if gap else H * W, n, dtype, max_bytes,
                      f"the {self.pooling} CNTK diagonal of {n} images of {H} x {W} pixels")
        out = torch.empty(n, dtype=dtype, device=x.device)
        with torch.no_grad():
            largest = [max_abs(x)]
            x, e = _unit_images(x)
            pairs = _Pairs(x, x, [self.depth], [self.fix], q, self.kernel == "ntk", gap)
            for s in range(0, n, block):
                i = torch.arange(s, min(s + block, n), device=x.device)
                out[i] = pairs(i, i)[0]
            out = _rescaled(out, 2 * e, ("X",), largest, dtype)
        return returns_like(X, out)

    def __repr__(self):
        return call_repr(self, self._params())

    def __eq__(self, other):
        return type(other) is type(self) and self._params() == other._params()

    def __hash__(self):
        return hash(tuple(self._params().items()))
