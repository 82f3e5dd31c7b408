r"""Finite networks and their empirical kernels.

:class:`MLP` builds a fully connected torch network in one of three parameterizations:

* ``"ntk"`` (Arora et al. 2019, eq. 6), the convention of :func:`~ntklib.kernels.ntk`: every parameter
  :math:`\mathcal N(0, 1)`, layer :math:`h+1` sees :math:`\sqrt{c_\sigma/d_h}\,\sigma(f^{(h)})`, the
  first layer sees :math:`x` itself, biases enter as :math:`\beta\, b` with ``bias_var`` :math:`=\beta^2`.
  At infinite width its empirical NTK is ``nk.ntk(X, depth=..., activation=..., bias_var=...)``.
* ``"standard"``: PyTorch's default initialization of ``nn.Linear`` (uniform, fan-in scaled), no
  :math:`1/\sqrt{\text{width}}` factors.
* ``"mean_field"``: hidden layers as ``"ntk"``, the output layer scaled by :math:`\sqrt{c_\sigma}/
  \text{width}` instead of :math:`\sqrt{c_\sigma/\text{width}}` (for one hidden layer,
  :math:`f = \frac{\sqrt{c_\sigma}}{m}\sum_i a_i \sigma(w_i\cdot x)`, the two-layer mean-field
  scaling of Mei, Montanari & Nguyen 2018 and Chizat & Bach 2018). With the same seed the weights
  are those of ``"ntk"``, so the output is the ``"ntk"`` output divided by :math:`\sqrt{m}` and the
  empirical NTK is the ``"ntk"`` one divided by :math:`m` (without biases: an output bias is not
  rescaled). Trained with a learning rate :math:`m` times the ``"ntk"`` one, the two start with the
  same function-space dynamics, but each hidden neuron moves by :math:`O(1)` instead of
  :math:`O(m^{-1/2})`, so the kernel moves by :math:`O(1)` too (features are learned; measured in
  the finite-width chapter). For ``depth >= 2`` only the output layer is rescaled; that is not a
  multilayer mean-field limit (those need more than one rescaled layer) and is not implemented;
  ``depth=0`` (a linear model) has no hidden layer to rescale and equals ``"ntk"``.

:func:`empirical_ntk` is the Gram matrix :math:`\langle\partial_\theta f(x), \partial_\theta f(y)\rangle`.
For an :class:`MLP` it uses the layer structure (Novak et al. 2022): a dense layer
:math:`z = s_W\, a W^\top + s_b\, b` contributes :math:`s_W^2 (a_x\cdot a_y)(\delta_x\cdot\delta_y) +
s_b^2\, \delta_x\cdot\delta_y` with :math:`\delta = \partial f/\partial z`. This costs
:math:`O(n^2\,\text{width})` per layer instead of an :math:`n\times\#\text{params}` Jacobian. Any other
module with scalar output goes through ``torch.func`` (vmapped Jacobians, in chunks).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._arrays import as_points, check_int, check_variance, returns_like, to_tensor
from .activations import get_activation

__all__ = ["MLP", "CNN", "Dense", "empirical_ntk", "empirical_nngp", "PARAMETERIZATIONS"]

PARAMETERIZATIONS = ("ntk", "standard", "mean_field")


class Dense(nn.Module):
    r"""A dense layer :math:`z = s_W\, a W^\top + s_b\, b` with the scales kept outside the parameters."""

    def __init__(self, d_in, d_out, *, weight_scale, bias_scale, init, generator, dtype):
        super().__init__()
        self.weight_scale, self.bias_scale = float(weight_scale), float(bias_scale)
        w = torch.empty(d_out, d_in, dtype=dtype)
        b = torch.empty(d_out, dtype=dtype) if bias_scale else None
        if init == "normal":
            w.normal_(generator=generator)
            if b is not None:
                b.normal_(generator=generator)
        else:  # PyTorch's nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias
            bound = 1 / math.sqrt(d_in)
            w.uniform_(-bound, bound, generator=generator)
            if b is not None:
                b.uniform_(-bound, bound, generator=generator)
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(b) if b is not None else None

    def forward(self, a):
        z = self.weight_scale * (a @ self.weight.T)
        if self.bias is not None:
            z = z + self.bias_scale * self.bias
        return z


class MLP(nn.Module):
    r"""A fully connected network with scalar output, in the ``"ntk"``, ``"standard"`` or
    ``"mean_field"`` parameterization (see :mod:`ntklib.empirical`).

    Parameters
    ----------
    d_in, width, depth : int
        Input dimension, hidden width, number of hidden layers (``depth=0`` is a linear model).
    activation : str or Activation
        As in :func:`~ntklib.kernels.ntk` (a single activation for all layers).
    parameterization : {"ntk", "standard", "mean_field"}
    bias_var : float, default 0
        :math:`\beta^2`; 0 means no bias parameters (``"standard"``: any positive value adds biases).
    output_scale : float, default 1
        A multiplier :math:`\kappa` on the output (Arora et al.'s small-output trick for Thm 3.2).
    antisymmetric : bool, default False
        Output :math:`(f_1(x) - f_2(x))/\sqrt 2` with :math:`f_2` an exact copy of :math:`f_1` at
        initialization: the output is 0 at initialization and the NTK is unchanged.
    seed : int
        Seed of the initialization (a private ``torch.Generator``; global state is untouched).
    dtype : torch dtype, default float64

    Examples
    --------
    >>> import torch, ntklib as nk
    >>> net = nk.MLP(3, width=16, depth=2, seed=0)
    >>> x = torch.ones(5, 3, dtype=torch.float64)
    >>> net(x).shape
    torch.Size([5])

    The mean-field network of the same seed is the NTK one scaled by
    ``1/sqrt(width)``:

    >>> mf = nk.MLP(3, width=16, depth=2, parameterization="mean_field",
    ...             seed=0)
    >>> torch.allclose(mf(x), net(x) / 4)
    True
    """

    def __init__(self, d_in, width, depth, *, activation="relu", parameterization="ntk", bias_var=0.0,
                 output_scale=1.0, antisymmetric=False, seed, dtype=torch.float64):
        super().__init__()
        d_in, width, depth = check_int(d_in, "d_in", 1), check_int(width, "width", 1), check_int(depth, "depth", 0)
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}; got {parameterization!r}")
        self.activation = get_activation(activation)
        self.parameterization = parameterization
        self.bias_var = check_variance(bias_var, "bias_var", positive=False)
        self.output_scale = float(output_scale)
        self.antisymmetric = bool(antisymmetric)
        self.d_in, self.width, self.depth = d_in, width, depth
        g = torch.Generator().manual_seed(int(seed))
        self.layers = self._build(g, dtype)
        self.twin = None
        if self.antisymmetric:
            self.twin = self._build(g, dtype)
            self.twin.load_state_dict(self.layers.state_dict())

    def _build(self, g, dtype):
        c = self.activation.c_sigma
        beta = math.sqrt(self.bias_var)
        dims = [self.d_in] + [self.width] * self.depth + [1]
        layers = nn.ModuleList()
        for i in range(self.depth + 1):
            if self.parameterization == "standard":
                ws, bs, init = 1.0, (1.0 if self.bias_var else 0.0), "uniform"
            else:
                ws = 1.0 if i == 0 else math.sqrt(c / dims[i])
                if self.parameterization == "mean_field" and i == self.depth and i > 0:
                    ws = math.sqrt(c) / dims[i]
                bs, init = beta, "normal"
            layers.append(Dense(dims[i], dims[i + 1], weight_scale=ws, bias_scale=bs, init=init, generator=g, dtype=dtype))
        return layers

    def _stack(self, layers, x):
        h = x
        for layer in layers[:-1]:
            h = self.activation(layer(h))
        return layers[-1](h).squeeze(-1)

    def forward(self, x):
        """Outputs f(x) for a batch x of shape (n, d_in): a tensor of shape (n,)."""
        out = self._stack(self.layers, x)
        if self.twin is not None:
            out = (out - self._stack(self.twin, x)) / math.sqrt(2)
        return self.output_scale * out

    def dense_layers(self):
        """Every ``Dense`` layer, each applied exactly once per forward pass."""
        return list(self.layers) + (list(self.twin) if self.twin is not None else [])


def _points_for(model, X, name):
    """Inputs as a tensor of the model's dtype and device: (n, d) for an MLP, batch-first otherwise."""
    p = next(model.parameters())
    if isinstance(model, MLP):
        return as_points(X, name, dtype=p.dtype, device=p.device)
    t = to_tensor(X, name, dtype=p.dtype, device=p.device)
    if t.ndim < 2:
        raise ValueError(f"{name} must be a batch of inputs with the batch on the first axis; got shape {tuple(t.shape)}")
    return t


def _structured_ntk(model: MLP, x, y, symmetric):
    """Sum over dense layers of s_W^2 (a_x a_y^T) * (d_x d_y^T) + s_b^2 d_x d_y^T."""

    def signals(inp):
        record = []
        hooks = [layer.register_forward_hook(lambda mod, args, out: record.append((mod, args[0], out)))
                 for layer in model.dense_layers()]
        try:
            with torch.enable_grad():
                out = model(inp)
                if out.shape != (inp.shape[0],):
                    raise ValueError("the model must map each input to a scalar output")
                # a layer the output does not depend on through autograd (below a step activation,
                # whose derivative autograd takes as 0) gets no gradient: its signal is 0
                deltas = torch.autograd.grad(out.sum(), [z for _, _, z in record], allow_unused=True)
        finally:
            for h in hooks:
                h.remove()
        return [(mod, a.detach(), torch.zeros_like(z) if dz is None else dz.detach())
                for (mod, a, z), dz in zip(record, deltas)]

    sx = signals(x)
    sy = sx if symmetric else signals(y)
    theta = torch.zeros(x.shape[0], y.shape[0], dtype=torch.float64, device=x.device)
    for (mod, ax, dx), (_, ay, dy) in zip(sx, sy):
        dd = (dx @ dy.T).to(torch.float64)
        theta += mod.weight_scale**2 * (ax @ ay.T).to(torch.float64) * dd
        if mod.bias is not None:
            theta += mod.bias_scale**2 * dd
    return theta


def _generic_ntk(model, x, y, symmetric, chunk_size):
    """torch.func: vmapped per-sample Jacobians, contracted chunk by chunk (memory: two chunks)."""
    from torch.func import functional_call, jacrev, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}

    def f(p, xi):
        out = functional_call(model, p, (xi[None],))
        if out.numel() != 1:
            raise ValueError("the model must map each input to a scalar output")
        return out.reshape(())

    jac = vmap(jacrev(f), in_dims=(None, 0))

    def flat(inp):
        j = jac(params, inp)
        return torch.cat([v.reshape(inp.shape[0], -1) for v in j.values()], dim=1)

    theta = torch.empty(x.shape[0], y.shape[0], dtype=torch.float64, device=x.device)
    for i0 in range(0, x.shape[0], chunk_size):
        jx = flat(x[i0:i0 + chunk_size])
        for j0 in range(i0 if symmetric else 0, y.shape[0], chunk_size):
            jy = jx if (symmetric and j0 == i0) else flat(y[j0:j0 + chunk_size])
            block = (jx @ jy.T).to(torch.float64)
            theta[i0:i0 + chunk_size, j0:j0 + chunk_size] = block
            if symmetric and j0 != i0:
                theta[j0:j0 + chunk_size, i0:i0 + chunk_size] = block.T
    return theta


def empirical_ntk(model, X, Y=None, *, method="auto", chunk_size=32):
    r"""The empirical NTK :math:`\langle\partial_\theta f(x_i), \partial_\theta f(y_j)\rangle` of a torch module.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch (n, d) to n scalars (an :class:`MLP`, or any module with scalar output).
    X, Y : (n, d), (m, d) arrays or tensors (any batch-first shape for modules other than an MLP,
        e.g. images (n, C, H, W) for a :class:`CNN`)
        ``Y=None`` means ``X``.
    method : {"auto", "structured", "jacobian"}
        ``"structured"`` (default for an :class:`MLP`) uses the layer structure, :math:`O(n^2 \cdot
        \text{width})` per layer; ``"jacobian"`` uses ``torch.func`` for any module, holding two
        chunks of ``chunk_size x #params`` Jacobians at a time.

    Returns
    -------
    K : (n, m) float64 array (a tensor if ``X`` is one)

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> X = np.random.default_rng(0).standard_normal((4, 3))
    >>> net = nk.MLP(3, width=8, depth=2, seed=0)
    >>> generic = nk.empirical_ntk(net, X, method="jacobian")
    >>> np.allclose(nk.empirical_ntk(net, X), generic)
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if method not in ("auto", "structured", "jacobian"):
        raise ValueError(f"method must be 'auto', 'structured' or 'jacobian'; got {method!r}")
    check_int(chunk_size, "chunk_size", 1)
    x = _points_for(model, X, "X")
    symmetric = Y is None
    y = x if symmetric else _points_for(model, Y, "Y")
    if y.shape[1:] != x.shape[1:]:
        raise ValueError(f"X and Y must have the same number of features; got {tuple(x.shape[1:])} and {tuple(y.shape[1:])}")
    if method == "structured" and not isinstance(model, MLP):
        raise ValueError("method='structured' needs an nk.MLP; use method='jacobian' for other modules")
    if method != "jacobian" and isinstance(model, MLP):
        theta = _structured_ntk(model, x, y, symmetric)
    else:
        theta = _generic_ntk(model, x, y, symmetric, chunk_size)
    return returns_like(X, theta)


def empirical_nngp(make_model, X, Y=None, *, n_models, seed=0):
    r"""Monte Carlo NNGP: :math:`\frac1M\sum_{s=1}^{M} f_s(x) f_s(y)` over ``n_models`` initializations.

    ``make_model(seed)`` returns a freshly initialized network; seeds ``seed, seed+1, ...`` are used.
    Its standard error per entry is about :math:`\sqrt{(K_{xx}K_{yy} + K_{xy}^2)/M}`.
    """
    n_models = check_int(n_models, "n_models", 1)
    acc = None
    with torch.no_grad():
        for s in range(n_models):
            model = make_model(seed + s)
            x = _points_for(model, X, "X")
            fx = model(x).to(torch.float64)
            fy = fx if Y is None else model(_points_for(model, Y, "Y")).to(torch.float64)
            term = fx[:, None] * fy[None, :]
            acc = term if acc is None else acc + term
    return returns_like(X, acc / n_models)


class CNN(nn.Module):
    r"""A convolutional ReLU network in the parameterization of :func:`~ntklib.cntk.cntk`.

    ``depth`` counts convolutional layers + 1 (Arora et al.'s Table 1); every parameter is
    :math:`\mathcal N(0, 1)`. The first layer computes :math:`\frac1q \mathrm{conv}(x, W)`, the next ones
    :math:`\sqrt{2/(q^2 C)}\,\mathrm{conv}(\mathrm{relu}(z), W)` (``q x q`` filters, stride 1, zero
    "same" padding, ``C = width`` channels), and the readout is
    :math:`\sqrt{2/C}\sum_{c,p} V_{cp}\,\mathrm{relu}(z)_{cp}` (``pooling="vanilla"``) or
    :math:`\sqrt{2/C}\sum_c V_c \operatorname{mean}_p \mathrm{relu}(z)_{cp}` (``"gap"``). As the width
    grows, its empirical NTK tends to ``nk.cntk(X, depth=depth, pooling=pooling)`` and the covariance
    of its output to the CNTK's NNGP. ``outputs > 1`` gives that many independent readouts on the
    shared convolutional layers (output shape (n, outputs)), e.g. one per class.
    """

    def __init__(self, in_channels, width, depth, *, image_shape, pooling="gap", filter_size=3, outputs=1, seed,
                 dtype=torch.float64):
        super().__init__()
        self.depth = check_int(depth, "depth", 2, "convolutional layers + 1")
        width, q = check_int(width, "width", 1), check_int(filter_size, "filter_size", 1)
        if pooling not in ("gap", "vanilla"):
            raise ValueError(f"pooling must be 'gap' or 'vanilla'; got {pooling!r}")
        self.pooling, self.q, self.width = pooling, q, width
        g = torch.Generator().manual_seed(int(seed))
        chans = [check_int(in_channels, "in_channels", 1)] + [width] * (self.depth - 1)
        self.convs = nn.ParameterList(
            [nn.Parameter(torch.randn(chans[i + 1], chans[i], q, q, generator=g, dtype=dtype)) for i in range(self.depth - 1)]
        )
        H, W = image_shape
        self.outputs = check_int(outputs, "outputs", 1)
        readout = (width,) if pooling == "gap" else (width, H, W)
        self.readout = nn.Parameter(torch.randn(self.outputs, *readout, generator=g, dtype=dtype))

    def forward(self, x):
        """Outputs for a batch of images (n, C, H, W): shape (n,), or (n, outputs)."""
        q = self.q
        z = F.conv2d(x, self.convs[0], padding=q // 2) / q
        for i in range(1, len(self.convs)):  # index, not slice: a sliced ParameterList escapes functional_call
            W = self.convs[i]
            z = math.sqrt(2.0 / (q * q * W.shape[1])) * F.conv2d(torch.relu(z), W, padding=q // 2)
        a = torch.relu(z)
        if self.pooling == "gap":
            out = a.mean(dim=(2, 3)) @ self.readout.T
        else:
            out = torch.einsum("nchw,ochw->no", a, self.readout)
        out = math.sqrt(2.0 / self.width) * out
        return out[:, 0] if self.outputs == 1 else out
