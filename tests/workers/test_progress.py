"""A job's elapsed time and estimate of the time left (workers.progress): pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workers.progress import duration_text, progress_estimate, progress_text

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_the_time_left_is_the_pace_so_far_applied_to_what_remains():
    # 250 of 1000 in 10 minutes: 750 more at 25 a minute is 30 minutes
    estimate = progress_estimate(done=250, total=1000, started_at=START, now=START + timedelta(minutes=10))
    assert estimate.elapsed_s == 600
    assert estimate.remaining_s == pytest.approx(1800)
    later = progress_estimate(done=900, total=1000, started_at=START, now=START + timedelta(minutes=30))
    assert later.remaining_s == pytest.approx(200)  # 100 more at 30 a minute


@pytest.mark.parametrize(
    ("done", "total", "started_at", "finished_at", "elapsed"),
    [
        (0, 1000, START, None, 60),  # no progress yet: no pace to go by
        (5, 0, START, None, 60),  # no total
        (1000, 1000, START, None, 60),  # all done
        (400, 1000, START, START + timedelta(seconds=30), 30),  # finished (failed midway): it took 30 s
        (400, 1000, None, None, None),  # not started
    ],
)
def test_no_estimate_without_a_pace_a_total_or_a_run_still_going(done, total, started_at, finished_at, elapsed):
    estimate = progress_estimate(
        done=done, total=total, started_at=started_at, now=START + timedelta(seconds=60), finished_at=finished_at
    )
    assert (estimate.elapsed_s, estimate.remaining_s) == (elapsed, None)


def test_a_clock_behind_the_start_counts_no_negative_time():
    estimate = progress_estimate(done=1, total=2, started_at=START, now=START - timedelta(seconds=5))
    assert (estimate.elapsed_s, estimate.remaining_s) == (0, 0)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (44.6, "45 s"), (59.4, "59 s"), (60, "1 min"), (89, "1 min"), (3569, "59 min"), (3599, "1 h 00 min")],
)
def test_durations_read_in_whole_units(seconds, text):
    assert duration_text(seconds) == text
    assert duration_text(2 * 3600 + 5 * 60) == "2 h 05 min"


def test_the_text_staff_read():
    now = START + timedelta(minutes=10)
    assert progress_text(done=250, total=1000, started_at=START, now=now) == (
        "250/1000 (25%), 10 min elapsed, about 30 min left"
    )
    assert progress_text(done=0, total=0, started_at=START, now=now) == "10 min elapsed"
    assert progress_text(done=3, total=4, started_at=START, now=now, finished_at=START + timedelta(seconds=90)) == (
        "3/4 (75%), took 2 min"
    )
    assert progress_text(done=0, total=0, started_at=None, now=now) == "-"
