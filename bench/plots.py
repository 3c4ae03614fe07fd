"""Figures (matplotlib, Agg backend: no display needed). Each function writes one PNG and returns its path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

CORRECT = "#1a9e3f"
QUERY = "#1f5fbf"
DPI = 90


def grouped_bars(
    path: Path,
    *,
    groups: Sequence[str],
    series: dict[str, Sequence[float]],
    ylabel: str,
    title: str,
    baseline: float | None = None,
    baseline_label: str = "",
    horizontal: bool = False,
) -> Path:
    """One bar per (group, series); optional dashed baseline line (e.g. a random ranking)."""
    n_series = max(1, len(series))
    width = 0.8 / n_series
    x = np.arange(len(groups))
    size = (8, max(3.0, 0.32 * len(groups) * n_series + 1)) if horizontal else (max(6.0, 0.9 * len(groups) + 2), 4.2)
    fig, ax = plt.subplots(figsize=size)
    for i, (name, values) in enumerate(series.items()):
        vals = np.array([np.nan if v is None else v for v in values], dtype=float)
        offset = x - 0.4 + width * (i + 0.5)
        if horizontal:
            ax.barh(offset, vals, height=width, label=name)
        else:
            ax.bar(offset, vals, width=width, label=name)
    if horizontal:
        ax.set_yticks(x, groups)
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
        if baseline is not None:
            ax.axvline(baseline, color="grey", linestyle="--", label=baseline_label)
    else:
        ax.set_xticks(x, groups, rotation=20, ha="right")
        ax.set_ylabel(ylabel)
        if baseline is not None:
            ax.axhline(baseline, color="grey", linestyle="--", label=baseline_label)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="x" if horizontal else "y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def category_panels(
    path: Path, *, categories: Sequence[str], panels: dict[str, dict[str, Sequence[float]]], title: str
) -> Path:
    """Horizontal bars per category, one panel per metric, one bar per model."""
    n_series = max(1, max(len(series) for series in panels.values()))
    height = 0.8 / n_series
    y = np.arange(len(categories))
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(5 * len(panels) + 1, 0.16 * len(categories) * n_series + 1.6),
        sharey=True,
        squeeze=False,
    )
    for ax, (panel, series) in zip(axes[0], panels.items(), strict=True):
        for i, (name, values) in enumerate(series.items()):
            vals = np.array([np.nan if v is None else v for v in values], dtype=float)
            ax.barh(y - 0.4 + height * (i + 0.5), vals, height=height, label=name)
        ax.set_title(panel, fontsize=10)
        ax.set_xlim(0, 100)
        ax.set_xlabel("%")
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y, categories)
    axes[0, 0].invert_yaxis()
    axes[0, -1].legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def latency_recall(
    path: Path,
    curves: dict[str, list[tuple[float, float, int]]],
    *,
    target_ms: float | None,
    target_recall: float | None,
    title: str,
) -> Path:
    """Curves of (p95 latency ms, recall, ef_search) points, one per case; targets as dashed lines."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for name, points in curves.items():
        if not points:
            continue
        lat, rec, ef = zip(*points, strict=True)
        ax.plot(lat, rec, marker="o", label=name)
        for x, y, e in points:
            ax.annotate(str(e), (x, y), textcoords="offset points", xytext=(3, -9), fontsize=7)
    if target_ms is not None:
        ax.axvline(target_ms, color="grey", linestyle="--", linewidth=1)
    if target_recall is not None:
        ax.axhline(target_recall, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("selector p95 latency, ms (log scale); labels: ef_search")
    ax.set_ylabel("recall@6 vs exact scan")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


@dataclass
class Tile:
    image: object  # PIL image or path
    correct: bool = False
    query: bool = False
    caption: str = ""


def _thumb(image, height: int = 160) -> np.ndarray:
    img = image if isinstance(image, Image.Image) else Image.open(image)
    img = img.convert("RGB")
    scale = height / img.height
    img = img.resize((max(1, round(img.width * scale)), height))
    canvas = Image.new("RGB", (round(height * 0.75), height), "white")  # uniform 3:4 cells
    if img.width > canvas.width:
        img = img.resize((canvas.width, max(1, round(img.height * canvas.width / img.width))))
    canvas.paste(img, ((canvas.width - img.width) // 2, (canvas.height - img.height) // 2))
    return np.asarray(canvas)


def picture_grid(path: Path, panels: dict[str, list[list[Tile]]], *, title: str) -> Path:
    """Panels side by side (e.g. off-the-shelf | trained); each a list of rows: query tile, then results."""
    names = list(panels)
    rows = max(len(p) for p in panels.values())
    cols_per_panel = max(len(r) for p in panels.values() for r in p)
    total_cols = len(names) * cols_per_panel + (len(names) - 1)  # one spacer column between panels
    fig, axes = plt.subplots(rows, total_cols, figsize=(total_cols * 0.95, rows * 1.35 + 0.6), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for p, name in enumerate(names):
        first = p * (cols_per_panel + 1)
        axes[0, first + cols_per_panel // 2].set_title(name, fontsize=11, pad=12)
        for r, row in enumerate(panels[name]):
            for c, tile in enumerate(row):
                ax = axes[r, first + c]
                ax.imshow(_thumb(tile.image))
                ax.set_xticks([])
                ax.set_yticks([])
                ax.axis("on")
                color = QUERY if tile.query else (CORRECT if tile.correct else None)
                for spine in ax.spines.values():
                    spine.set_visible(color is not None)
                    if color:
                        spine.set_color(color)
                        spine.set_linewidth(3.5)
                if tile.caption:
                    ax.set_xlabel(tile.caption, fontsize=6, labelpad=1)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97), pad=0.3, w_pad=0.2, h_pad=0.4)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
