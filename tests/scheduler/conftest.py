"""Fixtures for engine tests."""

from __future__ import annotations

import pytest

import scheduler.core.lns as lns_module
import scheduler.core.solve as solve_module


@pytest.fixture
def work_clock_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lift the wall-clock safety net of one-worker solves (three time limits), so a test of
    reproducibility checks the work-counted clock alone: on a machine at load 10 a one-second
    search can outlast three seconds of wall time, and the net would then cut it at a point
    that depends on the load."""
    monkeypatch.setattr(solve_module, "DETERMINISTIC_WALL_FACTOR", 1000)
    monkeypatch.setattr(lns_module, "DETERMINISTIC_WALL_FACTOR", 1000)
