"""The chapters' code cells, linted as the reader sees them.

Each jupytext chapter is converted to a Python script (magics become comments) and checked by ruff:
no line longer than the book's line limit (``[tool.ruff] line-length`` in pyproject.toml, what fits
the page column; tests/test_pages.py checks the same limit on the built pages, output included),
and pyflakes' checks (undefined or unused names), so a cell cannot silently depend on a name that
an earlier cell no longer defines.
"""
from __future__ import annotations

import os
import subprocess
import sys

import jupytext
import pytest
from chapters import BOOK, CHAPTERS, LINE_LIMIT


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_code_passes_ruff(chapter, tmp_path):
    script = tmp_path / f"{chapter.stem}.py"
    nb = jupytext.read(chapter)
    nb.cells = [c for c in nb.cells if c.cell_type == "code"]  # the prose is not code
    for cell in nb.cells:
        cell.metadata = {}  # nor are the figure captions
    jupytext.write(nb, script, fmt="py:percent")
    cmd = [sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--output-format=concise",
           f"--line-length={LINE_LIMIT}", "--select=E501,F", str(script)]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, f"ruff on the code cells of {chapter.name}:\n{run.stdout}{run.stderr}"


def test_the_line_limit_catches_a_long_line(tmp_path):
    """The check above can fail: a cell one character over the limit is reported."""
    script = tmp_path / "long.py"
    script.write_text(f"x = {'1' * (LINE_LIMIT - 3)}\n")  # LINE_LIMIT + 1 characters
    cmd = [sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", f"--line-length={LINE_LIMIT}",
           "--select=E501", str(script)]
    assert subprocess.run(cmd, capture_output=True, cwd=tmp_path).returncode == 1


def _first_code_cell(chapter):
    return next(c for c in jupytext.read(chapter).cells if c.cell_type == "code")


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_selects_the_inline_backend_first(chapter):
    """Figures must not depend on the environment: the first cell says ``%matplotlib inline``."""
    assert _first_code_cell(chapter).source.startswith("%matplotlib inline"), chapter.name


@pytest.mark.slow
def test_figures_survive_a_non_inline_backend_in_the_environment():
    """With MPLBACKEND=Agg exported, a kernel running a chapter's first cell still shows figures.

    Without ``%matplotlib inline`` the variable wins and ``plt.show()`` emits nothing: no figure,
    and no error for nbval or the book build to notice.
    """
    import nbclient
    import nbformat

    setup = _first_code_cell(CHAPTERS[0]).source
    plot = "fig, ax = plt.subplots()\nax.plot([0, 1], [1, 0])\nplt.show()"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(setup), nbformat.v4.new_code_cell(plot)])
    env = {**os.environ, "MPLBACKEND": "Agg"}
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(BOOK)}})
    with client.setup_kernel(env=env):  # the kernel is shut down on leaving
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
    images = [o for o in nb.cells[1].outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1, nb.cells[1].outputs
