"""The chapters as a student runs them: in the project's JupyterLab, through its server.

``make lab`` opens JupyterLab with ``.jupyter/jupyter_server_config.py``. These tests start the
same server (``tests/lab.py``), open each chapter through the contents API, where jupytext turns
the ``.md`` into a notebook, and run every cell in a kernel session started through the server,
with the environment of a student's shell (no ``NTK_PROGRESS``: progress bars are widgets).

A chapter passes when no cell fails, every figure cell and only those show one PNG, every
progress bar is a widget, nothing reaches stderr, and saving the executed notebook writes back
the ``.md`` unchanged, outputs left out. ``tests/test_browser.py`` does the same in JupyterLab's
own page in Chromium.
"""
from __future__ import annotations

import sys

import jupytext
import pytest
from chapters import BOOK, CHAPTERS, ROOT
from lab import LabServer, open_session, pid_alive, run_notebook

#: what JupyterLab may take to run a chapter top to bottom on 2 cores (the chapters' budget is a
#: minute each under nbval; a kernel session adds the websocket round trips and widget messages)
SECONDS_PER_CHAPTER = 120
WIDGET = "application/vnd.jupyter.widget-view+json"


def _rel(path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_file_is_what_jupyterlab_saves(chapter):
    """Opening and saving a chapter in JupyterLab leaves the file as it is.

    jupytext writes a notebook back in its own layout (YAML wrapped at 88 columns, for example);
    a chapter written by hand in another layout would change on the first save in the lab.
    """
    text = chapter.read_text(encoding="utf-8")
    saved = jupytext.writes(jupytext.read(chapter), fmt="md:myst")
    assert text == saved, (
        f"{chapter.name} is not in jupytext's layout, so JupyterLab rewrites it on save; "
        f"normalise it with: jupytext --to md:myst {_rel(chapter)}"
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with LabServer(tmp_path_factory.mktemp("lab")) as server:
        yield server


def test_every_chapter_opens_as_a_notebook(lab):
    specs = lab.api("GET", "/api/kernelspecs")["kernelspecs"]
    for chapter in CHAPTERS:
        model = lab.api("GET", f"/api/contents/{_rel(chapter)}?content=1")
        assert model["type"] == "notebook", f"{chapter.name} opens as {model['type']!r}"
        # the kernel it names exists, under the name the lab shows (else the lab renames it in
        # the notebook's metadata on opening, and the first save rewrites the file's header)
        kernelspec = model["content"]["metadata"]["kernelspec"]
        assert kernelspec["name"] in specs, f"{chapter.name}: no kernel {kernelspec['name']!r}"
        shown = specs[kernelspec["name"]]["spec"]["display_name"]
        assert kernelspec["display_name"] == shown, f"{chapter.name}: the lab calls it {shown!r}"
        cells = [(c["cell_type"], c["source"]) for c in model["content"]["cells"]]
        expected = [(c.cell_type, c.source) for c in jupytext.read(chapter).cells]
        assert cells == expected, f"{chapter.name}: the server's cells differ from the file's"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_in_jupyterlab(lab, chapter, record_property):
    model, seconds, kernel = run_notebook(lab, _rel(chapter), cell_timeout=SECONDS_PER_CHAPTER)
    record_property("seconds_in_kernel", round(seconds, 1))
    print(f"{chapter.name}: {seconds:.1f} s in a JupyterLab kernel session")
    assert kernel["prefix"] == sys.prefix, "the kernel is not the project's environment"
    assert kernel["cwd"] == str(BOOK), "the kernel does not start in the chapter's folder"

    code = [c for c in model["content"]["cells"] if c["cell_type"] == "code"]
    for number, cell in enumerate(code, start=1):
        where = f"{chapter.name}, code cell {number}"
        outputs = cell.get("outputs")
        assert outputs is not None, f"{where} did not run: an earlier cell failed"
        errors = [o for o in outputs if o["output_type"] == "error"]
        assert not errors, f"{where} failed: {errors[0]['ename']}: {errors[0]['evalue']}"
        stderr = [o["text"] for o in outputs if o.get("name") == "stderr"]
        assert not stderr, f"{where} wrote to stderr: {''.join(stderr)[:300]}"
        pngs = sum("image/png" in o.get("data", {}) for o in outputs)
        is_figure = "figure" in cell["metadata"].get("mystnb", {})
        assert pngs == is_figure, f"{where} shows {pngs} PNG figures, expected {int(is_figure)}"
        if "progress_bar(" in cell["source"]:
            widgets = [o for o in outputs if WIDGET in o.get("data", {})]
            assert widgets, f"{where} has a progress bar but shows no widget"
    assert seconds < SECONDS_PER_CHAPTER, f"{chapter.name} took {seconds:.0f} s in the lab"

    # Save, as File > Save does, to a copy: the executed notebook writes back the same .md
    copy = ROOT / "_build" / "lab-save" / chapter.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    saved = lab.api("PUT", f"/api/contents/{_rel(copy)}", {
        "type": "notebook", "format": "json", "content": model["content"],
    })
    assert saved["type"] == "notebook"
    assert copy.read_text(encoding="utf-8") == chapter.read_text(encoding="utf-8"), (
        f"saving {chapter.name} from the lab changes the file (outputs or metadata written)"
    )


def test_server_and_kernels_stop(tmp_path):
    """Leaving the lab shuts down the server and every kernel it started: nothing left behind."""
    with LabServer(tmp_path) as server:
        _, channel = open_session(server, _rel(CHAPTERS[0]), "python3")
        try:
            _, out = channel.execute("import os; print(os.getpid())", timeout=60)
        finally:
            channel.close()
        kernel_pid = int(out[0]["text"])
        server.kernel_pids.add(kernel_pid)
        assert pid_alive(kernel_pid)
    assert server.proc.returncode == 0, server.log()[-2000:]
    assert not pid_alive(server.proc.pid)
    assert not pid_alive(kernel_pid), "the kernel outlived the server"
