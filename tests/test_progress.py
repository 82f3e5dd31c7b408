"""nk.progress_bar: where the bar is drawn, chosen by NTK_PROGRESS or by the kind of session."""
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


def test_terminal_bypasses_a_replaced_stderr(monkeypatch, capsys):
    """A cell's stderr (here pytest's capture) gets nothing; the process's own stderr gets the bar."""
    monkeypatch.setenv("NTK_PROGRESS", "terminal")
    bar = nk.progress_bar(range(3), desc="to the terminal")
    assert not bar.disable  # it draws (tqdm disables a bar only once it is closed)
    assert drain(bar) == [0, 1, 2]
    assert capsys.readouterr().err == ""


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
    with pytest.raises(ValueError, match="NTK_PROGRESS must be one of notebook, terminal, off"):
        nk.progress_bar(range(2))
