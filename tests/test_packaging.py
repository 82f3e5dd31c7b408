"""The package as pip and Python see it: declared dependencies, and an import without docstrings."""
import ast
import pathlib
import subprocess
import sys
import tomllib

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


def test_import_without_docstrings():
    """python -OO strips docstrings; importing ntklib must not depend on them."""
    run = subprocess.run([sys.executable, "-OO", "-c", "import ntklib; print(ntklib.ntk([[1.0, 0.0]], depth=1))"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
