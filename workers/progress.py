"""A job's progress as staff read it: done/total, time elapsed and an estimate of the time left. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ProgressEstimate:
    """``elapsed_s``: seconds since the job started (to its end once finished); ``remaining_s``: the estimate
    of the time left, None when there is none to make."""

    elapsed_s: float | None
    remaining_s: float | None


def progress_estimate(
    *, done: int, total: int, started_at: datetime | None, now: datetime, finished_at: datetime | None = None
) -> ProgressEstimate:
    """Elapsed time, and the time left at the pace so far: ``elapsed * (total - done) / done``.

    No estimate before the job starts, before any progress (no pace yet), without a total, once it is
    finished or at 100 %. A training run's stages do not all go at one pace (caching feature maps, then
    epochs), so the estimate is rough early on and improves as the run goes."""
    if started_at is None:
        return ProgressEstimate(elapsed_s=None, remaining_s=None)
    elapsed = max(0.0, ((finished_at or now) - started_at).total_seconds())
    if finished_at is not None or total <= 0 or done <= 0 or done >= total:
        return ProgressEstimate(elapsed_s=elapsed, remaining_s=None)
    return ProgressEstimate(elapsed_s=elapsed, remaining_s=elapsed * (total - done) / done)


def duration_text(seconds: float) -> str:
    """``"45 s"``, ``"12 min"``, ``"2 h 05 min"``: whole units, rounded to the nearest."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def time_text(
    *, done: int, total: int, started_at: datetime | None, now: datetime, finished_at: datetime | None = None
) -> str:
    """``"9 min elapsed, about 13 min left"``, ``"took 2 min"`` once finished, ``""`` before the start."""
    estimate = progress_estimate(done=done, total=total, started_at=started_at, now=now, finished_at=finished_at)
    if estimate.elapsed_s is None:
        return ""
    elapsed = duration_text(estimate.elapsed_s)
    if finished_at is not None:
        return f"took {elapsed}"
    if estimate.remaining_s is None:
        return f"{elapsed} elapsed"
    return f"{elapsed} elapsed, about {duration_text(estimate.remaining_s)} left"


def progress_text(
    *, done: int, total: int, started_at: datetime | None, now: datetime, finished_at: datetime | None = None
) -> str:
    """``"412/1000 (41%), 9 min elapsed, about 13 min left"``; ``"-"`` for a job that has neither progress
    nor a start; a finished job shows how long it took."""
    parts = [f"{done}/{total} ({min(100, round(100 * done / total))}%)"] if total > 0 else []
    times = time_text(done=done, total=total, started_at=started_at, now=now, finished_at=finished_at)
    return ", ".join([*parts, *([times] if times else [])]) or "-"
