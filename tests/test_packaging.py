"""The package as pip and Python see it: declared dependencies, and an import without docstrings."""
import ast
import pathlib
import subprocess
import sys
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: import name -> distribution name, where they differ
DISTRIBUTION = {"sklearn": "scikit-learn"}


def _declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {r.split(">")[0].split("=")[0].split("[")[0].strip().lower() for r in project["dependencies"]}
    extras = {r.split(">")[0].split("=")[0].strip().lower()
              for reqs in project.get("optional-dependencies", {}).values() for r in reqs}
    return required, extras


def _imports(path):
    """Top-level names imported by a module: at module level (required) and inside functions (lazy)."""
    tree = ast.parse(path.read_text())
    top, lazy = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module.split(".")[0]]
        else:
            continue
        (top if node in tree.body else lazy).update(names)
    return top, lazy


def test_every_third_party_import_is_declared():
    """A module-level import must be a required dependency; a lazy one (inside a function) at least an
    extra. The standard library and ntklib itself need nothing."""
    required, extras = _declared()
    for path in sorted((ROOT / "ntklib").glob("*.py")):
        top, lazy = _imports(path)
        for name in (top | lazy) - set(sys.stdlib_module_names) - {"ntklib", "__future__"}:
            dist = DISTRIBUTION.get(name, name).lower()
            allowed = required if name in top else required | extras
            assert dist in allowed, f"{path.name} imports {name}: declare {dist} in pyproject.toml"


@pytest.mark.slow
def test_import_without_docstrings():
    """python -OO strips docstrings; importing ntklib must not depend on them."""
    run = subprocess.run([sys.executable, "-OO", "-c", "import ntklib; print(ntklib.ntk([[1.0, 0.0]], depth=1))"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr


@pytest.mark.slow
def test_pip_install_in_a_clean_venv(tmp_path):
    """``pip install .`` into a new venv gives a working ``import ntklib`` from the installed copy.

    Offline: the wheel is built without build isolation (setuptools from the test environment) and
    installed with ``--no-deps``; the dependencies the import needs are then found on PYTHONPATH
    from the test environment's site-packages, so what is checked is that the installed package
    holds every module it imports (a new module missing from the wheel fails here) and that its
    metadata declares the required dependencies.
    """
    import sysconfig
    from importlib import metadata
    from zipfile import ZipFile

    import shutil

    src, wheels = tmp_path / "src", tmp_path / "wheels"  # a copy: setuptools writes build/ beside it
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "ntklib", src / "ntklib", ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(wheels), str(src)],
        capture_output=True, text=True, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("ntklib-*.whl")
    with ZipFile(wheel) as zf:
        shipped = {pathlib.PurePosixPath(n).name for n in zf.namelist() if n.startswith("ntklib/")}
        meta = next(n for n in zf.namelist() if n.endswith("METADATA"))
        requires = {line.split(":", 1)[1].split(";")[0].strip().split(">")[0].split("=")[0].strip().lower()
                    for line in zf.read(meta).decode().splitlines() if line.startswith("Requires-Dist:")
                    and "extra ==" not in line}
    assert {p.name for p in (ROOT / "ntklib").glob("*.py")} <= shipped
    assert {"numpy", "scipy", "torch", "mpmath", "tqdm"} <= requires

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True, text=True, cwd=tmp_path)
    assert install.returncode == 0, install.stderr
    deps = sysconfig.get_paths()["purelib"]
    run = subprocess.run(
        [str(py), "-c", "import ntklib; print(ntklib.__file__); print(float(ntklib.ntk([[1.0, 0.0]], depth=2)[0, 0]))"],
        capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": deps, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr
    where, value = run.stdout.split()
    assert str(venv) in where, f"imported {where}, not the installed copy"
    assert float(value) == 3.0
    assert metadata.version("ntklib")  # the test environment's editable install is unaffected
