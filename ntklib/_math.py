"""The two small math namespaces every closed form in ntklib is written against.

A formula takes ``M`` and calls ``M.sqrt``, ``M.exp``, ``M.acos``, ``M.const``, ...: with
:class:`TorchMath` it runs elementwise on float tensors (the kernels' float64/float32 path), with
:class:`MpMath` on mpmath numbers at the caller's precision (the high-precision spectra path). The
activations' duals (:mod:`ntklib.activations`) and the classic kernels' profiles
(:mod:`ntklib.classic`) use them, so each formula is written once for both.
"""
from __future__ import annotations

import math

import mpmath as mp
import torch

__all__ = ["TorchMath", "MpMath", "covers"]


class TorchMath:
    """The operations of a closed form on float tensors (elementwise, broadcasting)."""

    pi = math.pi
    sqrt = staticmethod(torch.sqrt)
    acos = staticmethod(torch.acos)
    atan2 = staticmethod(torch.atan2)
    exp = staticmethod(torch.exp)
    expm1 = staticmethod(torch.expm1)
    sign = staticmethod(torch.sign)
    addcmul = staticmethod(torch.addcmul)  # a + b * c in one pass
    const = staticmethod(float)  # a parameter (a length scale, a power) next to tensors

    @staticmethod
    def full(value, *like):
        """A tensor of ``value`` with the broadcast shape, dtype and device of ``like``."""
        ref = like[-1]
        return torch.full(torch.broadcast_shapes(*(t.shape for t in like)), value, dtype=ref.dtype, device=ref.device)

    @staticmethod
    def broadcast(x, *like):
        """``x`` with the broadcast shape of ``x`` and ``like`` (a no-op in the recursion, where the
        correlation has the full shape already)."""
        if covers(x, *like):
            return x  # x already has the full shape
        return x.expand(torch.broadcast_shapes(x.shape, *(t.shape for t in like))).contiguous()


class MpMath:
    """The same operations on mpmath numbers, at the caller's current mpmath precision."""

    pi = mp.pi  # a lazy constant: evaluated at the working precision where it is used
    sqrt = staticmethod(mp.sqrt)
    acos = staticmethod(mp.acos)
    atan2 = staticmethod(mp.atan2)
    exp = staticmethod(mp.exp)
    expm1 = staticmethod(mp.expm1)
    sign = staticmethod(mp.sign)
    const = staticmethod(mp.mpf)  # a parameter, exact at the working precision

    @staticmethod
    def addcmul(a, b, c):
        return a + b * c

    @staticmethod
    def full(value, *like):
        return mp.mpf(value)

    @staticmethod
    def broadcast(x, *like):
        return x


def covers(x, *like) -> bool:
    """Whether tensor ``x`` already has the broadcast shape of ``x`` and ``like`` (no
    torch.broadcast_shapes, ~80 us)."""
    xs = x.shape
    return all(t is None or (len(t.shape) <= len(xs) and all(n in (1, m) for n, m in zip(reversed(t.shape), reversed(xs))))
               for t in like)
