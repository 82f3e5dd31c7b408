r"""NNGP and NTK of a deep fully connected network (Arora et al. 2019) and their unit-sphere forms.

The network (Arora et al. 2019, eq. 6) with :math:`L` = ``depth`` hidden layers is
:math:`f^{(h)} = W^{(h)} g^{(h-1)} + b^{(h)}`, :math:`g^{(0)} = x`,
:math:`g^{(h)} = \sqrt{c_\sigma/d_h}\,\sigma_h(f^{(h)})`, :math:`f = f^{(L+1)}`, weights i.i.d.
:math:`\mathcal N(0, 1)` and biases :math:`\mathcal N(0, \beta^2)` (``bias_var`` :math:`=\beta^2`,
default 0). Its kernels follow the recursion (chapter 1 of the book)

.. math::

    \Sigma^{(0)}(x, y) &= x\cdot y + \beta^2, \qquad \Theta^{(0)} = \Sigma^{(0)},\\
    \Sigma^{(h)}(x, y) &= c_h\, \mathbb E[\sigma_h(u)\sigma_h(v)] + \beta^2, \qquad
    \dot\Sigma^{(h)}(x, y) = c_h\, \mathbb E[\sigma_h'(u)\sigma_h'(v)],\\
    \Theta^{(h)} &= \Theta^{(h-1)}\,\dot\Sigma^{(h)} + \Sigma^{(h)}, \qquad h = 1, \dots, L,

with :math:`(u, v)` centred Gaussian with the covariance :math:`\Sigma^{(h-1)}` on :math:`\{x, y\}`
and :math:`c_h` = ``weight_var`` (by default :math:`c_{\sigma_h}`). The NNGP is
:math:`\Sigma^{(L)}`, the NTK :math:`\Theta^{(L)}`.

**How the numbers stay exact.**
Each layer works with the correlation :math:`\rho = \Sigma(x, y)/\sqrt{\Sigma(x, x)\Sigma(y, y)}` and
the activation duals of :mod:`ntklib.activations`, written to keep every digit at :math:`\rho = \pm1`.
In the first layer the cosine of nearly parallel inputs (:math:`1 - |\rho| < 10^{-4}`) is recomputed
from :math:`|\hat x \mp \hat y|^2`, so parallel inputs give :math:`\rho = \pm 1` exactly; in later
layers a correlation within 8 ulps of :math:`\pm1` (indistinguishable from it after rounding) is set to
:math:`\pm1`. Without this, the square-root behaviour of :math:`\kappa_0` near 1 amplifies one
rounding error: a cosine computed as :math:`1 - \delta`, :math:`\delta = 2^{-52}`, puts the angle
off by :math:`\sqrt{2\delta} \approx 2\times10^{-8}` and the step layer's output
:math:`\kappa_0(1 - \delta) \approx 1 - \sqrt{2\delta}/\pi` off by about ``7e-9``; three step layers
make it about ``3e-3`` (``tests/test_kernels.py`` measures both).
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from ._arrays import as_points, check_depth, check_variance, per_layer, resolve_dtype, returns_like, to_tensor
from .activations import Activation, get_activation

__all__ = ["ntk", "nngp", "kappa", "resolve_layers", "Layer"]

#: first-layer cosines with 1 - |cos| below this are recomputed from |x_hat -+ y_hat|^2
_REFINE = 1e-4
#: correlations within this many ulps of +-1 are set to +-1 (later layers)
_SNAP_ULPS = 8
#: budget of float entries for the temporaries of one tile of a quadrature activation
_QUADRATURE_BUDGET = 1 << 22


@dataclass(frozen=True)
class Layer:
    """One hidden layer of the recursion: activation, weight variance :math:`c_h`, bias variance."""

    activation: Activation
    weight_var: float
    bias_var: float


def resolve_layers(depth, activation="relu", weight_var=None, bias_var=0.0) -> list[Layer]:
    """Validate the architecture arguments and return one :class:`Layer` per hidden layer.

    ``activation`` and ``weight_var`` may be single values or sequences with one entry per hidden
    layer; ``weight_var=None`` (or a ``None`` entry) means :math:`c_\\sigma` of that layer's activation.
    """
    depth = check_depth(depth)
    bias_var = check_variance(bias_var, "bias_var", positive=False)
    if isinstance(activation, (list, tuple)):
        acts = per_layer(list(activation), "activation", depth)
    else:
        acts = [activation] * depth
        get_activation(activation)  # validate even when depth == 0
    acts = [get_activation(a) for a in acts]
    wvs = per_layer(weight_var, "weight_var", depth)
    layers = []
    for act, wv in zip(acts, wvs):
        wv = act.c_sigma if wv is None else check_variance(wv, "weight_var", positive=True)
        layers.append(Layer(act, float(wv), bias_var))
    return layers


def _layer_step(layer: Layer, qx, qy, rho, want_deriv: bool, root=None):
    """One layer: (Sigma^(h), Sigmadot^(h)) from the previous layer's variances and correlation.

    ``root`` is sqrt(qx * qy) when the caller has it (saves a pass for the ReLU family).
    """
    e, ed = layer.activation._duals(qx, qy, rho, want_deriv, root)
    sigma = layer.weight_var * e
    if layer.bias_var:
        sigma = sigma + layer.bias_var
    sigma_dot = layer.weight_var * ed if want_deriv else None
    return sigma, sigma_dot


def _variances(q0: torch.Tensor, layers: list[Layer]) -> list[torch.Tensor]:
    """Diagonal Sigma^(h)(x, x) for h = 0..L (the same formulas at rho = 1)."""
    out = [q0]
    one = torch.ones_like(q0)
    for layer in layers[:-1]:
        out.append(_layer_step(layer, out[-1], out[-1], one, False)[0])
    return out


def _correlation(sigma, qx, qy):
    """(rho, sqrt(qx qy)): rho = Sigma(x, y) / sqrt(Sigma(x, x) Sigma(y, y)), see :func:`_rho`."""
    root = torch.sqrt(qx * qy)
    return _rho(sigma, root), root


def _rho(sigma, root):
    """sigma / root clipped to [-1, 1] and set to +-1 within 8 ulps of it (root: the product of the
    two standard deviations). The CNTK's pixel step uses it too."""
    finfo = torch.finfo(sigma.dtype)
    rho = torch.div(sigma, root.clamp_min(finfo.tiny)).clamp_(-1.0, 1.0)
    near = rho.abs() >= 1.0 - _SNAP_ULPS * finfo.eps
    if bool(near.any()):
        rho = torch.where(near, torch.sign(rho), rho)
    return rho


def _recursion(nx, ny, cos, qxs, qys, layers, bias0, ntk: bool):
    """Sigma^(L) (or Theta^(L) if ``ntk``) entrywise, from input norms, cosines and variances.

    All arguments broadcast against ``cos``: ``nx``/``ny`` are the input norms, ``qxs[h]``/``qys[h]``
    the variances Sigma^(h)(x, x) / Sigma^(h)(y, y). This is the whole of the recursion; the public
    functions only feed it tiles.
    """
    root0 = nx * ny
    sigma = root0 * cos + bias0 if bias0 else root0 * cos
    theta = sigma
    for h, layer in enumerate(layers):
        if h == 0 and bias0 == 0:
            rho, root = cos, root0  # the (refined) cosine is the first layer's correlation
        else:
            rho, root = _correlation(sigma, qxs[h], qys[h])
        sigma, sigma_dot = _layer_step(layer, qxs[h], qys[h], rho, ntk, root)
        if ntk:
            theta = torch.addcmul(sigma, theta, sigma_dot)
    return theta if ntk else sigma


def _cosines(xh, yh):
    """Cosines of normalized rows, recomputed from |x_hat -+ y_hat|^2 where |cos| > 1 - 1e-4.

    A BLAS dot product of two parallel unit vectors is 1 only to a few ulps; the difference of the
    vectors is exact for identical directions and accurate (relative) for nearly parallel ones.
    """
    cos = (xh @ yh.T).clamp_(-1.0, 1.0)
    near = cos.abs() > 1.0 - _REFINE
    if bool(near.any()):
        i, j = near.nonzero(as_tuple=True)
        sign = torch.sign(cos[i, j])
        gap = ((xh[i] - sign[:, None] * yh[j]) ** 2).sum(dim=1)
        cos[i, j] = sign * (1.0 - gap / 2)
    return cos


def _row_norms(x):
    """|x_i| without underflow or overflow: scaled by max_j |x_ij| first (a plain sum of squares
    turns |x| = 1e-200 into 0 and 1e200 into inf)."""
    scale = x.abs().amax(dim=1).clamp_min(torch.finfo(x.dtype).tiny)
    return scale * torch.linalg.vector_norm(x / scale[:, None], dim=1)


def _block_size(block_size, layers) -> int:
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)):
        raise TypeError(f"block_size must be a positive int; got {block_size!r}")
    if block_size < 1:
        raise ValueError(f"block_size must be a positive int; got {block_size!r}")
    block_size = int(block_size)
    cost = max([layer.activation.order**2 for layer in layers] + [1])
    if cost > 1:  # quadrature: a tile holds block_size**2 * order**2 evaluations
        block_size = min(block_size, max(1, int(math.sqrt(_QUADRATURE_BUDGET / cost))))
    return block_size


def _run_tiles(fill, tiles, device):
    """Run ``fill`` on every tile; on a multi-core CPU, tiles go to a thread pool.

    One tile is small (it should stay in cache), so torch's own intra-op threads would synchronize
    after each of the ~30 elementwise operations of a layer. Instead each thread takes whole tiles
    with intra-op threading off for the duration of the call (torch releases the GIL in its kernels);
    the tiles write disjoint parts of the output. A single tile also runs with intra-op threading
    off: on a loaded machine those synchronizations made a 200 x 200 depth-4 NTK take a second
    instead of a few hundredths, and every tile is then computed the same way.
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        for t in tiles:
            fill(t)
        return
    torch.set_num_threads(1)
    try:
        if len(tiles) == 1:
            fill(tiles[0])
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                for _ in pool.map(fill, tiles):
                    pass
    finally:
        torch.set_num_threads(threads)


def _network_kernel(X, Y, depth, activation, weight_var, bias_var, dtype, block_size, ntk):
    layers = resolve_layers(depth, activation, weight_var, bias_var)
    bias0 = check_variance(bias_var, "bias_var", positive=False)
    dtype = resolve_dtype(dtype)
    block = _block_size(block_size, layers)
    x = as_points(X, "X", dtype=dtype)
    symmetric = Y is None
    y = x if symmetric else as_points(Y, "Y", dtype=dtype, device=x.device)
    if y.shape[1] != x.shape[1]:
        raise ValueError(
            f"X and Y must have the same number of features; got X with {x.shape[1]} and Y with {y.shape[1]}"
        )
    with torch.no_grad():
        nx, ny = _row_norms(x), _row_norms(y)
        xh = x / nx.clamp_min(torch.finfo(dtype).tiny)[:, None]
        yh = y / ny.clamp_min(torch.finfo(dtype).tiny)[:, None]
        qxs = _variances(nx * nx + bias0, layers)
        qys = qxs if symmetric else _variances(ny * ny + bias0, layers)
        for name, qs, norms in (("X", qxs, nx), ("Y", qys, ny)):
            if not all(bool(torch.isfinite(q).all()) for q in qs):
                raise ValueError(
                    f"{name} is too large for float64 kernels: max |x| = {float(norms.max()):.3g} makes "
                    "Sigma(x, x) overflow; rescale the inputs (the kernels are homogeneous for bias-free ReLU)"
                )
        n, m = x.shape[0], y.shape[0]
        out = torch.empty((n, m), dtype=dtype, device=x.device)

        def fill(tile_index):
            rows, cols = tile_index
            tile = _recursion(
                nx[rows, None], ny[None, cols], _cosines(xh[rows], yh[cols]),
                [q[rows, None] for q in qxs], [q[None, cols] for q in qys],
                layers, bias0, ntk,
            )
            if symmetric and rows == cols:  # mirror the upper triangle: K(X) exactly symmetric
                tile = torch.triu(tile) + torch.triu(tile, 1).T
            out[rows, cols] = tile
            if symmetric and rows != cols:
                out[cols, rows] = tile.T

        tiles = [
            (slice(i0, min(i0 + block, n)), slice(j0, min(j0 + block, m)))
            for i0 in range(0, n, block)
            for j0 in range(i0 if symmetric else 0, m, block)
        ]
        _run_tiles(fill, tiles, x.device)
    return returns_like(X, out)


_PARAMS_DOC = """Parameters
    ----------
    X : array_like or torch.Tensor, shape (n, d)
        Input points, one per row. Numpy in gives numpy out; a tensor gives a tensor on its device.
    Y : array_like or torch.Tensor, shape (m, d), optional
        Second set of points; ``None`` means ``X`` (the result is then exactly symmetric).
    depth : int
        Number of hidden layers :math:`L \\ge 0`; ``depth=0`` is the linear kernel
        :math:`x\\cdot y + \\beta^2`.
    activation : str, Activation, callable, or a sequence of these (one per hidden layer)
        Closed forms for ``"relu"``, ``"step"``, ``nk.relu(k)``, ``"erf"``, ``"sin"``, ``"cos"``,
        ``"identity"``; ``"tanh"``, ``"gelu"``, ``"softplus"``, ``"sigmoid"`` and any callable by
        Gauss–Hermite quadrature (see :class:`~ntklib.activations.Activation` for its accuracy and cost).
    weight_var : float or sequence, optional
        :math:`c_h`, the weight variance of each layer after an activation; ``None`` (default) is
        :math:`c_\\sigma` of the layer's activation (Arora et al.'s normalization).
    bias_var : float, default 0
        :math:`\\beta^2`, added to every layer's pre-activation covariance, the first included.
    dtype : float64 (default) or float32
        Precision of the computation and of the result.
    block_size : int, default 256
        The Gram matrix is computed in tiles of ``block_size x block_size`` entries (smaller for
        quadrature activations): memory is the (n, m) result plus about ten tile-sized buffers, and
        each tile's whole recursion runs while it is in cache.

    Raises
    ------
    ValueError
        NaN/inf inputs, wrong ndim, feature-dimension mismatch, negative depth or variances, an
        unknown activation name, a list of activations whose length is not ``depth``.
    TypeError
        Non-numeric inputs or a non-integer depth.
"""


def _with_params(fn):
    """Insert the shared parameter documentation where a docstring says ``{params}``."""
    if fn.__doc__ is not None:  # None under python -OO, which strips docstrings
        fn.__doc__ = fn.__doc__.replace("{params}", _PARAMS_DOC.rstrip())
    return fn


@_with_params
def nngp(X, Y=None, *, depth, activation="relu", weight_var=None, bias_var=0.0, dtype=None, block_size=256):
    r"""The NNGP kernel :math:`\Sigma^{(L)}(x, y)` of a deep fully connected network.

    The covariance of the network output at initialization, in the infinite-width limit
    (Neal 1996; Lee et al. 2018), with the recursion of :mod:`ntklib.kernels`.

    {params}
    Returns
    -------
    K : (n, m) array or tensor

    References
    ----------
    S. Arora et al., "On exact computation with an infinitely wide neural net", NeurIPS 2019,
    arXiv:1904.11955.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> X = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> # ReLU: |x||y| kappa_1(0) = 2/pi off the diagonal
    >>> nk.nngp(X, depth=1)
    array([[1.        , 0.63661977],
           [0.63661977, 4.        ]])
    """
    return _network_kernel(X, Y, depth, activation, weight_var, bias_var, dtype, block_size, ntk=False)


@_with_params
def ntk(X, Y=None, *, depth, activation="relu", weight_var=None, bias_var=0.0, dtype=None, block_size=256):
    r"""The neural tangent kernel :math:`\Theta^{(L)}(x, y)` of a deep fully connected network.

    :math:`\Theta^{(L)}(x, y) = \lim_{\mathrm{width}\to\infty}\langle \partial_\theta f(x),
    \partial_\theta f(y)\rangle` at initialization (Jacot et al. 2018), computed by the recursion of
    :mod:`ntklib.kernels`. For ReLU with the default normalization,
    :math:`\Theta^{(L)}(x, x) = (L+1)|x|^2` exactly.

    {params}
    Returns
    -------
    K : (n, m) array or tensor

    References
    ----------
    - A. Jacot, F. Gabriel, C. Hongler, "Neural tangent kernel", NeurIPS 2018, arXiv:1806.07572.
    - S. Arora et al., "On exact computation with an infinitely wide neural net", NeurIPS 2019,
      arXiv:1904.11955.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> X = np.array([[3.0, 4.0], [0.0, 1.0]])
    >>> K = nk.ntk(X, depth=3)
    >>> K[0, 0] == 4 * 25                    # (L + 1) |x|^2, to the last bit
    np.True_
    >>> np.allclose(K, K.T), bool(np.all(np.linalg.eigvalsh(K) > 0))
    (True, True)
    """
    return _network_kernel(X, Y, depth, activation, weight_var, bias_var, dtype, block_size, ntk=True)


def kappa(u, *, depth, activation="relu", kernel="ntk", weight_var=None, bias_var=0.0):
    r"""The unit-sphere form :math:`\kappa(u)`: the kernel of two unit vectors with :math:`x\cdot y = u`.

    For unit-norm inputs every kernel of :func:`ntk` / :func:`nngp` is a function of
    :math:`u = x\cdot y` alone. For ReLU, :math:`\kappa^{(h)} = \kappa_1(\kappa^{(h-1)})` and
    :math:`\kappa_{\mathrm{NTK}}^{(h)} = \kappa_{\mathrm{NTK}}^{(h-1)}\kappa_0(\kappa^{(h-1)}) +
    \kappa^{(h)}` with :math:`\kappa^{(0)} = \kappa_{\mathrm{NTK}}^{(0)} = u`,
    :math:`\kappa_0(u) = (\pi - \arccos u)/\pi` and
    :math:`\kappa_1(u) = (u(\pi - \arccos u) + \sqrt{1-u^2})/\pi`.
    (Bietti & Bach's :math:`L`-layer kernel is ``depth = L - 1`` here.)

    Parameters
    ----------
    u : float, array_like or torch.Tensor
        Cosines in :math:`[-1, 1]`, any shape.
    depth, activation, weight_var, bias_var
        As in :func:`ntk`.
    kernel : {"ntk", "nngp"}
        Which kernel.

    Returns
    -------
    kappa : same kind and shape as ``u`` (float64)

    Examples
    --------
    >>> import ntklib as nk
    >>> float(nk.kappa(1.0, depth=4))                         # (L + 1) at u = 1
    5.0
    >>> # kappa_1(0) = 1/pi
    >>> float(nk.kappa(0.0, depth=1, kernel="nngp")) * 3.141592653589793
    1.0
    """
    if kernel not in ("ntk", "nngp"):
        raise ValueError(f"kernel must be 'ntk' or 'nngp'; got {kernel!r}")
    layers = resolve_layers(depth, activation, weight_var, bias_var)
    bias0 = check_variance(bias_var, "bias_var", positive=False)
    t = to_tensor(u, "u", dtype=torch.float64)
    if t.numel() and bool((t.abs() > 1).any()):
        raise ValueError("u must lie in [-1, 1] (it is the cosine x.y of unit vectors)")
    with torch.no_grad():
        one = torch.ones((), dtype=torch.float64, device=t.device)
        qs = _variances(one + bias0, layers)
        flat = t.reshape(-1)
        chunk = _block_size(512, layers) ** 2  # bounded memory for quadrature activations too
        out = torch.cat(
            [_recursion(one, one, flat[i:i + chunk], qs, qs, layers, bias0, kernel == "ntk")
             for i in range(0, max(flat.numel(), 1), chunk)]
        )[: flat.numel()].reshape(t.shape)
    if isinstance(u, torch.Tensor):
        return out
    out = out.cpu().numpy()
    return out[()] if out.ndim == 0 else out
