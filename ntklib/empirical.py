r"""Empirical kernels of finite torch networks.

:func:`empirical_ntk` is the Gram matrix :math:`\langle\partial_\theta f(x), \partial_\theta f(y)\rangle`.
For an :class:`~ntklib.networks.MLP` it uses the layer structure (Novak et al. 2022): a dense layer
:math:`z = s_W\, a W^\top + s_b\, b` contributes :math:`s_W^2 (a_x\cdot a_y)(\delta_x\cdot\delta_y) +
s_b^2\, \delta_x\cdot\delta_y` with :math:`\delta = \partial f/\partial z`. This costs
:math:`O(n^2\,\text{width})` per layer instead of an :math:`n\times\#\text{params}` Jacobian. Any other
module with scalar output (or one chosen output) goes through ``torch.func`` (vmapped Jacobians, in
chunks). :class:`EmpiricalNTK` is the same kernel as an object with the kernel contract
(``k(X, Y=None)``, ``k.diag(X)``, a repr, equality). :func:`empirical_nngp` is the Monte Carlo
average of :math:`f(x) f(y)` over initializations.

The networks themselves live in :mod:`ntklib.networks`.
"""
from __future__ import annotations

import torch
from torch import nn

from ._arrays import as_points, check_choice, check_int, check_same_features, returns_like, to_tensor
from ._tiles import mirror_upper, tiled_gram
from .networks import MLP

__all__ = ["EmpiricalNTK", "empirical_nngp", "empirical_ntk"]

_METHODS = ("auto", "structured", "jacobian")


class _Output(nn.Module):
    """One output ``model(x)[:, index]`` of a model with several outputs."""

    def __init__(self, model, index):
        super().__init__()
        self.model, self.index = model, index

    def forward(self, x):
        return self.model(x)[:, self.index]


def _trainable(model):
    """The parameters the empirical NTK differentiates: those with ``requires_grad`` (name -> tensor)."""
    params = {k: v for k, v in model.named_parameters() if v.requires_grad}
    if not params:
        raise ValueError(
            f"model {type(model).__name__} has no trainable parameters (none with requires_grad=True); "
            "the empirical NTK is a sum over trainable parameters and would be identically 0"
        )
    return params


def _as_batch(model, X, name):
    """Inputs as a tensor of the model's dtype and device: (n, d) for an MLP, batch-first otherwise."""
    p = next(model.parameters(), None)
    if p is None:
        raise ValueError(f"model {type(model).__name__} has no parameters (they give the inputs' dtype and device)")
    if isinstance(model, MLP):
        return as_points(X, name, dtype=p.dtype, device=p.device)
    t = to_tensor(X, name, dtype=p.dtype, device=p.device)
    if t.ndim < 2:
        raise ValueError(
            f"{name} must be a batch of inputs with the batch on the first axis; got shape {tuple(t.shape)}"
        )
    return t


def _points_for(model, X, name):
    """:func:`_as_batch`, for an MLP checked to have its ``d_in`` features."""
    t = _as_batch(model, X, name)
    if isinstance(model, MLP) and t.shape[1] != model.d_in:
        raise ValueError(f"{name} has {t.shape[1]} features but the MLP takes d_in={model.d_in}")
    return t


def _ntk_inputs(model, X, name):
    """:func:`_points_for` for the empirical NTK: the model has trainable parameters and takes X.

    A module other than an MLP is tried on one sample (the generic path applies it sample by
    sample), so that a shape error names the argument instead of torch's matmul."""
    _trainable(model)
    t = _points_for(model, X, name)
    if isinstance(model, MLP):
        return t
    try:
        with torch.no_grad():
            model(t[:1])
    except (RuntimeError, IndexError, ValueError, TypeError) as exc:
        raise ValueError(
            f"model {type(model).__name__} cannot be applied to {name} of shape {tuple(t.shape)} "
            f"(samples of shape {tuple(t.shape[1:])}): {exc}"
        ) from exc
    return t


def _signals(model: MLP, inp):
    """(layer, input a, output gradient delta) of every dense layer of an MLP on a batch."""
    record = []
    hooks = [layer.register_forward_hook(lambda mod, args, out: record.append((mod, args[0], out)))
             for layer in model.dense_layers()]
    try:
        with torch.enable_grad():
            out = model(inp)
            if out.shape != (inp.shape[0],):
                raise ValueError("the model must map each input to a scalar output")
            # a layer the output does not depend on through autograd (below a step activation,
            # whose derivative autograd takes as 0) gets no gradient: its signal is 0; so does a
            # layer whose output needs none (frozen parameters and a constant input): it adds nothing
            live = [z for _, _, z in record if z.requires_grad] if out.requires_grad else []
            grads = iter(torch.autograd.grad(out.sum(), live, allow_unused=True) if live else ())
            deltas = [next(grads) if out.requires_grad and z.requires_grad else None for _, _, z in record]
    finally:
        for h in hooks:
            h.remove()
    return [(mod, a.detach(), torch.zeros_like(z) if dz is None else dz.detach())
            for (mod, a, z), dz in zip(record, deltas)]


def _trains(param):
    return param is not None and param.requires_grad


def _structured_ntk(model: MLP, x, y, symmetric):
    """Sum over dense layers of s_W^2 (a_x a_y^T) * (d_x d_y^T) + s_b^2 d_x d_y^T (trainable terms only)."""
    sx = _signals(model, x)
    sy = sx if symmetric else _signals(model, y)
    theta = torch.zeros(x.shape[0], y.shape[0], dtype=torch.float64, device=x.device)
    for (mod, ax, dx), (_, ay, dy) in zip(sx, sy):
        dd = (dx @ dy.T).to(torch.float64)
        if _trains(mod.weight):
            theta += mod.weight_scale**2 * (ax @ ay.T).to(torch.float64) * dd
        if _trains(mod.bias):
            theta += mod.bias_scale**2 * dd
    if symmetric:
        # BLAS rounded a @ a.T's (i, j) and (j, i) apart on an AMD EPYC (a 7 x 3 batch)
        theta = mirror_upper(theta)
    return theta


def _structured_diag(model: MLP, x):
    """The diagonal of _structured_ntk: s_W^2 |a_x|^2 |d_x|^2 + s_b^2 |d_x|^2 per point."""
    out = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for mod, a, d in _signals(model, x):
        dd = (d * d).sum(1).to(torch.float64)
        if _trains(mod.weight):
            out += mod.weight_scale**2 * (a * a).sum(1).to(torch.float64) * dd
        if _trains(mod.bias):
            out += mod.bias_scale**2 * dd
    return out


def _jacobian(model):
    """inp -> the (batch, #trainable params) Jacobian of a scalar-output model, by vmapped torch.func.jacrev.

    Frozen parameters (``requires_grad=False``) are not differentiated: functional_call takes them
    from the module as constants."""
    from torch.func import functional_call, jacrev, vmap

    params = {k: v.detach() for k, v in _trainable(model).items()}

    def f(p, xi):
        out = functional_call(model, p, (xi[None],))
        if out.numel() != 1:
            raise ValueError("the model must map each input to a scalar output (or choose one with output=)")
        return out.reshape(())

    jac = vmap(jacrev(f), in_dims=(None, 0))

    def flat(inp):
        j = jac(params, inp)
        return torch.cat([v.reshape(inp.shape[0], -1) for v in j.values()], dim=1)

    return flat


def _generic_ntk(model, x, y, symmetric, chunk_size):
    """torch.func: vmapped per-sample Jacobians, contracted tile by tile (memory: two chunks).

    The tiles (``chunk_size`` inputs a side) come from :func:`~ntklib._tiles.tiled_gram`, row block
    by row block: the row block's Jacobian is computed once and kept for its row of tiles; for
    ``K(X)`` only the upper tiles are computed and mirrored."""
    flat = _jacobian(model)
    row = {}  # the Jacobian of the current row block

    def tile(rows, cols, diagonal):
        if row.get("rows") != rows:
            row.clear()
            row.update(rows=rows, jac=flat(x[rows]))
        jx = row["jac"]
        jy = jx if (symmetric and cols == rows) else flat(y[cols])
        return (jx @ jy.T).to(torch.float64)

    theta = torch.empty(x.shape[0], y.shape[0], dtype=torch.float64, device=x.device)
    return tiled_gram(tile, x.shape[0], None if symmetric else y.shape[0], block=chunk_size, out=theta)


def _generic_diag(model, x, chunk_size):
    flat = _jacobian(model)
    return torch.cat([(j * j).sum(1).to(torch.float64)
                      for j in map(flat, torch.split(x, chunk_size))])


def _prepare(model, method, chunk_size, output):
    """Validate the arguments; return the scalar-output module and whether the structured path applies."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    check_choice(method, "method", _METHODS)
    check_int(chunk_size, "chunk_size", 1)
    if output is not None:
        output = check_int(output, "output", 0)
        model = _Output(model, output)
    if method == "structured" and not isinstance(model, MLP):
        raise ValueError("method='structured' needs an nk.MLP; use method='jacobian' for other modules")
    return model, method != "jacobian" and isinstance(model, MLP)


def empirical_ntk(model, X, Y=None, *, method="auto", chunk_size=32, output=None):
    r"""The empirical NTK :math:`\langle\partial_\theta f(x_i), \partial_\theta f(y_j)\rangle` of a torch module.

    :math:`\theta` is the model's *trainable* parameters: a frozen one (``requires_grad=False``) is
    left out by both methods. Below a step activation (derivative 0 almost everywhere) the gradient is
    0, so those layers contribute nothing.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of n inputs to n scalars (an :class:`~ntklib.networks.MLP`, a
        :class:`~ntklib.networks.CNN` with one output, or any module with scalar output), or to
        (n, k) outputs when ``output`` chooses one of them.
    X : array_like or torch.Tensor, shape (n, d)
        Inputs (any batch-first shape for modules other than an MLP, e.g. images (n, C, H, W) for a
        :class:`~ntklib.networks.CNN`).
    Y : array_like or torch.Tensor, shape (m, d), optional
        Second set of inputs; ``None`` means ``X`` (and an exactly symmetric result).
    method : {"auto", "structured", "jacobian"}, default "auto"
        ``"structured"`` (the default for an :class:`~ntklib.networks.MLP`) uses the layer structure,
        :math:`O(n^2 \cdot \text{width})` per layer; ``"jacobian"`` uses ``torch.func`` for any module,
        holding two chunks of ``chunk_size x #params`` Jacobians at a time.
    chunk_size : int, default 32
        Inputs per Jacobian chunk of the ``"jacobian"`` path.
    output : int, optional
        For a model with outputs of shape (n, k): the kernel of output ``output`` alone.

    Returns
    -------
    K : ndarray or torch.Tensor, shape (n, m)
        The kernel in float64; a tensor on the model's device if ``X`` is a tensor, else a numpy
        array.

    Raises
    ------
    TypeError
        If ``model`` is not a ``torch.nn.Module``.
    ValueError
        For an unknown ``method``, ``method="structured"`` on a module that is not an MLP, a model
        whose output is not one scalar per input, a model without trainable parameters, inputs with
        NaN or inf, inputs the model cannot take (the wrong number of features: the message names
        ``X`` or ``Y``), or ``X`` and ``Y`` with different feature shapes.

    See Also
    --------
    EmpiricalNTK : The same kernel as an object, with ``diag``.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> X = np.random.default_rng(0).standard_normal((4, 3))
    >>> net = nk.MLP(3, width=8, depth=2, seed=0)
    >>> generic = nk.empirical_ntk(net, X, method="jacobian")
    >>> np.allclose(nk.empirical_ntk(net, X), generic)
    True

    A linear model :math:`f(x) = w\cdot x` has :math:`\Theta = X X^\top`:

    >>> np.allclose(nk.empirical_ntk(nk.MLP(3, 1, 0, seed=0), X), X @ X.T)
    True
    """
    model, structured = _prepare(model, method, chunk_size, output)
    x = _ntk_inputs(model, X, "X")
    symmetric = Y is None
    y = x if symmetric else _as_batch(model, Y, "Y")
    check_same_features(x, y)  # so Y has samples the model takes, as X has
    if structured:
        theta = _structured_ntk(model, x, y, symmetric)
    else:
        theta = _generic_ntk(model, x, y, symmetric, chunk_size)
    return returns_like(X, theta)


class EmpiricalNTK:
    r"""The empirical NTK of a torch module as a kernel object: ``k(X, Y=None)`` and ``k.diag(X)``.

    The kernel is that of the model's *current* parameters: training the model changes it.

    Parameters
    ----------
    model : torch.nn.Module
        As in :func:`empirical_ntk`; stored as ``self.model`` (not copied).
    method : {"auto", "structured", "jacobian"}, default "auto"
        As in :func:`empirical_ntk`.
    chunk_size : int, default 32
        As in :func:`empirical_ntk`.
    output : int, optional
        As in :func:`empirical_ntk`.

    Raises
    ------
    TypeError, ValueError
        As :func:`empirical_ntk`, at construction.

    Notes
    -----
    ``repr(k)`` shows ``EmpiricalNTK(<repr of the model>, ...)``. An :class:`~ntklib.networks.MLP`
    or :class:`~ntklib.networks.CNN` has a repr that is its constructor call (``MLP(3, 16, 2,
    seed=0)``): evaluated, it builds the network *at its initialization*. Two kernels are equal when
    their models have the same type, repr and parameter values, and the same ``method``,
    ``chunk_size`` and ``output``; so ``eval(repr(k)) == k`` holds for an untrained network and
    fails once it has been trained. The hash uses only what training does not change.

    Examples
    --------
    >>> import numpy as np, torch, ntklib as nk
    >>> from ntklib import MLP, EmpiricalNTK
    >>> k = nk.EmpiricalNTK(nk.MLP(3, 16, 2, seed=0))
    >>> k
    EmpiricalNTK(MLP(3, 16, 2, seed=0))
    >>> eval(repr(k)) == k
    True
    >>> X = np.random.default_rng(0).standard_normal((5, 3))
    >>> np.allclose(k.diag(X), np.diag(k(X)))
    True
    """

    def __init__(self, model, *, method="auto", chunk_size=32, output=None):
        _prepare(model, method, chunk_size, output)
        self.model, self.method, self.chunk_size, self.output = model, method, chunk_size, output

    def __call__(self, X, Y=None):
        """The Gram matrix of the model's current parameters.

        Parameters
        ----------
        X : array_like or torch.Tensor, shape (n, d)
            Inputs, as for :func:`empirical_ntk`.
        Y : array_like or torch.Tensor, shape (m, d), optional
            Second set of inputs; ``None`` means ``X``.

        Returns
        -------
        ndarray or torch.Tensor, shape (n, m)
            ``empirical_ntk(self.model, X, Y, method=..., chunk_size=..., output=...)``.
        """
        return empirical_ntk(self.model, X, Y, method=self.method, chunk_size=self.chunk_size, output=self.output)

    def diag(self, X):
        r"""The diagonal :math:`\|\partial_\theta f(x_i)\|^2`, without the full matrix.

        Parameters
        ----------
        X : array_like or torch.Tensor, shape (n, d)
            Inputs, as for :func:`empirical_ntk`.

        Returns
        -------
        ndarray or torch.Tensor, shape (n,)
            The diagonal in float64, the kind of ``X``; equal to that of ``self(X)`` to rounding.

        Examples
        --------
        >>> import numpy as np, ntklib as nk
        >>> X = np.eye(3)
        >>> nk.EmpiricalNTK(nk.MLP(3, 4, 0, seed=0)).diag(X)
        array([1., 1., 1.])
        """
        model, structured = _prepare(self.model, self.method, self.chunk_size, self.output)
        x = _ntk_inputs(model, X, "X")
        out = _structured_diag(model, x) if structured else _generic_diag(model, x, self.chunk_size)
        return returns_like(X, out)

    def _options(self):
        return self.method, self.chunk_size, self.output

    def __repr__(self):
        args = [repr(self.model)]
        for name, value, default in zip(("method", "chunk_size", "output"), self._options(), ("auto", 32, None)):
            if value != default:
                args.append(f"{name}={value!r}")
        return f"EmpiricalNTK({', '.join(args)})"

    def __eq__(self, other):
        if not isinstance(other, EmpiricalNTK) or other._options() != self._options():
            return False
        a, b = self.model, other.model
        if a is b:
            return True
        if type(a) is not type(b) or repr(a) != repr(b):
            return False
        sa, sb = a.state_dict(), b.state_dict()
        return sa.keys() == sb.keys() and all(
            sa[k].shape == sb[k].shape and sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]) for k in sa
        )

    def __hash__(self):
        return hash((type(self.model), repr(self.model), self._options()))


def empirical_nngp(make_model, X, Y=None, *, n_models, seed=0):
    r"""Monte Carlo NNGP: :math:`\frac1M\sum_{s=1}^{M} f_s(x) f_s(y)` over ``n_models`` initializations.

    Parameters
    ----------
    make_model : callable
        ``make_model(seed)`` returns a freshly initialized network with scalar output; seeds
        ``seed, seed + 1, ..., seed + n_models - 1`` are used.
    X : array_like or torch.Tensor, shape (n, d)
        Inputs (batch-first; images for a CNN).
    Y : array_like or torch.Tensor, shape (m, d), optional
        Second set of inputs; ``None`` means ``X``.
    n_models : int
        :math:`M`, the number of initializations.
    seed : int, default 0
        The first seed.

    Returns
    -------
    K : ndarray or torch.Tensor, shape (n, m)
        The Monte Carlo estimate in float64, the kind of ``X``. Its standard error per entry is about
        :math:`\sqrt{(K_{xx}K_{yy} + K_{xy}^2)/M}`.

    Raises
    ------
    TypeError, ValueError
        For an ``n_models`` that is not an int >= 1, or invalid inputs.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> X = nk.data.sphere(3, 4, seed=0)
    >>> mc = nk.empirical_nngp(lambda s: nk.MLP(4, 64, 1, seed=s), X,
    ...                        n_models=200)
    >>> bool(np.abs(mc - nk.nngp(X, depth=1)).max() < 0.3)
    True
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
