"""A chapter in JupyterLab's own page, in a real browser: what a student sees after ``make lab``.

Headless Chromium (Debian's ``chromium`` and ``chromium-driver``), driven by Selenium, opens the
project's JupyterLab (``tests/lab.py``) at ``book/ntk.md``. The chapter must open as a notebook by
default (the project's ``defaultViewers``), in the project's kernel; *Run > Run All Cells* from the
menu runs it, and then every code cell has run, no cell shows an error or stderr, every figure
cell shows its image, every progress bar is a widget, and the file on disk is unchanged. A
screenshot of the notebook at its first figure is kept in ``_build/test-artifacts/``.

``make test`` installs the browser (``tools/ensure-chromium.sh``) and sets ``NTK_LAB_TESTS=1``,
which turns a missing browser or package into a failure; elsewhere the test is skipped, saying why.
"""
from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import jupytext
import pytest
from chapters import ROOT
from lab import LabServer, unavailable

CHAPTER = ROOT / "book" / "ntk.md"
ARTIFACTS = ROOT / "_build" / "test-artifacts"
SCREENSHOT = ARTIFACTS / "jupyterlab-ntk.png"  # a failure leaves jupyterlab-failure.png
RUN_TIMEOUT = 180
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    unavailable("selenium is not installed")

missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
if missing:
    unavailable(f"{' and '.join(missing)} not found")


@pytest.fixture
def browser(tmp_path, monkeypatch):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--window-size=1280,1400",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not fetch a driver
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, seconds, condition, what):
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.25).until(condition)
    except Exception as exc:  # a TimeoutException says nothing of what we waited for
        raise AssertionError(f"JupyterLab: {what} within {seconds} s") from exc


def _click_menu(driver, menu, item):
    bar = f"//li[contains(@class,'lm-MenuBar-item')][.//div[text()='{menu}']]"
    driver.find_element(By.XPATH, bar).click()
    entry = f"//li[contains(@class,'lm-Menu-item')][.//div[text()='{item}']]"
    _wait(driver, 10, EC.element_to_be_clickable((By.XPATH, entry)), f"no '{item}' entry").click()


def _prompts(driver):
    cells = driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell .jp-InputPrompt")
    return [c.text.strip() for c in cells]


def _run_and_check(browser, lab, original):
    """Open the chapter, Run All Cells, check the page, save, keep a screenshot."""
    notebook = jupytext.read(CHAPTER)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    figures = sum("figure" in c.metadata.get("mystnb", {}) for c in code)
    bars = sum("progress_bar(" in c.source for c in code)

    browser.get(f"{lab.url}/lab/tree/{CHAPTER.relative_to(ROOT).as_posix()}?token={lab.token}")
    panel = ".jp-NotebookPanel:not(.lm-mod-hidden)"
    _wait(browser, 90, EC.presence_of_element_located((By.CSS_SELECTOR, panel)),
          "book/ntk.md did not open as a notebook")
    _wait(browser, 60, lambda d: len(_prompts(d)) == len(code),
          f"the notebook does not show the chapter's {len(code)} code cells")
    kernel = ".jp-NotebookPanel-toolbar .jp-KernelName"
    name = notebook.metadata["kernelspec"]["display_name"]
    _wait(browser, 60, lambda d: d.find_element(By.CSS_SELECTOR, kernel).text == name,
          f"the notebook did not start its kernel, {name}")
    indicator = ".jp-Notebook-ExecutionIndicator"
    _wait(browser, 60, lambda d: d.find_element(By.CSS_SELECTOR, indicator).get_attribute(
        "data-status") == "idle", "the kernel did not become idle")

    start = time.monotonic()
    _click_menu(browser, "Run", "Run All Cells")
    done = re.compile(r"^\[\d+\]:$")
    _wait(browser, RUN_TIMEOUT, lambda d: all(map(done.match, _prompts(d))),
          "Run All Cells did not finish (a prompt still shows [*] or [ ])")
    print(f"{CHAPTER.name}: {time.monotonic() - start:.1f} s for Run All Cells in Chromium")

    out = ".jp-Notebook .jp-OutputArea-output"
    errors = browser.find_elements(
        By.CSS_SELECTOR, f"{out}[data-mime-type='application/vnd.jupyter.stderr']")
    assert not errors, f"a cell shows an error or stderr: {errors[0].text[:300]}"
    images = browser.find_elements(By.CSS_SELECTOR, f"{out}.jp-RenderedImage img")
    assert len(images) == figures, f"{len(images)} figures shown, {figures} expected"
    assert all(img.get_property("naturalWidth") > 0 for img in images)
    boxes = browser.find_elements(By.CSS_SELECTOR, f"{out} .widget-hbox")
    widgets = [w for w in boxes if w.find_elements(By.CSS_SELECTOR, ".widget-hprogress")]
    assert len(widgets) >= bars, f"{len(widgets)} progress widgets, {bars} expected"
    assert all("100%" in w.text for w in widgets), "a progress bar did not reach 100%"

    # File > Save (Ctrl+S): jupytext writes the .md back, without the outputs
    tab = ".lm-TabBar-tab.jp-mod-current"
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()
    _wait(browser, 30, lambda d: "jp-mod-dirty" not in d.find_element(
        By.CSS_SELECTOR, tab).get_attribute("class"), "Ctrl+S did not save")
    assert CHAPTER.read_bytes() == original, "saving in the lab rewrote book/ntk.md"

    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", images[0])
    time.sleep(0.5)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 20_000, "the screenshot is nearly empty"


def test_chapter_runs_in_jupyterlab_in_chromium(browser, tmp_path):
    original = CHAPTER.read_bytes()
    try:
        with LabServer(tmp_path / "lab") as lab:
            try:
                _run_and_check(browser, lab, original)
            except BaseException:  # keep what the page showed when it went wrong
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                browser.save_screenshot(str(ARTIFACTS / "jupyterlab-failure.png"))
                raise
    finally:
        changed = CHAPTER.read_bytes() != original
        if changed:  # never leave a test's save in a chapter
            CHAPTER.write_bytes(original)
    assert not changed, "JupyterLab wrote a different book/ntk.md"
