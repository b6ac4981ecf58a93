"""The explain page of a real run in headless Chromium: every section shown, every picture loaded,
nothing fetched from outside the file, no errors.

Needs the system Chromium (apt-get install chromium) and the Python playwright package; the test
drives /usr/bin/chromium directly and never downloads a browser.
"""
import shutil

import pytest

# the report's browser test launches /usr/bin/chromium as a module fixture; this module takes it
from test_report_browser import OUTPUT, browser  # noqa: F401

from neuroclass.cli import main

pytestmark = pytest.mark.slow

SECTION_IDS = ["summary", "input", "dense", "output", "gradient", "weights", "stages", "attribution", "method"]


def test_the_explain_page_of_a_cnn_run_in_chromium(browser, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "digits", "--model", "cnn", "--epochs", "2", "--out", str(runs), "--quiet",
                 "--set", "model.options.channels=[8,16]", "--no-report"]) == 0
    (run,) = runs.iterdir()
    capsys.readouterr()
    assert main(["explain", str(run), "--index", "7"]) == 0
    page_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert page_line == f"page: {run / 'explain-test-7.html'}"

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests, errors = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto((run / "explain-test-7.html").resolve().as_uri(), wait_until="load")

    for anchor in SECTION_IDS:
        section = page.locator(f"section#{anchor}")
        assert section.count() == 1, anchor
        assert section.is_visible() and section.locator("h2").is_visible(), anchor
        assert section.locator("p.explain").inner_text().strip(), anchor
    assert page.locator("section#stages h3").count() >= 2  # 8x8 digits: a map at each resolution
    assert page.locator("section#attribution img").count() >= 4  # integrated gradients and Grad-CAM
    broken = page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length")
    assert broken == 0 and page.locator("img").count() > 10
    assert requests and all(url.startswith(("file://", "data:")) for url in requests), \
        [url for url in requests if not url.startswith(("file://", "data:"))]
    assert not errors, errors

    shot = tmp_path / "explain.png"
    page.screenshot(path=str(shot), full_page=True)
    OUTPUT.mkdir(exist_ok=True)
    shutil.copyfile(shot, OUTPUT / "explain-browser.png")
    assert shot.stat().st_size > 30_000
    page.close()
