"""Report charts draw class names in any script: fallback fonts when one is installed, otherwise one
neuroclass warning naming the class names and the package to install; never matplotlib's own
missing-glyph warnings, and matplotlib's settings as they were."""
import contextlib
import logging
import warnings

import matplotlib
import numpy as np
import pytest
from matplotlib import font_manager
from PIL import Image

from conftest import quick_config
from neuroclass.evaluation.report import plots, write_report
from neuroclass.pipeline import train as train_run

NAMES = ["golden retriever", "café au lait", "猫 (neko)"]


def draw_every_class_chart(classes):
    k = len(classes)
    counts = {"train": [5] * k, "test": [2] * k}
    confusion = np.eye(k, dtype=int) * 2
    return [plots.class_balance(counts, classes),
            plots.confusion_heatmaps(confusion.tolist(), (confusion / 2).tolist(), classes)]


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


@contextlib.contextmanager
def said():
    """Yields (warning messages, matplotlib log lines at WARNING or above), filled on exit."""
    handler, messages = Records(), []
    logger = logging.getLogger("matplotlib")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages, handler.records
    finally:
        logger.removeHandler(handler)
        messages.extend(str(w.message) for w in caught)


def drawn(classes, candidates=None):
    """(warning messages, matplotlib log lines) while drawing the charts that show class names."""
    with said() as (messages, records):
        with plots.fonts_for(classes, candidates):
            uris = draw_every_class_chart(classes)
    assert all(uri.startswith("data:image/png;base64,") for uri in uris)
    return messages, records


def test_without_a_font_for_a_name_one_line_names_it_and_the_package():
    only_dejavu = [f for f in font_manager.fontManager.ttflist if f.name == "DejaVu Sans"]
    messages, records = drawn(NAMES, candidates=only_dejavu)
    assert len(messages) == 1, messages
    assert "'猫 (neko)'" in messages[0] and "fonts-wqy-microhei" in messages[0]
    assert "golden retriever" not in messages[0] and "\n" not in messages[0]
    assert not records


def test_chinese_class_names_draw_cleanly_with_an_installed_font_or_say_what_to_install():
    choice = plots.font_choice(NAMES)
    messages, records = drawn(NAMES)
    if choice.undrawable:  # this machine has no CJK font: the one line tells what to install
        assert len(messages) == 1 and "fonts-wqy-microhei" in messages[0] and "'猫 (neko)'" in messages[0]
    else:  # drawn with a fallback family, and nothing else said
        assert len(choice.families) >= 2 and messages == []
    assert not [m for m in messages if "Glyph" in m] and not records


def test_latin_names_need_no_fallback_and_settings_are_restored():
    before = dict(matplotlib.rcParams)
    assert plots.font_choice(["golden retriever", "café"]).families == (plots.font_choice([]).families)
    messages, _ = drawn(["golden retriever", "café au lait"])
    assert messages == []
    assert dict(matplotlib.rcParams) == before
    assert not logging.getLogger("matplotlib.font_manager").filters


def test_a_report_on_class_folders_named_in_chinese_lets_no_library_warning_through(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for c, name in enumerate(NAMES):
        (root / name).mkdir(parents=True)
        for i in range(20):
            image = np.full((12, 12, 3), 220, np.uint8)
            image[2 + 3 * c:5 + 3 * c] = rng.integers(0, 60, 3)
            Image.fromarray(image).save(root / name / f"img {i:02d}.png")
    run = train_run(quick_config(tmp_path, source=str(root)), report=False).path
    with said() as (messages, records):
        html = write_report(run)
    assert not [m for m in messages if "Glyph" in m] and not records, (messages, records)
    if plots.font_choice(NAMES).undrawable:
        assert len([m for m in messages if "fonts-wqy-microhei" in m]) == 1
    else:
        assert not [m for m in messages if "cannot draw" in m]
    assert "猫 (neko)" in html.read_text()


@pytest.mark.parametrize("text", ["", " ", "\u200b"])
def test_spaces_and_invisible_characters_need_no_font(text):
    assert plots.font_choice([text]).undrawable == ()
