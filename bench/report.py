"""The report writer: sections of Markdown, tables, figures and the list of rows that could not be produced.

Pure Python (no Django, no TensorFlow, no matplotlib): the measuring code hands it numbers and
file names; it formats them. Every number in BENCHMARKS.md comes through here from a measurement
of the same run; a missing measurement is written as ``n/a`` and listed with its reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPORT_FILE = "BENCHMARKS.md"
RESULTS_FILE = "results.json"
# Files a run owns in the report folder: removed at the start of a run so nothing stale survives.
GENERATED_SUFFIXES = (".png", ".md", ".json")


def fmt(value: float | int | None, digits: int = 1) -> str:
    """A number for a table: ``n/a`` for a missing or non-finite value, thousands separated."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def ratio(value: float | None, baseline: float | None, digits: int = 2) -> str:
    """``value / baseline`` as ``x1.23`` (``n/a`` when either is missing or the baseline is 0)."""
    if value is None or baseline is None or not math.isfinite(value) or not math.isfinite(baseline) or baseline == 0:
        return "n/a"
    return f"x{value / baseline:.{digits}f}"


def md_table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, align: str | None = None) -> str:
    """A GitHub Markdown table. ``align``: one letter per column, ``l`` or ``r`` (default: first left, rest right)."""
    headers = list(headers)
    align = align or "l" + "r" * (len(headers) - 1)
    if len(align) != len(headers):
        raise ValueError(f"align has {len(align)} letters for {len(headers)} columns")
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    for row in rows:
        cells = [str(c).replace("|", "\\|") for c in row]
        if len(cells) != len(headers):
            raise ValueError(f"row {cells} has {len(cells)} cells for {len(headers)} columns")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass
class Section:
    title: str
    blocks: list[str] = field(default_factory=list)

    def text(self, *lines: str) -> None:
        self.blocks.append("\n".join(lines))

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[object]], *, align: str | None = None) -> None:
        self.blocks.append(md_table(headers, rows, align=align))

    def figure(self, file_name: str, caption: str) -> None:
        self.blocks.append(f"![{caption}]({file_name})\n\n*{caption}*")


@dataclass
class Report:
    """What a run produced, in the order it is written."""

    title: str
    header: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (row or figure, why it was not produced)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (section, error) of a section that crashed
    results: dict = field(default_factory=dict)  # raw numbers, written as results.json

    def section(self, title: str) -> Section:
        section = Section(title)
        self.sections.append(section)
        return section

    def not_produced(self, what: str, why: str) -> None:
        self.missing.append((what, why))

    def failed(self, section: str, error: str) -> None:
        self.errors.append((section, error))

    def markdown(self) -> str:
        parts = [f"# {self.title}", *self.header]
        for section in self.sections:
            parts.append(f"## {section.title}")
            parts.extend(section.blocks)
        if self.missing or self.errors:
            parts.append("## Not produced in this run")
            lines = [f"- **{what}**: {why}" for what, why in self.missing]
            lines += [f"- **{name}** failed: `{error}`" for name, error in self.errors]
            parts.append("\n".join(lines))
        return "\n\n".join(parts).rstrip() + "\n"


def clear_generated(out_dir: Path) -> list[Path]:
    """Remove the files an earlier run wrote into ``out_dir`` (figures, report, raw results)."""
    removed = []
    if out_dir.is_dir():
        for path in sorted(out_dir.iterdir()):
            if path.is_file() and path.suffix in GENERATED_SUFFIXES:
                path.unlink()
                removed.append(path)
    return removed


def write(report: Report, out_dir: Path) -> Path:
    """Write BENCHMARKS.md and results.json into ``out_dir`` (atomically, each file whole or not at all)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / REPORT_FILE
    for name, text in (
        (REPORT_FILE, report.markdown()),
        (RESULTS_FILE, json.dumps(report.results, indent=2, sort_keys=True, default=_json_default) + "\n"),
    ):
        tmp = out_dir / (name + ".tmp")
        tmp.write_text(text)
        tmp.replace(out_dir / name)
    return target


def _json_default(value):
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
