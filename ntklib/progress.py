"""Progress bars that go where a person is watching.

The long loops of the chapters show a `tqdm <https://tqdm.github.io>`_ bar. Where it is drawn depends
on who runs the chapter:

- **a person in Jupyter** watches the cell, so the bar is drawn in the cell: a widget when
  ipywidgets is installed, a line of text otherwise;
- **a tool that executes the notebook** (the book build, nbval) publishes or checks the cell's
  output, and nobody watches it: the bar goes to the terminal that started the tool, the kernel
  process's own stderr, and never into a page;
- **a script** writes it to stderr, as tqdm always does.

The environment variable ``NTK_PROGRESS`` decides: ``notebook``, ``terminal`` or ``off``; unset, it
is ``notebook`` inside a Jupyter kernel and ``terminal`` elsewhere. The book's build and its test
suite set it to ``terminal`` for the kernels they start.
tqdm's own ``TQDM_*`` variables (for example ``TQDM_MININTERVAL``) apply as usual.
"""
from __future__ import annotations

import functools
import importlib.util
import io
import os
import sys

from tqdm.std import tqdm

from ._arrays import check_choice

__all__ = ["progress_bar"]

MODES = ("notebook", "terminal", "off")


def _in_jupyter_kernel() -> bool:
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return type(shell).__name__ == "ZMQInteractiveShell"


def _mode() -> str:
    mode = os.environ.get("NTK_PROGRESS", "").strip().lower()
    if not mode:
        return "notebook" if _in_jupyter_kernel() else "terminal"
    return check_choice(mode, "NTK_PROGRESS", MODES)


def _terminal() -> io.TextIOBase:
    """Where a terminal bar goes: ``sys.stderr`` in a script, the process's own stderr in a kernel."""
    return _kernel_stderr() if _in_jupyter_kernel() else sys.stderr


@functools.cache
def _kernel_stderr() -> io.TextIOBase:
    """The stderr of a Jupyter kernel's process, past the kernel's redirection.

    An IPython kernel replaces ``sys.stderr`` by a stream that forwards to the notebook, and points
    file descriptor 2 into it too; its ``fileno()`` is a copy of the original descriptor, which is
    the terminal (or log) of whatever started the kernel. Without that redirection (a kernel
    started under pytest does not watch its descriptors) descriptor 2 is the process's stderr.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return sys.__stderr__
    return open(os.dup(fd), "w", encoding="utf-8", errors="replace", buffering=1)  # noqa: SIM115


def progress_bar(iterable=None, desc: str | None = None, total: int | None = None, **kwargs):
    """A tqdm progress bar drawn where a person is watching (see the module docstring).

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over, as for ``tqdm.tqdm``.
    desc : str, optional
        Label shown before the bar.
    total : int, optional
        Number of expected iterations, if ``len(iterable)`` does not give it.
    **kwargs
        Passed on to tqdm (``leave``, ``unit``, ...).

    Returns
    -------
    tqdm.std.tqdm
        The bar; iterate over it like ``iterable``. With ``NTK_PROGRESS=off`` it is disabled and
        draws nothing.

    Examples
    --------
    >>> import os
    >>> os.environ["NTK_PROGRESS"] = "off"
    >>> [k * k for k in progress_bar(range(4), desc="squares")]
    [0, 1, 4, 9]
    >>> del os.environ["NTK_PROGRESS"]
    """
    mode = _mode()
    if mode == "off":
        return tqdm(iterable, desc=desc, total=total, disable=True, **kwargs)
    if mode == "notebook":
        if importlib.util.find_spec("ipywidgets") is not None:
            from tqdm.notebook import tqdm as widget_bar

            return widget_bar(iterable, desc=desc, total=total, **kwargs)
        return tqdm(iterable, desc=desc, total=total, file=sys.stderr, **kwargs)
    return tqdm(iterable, desc=desc, total=total, file=_terminal(), **kwargs)
