"""Run the book's jupytext MyST-markdown notebooks (book/**/*.md) under nbval.

nbval only collects *.ipynb. This hook hands every markdown notebook under book/ to nbval's own
collector (IPyNbFile) but has jupytext parse the file instead of nbformat. Everything else (kernel
start-up, per-cell tags such as ``raises-exception`` / ``nbval-skip``, --nbval-lax, reports) is
nbval's unchanged code; a failing cell fails the suite as ``book/<chapter>.md::Cell N``. The kernel's
working directory is the notebook's folder, as in the Jupyter Book build. The patch relies on nbval
internals: keep ``nbval==0.11.0`` pinned; if it breaks, copy the short loop of ``IPyNbFile.collect``
into the subclass.

The chapters' kernels inherit this process's environment: ``NTK_PROGRESS=terminal`` keeps their
progress bars out of the cell outputs (see ``ntklib/progress.py``), as in the book build.
"""
from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import jupytext
import nbformat
import nbval.plugin as nbval_plugin

BOOK_DIR = Path(__file__).parent / "book"
os.environ.setdefault("NTK_PROGRESS", "terminal")


class _NbformatReadingJupytext:
    """Stand-in for the ``nbformat`` name inside nbval.plugin during collection."""

    def __init__(self, nb):
        self._nb = nb

    def read(self, *_args, **_kwargs):
        return self._nb

    def __getattr__(self, name):
        return getattr(nbformat, name)


class MarkdownNotebook(nbval_plugin.IPyNbFile):
    """nbval collector for a jupytext markdown notebook."""

    def collect(self):
        nb = jupytext.read(self.path)
        with mock.patch.object(nbval_plugin, "nbformat", _NbformatReadingJupytext(nb)):
            yield from super().collect()


def _is_book_notebook(path: Path) -> bool:
    if path.suffix != ".md" or BOOK_DIR not in path.parents:
        return False
    head = path.read_text(encoding="utf-8")[:2000]
    return head.startswith("---") and "kernelspec:" in head


def pytest_collect_file(file_path: Path, parent):
    opt = parent.config.option
    if (opt.nbval or opt.nbval_lax) and _is_book_notebook(file_path):
        return MarkdownNotebook.from_parent(parent, path=file_path)
