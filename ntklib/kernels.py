r"""NNGP and NTK of a deep fully connected network (Arora et al. 2019) and their unit-sphere forms.

The network (Arora et al. 2019, eq. 6) with :math:`L` = ``depth`` hidden layers is
:math:`f^{(h)} = W^{(h)} g^{(h-1)} + b^{(h)}`, :math:`g^{(0)} = x`,
:math:`g^{(h)} = \sqrt{c_\sigma/d_h}\,\sigma_h(f^{(h)})`, :math:`f = f^{(L+1)}`, weights i.i.d.
:math:`\mathcal N(0, 1)` and biases :math:`b^{(h+1)} \sim \mathcal N(0, \beta_h^2)` (``bias_var[h]``
:math:`=\beta_h^2`, :math:`h = 0, \dots, L`, the last the output layer's; a scalar means the same in
every layer; default 0). Its kernels follow the recursion (chapter 1 of the book)

.. math::

    \Sigma^{(0)}(x, y) &= x\cdot y + \beta_0^2, \qquad \Theta^{(0)} = \Sigma^{(0)},\\
    \Sigma^{(h)}(x, y) &= c_h\, \mathbb E[\sigma_h(u)\sigma_h(v)] + \beta_h^2, \qquad
    \dot\Sigma^{(h)}(x, y) = c_h\, \mathbb E[\sigma_h'(u)\sigma_h'(v)],\\
    \Theta^{(h)} &= \Theta^{(h-1)}\,\dot\Sigma^{(h)} + \Sigma^{(h)}, \qquad h = 1, \dots, L,

with :math:`(u, v)` centred Gaussian with the covariance :math:`\Sigma^{(h-1)}` on :math:`\{x, y\}`
and :math:`c_h` = ``weight_var`` (by default :math:`c_{\sigma_h}`). The NNGP is
:math:`\Sigma^{(L)}`, the NTK :math:`\Theta^{(L)}`. One layer of it is :func:`layer_step` (built on
:func:`layer_duals`), which runs on torch tensors and on mpmath numbers; the kernel objects
:class:`NTK` and :class:`NNGP` follow the library's kernel contract (``K(X, Y=None)``, ``diag``,
``kappa``, a repr that reads back as code).

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

**Tiny and huge inputs.** Norms are computed scaled (no :math:`|x|^2` underflows to 0 on the way), and
the product :math:`\Sigma^{(h)}(x, x)\Sigma^{(h)}(y, y)` under the square root of :math:`\rho` is scaled
by powers of two wherever it would pass the dtype's range: :math:`|x| = 10^{-100}` once made it 0 and
forced :math:`\rho = 1` (33 % off at depth 2). Inputs are refused only where a variance or a kernel
value itself overflows, with a message naming the input, the activations and the dtype.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._arrays import (
    as_points,
    call_repr,
    check_bool,
    check_choice,
    check_depth,
    check_same_features,
    check_variance,
    cosine_argument,
    cosine_argument_mp,
    max_abs,
    per_layer,
    resolve_dtype,
    returns_like,
    scalar_or_array,
    to_tensor,
)
from ._tiles import tiled_gram
from .activations import Activation, Identity, ReLUk, get_activation

__all__ = ["ntk", "nngp", "kappa", "NTK", "NNGP", "Layer", "layer_duals", "layer_step", "resolve_layers"]

#: first-layer cosines with 1 - |cos| below this are recomputed from |x_hat -+ y_hat|^2
_REFINE = 1e-4
#: correlations within this many ulps of +-1 are set to +-1 (later layers)
_SNAP_ULPS = 8
#: budget of float entries for the temporaries of one tile of a quadrature activation
_QUADRATURE_BUDGET = 1 << 22


@dataclass(frozen=True)
class Layer:
    r"""One hidden layer :math:`h` of the recursion and the weight layer after it.

    Parameters
    ----------
    activation : Activation
        :math:`\sigma_h`.
    weight_var : float
        :math:`c_h`, the variance of the weights that read :math:`\sigma_h` (those of layer
        :math:`h + 1`).
    bias_var : float
        :math:`\beta_h^2`, the bias variance of that weight layer (the one producing
        :math:`f^{(h+1)}`).
    weight_is_c_sigma : bool, default False
        Whether ``weight_var`` is :math:`c_\sigma` of the activation (then a high-precision
        evaluation uses the exact constant rather than its float).

    Examples
    --------
    >>> import ntklib as nk
    >>> layer = nk.kernels.Layer(nk.relu(), 2.0, 0.0)
    >>> layer.activation, layer.weight_var, layer.bias_var
    (relu(1), 2.0, 0.0)
    """

    activation: Activation
    weight_var: float
    bias_var: float
    weight_is_c_sigma: bool = False

    def __post_init__(self):
        if self.weight_is_c_sigma is not True and self.weight_is_c_sigma is not False:  # "no" is not true
            object.__setattr__(self, "weight_is_c_sigma", check_bool(self.weight_is_c_sigma, "weight_is_c_sigma"))


def _bias_vars(bias_var, depth: int) -> list[float]:
    """One bias variance per weight layer (depth + 1 of them, the output layer's last)."""
    if isinstance(bias_var, (Sequence, np.ndarray)) and not isinstance(bias_var, str):
        values = list(bias_var)
        if len(values) != depth + 1:
            raise ValueError(
                f"bias_var has {len(values)} entries but depth={depth}; give a scalar or depth + 1 = "
                f"{depth + 1} entries (one per weight layer, the output layer's last)"
            )
    else:
        values = [bias_var] * (depth + 1)
    return [check_variance(v, "bias_var", positive=False) for v in values]


def _architecture(depth, activation="relu", weight_var=None, bias_var=0.0) -> tuple[float, list[Layer]]:
    """(beta_0^2, one :class:`Layer` per hidden layer) from the public arguments, validated."""
    depth = check_depth(depth)
    biases = _bias_vars(bias_var, depth)
    if isinstance(activation, (list, tuple)):
        acts = per_layer(list(activation), "activation", depth)
    else:
        acts = [activation] * depth
        get_activation(activation)  # validate even when depth == 0
    acts = [get_activation(a) for a in acts]
    wvs = per_layer(weight_var, "weight_var", depth)
    layers = []
    for act, wv, b in zip(acts, wvs, biases[1:]):
        default = wv is None
        wv = act.c_sigma if default else check_variance(wv, "weight_var", positive=True)
        layers.append(Layer(act, float(wv), b, default))
    return biases[0], layers


def resolve_layers(depth, activation="relu", weight_var=None, bias_var=0.0) -> list[Layer]:
    """Validate the architecture arguments and return one :class:`Layer` per hidden layer.

    Parameters
    ----------
    depth, activation, weight_var, bias_var
        As in :func:`ntk`. The first weight layer's bias variance (``bias_var[0]``) belongs to no
        hidden layer: it is the first entry of ``bias_var``.

    Returns
    -------
    list of Layer

    Examples
    --------
    >>> import ntklib as nk
    >>> layers = nk.kernels.resolve_layers(2, bias_var=[0.5, 0.1, 0.2])
    >>> [layer.bias_var for layer in layers]
    [0.1, 0.2]
    """
    return _architecture(depth, activation, weight_var, bias_var)[1]


def _is_torch(*values) -> bool:
    for v in values:  # a loop, not any(genexpr): this runs once per layer per high-precision node
        if isinstance(v, torch.Tensor):
            return True
    return False


def _mp_weight(layer: Layer):
    import mpmath as mp

    if not layer.weight_is_c_sigma:
        return mp.mpf(layer.weight_var)
    # the exact c_sigma, cached on the (frozen) layer per precision in bits: recomputing it was a
    # third of kappa_mp's time (a kernel object keeps its layers, so repeated calls hit the cache)
    cache = layer.__dict__.get("_mp_c_sigma_cache")
    if cache is None:
        cache = {}
        object.__setattr__(layer, "_mp_c_sigma_cache", cache)
    prec = mp.mp.prec
    if prec not in cache:
        cache[prec] = layer.activation.c_sigma_mp()
    return cache[prec]


def layer_duals(layer: Layer, q11, q12, q22, *, deriv=True, rho=None, root=None):
    r"""One layer's :math:`(\Sigma^{(h)}, \dot\Sigma^{(h)})` from the previous layer's covariance.

    .. math::

        \Sigma^{(h)} = c_h\,\mathbb E[\sigma_h(u)\sigma_h(v)] + \beta_h^2, \qquad
        \dot\Sigma^{(h)} = c_h\,\mathbb E[\sigma_h'(u)\sigma_h'(v)], \qquad
        (u, v) \sim \mathcal N\Big(0, \begin{bmatrix} q_{11} & q_{12} \\ q_{12} & q_{22}\end{bmatrix}\Big).

    This is where an activation's duals and the bias convention enter the kernels:
    :func:`layer_step` (the fully connected recursion) and the CNTK's per-pixel step both call it.

    Parameters
    ----------
    layer : Layer
        The activation :math:`\sigma_h`, :math:`c_h` and :math:`\beta_h^2`.
    q11, q12, q22 : torch.Tensor or mpmath numbers
        The previous layer's variances and covariance (tensors broadcast together). With mpmath
        numbers (or Python floats) the layer is evaluated at the current mpmath precision, with the
        exact :math:`c_\sigma` when ``layer.weight_is_c_sigma`` (closed-form activations only).
    deriv : bool, default True
        Also compute :math:`\dot\Sigma^{(h)}` (else ``None`` is returned for it); a non-bool (``"no"``)
        is a TypeError.
    rho : optional
        The correlation :math:`q_{12}/\sqrt{q_{11}q_{22}}` if the caller has it exactly (e.g. a
        refined first-layer cosine); by default computed, and for tensors set to :math:`\pm 1`
        within 8 ulps of it (see :mod:`ntklib.kernels`); for mpmath clipped to :math:`[-1, 1]`.
    root : torch.Tensor, optional
        :math:`\sqrt{q_{11}q_{22}}` if the caller has it (computed without overflow or underflow
        otherwise).

    Returns
    -------
    sigma, sigma_dot
        Same kind as the inputs; ``sigma_dot`` is ``None`` when ``deriv`` is False.

    Examples
    --------
    >>> import torch, ntklib as nk
    >>> relu = nk.kernels.Layer(nk.relu(), 2.0, 0.0)
    >>> q, zero = torch.tensor([4.0, 0.0], dtype=torch.float64)
    >>> s, sd = nk.kernels.layer_duals(relu, q, zero, q)
    >>> float(s) * 3.141592653589793, float(sd)         # 4 kappa_1(0), kappa_0(0)
    (4.0, 0.5)
    >>> import mpmath as mp
    >>> s, sd = nk.kernels.layer_duals(relu, mp.mpf(1), mp.mpf(0), mp.mpf(1))
    >>> s == 1 / mp.pi, sd == mp.mpf(1) / 2
    (True, True)
    """
    if deriv is not True and deriv is not False:  # identity tests: this runs per high-precision node
        deriv = check_bool(deriv, "deriv")
    act = layer.activation
    if _is_torch(q11, q12, q22, rho):
        if root is None:
            root = _root(q11, q22)
        if rho is None:
            rho = _rho(q12, root)
        # c_h folded into the duals (no pass of its own for ReLU); their results are new tensors
        sigma, sigma_dot = act.duals(q11, q22, rho, deriv=deriv, root=root, scale=layer.weight_var)
        if layer.bias_var:
            sigma.add_(layer.bias_var)
        return sigma, sigma_dot
    import mpmath as mp

    mpf = mp.mpf
    same = q11 is q22  # the unit-sphere recursion: sqrt(q11 q22) = q11, no square root
    q11, q12 = (q11 if type(q11) is mpf else mpf(q11)), (q12 if type(q12) is mpf else mpf(q12))
    q22 = q11 if same else (q22 if type(q22) is mpf else mpf(q22))
    if not q11 >= 0 or not (same or q22 >= 0):
        raise ValueError(f"q11 and q22 must be >= 0 (variances); got {q11} and {q22}")
    r = q11 if same else mp.sqrt(q11 * q22)
    if rho is None:
        if r:
            rho = q12 / r
            if not -1 <= rho <= 1:  # rounding past +-1: clip; NaN: refuse
                if not (rho > 1 or rho < -1):
                    raise ValueError(f"q12 must be a finite covariance; got {q12}")
                rho = mpf(1) if rho > 0 else mpf(-1)
        else:
            rho = mpf(0)
    else:
        rho = rho if type(rho) is mpf else mpf(rho)
        if not -1 <= rho <= 1:
            raise ValueError(f"rho must lie in [-1, 1] (a correlation); got {rho}")
    # checked above with the fewest comparisons (they were a tenth of the high-precision time)
    e, ed = act.duals(q11, q22, rho, deriv=deriv, root=r, check=False)
    w = _mp_weight(layer)
    sigma = w * e + layer.bias_var if layer.bias_var else w * e
    return sigma, (w * ed if deriv else None)


def layer_step(layer: Layer, q11, q12, q22, theta=None, *, rho=None, root=None):
    r"""One hidden layer of the NNGP/NTK recursion: :math:`(q_{11}, q_{12}, q_{22}, \Theta)` to the next
    :math:`(q_{12}, \Theta)`.

    .. math::

        \Sigma^{(h)} = c_h\,\mathbb E[\sigma_h(u)\sigma_h(v)] + \beta_h^2, \qquad
        \Theta^{(h)} = \Theta^{(h-1)}\,\dot\Sigma^{(h)} + \Sigma^{(h)}

    (see :func:`layer_duals`). The next layer's variances are the same step on
    :math:`(q_{11}, q_{11}, q_{11})` and :math:`(q_{22}, q_{22}, q_{22})`.

    Parameters
    ----------
    layer : Layer
        The hidden layer (activation, weight and bias variance).
    q11, q12, q22 : torch.Tensor or mpmath numbers
        :math:`\Sigma^{(h-1)}(x, x)`, :math:`\Sigma^{(h-1)}(x, y)`, :math:`\Sigma^{(h-1)}(y, y)`
        (tensors broadcast together; mpmath numbers are evaluated at the current precision).
    theta : optional
        :math:`\Theta^{(h-1)}(x, y)`; ``None`` for the NNGP alone (no derivative is computed).
    rho, root : optional
        As in :func:`layer_duals`.

    Returns
    -------
    q12, theta
        :math:`\Sigma^{(h)}(x, y)` and :math:`\Theta^{(h)}(x, y)` (``None`` if ``theta`` is).

    Examples
    --------
    >>> import torch, ntklib as nk
    >>> layer = nk.kernels.Layer(nk.relu(), 2.0, 0.0)
    >>> one = torch.ones((), dtype=torch.float64)
    >>> # u = 1: kappa = 1, NTK 2
    >>> s, t = nk.kernels.layer_step(layer, one, one, one, one)
    >>> float(s), float(t)
    (1.0, 2.0)
    """
    sigma, sigma_dot = layer_duals(layer, q11, q12, q22, deriv=theta is not None, rho=rho, root=root)
    if theta is None:
        return sigma, None
    if isinstance(sigma, torch.Tensor):
        return sigma, torch.addcmul(sigma, theta, sigma_dot)
    return sigma, theta * sigma_dot + sigma


def _root(q11, q22):
    """sqrt(q11 q22) as a tensor, also where the product overflows or underflows (but the root does not)."""
    root = torch.sqrt(q11 * q22)
    if _underflows(root) or not bool(torch.isfinite(root).all()):
        root = _scaled_root(q11, q22)
    return root


def _underflows(root) -> bool:
    """Whether some root^2 = q11 q22 fell below the smallest normal number (lost digits, or 0): then
    sqrt(q11 * q22) is no longer the root of two normal variances (issue 10: |x| = 1e-100 made it 0 and
    forced rho = 1). Exact zeros (a zero vector) take the scaled path too, where they stay 0."""
    return bool(root.numel()) and float(root.amin()) < math.sqrt(torch.finfo(root.dtype).tiny)


def _scaled_root(q11, q22):
    """sqrt(q11 q22) with each factor scaled by an even power of two first: the same bits as
    sqrt(q11 * q22) where that product is a normal number (scaling by 2^2k is exact and commutes with
    the rounding), and right where only the product overflows or underflows."""
    limit = _maxexp(q11.dtype) // 2 - 1  # 2^limit and 2^-limit are normal numbers

    def split(q):
        k = torch.frexp(q)[1].div(2, rounding_mode="floor").clamp_(-limit, limit)
        inv = torch.ldexp(torch.ones_like(q), -k)
        return q * inv * inv, torch.ldexp(torch.ones_like(q), k)  # q 2^-2k in two exact steps

    a, ha = split(q11)
    b, hb = split(q22)
    return torch.sqrt(a * b) * ha * hb


def _maxexp(dtype) -> int:
    """The least e with 2^e past the dtype's range (numpy's finfo.maxexp: 1024 for float64, 128 for float32)."""
    return math.frexp(torch.finfo(dtype).max)[1]


def _root_is_scaled(qx, qy, finfo) -> bool:
    """Whether sqrt(qx_i qy_j) needs the scaled root for some pair: a product past the largest or below
    the smallest normal number (decided from the extremes; the positive ones, a zero stays 0)."""
    if not qx.numel() or not qy.numel():
        return False
    if float(qx.max()) * float(qy.max()) > finfo.max:
        return True
    px, py = qx[qx > 0], qy[qy > 0]
    return bool(px.numel() and py.numel()) and float(px.min()) * float(py.min()) < finfo.tiny


def pow2_scale(t: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``t * 2**k`` entrywise (``k`` an integer tensor broadcasting against ``t``), exact except where
    the result is subnormal, also where ``2**k`` itself is not representable (torch.ldexp forms it):
    applied in steps of at most 2^(maxexp - 2), each moving ``t`` towards the result."""
    limit = _maxexp(t.dtype) - 2
    k = torch.as_tensor(k, device=t.device)
    while k.numel() and bool((k != 0).any()):
        step = k.clamp(-limit, limit)
        t = t * torch.ldexp(torch.ones_like(step, dtype=t.dtype), step)
        k = k - step
    return t


def _rho(sigma, root):
    """sigma / root clipped to [-1, 1] and set to +-1 within 8 ulps of it (root: the product of the
    two standard deviations). The CNTK's pixel step goes through it (layer_duals without rho).

    Reductions decide the rare cases, so the common one costs the division and the clip only: the
    root is clamped away from 0 only if its minimum is not positive, and the snap to +-1 runs only if
    the extremes of rho reach the 8-ulp band (``aminmax`` reads rho once and writes nothing, where
    ``rho.abs() >= edge`` wrote two arrays: about 1.1 ms of a 3x32x32 image pair's 1M pixel pairs)."""
    finfo = torch.finfo(sigma.dtype)
    if not root.numel() or not bool(root.amin() > 0):
        root = root.clamp_min(finfo.tiny)
    rho = torch.div(sigma, root).clamp_(-1.0, 1.0)
    if not rho.numel():
        return rho
    edge = 1.0 - _SNAP_ULPS * finfo.eps
    lo, hi = torch.aminmax(rho)
    if bool(hi >= edge) or bool(lo <= -edge):
        rho = torch.where(rho.abs() >= edge, torch.sign(rho), rho)
    return rho


def _variances(q0: torch.Tensor, layers: list[Layer]) -> list[torch.Tensor]:
    """Diagonal Sigma^(h)(x, x) for h = 0..L-1 (the same step at rho = 1; sqrt(q q) = q)."""
    out = [q0]
    one = torch.ones_like(q0)
    for layer in layers[:-1]:
        out.append(layer_duals(layer, out[-1], out[-1], out[-1], deriv=False, rho=one, root=out[-1])[0])
    return out


def _diagonal(q0: torch.Tensor, layers: list[Layer], ntk: bool) -> torch.Tensor:
    """K(x, x) for each entry of q0 = Sigma^(0)(x, x): the recursion at rho = 1, O(n) work."""
    q, theta = q0, (q0 if ntk else None)
    one = torch.ones_like(q0)
    for layer in layers:
        q, theta = layer_step(layer, q, q, q, theta, rho=one, root=q)
    return theta if ntk else q


def _recursion(nx, ny, cos, qxs, qys, layers, bias0, ntk: bool, big):
    """Sigma^(L) (or Theta^(L) if ``ntk``) entrywise, from input norms, cosines and variances.

    All arguments broadcast against ``cos``: ``nx``/``ny`` are the input norms, ``qxs[h]``/``qys[h]``
    the variances Sigma^(h)(x, x) / Sigma^(h)(y, y); ``big[h]`` says whether their products can
    overflow or underflow (then the root is computed scaled, see :func:`_root_is_scaled`). This is the
    whole of the recursion; the public functions only feed it tiles.
    """
    root0 = nx * ny
    sigma = root0 * cos + bias0 if bias0 else root0 * cos
    theta = sigma if ntk else None
    for h, layer in enumerate(layers):
        if h == 0 and bias0 == 0:
            rho, root = cos, root0  # the (refined) cosine is the first layer's correlation
        else:
            rho = None
            root = _scaled_root(qxs[h], qys[h]) if big[h] else torch.sqrt(qxs[h] * qys[h])
        sigma, theta = layer_step(layer, qxs[h], sigma, qys[h], theta, rho=rho, root=root)
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


def _tile_cost(layers) -> int:
    """Relative cost of one kernel entry: the largest of the activations' ``tile_cost``."""
    return max([layer.activation.tile_cost for layer in layers] + [1])


def _block_size(block_size, layers) -> int:
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)):
        raise TypeError(f"block_size must be a positive int; got {block_size!r}")
    if block_size < 1:
        raise ValueError(f"block_size must be a positive int; got {block_size!r}")
    block_size = int(block_size)
    cost = _tile_cost(layers)
    if cost > 1:  # quadrature: a tile holds block_size**2 * tile_cost evaluations
        block_size = min(block_size, max(1, int(math.sqrt(_QUADRATURE_BUDGET / cost))))
    return block_size


def _activations_named(layers) -> str:
    names = list(dict.fromkeys(layer.activation.name for layer in layers))
    return f"activation {', '.join(map(repr, names))}" if names else "no activation (depth=0)"


def _homogeneous(bias0, layers) -> bool:
    """Whether K(aX, bY) = ab K(X, Y) for a, b > 0: no bias, every activation the ReLU or the identity."""
    return bias0 == 0 and all(
        layer.bias_var == 0 and (isinstance(layer.activation, Identity)
                                 or isinstance(layer.activation, ReLUk) and layer.activation.k == 1)
        for layer in layers)


def _overflow_message(start, dtype, bias0, layers) -> str:
    """``start`` + the dtype's range + what to do (the homogeneity hint where it holds)."""
    hint = ("; these kernels are positively homogeneous (no bias, ReLU/identity): K(aX, bY) = ab K(X, Y) "
            "for a, b > 0" if _homogeneous(bias0, layers) else "")
    advice = "rescale the inputs" + (" or pass dtype=torch.float64" if dtype != torch.float64 else "")
    return f"{start} (the largest {dtype} is {torch.finfo(dtype).max:.3g}); {advice}{hint}"


def _too_large(name, norms, dtype, what, bias0, layers):
    return ValueError(_overflow_message(
        f"{name} is too large for {dtype} kernels with {_activations_named(layers)}: max |x| = "
        f"{float(norms.max()):.3g} makes {what} overflow", dtype, bias0, layers))


def _nan_error(what, dtype, layers):
    return ValueError(
        f"the dual of {_activations_named(layers)} returned NaN for {what} in {dtype}: this kernel cannot be "
        "computed at these inputs (a closed-form dual should be finite wherever the kernel is; please report it)"
    )


def _check_variances(name, qs, norms, dtype, bias0, layers):
    """Refuse variances Sigma^(h)(x, x) that overflowed (naming the input, activation and dtype) or are NaN."""
    for h, q in enumerate(qs):
        if bool(torch.isfinite(q).all()):
            continue
        if h and bool(torch.isnan(q).any()):
            raise _nan_error(f"the variance Sigma^({h})(x, x) of a point of {name} with itself", dtype, layers[:h])
        what = "|x|^2" if h == 0 else f"the variance Sigma^({h})(x, x) of a point with itself"
        raise _too_large(name, norms, dtype, what, bias0, layers)


def _network_kernel(X, Y, depth, activation, weight_var, bias_var, dtype, block_size, ntk):
    bias0, layers = _architecture(depth, activation, weight_var, bias_var)
    dtype = resolve_dtype(dtype)
    block = _block_size(block_size, layers)
    x = as_points(X, "X", dtype=dtype)
    symmetric = Y is None
    y = x if symmetric else as_points(Y, "Y", dtype=dtype, device=x.device)
    check_same_features(x, y)
    finfo = torch.finfo(dtype)
    with torch.no_grad():
        nx, ny = _row_norms(x), _row_norms(y)
        xh = x / nx.clamp_min(finfo.tiny)[:, None]
        yh = y / ny.clamp_min(finfo.tiny)[:, None]
        qxs = _variances(nx * nx + bias0, layers)
        qys = qxs if symmetric else _variances(ny * ny + bias0, layers)
        for name, qs, norms in (("X", qxs, nx), ("Y", qys, ny)):
            _check_variances(name, qs, norms, dtype, bias0, layers)
        big = [_root_is_scaled(q, p, finfo) for q, p in zip(qxs, qys)]
        # |K(x, y)| <= sqrt(K(x, x) K(y, y)) (a PSD kernel): with finite diagonals no entry overflows;
        # an infinite diagonal of K(X) is itself an overflowing entry. The tiles are still checked (one
        # read of each): a dual that returns NaN off the diagonal must not give a silent NaN
        overflow = _overflow_message(
            f"the kernel values overflow {dtype} with {_activations_named(layers)} (max |x| = {max_abs(nx):.3g}, "
            f"max |y| = {max_abs(ny):.3g})",
            dtype, bias0, layers)
        for name, q in (("X", qxs[0]),) if symmetric else (("X", qxs[0]), ("Y", qys[0])):
            diagonal = _diagonal(q, layers, ntk)
            if bool(torch.isnan(diagonal).any()):
                raise _nan_error(f"K(x, x) of a point of {name}", dtype, layers)
            if symmetric and bool(torch.isinf(diagonal).any()):
                raise ValueError(overflow)
        n, m = x.shape[0], y.shape[0]
        out = torch.empty((n, m), dtype=dtype, device=x.device)
        threads = torch.get_num_threads()  # our own pool, one intra-op thread each (ntklib._tiles)

        def tile(rows, cols, diagonal):
            with torch.no_grad():  # grad mode is per thread
                t = _recursion(
                    nx[rows, None], ny[None, cols], _cosines(xh[rows], yh[cols]),
                    [q[rows, None] for q in qxs], [q[None, cols] for q in qys],
                    layers, bias0, ntk, big,
                )
            if not bool(torch.isfinite(t).all()):
                if bool(torch.isnan(t).any()):
                    raise _nan_error("some kernel entries K(x, y)", dtype, layers)
                raise ValueError(overflow)
            return t

        tiled_gram(tile, n, None if symmetric else m, block=block, out=out, threads=threads if threads > 1 else None)
    return returns_like(X, out)


_PARAMS_DOC = """Parameters
    ----------
    X : array_like or torch.Tensor, shape (n, d)
        Input points, one per row. Numpy in gives numpy out; a tensor gives a tensor on its device.
        Any real dtype (integers, float16, bfloat16) is converted exactly to ``dtype``; a tensor that
        requires grad is computed on its detached values (the result requires no grad).
    Y : array_like or torch.Tensor, shape (m, d), optional
        Second set of points; ``None`` means ``X`` (the result is then exactly symmetric).
    depth : int
        Number of hidden layers :math:`L \\ge 0`; ``depth=0`` is the linear kernel
        :math:`x\\cdot y + \\beta^2`.
    activation : str, Activation, callable, or a sequence of these (one per hidden layer)
        Closed forms for ``"relu"``, ``"step"``, ``nk.relu(k)``, ``"erf"``, ``"sin"``, ``"cos"``,
        ``"identity"``, ``"leaky_relu"``, ``"abs"``, ``"sign"``, ``"gelu"``; ``"tanh"``, ``"softplus"``,
        ``"sigmoid"`` and any callable by quadrature (see :class:`~ntklib.activations.Quadrature` for
        its accuracy, its error estimate and its cost).
    weight_var : float or sequence, optional
        :math:`c_h`, the weight variance of each layer after an activation; ``None`` (default) is
        :math:`c_\\sigma` of the layer's activation (Arora et al.'s normalization).
    bias_var : float or sequence of depth + 1 floats, default 0
        Bias variances :math:`\\beta_h^2`: entry :math:`h` is that of the weight layer producing
        :math:`f^{(h+1)}`, added to :math:`\\Sigma^{(h)}` (the last entry is the output layer's). A
        scalar is the same bias variance in every layer.
    dtype : float64 (default) or float32
        Precision of the computation and of the result.
    block_size : int (numpy integers too), default 256
        The Gram matrix is computed in tiles of ``block_size x block_size`` entries (smaller for
        quadrature activations): memory is the (n, m) result plus about ten tile-sized buffers, and
        each tile's whole recursion runs while it is in cache. On a multi-core CPU the tiles are
        spread over ``torch.get_num_threads()`` threads of a pool of our own, each running its tiles
        on one intra-op thread; no global setting is changed (see ``ntklib._tiles``).
"""

_RAISES_DOC = """Raises
    ------
    ValueError
        NaN/inf inputs, wrong ndim, feature-dimension mismatch, negative depth or variances, an
        unknown activation name, a list of activations whose length is not ``depth``, a ``bias_var``
        sequence whose length is not ``depth + 1``; inputs so large that the kernel values, or the
        variances of a point with itself, overflow the dtype (the message names the input, the
        activations and the dtype: float64 takes :math:`|x|` up to about 1.3e154, float32 up to 1.8e19;
        tiny inputs are fine, their kernel is computed down to where it underflows itself); a dual
        that returns NaN (never a silent NaN kernel).
    TypeError
        Non-numeric inputs, a non-integer depth or ``block_size``.
"""


def _with_params(fn):
    """Insert the shared parameter (and error) documentation where a docstring says ``{params}`` (``{raises}``)."""
    if fn.__doc__ is not None:  # None under python -OO, which strips docstrings
        fn.__doc__ = (fn.__doc__.replace("{params}", _PARAMS_DOC.rstrip() + "\n")  # a blank line before Returns
                      .replace("{raises}", _RAISES_DOC.rstrip() + "\n"))
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

    {raises}
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

    {raises}
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
        Cosines in :math:`[-1, 1]`, any shape. A dot product of unit vectors lands a few ulps past
        :math:`\pm1`: up to 8 ulps of ``u``'s precision (float32 for a float32 ``u``, float64
        otherwise) past :math:`\pm1` is taken as :math:`\pm1`.
    depth, activation, weight_var, bias_var
        As in :func:`ntk`.
    kernel : {"ntk", "nngp"}
        Which kernel.

    Returns
    -------
    kappa : same kind and shape as ``u`` (float64)

    Raises
    ------
    ValueError
        If some :math:`|u|` is more than 8 ulps past 1 (the message gives the largest), or the
        architecture is invalid (as in :func:`ntk`).

    Examples
    --------
    >>> import ntklib as nk
    >>> float(nk.kappa(1.0, depth=4))                         # (L + 1) at u = 1
    5.0
    >>> # kappa_1(0) = 1/pi
    >>> float(nk.kappa(0.0, depth=1, kernel="nngp")) * 3.141592653589793
    1.0
    """
    kernel = check_choice(kernel, "kernel", ("ntk", "nngp"))
    bias0, layers = _architecture(depth, activation, weight_var, bias_var)
    t = cosine_argument(u)
    with torch.no_grad():
        one = torch.ones((), dtype=torch.float64, device=t.device)
        qs = _variances(one + bias0, layers)
        big = [_root_is_scaled(q, q, torch.finfo(torch.float64)) for q in qs]  # a tiny weight_var: q^2 underflows
        flat = t.reshape(-1)
        chunk = _block_size(512, layers) ** 2  # bounded memory for quadrature activations too
        out = torch.cat(
            [_recursion(one, one, flat[i:i + chunk], qs, qs, layers, bias0, kernel == "ntk", big)
             for i in range(0, max(flat.numel(), 1), chunk)]
        )[: flat.numel()].reshape(t.shape)
    return scalar_or_array(u, out)


class _NetworkKernel:
    """The kernel contract of :func:`ntk` / :func:`nngp` as an object (see :class:`NTK`)."""

    _kernel = "ntk"

    def __init__(self, depth, activation="relu", weight_var=None, bias_var=0.0):
        self._bias0, self._layers = _architecture(depth, activation, weight_var, bias_var)
        self._args = (depth, activation, weight_var, bias_var)

    # read-only: every method uses the layers resolved once, at construction
    depth = property(lambda self: self._args[0], doc="The number of hidden layers (read-only).")
    activation = property(lambda self: self._args[1], doc="The activation(s), as given (read-only).")
    weight_var = property(lambda self: self._args[2], doc="The weight variance(s), as given (read-only).")
    bias_var = property(lambda self: self._args[3], doc="The bias variance(s), as given (read-only).")

    def _params(self):
        return dict(depth=self.depth, activation=self.activation, weight_var=self.weight_var,
                    bias_var=self.bias_var)

    def __call__(self, X, Y=None, *, dtype=None, block_size=256):
        """The Gram matrix :math:`K(x_i, y_j)`.

        Parameters
        ----------
        X : array_like or torch.Tensor, shape (n, d)
            Input points, one per row.
        Y : array_like or torch.Tensor, shape (m, d), optional
            ``None`` means ``X`` (the result is then exactly symmetric).
        dtype, block_size
            As in :func:`ntk`.

        Returns
        -------
        K : (n, m) array or tensor (the kind of ``X``)

        Examples
        --------
        >>> import numpy as np, ntklib as nk
        >>> X = np.eye(2)
        >>> bool(np.array_equal(nk.NTK(depth=1)(X), nk.ntk(X, depth=1)))
        True
        """
        fn = ntk if self._kernel == "ntk" else nngp
        return fn(X, Y, dtype=dtype, block_size=block_size, **self._params())

    def diag(self, X, *, dtype=None):
        """The diagonal :math:`K(x_i, x_i)`, from the variance recursion alone (:math:`O(n)`).

        Parameters
        ----------
        X : array_like or torch.Tensor, shape (n, d)
            Input points, one per row.
        dtype : float64 (default) or float32
            Precision of the computation and of the result.

        Returns
        -------
        d : (n,) array or tensor (the kind of ``X``)

        Raises
        ------
        ValueError
            If the diagonal overflows the dtype (or the input is invalid, as in :func:`ntk`).

        Examples
        --------
        >>> import numpy as np, ntklib as nk
        >>> nk.NTK(depth=3).diag(np.array([[3.0, 4.0]]))  # (L + 1) |x|^2 for ReLU
        array([100.])
        """
        dtype = resolve_dtype(dtype)
        x = as_points(X, "X", dtype=dtype)
        with torch.no_grad():
            nx = _row_norms(x)
            d = _diagonal(nx * nx + self._bias0, self._layers, self._kernel == "ntk")
        if not bool(torch.isfinite(d).all()):
            if bool(torch.isnan(d).any()):
                raise _nan_error("K(x, x)", dtype, self._layers)
            raise _too_large("X", nx, dtype, "K(x, x)", self._bias0, self._layers)
        return returns_like(X, d)

    def kappa(self, u):
        """The unit-sphere form :math:`\\kappa(u)` (:func:`kappa` with this kernel's parameters).

        Parameters
        ----------
        u : float, array_like or torch.Tensor
            Cosines in :math:`[-1, 1]`.

        Returns
        -------
        kappa : same kind and shape as ``u`` (float64)

        Examples
        --------
        >>> import ntklib as nk
        >>> float(nk.NTK(depth=2).kappa(1.0))
        3.0
        """
        return kappa(u, kernel=self._kernel, **self._params())

    def kappa_mp(self, u):
        """:math:`\\kappa(u)` for one number ``u`` in mpmath, at the current mpmath precision.

        The same recursion (:func:`layer_step`) in mpmath, with the exact :math:`c_\\sigma` of the
        layers whose ``weight_var`` is ``None``; closed-form activations only.

        Parameters
        ----------
        u : mpmath number or float in [-1, 1]
            The cosine :math:`x\\cdot y` of two unit vectors (NaN is refused; up to 8 float64 ulps
            past :math:`\\pm1` is taken as :math:`\\pm1`).

        Returns
        -------
        mpmath.mpf
            :math:`\\kappa(u)`, correct to about the working precision.

        Raises
        ------
        ValueError
            If ``u`` is more than 8 float64 ulps outside :math:`[-1, 1]`.
        TypeError
            For an activation without a closed-form dual (a :class:`~ntklib.activations.Quadrature`
            has no high-precision path); :func:`~ntklib.sphere.sphere_eigenvalues` relies on it.

        Examples
        --------
        >>> import mpmath as mp, ntklib as nk
        >>> with mp.workdps(30):
        ...     print(nk.NNGP(depth=1).kappa_mp(0))      # kappa_1(0) = 1/pi
        0.318309886183790671537767526745
        """
        import mpmath as mp

        u = cosine_argument_mp(u)
        # Sigma^(h)(x, x) on the unit sphere is the same for every point: computed once per precision
        cache = self.__dict__.setdefault("_mp_variances", {})
        qs = cache.get(mp.mp.prec)
        if qs is None:
            q, qs = 1 + mp.mpf(self._bias0), []
            for layer in self._layers:
                qs.append(q)
                q = layer_duals(layer, q, q, q, deriv=False, rho=mp.mpf(1))[0]
            cache[mp.mp.prec] = qs
        sigma = mp.mpf(u) + mp.mpf(self._bias0)
        theta = sigma if self._kernel == "ntk" else None
        for layer, q in zip(self._layers, qs):
            sigma, theta = layer_step(layer, q, sigma, q, theta)
        return theta if self._kernel == "ntk" else sigma

    def __repr__(self):
        return call_repr(self, self._params())

    def _key(self):
        # the resolved layers (a Layer compares its activation by the activation's own equality:
        # class and parameters, not the name alone)
        return type(self).__name__, self._bias0, tuple(self._layers)

    def __eq__(self, other):
        return type(other) is type(self) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())


_CLASS_DOC = r"""The {what} of a deep fully connected network as a kernel object.

    ``k(X, Y=None)`` is :func:`{fn}`; ``k.diag(X)`` its diagonal :math:`K(x_i, x_i)` from the
    variance recursion alone (:math:`O(n)` work, no Gram matrix); ``k.kappa(u)`` the unit-sphere
    form (:func:`kappa`, float64, same kind as ``u``) and ``k.kappa_mp(u)`` the same for one mpmath
    number at the current mpmath precision (closed-form activations; the exact :math:`c_\sigma` is used
    where ``weight_var`` is ``None``). Numpy in gives numpy out, a tensor gives a tensor on its
    device. The repr reads back as code, and two kernels are equal when their resolved layers are.

    Parameters
    ----------
    depth : int
        Number of hidden layers :math:`L \ge 0`.
    activation, weight_var, bias_var
        As in :func:`{fn}` (a sequence ``bias_var`` has ``depth + 1`` entries, the output layer's last).

    Raises
    ------
    ValueError, TypeError
        Invalid architecture arguments, as in :func:`{fn}`.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> k = nk.{cls}(depth=2, bias_var=[0.0, 0.1, 0.2])
    >>> k
    {cls}(depth=2, bias_var=[0.0, 0.1, 0.2])
    >>> X = np.random.default_rng(0).standard_normal((5, 3))
    >>> bool(np.allclose(k.diag(X), np.diag(k(X)), rtol=1e-14))
    True
    >>> eval(repr(k), {{"{cls}": nk.{cls}}}) == k
    True
    >>> k3 = nk.{cls}(depth=3)
    >>> float(k3.kappa(1.0)) == float(k3.kappa_mp(1.0))
    True
    """


class NTK(_NetworkKernel):
    _kernel = "ntk"


class NNGP(_NetworkKernel):
    _kernel = "nngp"


for _cls, _what, _fn in ((NTK, "neural tangent kernel", "ntk"), (NNGP, "NNGP kernel", "nngp")):
    _cls.__doc__ = _CLASS_DOC.format(what=_what, fn=_fn, cls=_cls.__name__)
del _cls, _what, _fn
