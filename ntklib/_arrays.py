"""Input validation and array-kind bookkeeping, done once at each public entry point.

Every public function of ntklib accepts numpy arrays (or anything ``numpy.asarray`` takes) and torch
tensors, computes in torch (a numpy input is wrapped without a copy when its dtype allows) and hands
back the caller's kind: numpy in, numpy out; a tensor in, a tensor out on the same device.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch

_INT_TYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)

_DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "double": torch.float64,
    "float": torch.float32,
}


def resolve_dtype(dtype) -> torch.dtype:
    """Map ``None`` (float64), a torch dtype, a numpy dtype or a name to a torch floating dtype."""
    if dtype is None:
        return torch.float64
    if isinstance(dtype, torch.dtype):
        out = dtype
    else:
        try:
            out = _DTYPES[np.dtype(dtype).name]
        except (TypeError, KeyError):
            raise TypeError(f"dtype must be float64 or float32 (torch or numpy); got {dtype!r}") from None
    if out not in (torch.float64, torch.float32):
        raise TypeError(f"dtype must be float64 or float32; got {out}")
    return out


def to_tensor(x, name: str, *, dtype: torch.dtype, device=None) -> torch.Tensor:
    """Convert ``x`` to a finite real tensor of ``dtype`` or raise a clear error naming ``name``."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        try:
            a = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise TypeError(f"{name} must be a numeric array; got {type(x).__name__}") from exc
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a real numeric array; got dtype {a.dtype}")
        if a.dtype.kind != "f":
            a = a.astype(np.float64)
        if not a.flags.writeable or any(stride < 0 for stride in a.strides):
            a = a.copy()  # torch refuses negative strides (np.flip, x[::-1]) and read-only memory
        t = torch.as_tensor(a)
    if t.is_complex() or not (t.is_floating_point() or t.dtype in _INT_TYPES):
        raise TypeError(f"{name} must be a real numeric array; got dtype {t.dtype}")
    source = t
    t = t.to(dtype=dtype, device=device if device is not None else t.device)
    if t.numel() and not bool(torch.isfinite(t).all()):
        if source.dtype != t.dtype and bool(torch.isfinite(source).all()):  # finite, but not in dtype
            raise ValueError(
                f"{name} has entries too large for {dtype} (max |entry| = {float(source.abs().max()):.3g}, the "
                f"largest {dtype} is {torch.finfo(dtype).max:.3g}); rescale it or pass dtype=torch.float64"
            )
        raise ValueError(f"{name} contains NaN or inf; every entry must be finite")
    return t


def max_abs(t: torch.Tensor) -> float:
    """The largest ``|t|`` as a float, 0 for an empty tensor (for messages: ``t.max()`` refuses empty input)."""
    return float(t.abs().max()) if t.numel() else 0.0


def as_points(x, name: str, *, dtype: torch.dtype, device=None) -> torch.Tensor:
    """A (n_samples, n_features) matrix of input points."""
    t = to_tensor(x, name, dtype=dtype, device=device)
    if t.ndim != 2:
        hint = " (a single point x is X = x.reshape(1, -1))" if t.ndim == 1 else ""
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features); got shape {tuple(t.shape)}{hint}"
        )
    if t.shape[1] == 0:
        raise ValueError(f"{name} must have at least one feature; got shape {tuple(t.shape)}")
    return t


def returns_like(template, t: torch.Tensor):
    """Give ``t`` back as the caller's kind: a tensor if ``template`` is a tensor, else numpy."""
    if isinstance(template, torch.Tensor):
        return t
    return t.cpu().numpy()


def check_int(value, name: str, minimum: int, meaning: str = "") -> int:
    """An int (not a bool) >= ``minimum``, or a TypeError/ValueError naming ``name``."""
    what = f" ({meaning})" if meaning else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int{what}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}{what}; got {value}")
    return int(value)


def check_bool(value, name: str) -> bool:
    """A bool (numpy's included), or a TypeError naming ``name``: ``"no"`` is not taken as true.

    Examples
    --------
    >>> from ntklib._arrays import check_bool
    >>> check_bool(False, "fix")
    False
    >>> check_bool("no", "fix")
    Traceback (most recent call last):
    ...
    TypeError: fix must be True or False; got 'no'
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False; got {value!r}")


class TooLargeError(ValueError):
    """A call that would exceed a documented size or cost limit, refused before the work starts.

    The message names the argument that sets the limit, so the caller can raise it knowingly.

    Examples
    --------
    >>> import ntklib as nk
    >>> issubclass(nk.TooLargeError, ValueError)
    True
    """


def check_budget(needed, limit, *, what: str, unit: str, knob: str) -> None:
    """Raise :class:`TooLargeError` when ``needed > limit`` (both in ``unit``), naming ``knob``.

    Examples
    --------
    >>> from ntklib._arrays import check_budget
    >>> check_budget(10, 100, what="the grid", unit="bytes", knob="max_bytes")
    >>> check_budget(1e10, 1e9, what="the pixel pairs", unit="bytes", knob="max_bytes")
    Traceback (most recent call last):
    ...
    ntklib._arrays.TooLargeError: the pixel pairs would need 1e+10 bytes, over the limit of 1e+09 bytes; pass a larger max_bytes to allow it
    """
    if needed > limit:
        raise TooLargeError(
            f"{what} would need {needed:.3g} {unit}, over the limit of {limit:.3g} {unit}; "
            f"pass a larger {knob} to allow it"
        )


def real_array(x, name: str) -> np.ndarray:
    """``x`` as a float64 numpy array of finite reals, or a TypeError/ValueError naming ``name``.

    Strings, objects and complex numbers are refused (numpy would drop an imaginary part with only
    a ComplexWarning); tensors are detached and copied to the CPU.

    Examples
    --------
    >>> from ntklib._arrays import real_array
    >>> real_array([1, 2], "t").dtype
    dtype('float64')
    >>> real_array([1j], "t")
    Traceback (most recent call last):
    ...
    TypeError: t must be a real numeric array; got dtype complex128
    """
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise TypeError(f"{name} must be a real numeric array; got dtype {x.dtype}")
        x = x.detach().cpu().to(torch.float64).numpy()
    try:
        a = np.asarray(x)
    except Exception as exc:
        raise TypeError(f"{name} must be a real numeric array; got {type(x).__name__}") from exc
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array; got dtype {a.dtype}")
    a = a.astype(np.float64)
    if a.size and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf; every entry must be finite")
    return a


#: cosines up to this many ulps (of the argument's precision) past +-1 are taken as +-1 by every ``kappa(u)``
COSINE_ULPS = 8


def cosine_argument(u) -> torch.Tensor:
    """``u`` as a float64 tensor in [-1, 1]: a dot product of unit vectors lands a few ulps past +-1
    (1 + 2.3e-16 in float64), so |u| <= 1 + 8 ulps (of float32 for a float32 ``u``, of float64 otherwise)
    is clipped; past that it is refused."""
    dtype = getattr(u, "dtype", None)  # a Python float or a list: float64 (np.dtype(None))
    if isinstance(dtype, torch.dtype):
        eps = torch.finfo(dtype).eps if dtype.is_floating_point else np.finfo(float).eps
    else:
        dtype = np.dtype(dtype) if isinstance(dtype, np.dtype) or dtype is None else np.dtype(float)
        eps = float(np.finfo(dtype).eps) if dtype.kind == "f" else np.finfo(float).eps
    t = to_tensor(u, "u", dtype=torch.float64)
    if t.numel():
        worst = float(t.abs().max())
        if worst > 1:
            if worst > 1 + COSINE_ULPS * eps:
                raise ValueError(f"u must lie in [-1, 1] (it is the cosine x.y of unit vectors; up to {COSINE_ULPS} "
                                 f"ulps past +-1 is taken as +-1); got |u| = {worst!r}")
            t = t.clamp(-1.0, 1.0)
    return t


def cosine_argument_mp(u):
    """``u`` as an mpmath number in [-1, 1], with the float64 tolerance of :func:`cosine_argument`
    (NaN is refused)."""
    import mpmath as mp

    u = mp.mpf(u)
    if not -1 <= u <= 1:  # NaN fails too
        if not abs(u) <= 1 + COSINE_ULPS * np.finfo(float).eps:
            raise ValueError(f"u must lie in [-1, 1] (it is the cosine x.y of unit vectors; up to {COSINE_ULPS} "
                             f"float64 ulps past +-1 is taken as +-1); got {u}")
        u = mp.mpf(1) if u > 0 else mp.mpf(-1)
    return u


def check_depth(depth) -> int:
    return check_int(depth, "depth", 0, "the number of hidden layers")


def check_variance(value, name: str, *, positive: bool) -> float:
    """A finite real scalar that is > 0 (``positive``) or >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        if isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim == 0:
            value = float(value)
        else:
            raise TypeError(f"{name} must be a real number; got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0; got {value}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0; got {value}")
    return value


def per_layer(value, name: str, depth: int) -> list:
    """Broadcast a scalar (or None) to one entry per hidden layer, or check a sequence's length."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != depth:
            raise ValueError(f"{name} has {len(value)} entries but depth={depth}; give one per hidden layer")
        return list(value)
    return [value] * depth


def scalar_or_array(template, t: torch.Tensor):
    """Give ``t`` back as the caller's kind, a 0-d result as a numpy scalar.

    Parameters
    ----------
    template : array_like or torch.Tensor
        The caller's argument: its kind (tensor or not) decides the kind of the result.
    t : torch.Tensor
        The result, computed in torch.

    Returns
    -------
    torch.Tensor, numpy.ndarray or numpy scalar
        ``t`` itself if ``template`` is a tensor (on its device); otherwise ``t`` as a numpy array,
        or a numpy scalar when ``t`` is 0-d (so ``f(0.5)`` gives a number, as numpy's ufuncs do).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from ntklib._arrays import scalar_or_array
    >>> type(scalar_or_array(0.5, torch.tensor(1.0, dtype=torch.float64))).__name__
    'float64'
    >>> scalar_or_array(np.zeros(2), torch.ones(2)).tolist()
    [1.0, 1.0]
    >>> scalar_or_array(torch.zeros(2), torch.ones(2))
    tensor([1., 1.])
    """
    if isinstance(template, torch.Tensor):
        return t
    out = t.detach().cpu().numpy()
    return out[()] if out.ndim == 0 else out


def check_choice(value, name: str, allowed):
    """``value`` if it is one of ``allowed``, else a ValueError that lists the allowed values.

    Parameters
    ----------
    value : object
        The caller's argument.
    name : str
        The argument's name, for the message.
    allowed : sequence
        The accepted values, in the order the message lists them.

    Returns
    -------
    object
        The entry of ``allowed`` equal to ``value`` (a ``numpy.str_`` comes back as the plain str).

    Raises
    ------
    ValueError
        If ``value`` is not among ``allowed`` (compared with ``==``, a bool never equal to an int; an
        array or an oddly typed value is refused the same way, never with an error of the comparison).

    Examples
    --------
    >>> from ntklib._arrays import check_choice
    >>> check_choice("gap", "pooling", ("gap", "vanilla"))
    'gap'
    >>> check_choice("max", "pooling", ("gap", "vanilla"))
    Traceback (most recent call last):
    ...
    ValueError: pooling must be one of 'gap', 'vanilla'; got 'max'
    """
    allowed = tuple(allowed)
    for a in allowed:
        try:
            same = isinstance(value, bool) == isinstance(a, bool) and bool(value == a)
        except (TypeError, ValueError):  # an array compares elementwise: it is no choice
            same = False
        if same:
            return a
    raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


def check_same_features(x, y, names=("X", "Y")):
    """Refuse two batches whose samples differ in shape (the number of features for matrices).

    Parameters
    ----------
    x, y : torch.Tensor or numpy.ndarray
        Batches with the samples on the first axis: (n, d) points or (n, C, H, W) images.
    names : (str, str), default ("X", "Y")
        The arguments' names, for the message.

    Raises
    ------
    ValueError
        If ``x.shape[1:] != y.shape[1:]``; for matrices the message gives the two numbers of features.

    Examples
    --------
    >>> import numpy as np
    >>> from ntklib._arrays import check_same_features
    >>> check_same_features(np.ones((2, 3)), np.ones((5, 3)))
    >>> check_same_features(np.ones((2, 3)), np.ones((5, 4)))
    Traceback (most recent call last):
    ...
    ValueError: X and Y must have the same number of features; got X with 3 and Y with 4
    """
    a, b = tuple(x.shape[1:]), tuple(y.shape[1:])
    if a == b:
        return
    nx, ny = names
    if len(a) == 1 and len(b) == 1:
        raise ValueError(f"{nx} and {ny} must have the same number of features; got {nx} with {a[0]} and {ny} with {b[0]}")
    raise ValueError(f"{nx} and {ny} must hold samples of the same shape; got {nx} with {a} and {ny} with {b}")


#: Relative tolerance of :func:`check_gram`: a Gram matrix counts as symmetric when
#: ``max|K - K^T| <= GRAM_RTOL * max|K|``, and as positive semidefinite when its smallest eigenvalue
#: is ``>= -GRAM_RTOL * max|K|``. About 5e5 float64 ulps: far above the round-off of any float64
#: computation of a kernel, far below a real asymmetry. A Gram matrix computed in float32 without
#: mirroring may fail it: symmetrize it, ``(K + K.T) / 2``, before handing it over.
GRAM_RTOL = 1e-10


def check_gram(K, name: str = "K", *, dtype=torch.float64, device=None) -> torch.Tensor:
    """A square, finite, symmetric Gram matrix as a tensor, symmetrized exactly.

    Parameters
    ----------
    K : (n, n) array_like or torch.Tensor
        The Gram matrix.
    name : str, default "K"
        The argument's name, for the messages.
    dtype : torch.dtype, default torch.float64
        The dtype of the result.
    device : torch.device, optional
        Where the result lives; default the device of ``K`` (the CPU for numpy input).

    Returns
    -------
    torch.Tensor
        ``(K + K^T) / 2`` of shape (n, n).

    Raises
    ------
    TypeError
        If ``K`` is not a real numeric array.
    ValueError
        If ``K`` is not square, contains NaN or inf, or ``max|K - K^T| > GRAM_RTOL * max|K|``
        (:data:`GRAM_RTOL` = 1e-10; the message gives the asymmetry).

    See Also
    --------
    GRAM_RTOL : The one tolerance, also the one for positive semidefiniteness.

    Examples
    --------
    >>> import numpy as np
    >>> from ntklib._arrays import check_gram
    >>> check_gram(np.eye(2), "K_train").tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    >>> check_gram(np.array([[1.0, 0.5], [0.4, 1.0]]), "K_train")
    Traceback (most recent call last):
    ...
    ValueError: K_train must be symmetric: max |K - K^T| = 0.1 exceeds 1e-10 * max |K|
    """
    t = to_tensor(K, name, dtype=dtype, device=device)
    if t.ndim != 2 or t.shape[0] != t.shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix; got shape {tuple(t.shape)}")
    if t.numel():
        asym = float((t - t.T).abs().max())
        if asym > GRAM_RTOL * float(t.abs().max()):
            raise ValueError(f"{name} must be symmetric: max |K - K^T| = {asym:.3g} exceeds {GRAM_RTOL:g} * max |K|")
    return (t + t.T) / 2


def call_repr(obj, params: dict) -> str:
    """``Name(arg=value, ...)`` with the arguments that differ from ``__init__``'s defaults.

    As scikit-learn prints estimators: the repr reads back as code (``eval(repr(k)) == k`` with the
    class in scope) and stays short, because a default is not repeated.

    Parameters
    ----------
    obj : object
        The instance; its class's ``__init__`` signature gives the defaults.
    params : dict
        Constructor argument name -> value, in the order to print.

    Returns
    -------
    str
        The constructor call.

    Examples
    --------
    >>> import ntklib as nk
    >>> call_repr(nk.Laplace(), {"scale": 1.0}), call_repr(nk.Laplace(), {"scale": 2.0})
    ('Laplace()', 'Laplace(scale=2.0)')
    """
    import inspect

    signature = inspect.signature(type(obj).__init__).parameters
    shown = []
    for name, value in params.items():
        default = signature[name].default if name in signature else inspect.Parameter.empty
        if default is not inspect.Parameter.empty and _same(value, default):
            continue
        shown.append(f"{name}={value!r}")
    return f"{type(obj).__name__}({', '.join(shown)})"


def _same(a, b) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError, RuntimeError):  # arrays, tensors: never a default
        return False
