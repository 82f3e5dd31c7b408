r"""Training a torch network on the squared loss, with the history the chapters plot.

:func:`train` runs full-batch gradient descent (``"gd"``), minibatch SGD (``"sgd"``) or Adam
(``"adam"``) on

.. math:: L(\theta) = \frac12 \sum_{i \in B} \|f_\theta(x_i) - y_i\|^2
          \quad(\text{``reduction="sum"``}), \qquad \frac{1}{2|B|} \sum_{i \in B} \|f_\theta(x_i) - y_i\|^2
          \quad(\text{``"mean"``}),

over the batch :math:`B` of a step (every training point for full-batch training). The
parameterization is the model's own (``nk.MLP(..., parameterization=...)``, ``nk.CNN(...)``); with
``"sum"`` full-batch gradient descent with step :math:`\eta` moves the outputs, in the kernel regime,
by :math:`r_{t+1} = (I - \eta\hat\Theta) r_t`. The run is deterministic: the model's initialization is
its own seed, and the minibatches come from ``seed``. The returned :class:`History` holds the
training loss (and the test loss) at the recorded steps, the parameter movement relative to the
initialization, and the drift of the empirical NTK on chosen points at chosen steps.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ._arrays import check_bool, check_choice, check_int, to_tensor
from .empirical import _points_for, empirical_ntk
from .networks import MLP
from .progress import progress_bar

__all__ = ["OPTIMIZERS", "History", "train"]

#: The optimizers of :func:`train`.
OPTIMIZERS = ("gd", "sgd", "adam")
_REDUCTIONS = ("sum", "mean")
_METHODS = ("auto", "structured", "autograd")


@dataclass(eq=False)
class History:
    r"""What :func:`train` recorded (each parameter is stored as the attribute of its name).

    Parameters
    ----------
    steps : ndarray of int, shape (r,)
        The recorded steps: 0, ``record_every``, ``2 * record_every``, ... and the last step.
    loss : ndarray, shape (r,)
        The training loss :math:`L(\theta_t)` on all training points (same reduction as the
        training), at each recorded step.
    test_loss : ndarray, shape (r,), or None
        The same loss on ``(X_test, y_test)``, if given.
    movement : ndarray, shape (r,)
        :math:`\|\theta_t - \theta_0\| / \|\theta_0\|` over all parameters.
    movement_by_parameter : dict of str to ndarray, shape (r,)
        The same, per named parameter (``model.named_parameters()``), e.g. ``"layers.0.weight"``
        for the hidden weights of an :class:`~ntklib.networks.MLP`. A parameter initialized at 0
        has movement 0 until it moves and inf after (never 0/0 = NaN); a frozen one
        (``requires_grad=False``) stays at 0.
    ntk_steps : ndarray of int, shape (s,)
        The steps at which the empirical NTK was computed on ``ntk_points`` (empty without them).
    ntk_drift : ndarray, shape (s,)
        :math:`\|\hat\Theta_t - \hat\Theta_0\|_F / \|\hat\Theta_0\|_F` at those steps.

    Examples
    --------
    >>> import numpy as np, ntklib as nk
    >>> X = nk.data.sphere(8, 3, seed=0)
    >>> h = nk.train(nk.MLP(3, 32, 1, seed=0), X, X[:, 0], lr=0.1, steps=4,
    ...              record_every=2, progress=False)
    >>> h.steps.tolist(), float(h.movement[0]), len(h.loss)
    ([0, 2, 4], 0.0, 3)
    """

    steps: np.ndarray
    loss: np.ndarray
    test_loss: np.ndarray | None
    movement: np.ndarray
    movement_by_parameter: dict = field(default_factory=dict)
    ntk_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    ntk_drift: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _check_lr(lr):
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"lr must be a real number; got {lr!r}")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be finite and > 0; got {lr!r}")
    return float(lr)


def _relative(moved, initial):
    """``moved / initial`` as numpy, with 0/0 = 0 (a parameter at 0 that has not moved)."""
    out = moved / initial
    return torch.where(moved == 0, 0.0, out).cpu().numpy()


def _squared_loss(out, y, reduction):
    r = out - y
    total = 0.5 * (r * r).sum()
    return total / out.shape[0] if reduction == "mean" else total


class _StackedMLP:
    r"""The dense layers of an MLP (and of its antisymmetric twin) as working tensors, with the
    gradient of the squared loss written out.

    With a few dozen points an autograd step is mostly bookkeeping. The layer structure gives the
    gradient in a handful of matrix products: with :math:`\delta = \partial L/\partial z` at a dense
    layer's output :math:`z` and :math:`a` its input, :math:`\partial L/\partial W = s_W \delta^\top
    a`, :math:`\partial L/\partial b = s_b \sum \delta`, and the layer below gets :math:`s_W (\delta W)
    \odot \sigma'(z_{\text{below}})`. The ``H`` halves (the network and its twin) are laid side by
    side: the hidden features are one (n, H m) matrix; the first layer, which all halves apply to
    the same input, is one (H m, d) matrix; a middle layer is a stack (H, m, m) applied by ``bmm``;
    the output weights are one vector of H m entries whose multipliers carry the signs
    :math:`\pm 1/\sqrt 2` and the output scale. :meth:`write_back` copies the working tensors into
    the model's parameters.
    """

    def __init__(self, model: MLP):
        self.model = model
        halves = [model.layers] + ([model.twin] if model.twin is not None else [])
        self.halves, H, L = halves, len(halves), model.depth
        signs = [1.0] if H == 1 else [2**-0.5, -(2**-0.5)]
        act = model.activation
        self.relu = getattr(act, "k", None) == 1 and act.name == "relu"
        last = halves[0][-1]
        self.scales = [layer.weight_scale for layer in halves[0]]
        self.bias_scales = [layer.bias_scale for layer in halves[0]]
        with torch.no_grad():
            def cat(i, what):  # the output layer's (1, m) weights become one vector of H m entries
                return torch.cat([getattr(h[i], what).detach().reshape((-1,) if i == L else getattr(h[i], what).shape)
                                  for h in halves]).clone()
            self.W, self.b = [None] * (L + 1), [None] * (L + 1)
            for i in range(L + 1):
                has_bias = halves[0][i].bias is not None
                if i in (0, L):  # shared input (first layer) or one output vector (last layer)
                    self.W[i] = cat(i, "weight")
                    self.b[i] = cat(i, "bias") if has_bias else None
                else:
                    self.W[i] = torch.stack([h[i].weight.detach() for h in halves]).clone()
                    self.b[i] = torch.stack([h[i].bias.detach() for h in halves]).clone() if has_bias else None
            m_out = last.weight.shape[1]
            sign = torch.tensor(signs, dtype=self.W[L].dtype, device=self.W[L].device)
            self.c = (model.output_scale * self.scales[L]) * sign.repeat_interleave(m_out)
            self.c_bias = (model.output_scale * self.bias_scales[L]) * sign
        self.tensors = list(self.W) + [b for b in self.b if b is not None]
        self.H, self.depth = H, L

    def _act(self, z):
        return z.clamp(min=0) if self.relu else self.model.activation(z)

    def _deriv(self, z, h):
        return torch.sign(h) if self.relu else self.model.activation.derivative(z)

    def value_and_grad(self, x, y, reduction):
        """The loss on (x, y) and its gradients, in the order of ``self.tensors``."""
        H, L, n = self.H, self.depth, x.shape[0]
        zs, hs = [], [x.repeat(1, H) if L == 0 else x]  # hs[i]: input of layer i
        for i in range(L):
            h = hs[-1]
            if i == 0:
                z = h @ self.W[0].T
            else:  # (n, H m) -> (H, n, m) @ (H, m, m') -> (n, H m')
                z = torch.bmm(h.view(n, H, -1).transpose(0, 1), self.W[i].transpose(1, 2)).transpose(0, 1)
                z = z.reshape(n, -1)
            if self.scales[i] != 1.0:
                z = self.scales[i] * z
            if self.b[i] is not None:
                z = z + self.bias_scales[i] * self.b[i].reshape(-1)
            zs.append(z)
            hs.append(self._act(z))
        h = hs[-1]
        cw = self.c * self.W[L]
        out = h @ cw
        if self.b[L] is not None:
            out = out + self.c_bias @ self.b[L]
        r = out - y
        loss = 0.5 * (r @ r)
        if reduction == "mean":
            loss, r = loss / n, r / n
        gW, gb = [None] * (L + 1), [None] * (L + 1)
        gW[L] = self.c * (r @ h)
        if self.b[L] is not None:
            gb[L] = self.c_bias * r.sum()
        delta = r[:, None] * cw  # dL/dh of the last hidden features, (n, H m)
        for i in range(L - 1, -1, -1):
            dz = delta * self._deriv(zs[i], hs[i + 1])  # dL/dz_i
            s = self.scales[i]
            if i == 0:
                g = dz.T @ hs[0]
            else:
                dv = dz.view(n, H, -1).transpose(0, 1)  # (H, n, m')
                g = torch.bmm(dv.transpose(1, 2), hs[i].view(n, H, -1).transpose(0, 1))
                delta = torch.bmm(dv, self.W[i]).transpose(0, 1).reshape(n, -1)
                if s != 1.0:
                    delta = s * delta
            gW[i] = s * g if s != 1.0 else g
            if self.b[i] is not None:
                gb[i] = self.bias_scales[i] * dz.sum(0).view(self.b[i].shape)
        return loss, gW + [g for g in gb if g is not None]

    def write_back(self):
        """Copy the working tensors into the model's parameters."""
        L = self.depth
        with torch.no_grad():
            for k, half in enumerate(self.halves):
                for i, layer in enumerate(half):
                    if i == 0 or i == L:
                        rows = self.W[i].shape[0] // self.H
                        layer.weight.copy_(self.W[i][k * rows:(k + 1) * rows].reshape(layer.weight.shape))
                        if layer.bias is not None:
                            size = self.b[i].shape[0] // self.H
                            layer.bias.copy_(self.b[i][k * size:(k + 1) * size])
                    else:
                        layer.weight.copy_(self.W[i][k])
                        if layer.bias is not None:
                            layer.bias.copy_(self.b[i][k])


def _batches(n, batch_size, generator):
    """Endless minibatch indices: each epoch a fresh permutation, cut into full batches."""
    while True:
        perm = torch.randperm(n, generator=generator)
        for i in range(0, n - batch_size + 1, batch_size):
            yield perm[i:i + batch_size]


def train(model, X, y, *, optimizer="gd", lr, steps, batch_size=None, seed=0, reduction="sum",
          record_every=1, X_test=None, y_test=None, ntk_points=None, ntk_steps=None, ntk_output=None,
          method="auto", progress=True, desc=None):
    r"""Train ``model`` in place on the squared loss and record its history.

    Parameters
    ----------
    model : torch.nn.Module
        The network, e.g. an :class:`~ntklib.networks.MLP` or :class:`~ntklib.networks.CNN` in the
        parameterization it was built with. Its outputs have the shape of ``y``.
    X : array_like or torch.Tensor, shape (n, ...)
        Training inputs, batch first (converted to the model's dtype and device).
    y : array_like or torch.Tensor, shape (n,) or (n, k)
        Targets.
    optimizer : {"gd", "sgd", "adam"}, default "gd"
        ``"gd"``: full-batch gradient descent :math:`\theta \leftarrow \theta - \eta\nabla L`;
        ``"sgd"``: the same step on minibatches of ``batch_size`` (no momentum); ``"adam"``:
        ``torch.optim.Adam`` with its default betas, full-batch unless ``batch_size`` is given.
    lr : float
        The step :math:`\eta` (> 0).
    steps : int
        Number of optimizer steps (0 records the initialization only).
    batch_size : int, optional
        Minibatch size for ``"sgd"`` (required) and ``"adam"`` (optional); each epoch draws a fresh
        permutation of the training points and cuts it into full batches (a remainder of fewer
        than ``batch_size`` points is skipped in that epoch). Not allowed for ``"gd"``.
    seed : int, default 0
        Seed of the minibatch order (a private ``torch.Generator``; global state is untouched).
        The initialization is the model's.
    reduction : {"sum", "mean"}, default "sum"
        :math:`L = \frac12\sum_i \|f(x_i) - y_i\|^2` over the batch, or that divided by the batch size.
    record_every : int, default 1
        Record the losses and the movement every ``record_every`` steps (and at the last step).
    X_test, y_test : array_like or torch.Tensor, optional
        Test data, whose loss is recorded beside the training loss (both or neither).
    ntk_points : array_like or torch.Tensor, optional
        Inputs on which the empirical NTK :math:`\hat\Theta_t` is computed at ``ntk_steps``.
    ntk_steps : sequence of int, optional
        Steps in ``[0, steps]`` at which to measure the kernel drift; default ``(0, steps)``.
    ntk_output : int, optional
        For a model with several outputs, the output whose NTK is tracked (``output`` of
        :func:`~ntklib.empirical.empirical_ntk`).
    method : {"auto", "structured", "autograd"}, default "auto"
        How gradients are computed. ``"structured"`` (the default for an
        :class:`~ntklib.networks.MLP`) backpropagates through the dense layers by hand, several
        times faster than autograd on small batches, using ``model.activation.derivative`` (equal
        to autograd's derivative for the library's activations); ``"autograd"`` works for any
        module. Only parameters with ``requires_grad=True`` are trained; ``"auto"`` takes
        ``"autograd"`` for a model with frozen parameters.
    progress : bool, default True
        Show an :func:`~ntklib.progress.progress_bar` over the steps.
    desc : str, optional
        Label of the progress bar (default: the optimizer's name).

    Returns
    -------
    History
        The recorded losses, movements and kernel drifts.

    Raises
    ------
    TypeError
        If ``model`` is not a ``torch.nn.Module``, for non-integer counts, a non-numeric ``lr`` or a
        ``progress`` that is not a bool.
    ValueError
        For an unknown ``optimizer``, ``reduction`` or ``method``, a ``batch_size`` with ``"gd"`` or
        without it for ``"sgd"``, a ``batch_size`` above n, ``ntk_steps`` outside ``[0, steps]``,
        ``X_test`` without ``y_test``, outputs whose shape differs from ``y``'s, NaN or inf in the
        data, no training points, a model without trainable parameters, ``method="structured"``
        with frozen parameters, or a training loss that becomes inf or NaN (the run diverged: the
        message gives the step; the model keeps the parameters of that step).

    Examples
    --------
    Gradient descent on a linear model :math:`f(x) = w\cdot x` with ``"sum"`` contracts the
    training residual by :math:`(I - \eta X X^\top)` per step:

    >>> import numpy as np, torch, ntklib as nk
    >>> X = nk.data.sphere(6, 3, seed=0)
    >>> y = X @ np.array([1.0, -2.0, 0.5])
    >>> net = nk.MLP(3, 1, 0, seed=0)
    >>> r0 = net(torch.from_numpy(X)).detach().numpy() - y
    >>> h = nk.train(net, X, y, lr=0.2, steps=3, progress=False)
    >>> r3 = np.linalg.matrix_power(np.eye(6) - 0.2 * X @ X.T, 3) @ r0
    >>> bool(np.isclose(h.loss[-1], 0.5 * r3 @ r3))
    True

    The same seed gives the same minibatches, hence the same history:

    >>> runs = [nk.train(nk.MLP(3, 16, 1, seed=1), X, y, optimizer="sgd",
    ...                  lr=0.1, steps=5, batch_size=2, seed=7,
    ...                  progress=False).loss for _ in range(2)]
    >>> bool(np.array_equal(*runs))
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    optimizer = check_choice(optimizer, "optimizer", OPTIMIZERS)
    reduction = check_choice(reduction, "reduction", _REDUCTIONS)
    method = check_choice(method, "method", _METHODS)
    lr = _check_lr(lr)
    steps = check_int(steps, "steps", 0)
    record_every = check_int(record_every, "record_every", 1)
    seed = check_int(seed, "seed", 0)
    progress = check_bool(progress, "progress")
    if method == "structured" and not isinstance(model, MLP):
        raise ValueError("method='structured' needs an nk.MLP; use method='autograd' for other modules")
    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    if not trainable:
        raise ValueError("model has no parameters to train" + (" (every one has requires_grad=False)" if params else ""))
    frozen = len(trainable) < len(params)
    if method == "structured" and frozen:
        raise ValueError("method='structured' updates every parameter, and model has frozen ones "
                         "(requires_grad=False); use method='autograd'")
    # a subclass may change the forward pass that the structured gradient writes out
    structured = method == "structured" or (method == "auto" and type(model) is MLP and not frozen)

    p0 = params[0]
    x = _points_for(model, X, "X")
    t = to_tensor(y, "y", dtype=p0.dtype, device=p0.device)
    n = x.shape[0]
    if n == 0:
        raise ValueError("X must hold at least one training point; got shape " + str(tuple(x.shape)))
    if t.shape[0] != n:
        raise ValueError(f"y must have one target per input: {n}; got shape {tuple(t.shape)}")
    if (X_test is None) != (y_test is None):
        raise ValueError("give X_test and y_test together, or neither")
    if X_test is not None:
        xs = _points_for(model, X_test, "X_test")
        ts = to_tensor(y_test, "y_test", dtype=p0.dtype, device=p0.device)
    if optimizer == "gd" and batch_size is not None:
        raise ValueError("optimizer='gd' is full-batch; use optimizer='sgd' for minibatches of batch_size")
    if optimizer == "sgd" and batch_size is None:
        raise ValueError("optimizer='sgd' needs a batch_size (full-batch descent is optimizer='gd')")
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", 1)
        if batch_size > n:
            raise ValueError(f"batch_size must be at most the number of training points {n}; got {batch_size}")
    if ntk_points is None:
        if ntk_steps is not None:
            raise ValueError("ntk_steps needs ntk_points, the inputs on which the NTK is measured")
        ntk_at = []
    else:
        ntk_at = sorted({check_int(s, "ntk_steps entry", 0) for s in ((0, steps) if ntk_steps is None else ntk_steps)})
        if ntk_at and ntk_at[-1] > steps:
            raise ValueError(f"ntk_steps must lie in [0, steps={steps}]; got {ntk_at[-1]}")

    names = [name for name, _ in model.named_parameters()]
    init = [p.detach().clone() for p in params]
    init_norms = torch.stack([q.norm() for q in init])
    init_norm = init_norms.norm()
    stack = _StackedMLP(model) if structured else None
    tensors = stack.tensors if structured else trainable
    if optimizer == "adam":
        opt = torch.optim.Adam(tensors, lr=lr)
    elif not structured:
        opt = torch.optim.SGD(trainable, lr=lr)
    batches = None if batch_size is None else _batches(n, batch_size, torch.Generator().manual_seed(seed))

    def value_and_grad(xb, yb):
        """Loss of the batch at the current parameters, and its gradients."""
        if structured:
            with torch.no_grad():
                loss, grads = stack.value_and_grad(xb, yb, reduction)
        else:
            with torch.enable_grad():
                out = model(xb)
                if out.shape != yb.shape:
                    raise ValueError(f"the model's outputs have shape {tuple(out.shape)}; y has {tuple(yb.shape)}")
                loss = _squared_loss(out, yb, reduction)
                grads = torch.autograd.grad(loss, trainable)
        return float(loss.detach()), grads

    def loss_at(xe, ye):
        with torch.no_grad():
            out = model(xe)
            if out.shape != ye.shape:
                raise ValueError(f"the model's outputs have shape {tuple(out.shape)}; y has {tuple(ye.shape)}")
            return float(_squared_loss(out, ye, reduction))

    rec_steps, losses, test_losses, moves = [], [], [], []
    ntk0, drifts = None, []

    def diverged(what, value, step):
        if structured:
            stack.write_back()
        raise ValueError(f"training diverged: the {what} is {value} at step {step} (lr={lr} too large for this "
                         "model and data?); the model keeps the parameters of that step")

    def record(step, train_loss):
        with torch.no_grad():
            per = torch.stack([(p.detach() - q).norm() for p, q in zip(params, init)])
        rec_steps.append(step)
        losses.append(loss_at(x, t) if train_loss is None else train_loss)
        if X_test is not None:
            test_losses.append(loss_at(xs, ts))
        for what, values in (("training loss", losses), ("test loss", test_losses)):
            if values and not math.isfinite(values[-1]):
                diverged(what, values[-1], step)
        moves.append(_relative(torch.cat([per.norm()[None], per]), torch.cat([init_norm[None], init_norms])))

    def measure_ntk():
        nonlocal ntk0
        K = torch.as_tensor(empirical_ntk(model, ntk_points, output=ntk_output))
        if ntk0 is None:
            ntk0 = K
        drifts.append(float(torch.linalg.norm(K - ntk0) / torch.linalg.norm(ntk0)))

    loss_at(x, t)  # shape check before any step
    bar = progress_bar(range(steps), desc=desc or optimizer, leave=False) if progress else range(steps)
    for step in bar:
        recording = step % record_every == 0
        if structured and (recording or step in ntk_at):
            stack.write_back()
        if step in ntk_at:
            measure_ntk()
        if batches is None:
            loss, grads = value_and_grad(x, t)
        else:
            idx = next(batches).to(x.device)
            loss, grads = value_and_grad(x[idx], t[idx])
        if not math.isfinite(loss):
            diverged("batch loss" if batches is not None else "loss", loss, step)
        if recording:
            record(step, loss if batches is None else None)
        if optimizer == "adam" or not structured:
            for p, g in zip(tensors, grads):
                p.grad = g
            opt.step()
            for p in tensors:
                p.grad = None
        else:
            with torch.no_grad():
                for p, g in zip(tensors, grads):
                    p.add_(g, alpha=-lr)
    if structured:
        stack.write_back()
    if steps in ntk_at:
        measure_ntk()
    record(steps, None)
    moves = np.array(moves)
    return History(
        steps=np.array(rec_steps),
        loss=np.array(losses),
        test_loss=np.array(test_losses) if X_test is not None else None,
        movement=moves[:, 0],
        movement_by_parameter={name: moves[:, 1 + i] for i, name in enumerate(names)},
        ntk_steps=np.array(ntk_at, dtype=int),
        ntk_drift=np.array(drifts),
    )
