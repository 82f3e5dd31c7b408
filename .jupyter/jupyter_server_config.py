"""JupyterLab for the NTK Lectures project: what ``make lab`` starts, and what the lab tests start.

Pass it on the command line, from the project root:

    .venv/bin/jupyter lab --config=.jupyter/jupyter_server_config.py

It adds to your own Jupyter configuration (``~/.jupyter``) and changes only what the notes need:

- the server listens on 127.0.0.1 only, rooted at the project, whatever the current directory;
- jupytext's contents manager serves every chapter ``book/*.md`` as a notebook, and saving writes
  the ``.md`` back (no paired ``.ipynb``), so outputs are never written into the repository;
- ``lab/settings/overrides.json5`` beside this file opens a markdown file as a notebook on a
  double-click (right-click, *Open With*, *Editor* for the text) and turns off what would reach the
  network: update checks, the news feed and the extension manager's catalogue.
"""
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

c = get_config()  # noqa: F821 (injected by traitlets when it loads this file)

c.ServerApp.ip = "127.0.0.1"
# a bare container runs everything as root; the server still listens on loopback only, with a token
c.ServerApp.allow_root = True
c.ServerApp.root_dir = str(ROOT)
c.ServerApp.contents_manager_class = "jupytext.TextFileContentsManager"

c.LabApp.app_settings_dir = str(HERE / "lab" / "settings")
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.LabApp.extension_manager = "readonly"
