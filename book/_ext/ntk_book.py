"""Sphinx extension of the book: settings the notebook kernels inherit when the book is built.

The book build executes every chapter in a kernel started from this process, so the kernel inherits
``os.environ`` as it is here. ``NTK_PROGRESS=terminal`` sends the chapters' progress bars
(``nk.progress_bar``) to the terminal running the build instead of into the published page; see
``ntklib/progress.py``. A value already set by the user is kept.
"""
import os


def setup(app):
    os.environ.setdefault("NTK_PROGRESS", "terminal")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
