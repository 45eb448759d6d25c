"""The benchmark seeder puts a generated lab into the database as the loader reads it back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.benchmarks.seed_db import next_monday_8am, seed_lab
from scheduler.generate import generate_lab
from scheduler.planning.loader import load_snapshot
from scheduler.services.labs import get_lab


def test_a_seeded_lab_loads_back_with_its_people_machines_and_work(session):
    generated = generate_lab("small", 3)
    now = datetime(2026, 11, 25, 9, tzinfo=UTC)
    epoch = next_monday_8am(now) - timedelta(days=7)
    seeded = seed_lab(session, generated, code="seeded", epoch=epoch, min_jobs=600)
    assert seeded.jobs >= 600 > len(generated.jobs)
    snapshot, idmap = load_snapshot(session, get_lab(session, "seeded"), now)
    assert {e.id for e in snapshot.examiners} == {e.id for e in generated.examiners}
    assert {w.id for w in snapshot.workstations} == {w.id for w in generated.workstations}
    assert len(snapshot.jobs) + len(idmap.excluded) == seeded.jobs
    by_id = {j.id.replace("/case/", "-").replace("/", "-"): j for j in snapshot.jobs}
    for job in generated.jobs:
        loaded = by_id[job.id]
        assert (loaded.attended, loaded.machine, loaded.exposure, loaded.severity) == (
            job.attended,
            job.machine,
            job.exposure,
            job.severity,
        )
        assert loaded.skills == job.skills and loaded.capabilities == job.capabilities
        assert loaded.weight == job.weight
        assert {a.replace("/case/", "-").replace("/", "-") for a in loaded.after} == {
            a for a in job.after if a in by_id
        }
