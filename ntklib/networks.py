r"""Finite torch networks in the parameterizations of the book.

:class:`MLP` builds a fully connected network and :class:`CNN` a convolutional one, each in one of
three parameterizations (:data:`PARAMETERIZATIONS`):

* ``"ntk"`` (Arora et al. 2019, eq. 6), the convention of :func:`~ntklib.kernels.ntk`: every parameter
  :math:`\mathcal N(0, 1)`, layer :math:`h+1` sees :math:`\sqrt{c_\sigma/d_h}\,\sigma(f^{(h)})`, the
  first layer sees :math:`x` itself, biases enter as :math:`\beta\, b` with ``bias_var`` :math:`=\beta^2`.
  At infinite width the empirical NTK of an :class:`MLP` is ``nk.ntk(X, depth=..., activation=...,
  bias_var=...)``, that of a :class:`CNN` is ``nk.cntk(X, depth=..., pooling=...)``.
* ``"standard"``: PyTorch's default initialization of ``nn.Linear`` / ``nn.Conv2d`` (uniform,
  fan-in scaled), no :math:`1/\sqrt{\text{width}}` factors.
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
  ``depth=0`` (a linear model) has no hidden layer to rescale and equals ``"ntk"``. For a
  :class:`CNN` the width is the number of channels.

``depth`` is the number of hidden layers everywhere: for a :class:`CNN` the number of convolutional
layers (Arora et al.'s Table 1 counts one more).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._arrays import check_choice, check_int, check_variance
from .activations import get_activation

__all__ = ["CNN", "MLP", "PARAMETERIZATIONS", "Dense"]

#: The parameterizations of :class:`MLP` and :class:`CNN`.
PARAMETERIZATIONS = ("ntk", "standard", "mean_field")

_INITS = ("normal", "uniform")


def _check_parameterization(parameterization):
    return check_choice(parameterization, "parameterization", PARAMETERIZATIONS)


def _check_scale(value, name):
    """A finite nonzero real number (a zero output scale makes every gradient vanish)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    if not math.isfinite(value) or value == 0:
        raise ValueError(f"{name} must be finite and nonzero; got {value!r}")
    return float(value)


class Dense(nn.Module):
    r"""A dense layer :math:`z = s_W\, a W^\top + s_b\, b` with the scales kept outside the parameters.

    The parameters :math:`W` (``d_out x d_in``) and :math:`b` (``d_out``) are drawn once; the scales
    :math:`s_W, s_b` are plain floats, so a gradient step moves :math:`W` and :math:`b` and the
    parameterization stays in the scales (what :func:`~ntklib.empirical.empirical_ntk`'s structured
    path and :func:`~ntklib.training.train` rely on).

    Parameters
    ----------
    d_in, d_out : int
        Input and output dimension.
    weight_scale : float
        :math:`s_W`.
    bias_scale : float
        :math:`s_b`; 0 means no bias parameter (``self.bias is None``).
    init : {"normal", "uniform"}
        ``"normal"``: every entry :math:`\mathcal N(0, 1)`; ``"uniform"``: PyTorch's ``nn.Linear``
        default, :math:`U(-1/\sqrt{d_{in}}, 1/\sqrt{d_{in}})` for weight and bias.
    generator : torch.Generator
        The source of the initialization (weights first, then the bias).
    dtype : torch.dtype
        Dtype of the parameters.

    Raises
    ------
    ValueError
        If ``init`` is not one of the two choices or a dimension is below 1.

    Examples
    --------
    >>> import torch, ntklib as nk
    >>> g = torch.Generator().manual_seed(0)
    >>> layer = nk.networks.Dense(3, 2, weight_scale=0.5, bias_scale=0.0,
    ...                           init="normal", generator=g, dtype=torch.float64)
    >>> a = torch.ones(4, 3, dtype=torch.float64)
    >>> torch.allclose(layer(a), 0.5 * a @ layer.weight.T), layer.bias is None
    (True, True)
    """

    def __init__(self, d_in, d_out, *, weight_scale, bias_scale, init, generator, dtype):
        super().__init__()
        d_in, d_out = check_int(d_in, "d_in", 1), check_int(d_out, "d_out", 1)
        init = check_choice(init, "init", _INITS)
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
        """The layer's output :math:`s_W\\, a W^\\top + s_b\\, b`.

        Parameters
        ----------
        a : torch.Tensor, shape (n, d_in)
            A batch of layer inputs.

        Returns
        -------
        torch.Tensor, shape (n, d_out)
            The pre-activations :math:`z`.
        """
        z = self.weight_scale * (a @ self.weight.T)
        if self.bias is not None:
            z = z + self.bias_scale * self.bias
        return z


def _bias_vars(bias_var, depth):
    """bias_var as a tuple of depth + 1 variances (entry h: weight layer h + 1), and as given."""
    if not isinstance(bias_var, str) and np.ndim(bias_var) == 1:  # a sequence, array or tensor
        bias_var = [float(b) for b in bias_var]
        if len(bias_var) != depth + 1:
            raise ValueError(
                f"bias_var has {len(bias_var)} entries but depth={depth}; give a scalar or depth + 1 = "
                f"{depth + 1} entries (one per weight layer, the output layer last)"
            )
        values = tuple(check_variance(b, f"bias_var[{h}]", positive=False) for h, b in enumerate(bias_var))
        return values, values
    value = check_variance(bias_var, "bias_var", positive=False)
    return (value,) * (depth + 1), value


class MLP(nn.Module):
    r"""A fully connected network with scalar output, in the ``"ntk"``, ``"standard"`` or
    ``"mean_field"`` parameterization (see :mod:`ntklib.networks`).

    Parameters
    ----------
    d_in : int
        Input dimension.
    width : int
        Hidden width :math:`m` (every hidden layer).
    depth : int
        Number of hidden layers (``depth=0`` is a linear model).
    activation : str or Activation, default "relu"
        As in :func:`~ntklib.kernels.ntk` (a single activation for all layers).
    parameterization : {"ntk", "standard", "mean_field"}, default "ntk"
        See :mod:`ntklib.networks`; stored as ``self.parameterization``.
    bias_var : float or sequence of depth + 1 floats, default 0
        :math:`\beta^2`. A sequence gives one bias variance per weight layer, entry ``h`` for the
        layer producing :math:`f^{(h+1)}` (the last entry is the output layer's); a scalar means the
        same in every layer. A zero entry means no bias parameters in that layer (``"standard"``: a
        positive entry adds biases with PyTorch's default initialization).
    output_scale : float, default 1
        The output scale :math:`\alpha`, a nonzero multiplier on the output: the network computes
        :math:`\alpha f(x)` and its empirical NTK is :math:`\alpha^2` times that of :math:`f`. This is
        Chizat, Oyallon & Bach's lazy-training scale :math:`\alpha` (arXiv:1812.07956); Arora et
        al. 2019 (arXiv:1904.11955, Thm 3.2) call it :math:`\kappa` and take it small so that the
        output at initialization is negligible. The book keeps :math:`\kappa` for the kernel on the
        sphere.
    antisymmetric : bool, default False
        Output :math:`(f_1(x) - f_2(x))/\sqrt 2` with :math:`f_2` an exact copy of :math:`f_1` at
        initialization: the output is 0 at initialization and the NTK is unchanged.
    seed : int
        Seed of the initialization (a private ``torch.Generator``; global state is untouched).
    dtype : torch.dtype, default torch.float64
        Dtype of the parameters.

    Raises
    ------
    ValueError
        For an unknown ``parameterization``, a negative ``bias_var`` entry, a ``bias_var`` sequence
        of the wrong length, a zero or non-finite ``output_scale``, or sizes below their minimum.
    TypeError
        For non-integer sizes or a non-numeric ``output_scale``.

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

    A bias in the output layer only:

    >>> net = nk.MLP(3, width=16, depth=1, bias_var=[0.0, 0.5], seed=0)
    >>> [layer.bias is not None for layer in net.layers]
    [False, True]
    """

    def __init__(self, d_in, width, depth, *, activation="relu", parameterization="ntk", bias_var=0.0,
                 output_scale=1.0, antisymmetric=False, seed, dtype=torch.float64):
        super().__init__()
        d_in, width, depth = check_int(d_in, "d_in", 1), check_int(width, "width", 1), check_int(depth, "depth", 0)
        self.activation = get_activation(activation)
        self.parameterization = _check_parameterization(parameterization)
        self.bias_vars, self.bias_var = _bias_vars(bias_var, depth)
        self.output_scale = _check_scale(output_scale, "output_scale")
        self.antisymmetric = bool(antisymmetric)
        self.d_in, self.width, self.depth = d_in, width, depth
        self.seed = check_int(seed, "seed", 0)
        g = torch.Generator().manual_seed(self.seed)
        self.layers = self._build(g, dtype)
        self.twin = None
        if self.antisymmetric:
            self.twin = self._build(g, dtype)
            self.twin.load_state_dict(self.layers.state_dict())

    def _build(self, g, dtype):
        c = self.activation.c_sigma
        dims = [self.d_in] + [self.width] * self.depth + [1]
        layers = nn.ModuleList()
        for i in range(self.depth + 1):
            beta = math.sqrt(self.bias_vars[i])
            if self.parameterization == "standard":
                ws, bs, init = 1.0, (1.0 if beta else 0.0), "uniform"
            else:
                ws = 1.0 if i == 0 else math.sqrt(c / dims[i])
                if self.parameterization == "mean_field" and i == self.depth and i > 0:
                    ws = math.sqrt(c) / dims[i]
                bs, init = beta, "normal"
            layers.append(Dense(dims[i], dims[i + 1], weight_scale=ws, bias_scale=bs, init=init, generator=g,
                                dtype=dtype))
        return layers

    def _stack(self, layers, x):
        h = x
        for layer in layers[:-1]:
            h = self.activation(layer(h))
        return layers[-1](h).squeeze(-1)

    def forward(self, x):
        """The network's outputs.

        Parameters
        ----------
        x : torch.Tensor, shape (n, d_in)
            A batch of inputs, of the parameters' dtype.

        Returns
        -------
        torch.Tensor, shape (n,)
            :math:`f(x_i)` for each input.

        Raises
        ------
        ValueError
            If ``x`` is not a 2-D batch of ``d_in`` features.
        """
        if x.ndim != 2 or x.shape[1] != self.d_in:
            raise ValueError(f"x must have shape (n, d_in={self.d_in}); got {tuple(x.shape)}")
        out = self._stack(self.layers, x)
        if self.twin is not None:
            out = (out - self._stack(self.twin, x)) / math.sqrt(2)
        return self.output_scale * out

    def dense_layers(self):
        """Every :class:`Dense` layer, each applied exactly once per forward pass.

        Returns
        -------
        list of Dense
            The layers of the network, then those of its twin (``antisymmetric=True``).

        Examples
        --------
        >>> import ntklib as nk
        >>> len(nk.MLP(3, 4, 2, antisymmetric=True, seed=0).dense_layers())
        6
        """
        return list(self.layers) + (list(self.twin) if self.twin is not None else [])

    def __repr__(self):
        """The constructor call (non-default arguments only): evaluated, it rebuilds the initialization."""
        return _call_repr("MLP", (self.d_in, self.width, self.depth), [
            ("activation", _activation_code(self.activation), "'relu'"),
            ("parameterization", repr(self.parameterization), "'ntk'"),
            ("bias_var", repr(self.bias_var), "0.0"),
            ("output_scale", repr(self.output_scale), "1.0"),
            ("antisymmetric", repr(self.antisymmetric), "False"),
            ("seed", repr(self.seed), None),
            ("dtype", str(self.layers[0].weight.dtype), "torch.float64"),
        ])


def _activation_code(activation):
    """The activation as code: its name where the name parses back to it, else its repr."""
    try:
        if get_activation(activation.name) == activation:
            return repr(activation.name)
    except (ValueError, TypeError):
        pass
    return repr(activation)


def _call_repr(cls, positional, keywords):
    """``cls(p1, p2, key=value, ...)`` with the keywords whose code differs from their default."""
    args = [repr(p) for p in positional] + [f"{k}={v}" for k, v, default in keywords if v != default]
    return f"{cls}({', '.join(args)})"


def _check_image_shape(image_shape):
    if (not isinstance(image_shape, Sequence) or isinstance(image_shape, str) or len(image_shape) != 2
            or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in image_shape)):
        raise ValueError(f"image_shape must be a pair of positive ints (H, W); got {image_shape!r}")
    return int(image_shape[0]), int(image_shape[1])


_POOLINGS = ("gap", "vanilla")


class CNN(nn.Module):
    r"""A convolutional ReLU network, in the parameterization of :func:`~ntklib.convolutional.cntk` or
    the standard or mean-field one.

    ``depth`` is the number of convolutional layers (hidden layers, as everywhere in ntklib; Arora et
    al.'s Table 1 "depth" is ours + 1). In the ``"ntk"`` parameterization every parameter is
    :math:`\mathcal N(0, 1)`. The first layer computes :math:`\frac1q \mathrm{conv}(x, W)`, the next
    ones :math:`\sqrt{2/(q^2 C)}\,\mathrm{conv}(\mathrm{relu}(z), W)` (``q x q`` filters, stride 1,
    zero "same" padding, ``C = width`` channels), and the readout is
    :math:`\sqrt{2/C}\sum_{c,p} V_{cp}\,\mathrm{relu}(z)_{cp}` (``pooling="vanilla"``) or
    :math:`\sqrt{2/C}\sum_c V_c \operatorname{mean}_p \mathrm{relu}(z)_{cp}` (``"gap"``). As the width
    grows, its empirical NTK tends to ``nk.cntk(X, depth=depth, pooling=pooling)`` and the covariance
    of its output to the CNTK's NNGP. ``"standard"``: PyTorch's default initialization of
    ``nn.Conv2d`` and ``nn.Linear`` (uniform, :math:`\pm 1/\sqrt{\text{fan-in}}`) and no scale
    factors. ``"mean_field"``: the ``"ntk"`` network of the same seed with the readout scaled by
    :math:`\sqrt 2/C` instead of :math:`\sqrt{2/C}` (the output divided by :math:`\sqrt C`).
    The network has no biases.

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    width : int
        Channels :math:`C` of every convolutional layer.
    depth : int
        Number of convolutional layers, at least 1.
    image_shape : pair of int
        ``(H, W)`` of the input images (the vanilla readout has one weight per pixel); ``forward``
        refuses images of another shape, with either pooling.
    pooling : {"gap", "vanilla"}, default "gap"
        Global average pooling before the readout, or a readout over every pixel.
    filter_size : int, default 3
        :math:`q`, odd (so that "same" zero padding keeps the image size, as in ``nk.cntk``).
    parameterization : {"ntk", "standard", "mean_field"}, default "ntk"
        See above.
    output_scale : float, default 1
        The output scale :math:`\alpha` (as for :class:`MLP`), a nonzero multiplier on the outputs
        (for example ``1/sqrt(H W)`` makes the vanilla outputs as
        small as GAP's at initialization).
    outputs : int, default 1
        That many independent readouts on the shared convolutional layers (output shape
        (n, outputs)), e.g. one per class; 1 gives shape (n,).
    seed : int
        Seed of the initialization (a private ``torch.Generator``; global state is untouched).
    dtype : torch.dtype, default torch.float64
        Dtype of the parameters.

    Raises
    ------
    ValueError
        For an even ``filter_size``, an ``image_shape`` that is not a pair of positive ints, an
        unknown ``pooling`` or ``parameterization``, a zero ``output_scale`` or sizes below 1.
    TypeError
        For non-integer sizes.

    Examples
    --------
    >>> import torch, ntklib as nk
    >>> net = nk.CNN(1, width=4, depth=2, image_shape=(5, 5), seed=0)
    >>> net(torch.ones(3, 1, 5, 5, dtype=torch.float64)).shape
    torch.Size([3])
    >>> len(net.convs)
    2
    >>> nk.CNN(1, 4, 2, image_shape=(5, 5), filter_size=2, seed=0)
    Traceback (most recent call last):
    ...
    ValueError: filter_size must be odd (same padding keeps the image size); got 2
    """

    def __init__(self, in_channels, width, depth, *, image_shape, pooling="gap", filter_size=3,
                 parameterization="ntk", output_scale=1.0, outputs=1, seed, dtype=torch.float64):
        super().__init__()
        self.depth = check_int(depth, "depth", 1, "the number of convolutional layers")
        width, q = check_int(width, "width", 1), check_int(filter_size, "filter_size", 1)
        if q % 2 == 0:
            raise ValueError(f"filter_size must be odd (same padding keeps the image size); got {q}")
        pooling = check_choice(pooling, "pooling", _POOLINGS)
        self.in_channels = check_int(in_channels, "in_channels", 1)
        self.image_shape = _check_image_shape(image_shape)
        self.parameterization = _check_parameterization(parameterization)
        self.output_scale = _check_scale(output_scale, "output_scale")
        self.outputs = check_int(outputs, "outputs", 1)
        self.seed = check_int(seed, "seed", 0)
        self.pooling, self.q, self.width = pooling, q, width
        g = torch.Generator().manual_seed(self.seed)
        chans = [self.in_channels] + [width] * self.depth
        H, W = self.image_shape
        readout = (width,) if pooling == "gap" else (width, H, W)
        shapes = [(chans[i + 1], chans[i], q, q) for i in range(self.depth)] + [(self.outputs, *readout)]
        params = []
        for shape in shapes:
            p = torch.empty(shape, dtype=dtype)
            if parameterization == "standard":
                bound = 1 / math.sqrt(math.prod(shape[1:]))  # PyTorch's default: U(+-1/sqrt(fan_in))
                p.uniform_(-bound, bound, generator=g)
            else:
                p.normal_(generator=g)
            params.append(nn.Parameter(p))
        self.convs = nn.ParameterList(params[:-1])
        self.readout = params[-1]

    def forward(self, x):
        """The network's outputs.

        Parameters
        ----------
        x : torch.Tensor, shape (n, in_channels, H, W)
            A batch of images, of the parameters' dtype.

        Returns
        -------
        torch.Tensor, shape (n,) or (n, outputs)
            One scalar per image, or ``outputs`` of them when ``outputs > 1``.

        Raises
        ------
        ValueError
            If ``x`` is not a 4-D batch of ``in_channels`` images of ``image_shape`` (GAP too: the
            network was built, and its kernel defined, for that image size).
        """
        expected = (self.in_channels, *self.image_shape)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"x must have shape (n, in_channels, H, W) = (n, {', '.join(map(str, expected))}); got {tuple(x.shape)}"
            )
        q, standard = self.q, self.parameterization == "standard"
        z = F.conv2d(x, self.convs[0], padding=q // 2)
        if not standard:
            z = z / q
        later = 1.0 if standard else math.sqrt(2.0 / (q * q * self.width))
        for i in range(1, len(self.convs)):  # index, not slice: a sliced ParameterList escapes functional_call
            z = later * F.conv2d(torch.relu(z), self.convs[i], padding=q // 2)
        a = torch.relu(z)
        if self.pooling == "gap":
            out = a.mean(dim=(2, 3)) @ self.readout.T
        else:
            out = torch.einsum("nchw,ochw->no", a, self.readout)
        if self.parameterization == "ntk":
            out = math.sqrt(2.0 / self.width) * out
        elif self.parameterization == "mean_field":
            out = (math.sqrt(2.0) / self.width) * out
        if self.output_scale != 1.0:
            out = self.output_scale * out
        return out[:, 0] if self.outputs == 1 else out

    def __repr__(self):
        """The constructor call (non-default arguments only): evaluated, it rebuilds the initialization."""
        return _call_repr("CNN", (self.in_channels, self.width, self.depth), [
            ("image_shape", repr(self.image_shape), None),
            ("pooling", repr(self.pooling), "'gap'"),
            ("filter_size", repr(self.q), "3"),
            ("parameterization", repr(self.parameterization), "'ntk'"),
            ("output_scale", repr(self.output_scale), "1.0"),
            ("outputs", repr(self.outputs), "1"),
            ("seed", repr(self.seed), None),
            ("dtype", str(self.readout.dtype), "torch.float64"),
        ])
