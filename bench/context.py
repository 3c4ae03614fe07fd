"""What every part of a run shares: the plan, paths, the report being written, and progress output."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.plan import Plan
from bench.report import Report


@dataclass
class Context:
    root: Path  # the repository
    plan: Plan
    out_dir: Path  # bench/report: BENCHMARKS.md + figures
    work_dir: Path  # var/bench: scratch services, artifacts, caches (removed at the end unless --keep)
    ccp: Path
    clothing: Path
    trained_dir: Path  # where the trained artifacts are looked up (arcface-<backbone>, triplet-<backbone>)
    weights_cache: Path  # converted ImageNet weights (shared with the rest of the project)
    backbone: str
    report: Report
    models: dict[str, Path] = field(default_factory=dict)  # quality row name -> artifact folder
    started: float = field(default_factory=time.monotonic)

    @property
    def env_dir(self) -> Path:
        """LOOKBOOK_VAR_DIR of the scratch services (embedded PostgreSQL + Redis, media, model versions)."""
        return self.work_dir / "env"

    def log(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[bench {elapsed:6.0f}s] {message}", file=sys.stderr, flush=True)

    def progress(self, label: str, every: float = 10.0):
        """A ``progress(fraction, message)`` callback for ml functions, printing at most every ``every`` s."""
        last = [0.0]

        def report(fraction: float, message: str = "") -> None:
            now = time.monotonic()
            if now - last[0] >= every or fraction >= 1.0:
                last[0] = now
                self.log(f"{label}: {100 * fraction:5.1f}% {message}")

        return report

    def guard(self, name: str, fn: Callable[[], object]) -> bool:
        """Run one part or measurement; a failure is logged and reported, and the run goes on.

        Returns whether it succeeded.
        """
        try:
            fn()
            return True
        except Exception as exc:  # noqa: BLE001 - one failed part must not lose the rest of the report
            self.log(f"{name} failed: {exc}\n{traceback.format_exc()}")
            self.report.failed(name, f"{type(exc).__name__}: {str(exc)[:600]}")
            return False

    def serving_model(self) -> tuple[str, Path]:
        """The model the scratch catalog serves: the shipped one (what a fresh install serves), else the trained
        ArcFace one if there is one, else off-the-shelf."""
        for name in ("shipped (garments)", "trained, ArcFace", "off-the-shelf"):
            if name in self.models:
                return name, self.models[name]
        raise RuntimeError("no model artifact is available (neither trained nor off-the-shelf)")
