"""Where the book's chapters are, and the line limit their code and output must keep."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
#: characters per line that fit the page column ([tool.ruff] line-length in pyproject.toml)
LINE_LIMIT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["line-length"]
#: the jupytext notebooks under book/ (a page with a kernelspec in its header)
CHAPTERS = sorted(p for p in BOOK.glob("*.md") if "kernelspec:" in p.read_text()[:2000])
