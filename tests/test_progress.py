"""nk.progress_bar: where the bar is drawn, chosen by NTK_PROGRESS or by the kind of session."""
import os
import sys

import pytest

import ntklib as nk
import ntklib.progress as progress


def drain(bar):
    return list(bar)


def test_off_draws_nothing(monkeypatch, capsys):
    monkeypatch.setenv("NTK_PROGRESS", "off")
    bar = nk.progress_bar(range(5), desc="quiet")
    assert drain(bar) == [0, 1, 2, 3, 4] and bar.disable
    assert capsys.readouterr().err == ""


def test_terminal_in_a_script_writes_to_sys_stderr(monkeypatch, capsys):
    monkeypatch.setenv("NTK_PROGRESS", "terminal")
    bar = nk.progress_bar(range(3), desc="to stderr", mininterval=0)
    assert not bar.disable  # it draws (tqdm disables a bar only once it is closed)
    assert drain(bar) == [0, 1, 2]
    assert "to stderr" in capsys.readouterr().err


def test_kernel_stderr_bypasses_the_kernels_stream(monkeypatch):
    """In a kernel the bar goes to the descriptor behind the kernel's stderr stream (its fileno)."""

    class KernelStream:  # what ipykernel's OutStream offers: a fileno of the original stderr
        def __init__(self, fd):
            self.fd = fd

        def fileno(self):
            return self.fd

    read_end, write_end = os.pipe()
    monkeypatch.setattr(sys, "stderr", KernelStream(write_end))
    stream = progress._kernel_stderr.__wrapped__()
    stream.write("bar\n")
    stream.close()
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        assert pipe.read() == "bar\n"


def test_notebook_without_ipywidgets_draws_text_in_the_cell(monkeypatch, capsys):
    monkeypatch.setenv("NTK_PROGRESS", "notebook")
    monkeypatch.setattr(progress.importlib.util, "find_spec", lambda name: None)
    drain(nk.progress_bar(range(3), desc="in the cell", mininterval=0))
    assert "in the cell" in capsys.readouterr().err


def test_unset_outside_jupyter_is_terminal(monkeypatch):
    monkeypatch.delenv("NTK_PROGRESS", raising=False)
    assert progress._mode() == "terminal"


@pytest.mark.parametrize("value", ["page", "1", "widgets"])
def test_unknown_value_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("NTK_PROGRESS", value)
    with pytest.raises(ValueError, match=f"NTK_PROGRESS must be one of 'notebook', 'terminal', 'off'; got '{value}'"):
        nk.progress_bar(range(2))
