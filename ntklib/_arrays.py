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
        if not a.flags.writeable:
            a = a.copy()
        t = torch.as_tensor(a)
    if t.is_complex() or not (t.is_floating_point() or t.dtype in _INT_TYPES):
        raise TypeError(f"{name} must be a real numeric array; got dtype {t.dtype}")
    t = t.to(dtype=dtype, device=device if device is not None else t.device)
    if t.numel() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf; every entry must be finite")
    return t


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
