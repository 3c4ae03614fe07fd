"""A bench Context on temporary folders, for the parts' writers and guards."""

from __future__ import annotations

import pytest

from bench.context import Context
from bench.plan import QUICK
from bench.report import Report


@pytest.fixture
def bench_ctx(tmp_path) -> Context:
    """Quick-mode plan; the report folder is ``tmp_path``."""
    return Context(
        root=tmp_path,
        plan=QUICK,
        out_dir=tmp_path,
        work_dir=tmp_path / "work",
        ccp=tmp_path / "ccp",
        clothing=tmp_path / "clothing",
        trained_dir=tmp_path / "trained",
        weights_cache=tmp_path / "cache",
        backbone="efficientnet_lite2",
        report=Report(title="t"),
    )
