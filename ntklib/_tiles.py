r"""The one tiled Gram loop: fill a kernel matrix tile by tile, the upper tiles only when it is symmetric.

Every Gram matrix of ntklib (the fully connected kernels, the CNTK, and after it the empirical NTK) is
built here from a callback ``tile(rows, cols, diagonal) -> block`` that computes the block of entries
``K[..., rows, cols]`` for two ``slice`` objects. For ``K(X)`` (``m=None``) only the tiles on and
above the diagonal are computed: a diagonal tile is made exactly symmetric from its upper triangle,
and an off-diagonal tile is also written, transposed, at its mirror position. Because only the upper
triangle of a diagonal tile is read, the callback may skip the pairs below it (``diagonal=True``).

**Threads without global state.** On a multi-core CPU the tiles go to a pool of our own threads
(torch releases the GIL in its kernels; the tiles write disjoint parts of the output). A tile is
small (it should stay in cache), so torch's intra-op threads would synchronize after each of the many
small elementwise operations of a tile (and MKL's vectorized ``acos``/``sqrt`` and the BLAS call
start a thread team per call, which from a non-main thread costs milliseconds). So each pool thread
limits *itself* to one intra-op thread, with the per-thread settings of the OpenMP runtime and of
MKL that torch loaded (``omp_set_num_threads`` and ``mkl_set_num_threads_local`` act on the calling
thread only). No global setting is changed: not ``torch.set_num_threads``, which is process-wide (a
thread started meanwhile would inherit it, and two concurrent calls would race on restoring it).
Where those runtimes cannot be found (not Linux, or a torch without OpenMP), the tiles run in the
calling thread instead, with torch's own threading, which is correct but slower for small tiles.
Callers whose tiles are large arrays (the CNTK's batches) pass ``threads=None`` and let torch
parallelize each operation.
"""
from __future__ import annotations

import ctypes
import functools
from concurrent.futures import ThreadPoolExecutor

import torch

__all__ = ["tiled_gram", "tile_slices", "one_thread_here", "mirror_upper"]



def mirror_upper(t: torch.Tensor) -> torch.Tensor:
    """The square (batch of) matrices ``t`` with the lower triangle replaced by the upper one, transposed.

    A Gram matrix K(X) is symmetric in exact arithmetic only: BLAS and torch's vectorized
    elementwise functions may round K_ij and K_ji differently. Every K(X) of ntklib is made exactly
    symmetric here (adding the zeros of the other triangle is exact).
    """
    return torch.triu(t) + torch.triu(t, 1).transpose(-1, -2)

@functools.lru_cache(maxsize=1)
def _thread_limiters() -> tuple:
    """The per-thread "use one thread" setters of the OpenMP runtime and MKL that torch loaded."""
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if line.rstrip().endswith(".so") or ".so." in line}
    except OSError:
        return ()
    setters = []
    for path in sorted(paths):
        name = path.rsplit("/", 1)[-1]
        try:
            if name.startswith(("libgomp", "libiomp", "libomp")):
                fn = ctypes.CDLL(path).omp_set_num_threads
                fn.argtypes, fn.restype = [ctypes.c_int], None
                setters.append(fn)
            elif name.startswith(("libtorch_cpu", "libmkl_rt")):
                fn = getattr(ctypes.CDLL(path), "MKL_Set_Num_Threads_Local", None)
                if fn is not None:
                    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
                    setters.append(fn)
        except OSError:  # pragma: no cover - a library that cannot be opened again
            continue
    if not any(getattr(f, "restype", 0) is None for f in setters):
        return ()  # no OpenMP runtime found: a limit on MKL alone would not stop torch's threads
    return tuple(setters)


def one_thread_here() -> bool:
    """Limit the calling thread (only) to one torch intra-op thread; True if that took effect.

    Meant for threads of our own pools: it uses the per-thread settings of the OpenMP runtime and
    MKL, so ``torch.get_num_threads()`` in other threads, and in threads started later, is unchanged.

    Returns
    -------
    bool
        Whether ``torch.get_num_threads()`` is now 1 in this thread.

    Examples
    --------
    >>> import threading, torch
    >>> seen = []
    >>> t = threading.Thread(target=lambda: seen.append(one_thread_here()))
    >>> t.start(); t.join()
    >>> before = torch.get_num_threads()
    >>> seen in ([True], [False]), torch.get_num_threads() == before
    (True, True)
    """
    torch.get_num_threads()  # torch initializes a thread's setting on first use: do it first
    for setter in _thread_limiters():
        setter(1)
    return torch.get_num_threads() == 1


def tile_slices(n: int, m: int | None, block: int) -> list[tuple[slice, slice]]:
    """The tiles of an (n, m) Gram matrix, row block by row block; for ``m=None`` the upper ones only.

    Examples
    --------
    >>> [(r.start, c.start) for r, c in tile_slices(5, None, 2)]
    [(0, 0), (0, 2), (0, 4), (2, 2), (2, 4), (4, 4)]
    """
    symmetric = m is None
    m = n if symmetric else m
    return [
        (slice(i0, min(i0 + block, n)), slice(j0, min(j0 + block, m)))
        for i0 in range(0, n, block)
        for j0 in range(i0 if symmetric else 0, m, block)
    ]


def tiled_gram(tile, n: int, m: int | None = None, *, block: int, out: torch.Tensor, threads: int | None = None):
    """Fill ``out[..., :n, :m]`` from ``tile(rows, cols, diagonal)`` blocks and return ``out``.

    Parameters
    ----------
    tile : callable
        ``tile(rows, cols, diagonal)`` with ``rows``, ``cols`` slices returns the block
        ``K[..., rows, cols]`` (leading dimensions as ``out``'s). ``diagonal`` is True for the
        diagonal tiles of a symmetric call, of which only the upper triangle (diagonal included) is
        read. Tiles come row block by row block (all tiles of one ``rows`` in a row), so a serial
        callback may cache work per row block.
    n, m : int
        The Gram matrix is (n, m); ``m=None`` means a symmetric (n, n) matrix: the upper tiles are
        computed and mirrored, and the result is exactly symmetric.
    block : int
        Tile side (>= 1).
    out : torch.Tensor, shape (..., n, m or n)
        Where the result goes.
    threads : int or None, default None
        ``None``: the tiles run in order in the calling thread (torch parallelizes each operation as
        it is configured to). An int: on a CPU the tiles go to a pool of that many threads of our own,
        each limited to one intra-op thread (see :mod:`ntklib._tiles`), even for a single tile; on
        other devices, or where the per-thread limit is unavailable, they run in the calling thread.
        No global torch setting is changed.

    Returns
    -------
    torch.Tensor
        ``out``.

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(5.0)
    >>> K = tiled_gram(lambda r, c, diagonal: x[r, None] * x[None, c], 5, block=2,
    ...                out=torch.empty(5, 5), threads=2)
    >>> bool((K == torch.outer(x, x)).all())
    True
    """
    symmetric = m is None
    tiles = tile_slices(n, m, block)

    def fill(rc):
        rows, cols = rc
        diagonal = symmetric and rows == cols
        t = tile(rows, cols, diagonal)
        if diagonal:
            t = mirror_upper(t)
        out[..., rows, cols] = t
        if symmetric and rows != cols:
            out[..., cols, rows] = t.transpose(-1, -2)

    if threads is not None and tiles and out.device.type == "cpu" and _thread_limiters():
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(tiles))), initializer=one_thread_here) as pool:
            for _ in pool.map(fill, tiles):
                pass
    else:
        for rc in tiles:
            fill(rc)
    return out
