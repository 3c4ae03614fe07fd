"""A part that fails is reported as failed and the run goes on (Context.guard)."""

from __future__ import annotations


def test_guard_reports_a_failure_and_lets_the_run_go_on(bench_ctx, capsys):
    ctx = bench_ctx
    ran = []

    def broken():
        raise RuntimeError("gunicorn exited")

    assert ctx.guard("2d. Pages", broken) is False
    assert ctx.guard("2e. Training", lambda: ran.append(True)) is True
    assert ran == [True]
    assert ctx.report.errors == [("2d. Pages", "RuntimeError: gunicorn exited")]
    assert "2d. Pages failed: gunicorn exited" in capsys.readouterr().err
