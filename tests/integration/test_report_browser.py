"""The report of a real run in headless Chromium: every section shown, nothing fetched, no errors.

Needs the system Chromium (apt-get install chromium) and the Python playwright package; the test
drives /usr/bin/chromium directly and never downloads a browser.
"""
import json
import shlex
import shutil
from pathlib import Path

import pytest

from neuroclass.cli import main

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SECTION_IDS = ["summary", "data", "training", "metrics", "confusion", "mistakes", "calibration",
               "abstention", "robustness", "importance", "doctor", "reproduce"]
OUTPUT = Path(__file__).resolve().parents[1] / "output"  # tests/output/, ignored by git


@pytest.fixture(scope="module")
def browser():
    # A missing browser fails rather than skips: a skip would hide an untested report page.
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[dev]'")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (as .ci/run does)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def test_report_of_a_real_run_in_chromium(browser, tmp_path, capsys):
    argv = ["train", "digits", "--model", "mlp", "--epochs", "8", "--out", str(tmp_path / "runs"), "--quiet"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("report: ")  # `train` ends by naming the report
    report = Path(lines[-1].removeprefix("report: "))
    numbers = json.loads(report.with_suffix(".json").read_text())
    assert numbers["reproduce"]["command"] == "neuroclass " + shlex.join(argv)  # the exact command

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests, errors = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(report.resolve().as_uri(), wait_until="load")

    for anchor in SECTION_IDS:
        section = page.locator(f"section#{anchor}")
        assert section.count() == 1, anchor
        assert section.is_visible() and section.locator("h2").is_visible(), anchor
        assert section.locator("p.explain").inner_text().strip(), anchor
    broken = page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length")
    assert broken == 0 and page.locator("img").count() > 10
    assert requests and all(url.startswith(("file://", "data:")) for url in requests), \
        [url for url in requests if not url.startswith(("file://", "data:"))]
    assert not errors, errors

    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    OUTPUT.mkdir(exist_ok=True)
    shutil.copyfile(shot, OUTPUT / "report-browser.png")
    assert shot.stat().st_size > 50_000

    page.emulate_media(media="print")  # printable: the navigation bar is hidden on paper
    assert not page.locator("nav").is_visible()
    assert len(page.pdf()) > 10_000
    page.close()
