"""The report's pictures as PNG data URIs: matplotlib charts and small example images.

Charts are drawn on ``matplotlib.figure.Figure`` objects with an Agg canvas, so nothing here selects
a global backend or touches pyplot's state; matplotlib is imported only when a chart is drawn, which
keeps ``import neuroclass`` fast. One style (STYLE, the colours below) is applied to every chart.
Charts that show class names are drawn inside ``fonts_for(classes)``, which adds fallback fonts for
characters the default font lacks (CJK class names) and says once when no installed font has them.

Example::

    uri = training_curves(report["training"]["history"], best_epoch=5)
    uri[:22]
    # -> 'data:image/png;base64,'
"""
from __future__ import annotations

import base64
import contextlib
import functools
import io
import logging
import unicodedata
import warnings
from dataclasses import dataclass
from typing import Iterator

import numpy as np

DPI = 110
TRAIN, VAL, EVAL, ACCENT, MUTED = "#2563eb", "#dc2626", "#059669", "#7c3aed", "#6b7280"
SPLIT_COLOURS = {"train": TRAIN, "val": VAL, "test": EVAL, "evaluation": ACCENT}
STYLE = {
    "font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold", "axes.labelsize": 9,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
    "grid.linewidth": 0.6, "legend.frameon": False, "legend.fontsize": 8, "lines.linewidth": 1.8,
    "lines.markersize": 4, "xtick.labelsize": 8, "ytick.labelsize": 8, "figure.facecolor": "white",
}


# fonts tried first when the default one lacks a character of a class name (small CJK fonts first)
FALLBACK_FAMILIES = ("WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans CJK JP",
                     "Noto Sans CJK KR", "Noto Sans CJK TC", "Droid Sans Fallback", "Noto Sans",
                     "DejaVu Sans")
FONT_PACKAGES = ("fonts-wqy-microhei (Chinese, Japanese, Korean; 5 MB) or fonts-noto-core (most other "
                 "scripts)")  # Debian / Ubuntu packages


@dataclass(frozen=True)
class FontChoice:
    """The font families a chart asks for (the default first, then per-glyph fallbacks) and the
    texts that have a character no installed font covers (drawn as empty boxes)."""

    families: tuple[str, ...]
    undrawable: tuple[str, ...]


@functools.lru_cache(maxsize=None)
def font_characters(path: str) -> frozenset[int]:
    """The code points a font file has glyphs for (its first face, for a collection)."""
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):  # an unreadable font file covers nothing
        return frozenset()


def font_choice(texts: list[str], candidates: list | None = None) -> FontChoice:
    """Which installed fonts draw every character of ``texts``: the family matplotlib would use
    now, then a fallback family for each character it lacks (FALLBACK_FAMILIES first, then any
    installed font). ``candidates``: the fonts to pick from, ``matplotlib.font_manager.FontEntry``
    items (default: every font matplotlib found).

    >>> font_choice(["golden retriever", "café"]).families
    ('DejaVu Sans',)
    """
    from matplotlib import font_manager

    needed = {ord(c) for text in texts for c in str(text)
              if not unicodedata.category(c).startswith(("C", "Z"))}  # not controls or spaces
    default = font_manager.findfont(font_manager.FontProperties())
    families = [font_manager.get_font(default).family_name]
    missing = needed - font_characters(default)
    fonts = font_manager.fontManager.ttflist if candidates is None else candidates
    rank = {name: i for i, name in enumerate(FALLBACK_FAMILIES)}
    for entry in sorted(fonts, key=lambda e: (rank.get(e.name, len(rank)), e.name, e.fname)):
        if not missing:
            break
        covered = missing & font_characters(entry.fname)
        if covered and entry.name not in families:
            families.append(entry.name)
            missing -= covered
    undrawable = tuple(t for t in texts if {ord(c) for c in str(t)} & missing)
    return FontChoice(tuple(families), undrawable)


@contextlib.contextmanager
def fonts_for(texts: list[str], candidates: list | None = None) -> Iterator[FontChoice]:
    """Draw charts inside this block with fonts that cover ``texts`` (the class names): matplotlib
    settings only through ``rc_context``, so the process's are as they were afterwards. When no
    installed font has some character, one warning names those texts and the font package to
    install, and matplotlib's own warning per missing glyph is held back inside the block.

    Example::

        with fonts_for(["猫 (neko)", "café"]):
            uri = class_balance(counts, classes)
    """
    import matplotlib

    choice = font_choice(texts, candidates)
    if choice.undrawable:
        names = ", ".join(f"'{t}'" for t in choice.undrawable[:10])
        more = f" and {len(choice.undrawable) - 10} more" if len(choice.undrawable) > 10 else ""
        warnings.warn(f"report: the charts cannot draw the class name(s) {names}{more}: no installed font "
                      "has some of their characters, which show as empty boxes (the page's text shows "
                      f"them); install a font that has them, e.g. the package {FONT_PACKAGES}",
                      stacklevel=3)
    # a fallback font often has one weight: bold titles then use its regular face, which matplotlib
    # logs as a warning for every chart; a choice made here, not the user's problem
    font_log = logging.getLogger("matplotlib.font_manager")
    hush = FontWeightFilter()
    font_log.addFilter(hush)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
            with matplotlib.rc_context({"font.family": list(choice.families)}):
                yield choice
    finally:
        font_log.removeFilter(hush)


class FontWeightFilter(logging.Filter):
    """Drops matplotlib's "findfont: Failed to find font weight ..." records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("findfont: Failed to find font weight")


def chart(draw):
    """Decorator: run ``draw`` under STYLE and return its Figure as a PNG data URI."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs) -> str:
        import matplotlib

        with matplotlib.rc_context(STYLE):
            return png_uri(draw(*args, **kwargs))
    return wrapper


def new_figure(width: float, height: float):
    """A Figure with its own Agg canvas (no pyplot, no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png_uri(figure) -> str:
    buf = io.BytesIO()
    # no Software tag: the page should not even mention a web address
    figure.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_uri(image: np.ndarray, max_side: int = 64) -> str:
    """One uint8 image (C, H, W) as a small PNG data URI (shrunk to ``max_side``; the page scales
    it up with pixelated rendering, so 28x28 images stay crisp and tiny).

    >>> image_uri(np.zeros((1, 28, 28), np.uint8))[:22]
    'data:image/png;base64,'
    """
    from PIL import Image

    array = np.asarray(image)
    array = array[0] if array.shape[0] == 1 else np.transpose(array[:3], (1, 2, 0))
    picture = Image.fromarray(np.ascontiguousarray(array))
    picture.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    picture.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@chart
def class_balance(counts: dict[str, list[int]], classes: list[str]):
    """Grouped bars: examples per class in each split."""
    splits = [name for name, values in counts.items() if sum(values)]
    figure = new_figure(max(6.0, 0.55 * len(classes) * max(1, len(splits)) / 2 + 2), 3.0)
    ax = figure.add_subplot()
    width = 0.8 / max(1, len(splits))
    x = np.arange(len(classes))
    for i, name in enumerate(splits):
        ax.bar(x + (i - (len(splits) - 1) / 2) * width, counts[name], width, label=name,
               color=SPLIT_COLOURS.get(name, MUTED))
    crowded = sum(len(name) + 2 for name in classes) > 60  # labels would overlap side by side
    ax.set_xticks(x, classes, rotation=30 if crowded else 0, ha="right" if crowded else "center")
    ax.set_ylabel("examples")
    ax.legend(ncols=len(splits), loc="lower right", bbox_to_anchor=(1.0, 1.0))  # above the bars
    ax.grid(axis="x", visible=False)
    return figure


@chart
def training_curves(history: list[dict], best_epoch: int | None = None):
    """Loss, accuracy (train and validation) and learning rate per epoch."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    figure = new_figure(9.5, 2.8)
    axes = figure.subplots(1, 3)
    epochs = [row["epoch"] for row in history]
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    for ax, key, title in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        ax.plot(epochs, [row.get(key) for row in history], "o-", color=TRAIN, label="train")
        val = [row.get(f"val_{key}") for row in history]
        if any(v is not None for v in val):
            ax.plot(epochs, [np.nan if v is None else v for v in val], "o-", color=VAL, label="validation")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend()
    axes[2].plot(epochs, [row.get("lr") for row in history], "o-", color=ACCENT)
    axes[2].set_title("learning rate")
    axes[2].set_xlabel("epoch (value at its end)")
    # plain tick labels (4e-03), not a shared "1e-3" offset that collides with the title
    axes[2].yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.2g}"))
    if best_epoch:
        for ax in axes:
            ax.axvline(best_epoch, color=MUTED, linestyle="--", linewidth=1)
        axes[0].annotate("best (restored)", (best_epoch, 1), xycoords=("data", "axes fraction"),
                         xytext=(3, -10), textcoords="offset points", fontsize=7, color=MUTED)
    return figure


@chart
def round_curves(history: list[dict], best_round: int | None = None):
    """A classical family's validation log-loss and accuracy per boosting round (or tree chunk)."""
    from matplotlib.ticker import MaxNLocator

    figure = new_figure(6.5, 2.6)
    axes = figure.subplots(1, 2)
    rounds = [row["epoch"] for row in history]
    for ax, key, title in ((axes[0], "val_loss", "validation log-loss"), (axes[1], "val_accuracy", "validation accuracy")):
        ax.plot(rounds, [np.nan if row.get(key) is None else row[key] for row in history], "-", color=VAL)
        ax.set_title(title)
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if best_round:
            ax.axvline(best_round, color=MUTED, linestyle="--", linewidth=1)
    return figure


@chart
def confusion_heatmaps(counts: list[list[int]], normalized: list[list[float]], classes: list[str]):
    """Counts and row-normalized confusion matrices side by side (rows true, columns predicted).
    Titles are short enough for the narrowest panel (2 classes); the page's caption says what the
    normalized one shows (recall on the diagonal)."""
    k = len(classes)
    side = min(6.0, max(3.2, 0.42 * k + 1.6))
    figure = new_figure(2 * side + 0.6, side)
    axes = figure.subplots(1, 2)
    # (axes, values, title, cell format, smallest value written: rates under 0.5% would read "0%")
    panels = ((axes[0], np.asarray(counts, float), "counts", "{:.0f}", 1),
              (axes[1], np.asarray(normalized, float), "row-normalized", "{:.0%}",
               0.005))
    for ax, matrix, title, fmt, smallest in panels:
        image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(matrix.max(), 1e-9))
        ax.set_title(title)
        ax.set_xticks(range(k), classes, rotation=45, ha="right")
        ax.set_yticks(range(k), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.grid(False)
        if k <= 15:  # beyond that the numbers would be unreadable; the colour still tells
            threshold = matrix.max() / 2
            for i in range(k):
                for j in range(k):
                    if matrix[i, j] >= smallest:
                        ax.text(j, i, fmt.format(matrix[i, j]), ha="center", va="center", fontsize=7,
                                color="white" if matrix[i, j] > threshold else "#111827")
        figure.colorbar(image, ax=ax, shrink=0.8)
    return figure


@chart
def reliability(before: dict, after: dict, ece_before: float, ece_after: float, temperature: float):
    """Reliability diagrams without and with the temperature: accuracy per confidence bin."""
    figure = new_figure(8.0, 3.4)
    axes = figure.subplots(1, 2, sharey=True)
    for ax, curve, ece, title in ((axes[0], before, ece_before, "T = 1 (raw)"),
                                  (axes[1], after, ece_after, f"T = {temperature:.3g} (used by predict)")):
        edges = np.asarray(curve["edges"])
        centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
        acc = np.array([np.nan if a is None else a for a in curve["accuracy"]])
        conf = np.array([np.nan if c is None else c for c in curve["confidence"]])
        ax.bar(centres, np.nan_to_num(acc), width, color=TRAIN, alpha=0.8, edgecolor="white",
               label="accuracy in bin")
        ax.plot(centres, conf, "o", color=VAL, label="mean confidence")
        ax.plot([0, 1], [0, 1], "--", color=MUTED, linewidth=1, label="perfect calibration")
        ax.set_title(f"{title}: ECE {ece:.3f}")
        ax.set_xlabel("confidence (top probability)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left")
    return figure


@chart
def abstention(curve: list[dict]):
    """Accuracy on the answered examples against the fraction answered (coverage)."""
    figure = new_figure(5.2, 3.2)
    ax = figure.add_subplot()
    points = [p for p in curve if p["accuracy"] is not None]
    coverage = [p["coverage"] for p in points]
    accuracy = [p["accuracy"] for p in points]
    ax.plot(coverage, accuracy, "o-", color=TRAIN)
    last = None
    for p in points:
        # label thresholds 0.1, 0.3, ..., 0.9, skipping one that would sit on the previous label
        # (low thresholds often cover the same examples)
        if round(p["threshold"] * 20) % 4 == 2 and (last is None or last - p["coverage"] > 0.02):
            last = p["coverage"]
            ax.annotate(f"≥{p['threshold']:.1f}", (p["coverage"], p["accuracy"]), xytext=(4, -10),
                        textcoords="offset points", fontsize=7, color=MUTED)
    ax.set_xlabel("coverage (fraction answered)")
    ax.set_ylabel("accuracy on answered")
    ax.set_xlim(min(coverage + [1.0]) - 0.03, 1.02)
    ax.set_ylim(min(accuracy + [1.0]) - 0.02, 1.005)
    ax.invert_xaxis()  # left to right: abstaining more
    return figure


@chart
def robustness(result: dict):
    """Accuracy against perturbation strength, one panel per perturbation."""
    kinds = [k for k in ("noise", "rotation", "blur", "brightness") if result.get(k)]
    figure = new_figure(2.4 * max(1, len(kinds)) + 0.4, 2.6)
    axes = np.atleast_1d(figure.subplots(1, max(1, len(kinds)), sharey=True))
    for ax, kind in zip(axes, kinds):
        levels = [p["level"] for p in result[kind]]
        ax.plot(levels, [p["accuracy"] for p in result[kind]], "o-", color=ACCENT)
        ax.set_title(kind)
        ax.set_xlabel("strength")
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("accuracy")
    return figure
