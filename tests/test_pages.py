"""The built book, read back from its HTML: what a reader sees on each page.

These tests run after ``jupyter-book build`` (``make test`` runs them last, ``make pages`` alone) and
are marked ``pages``, which the default ``pytest`` run deselects: before a build there is nothing to
read. They check what neither nbval nor ``jupyter-book -W`` notices:

- every plotting cell of a chapter gives a numbered, captioned figure with alt text, referenced from
  the prose with ``{numref}``, and the image file exists and is non-empty (an environment that
  switches matplotlib to a non-GUI backend removes every figure silently);
- no page shows a stderr block, a progress bar or a warning;
- no line of code, output or docstring example is wider than the book's column (``LINE_LIMIT``,
  the line length that ruff checks in the chapters' code cells);
- no reader-facing text names files outside the book (the project's internal notes).
"""
from __future__ import annotations

import re
from functools import cache

import jupytext
import pytest
from bs4 import BeautifulSoup
from chapters import BOOK, CHAPTERS, LINE_LIMIT, ROOT

pytestmark = pytest.mark.pages

HTML = ROOT / "_build" / "html"
PAGES = sorted(p.relative_to(BOOK).with_suffix("") for p in BOOK.glob("*.md"))

# what a warning or a progress bar looks like once printed
WARNING_TEXT = re.compile(r"\b\w*(Warning|Error): |\bwarnings\.warn\(|IProgress not found")
PROGRESS_TEXT = re.compile(r"\d+%\|.*\|\s*\d+/\d+ \[|\d+(\.\d+)?(it|s)/(s|it)\]")
# names of files a reader of the published book does not have
OUTSIDE_TEXT = re.compile(r"\bshared/|TARGETS\.md|TOOLING(\.md)?\b|DESIGN\.md|DEVELOPERS\.md")


@cache
def page(stem: str) -> BeautifulSoup:
    path = HTML / "book" / f"{stem}.html"
    if not path.is_file():
        pytest.fail(f"{path} does not exist: build the book first (make book)")
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def main_content(soup: BeautifulSoup):
    """The article a reader reads (no navigation, no footer)."""
    return soup.find("article") or soup


def figure_cells(chapter: Path) -> list[dict]:
    """The code cells of a chapter that draw a figure (they end in ``plt.show()``)."""
    nb = jupytext.read(chapter)
    return [c for c in nb.cells if c.cell_type == "code" and "plt.show()" in c.source]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_plotting_cell_is_a_captioned_referenced_figure(chapter):
    cells = figure_cells(chapter)
    text = chapter.read_text(encoding="utf-8")
    names = []
    for cell in cells:
        meta = cell.metadata.get("mystnb", {})
        fig, image = meta.get("figure", {}), meta.get("image", {})
        first = cell.source.splitlines()[0]
        assert fig.get("caption", "").strip(), f"{chapter.name}: cell {first!r} has no figure caption"
        assert fig.get("name", "").startswith("fig-"), f"{chapter.name}: cell {first!r} has no fig- name"
        assert image.get("alt", "").strip(), f"{chapter.name}: cell {first!r} has no alt text"
        names.append(fig["name"])
        assert f"{{numref}}`{fig['name']}`" in text or f"<{fig['name']}>`" in text, (
            f"{chapter.name}: figure {fig['name']} is never referenced with {{numref}}")
    assert len(set(names)) == len(names), f"{chapter.name}: duplicate figure names {names}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_page_shows_every_figure(chapter):
    soup = main_content(page(chapter.stem))
    expected = len(figure_cells(chapter))
    figures = [f for f in soup.find_all("figure") if f.find("img")]
    assert len(figures) == expected, (
        f"{chapter.stem}.html shows {len(figures)} figures, its source has {expected} plotting cells")
    images = soup.select(".cell_output img")
    assert len(images) == expected, f"{chapter.stem}.html: {len(images)} output images, expected {expected}"
    for fig in figures:
        img = fig.find("img")
        file = (HTML / "book" / img["src"]).resolve()
        assert file.is_file() and file.stat().st_size > 1000, f"{chapter.stem}: image {img['src']} missing or empty"
        assert img.get("alt", "").strip(), f"{chapter.stem}: image {img['src']} has no alt text"
        caption = fig.find("figcaption")
        assert caption is not None and caption.get_text(strip=True), f"{chapter.stem}: figure without caption"
        assert caption.find(class_="caption-number"), f"{chapter.stem}: figure is not numbered"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_stderr_warning_or_progress_bar_on_page(chapter):
    soup = main_content(page(chapter.stem))
    stderr = soup.select(".cell_output .stderr")
    assert not stderr, f"{chapter.stem}.html has {len(stderr)} stderr blocks: {stderr[0].get_text()[:200]!r}"
    for out in soup.select(".cell_output"):
        if out.find_parent(class_="tag_raises-exception"):
            continue  # a cell that demonstrates an error shows it on purpose
        text = out.get_text()
        assert not WARNING_TEXT.search(text), f"{chapter.stem}.html shows a warning: {text[:300]!r}"
        assert not PROGRESS_TEXT.search(text), f"{chapter.stem}.html shows a progress bar: {text[:300]!r}"


@pytest.mark.parametrize("stem", [str(p) for p in PAGES])
def test_code_and_output_lines_fit_the_column(stem):
    """Code cells, their output and the API page's docstring examples: nothing cut off."""
    blocks = main_content(page(stem)).find_all("pre")
    wide = [line for pre in blocks for line in pre.get_text().splitlines() if len(line) > LINE_LIMIT]
    assert not wide, (f"{stem}.html: {len(wide)} lines wider than {LINE_LIMIT} characters, "
                      f"e.g. {max(wide, key=len)!r}")


@pytest.mark.parametrize("stem", [str(p) for p in PAGES])
def test_no_reader_facing_text_names_files_outside_the_book(stem):
    text = main_content(page(stem)).get_text()
    match = OUTSIDE_TEXT.search(text)
    assert match is None, f"{stem}.html names {match.group(0)!r}: ...{text[max(0, match.start() - 80):match.end() + 80]}..."
