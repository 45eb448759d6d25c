"""/metrics as Prometheus scrapes it: with the metrics token (or an operator key), never without;
after real solve runs, every family an operator alerts on is there with the database's figures."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from lab_builders import small_lab
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update

from api.app import create_app
from models import Examiner, ScheduleVersion, SolveRun
from scheduler.db import session_scope
from scheduler.planning.runs import queue_run, request_repair
from scheduler.services.labs import get_lab
from scheduler.settings import Settings
from scheduler.worker import claim_next, run_to_completion

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN = "scrape-" + "t" * 32
LAB = "metrics"
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def client(api_url: str) -> Iterator[TestClient]:
    settings = Settings(
        database_url=api_url, environment="test", embedded_worker=False, metrics_token=TOKEN
    )
    app = create_app(settings)
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()


def families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name -> labels -> value."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return found


def test_the_metrics_token_scrapes_and_nothing_else_does(client, keymaker):
    assert client.get("/metrics", headers=SCRAPER).status_code == 200
    assert client.get("/metrics", headers={"X-API-Key": TOKEN}).status_code == 200
    assert client.get("/metrics").status_code == 401
    wrong = {"Authorization": f"Bearer {TOKEN[:-1]}x"}
    assert client.get("/metrics", headers=wrong).status_code == 401
    assert client.get("/metrics", headers=keymaker.headers("auditor")).status_code == 200
    assert client.get("/metrics", headers=keymaker.headers("supervisor")).status_code == 403
    # The token opens /metrics only.
    assert client.get("/labs", headers=SCRAPER).status_code == 401


def test_after_runs_every_family_carries_the_databases_figures(client):
    engine = client.app.state.engine
    with session_scope(engine) as session:
        lab = small_lab(session, LAB, cases=4)
        session.execute(
            update(Examiner).where(Examiner.lab_id == lab.id).values(display_name="Robin Quietname")
        )
        full = queue_run(session, lab, actor="sup", auto_publish=True, time_limit_seconds=2).run.id
    assert run_to_completion(engine, full, "w-metrics", workers=1) == "succeeded"
    with session_scope(engine) as session:
        repair = request_repair(
            session, get_lab(session, LAB), actor="sup", reason="P1 arrived", auto_publish=True
        ).id
    assert run_to_completion(engine, repair, "w-metrics", workers=1) == "succeeded"
    with session_scope(engine) as session:
        held = queue_run(session, get_lab(session, LAB), actor="sup", time_limit_seconds=2).run.id
    assert claim_next(engine, "w-holding", run_id=held) is not None  # running, never finished
    with session_scope(engine) as session:
        queue_run(session, get_lab(session, LAB), actor="sup", mode="preview")  # waits behind it
        lab_id = get_lab(session, LAB).id
        published = session.scalar(
            select(func.count()).where(
                ScheduleVersion.lab_id == lab_id, ScheduleVersion.published_at.is_not(None)
            )
        )
        with_bound = session.scalar(
            select(func.count()).where(SolveRun.status == "succeeded", SolveRun.bound.is_not(None))
        )

    response = client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200
    assert "Robin" not in response.text and "Quietname" not in response.text
    m = families(response.text)
    assert m["labq_state_up"][()] == 1
    assert m["labq_solve_runs_queued"][()] == 1
    assert m["labq_solve_runs_running"][()] == 1
    finished = m["labq_solve_runs_finished_total"]
    assert finished[(("status", "succeeded"),)] == 2
    assert finished[(("status", "failed"),)] == 0
    assert m["labq_solve_queue_oldest_age_seconds"][()] >= 0

    ok = (("status", "succeeded"),)
    assert m["labq_solve_run_duration_seconds_count"][ok] == 2
    assert m["labq_solve_run_duration_seconds_sum"][ok] > 0
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for labels, value in m["labq_solve_run_duration_seconds_bucket"].items()
        if dict(labels)["status"] == "succeeded"
    )
    counts = [value for _, value in buckets]
    assert counts == sorted(counts) and counts[-1] == 2  # cumulative, +Inf holds every run

    assert m["labq_solve_run_gap_ratio_count"][()] == with_bound
    assert m["labq_solve_run_gap_ratio_bucket"][(("le", "1.0"),)] == with_bound  # gaps in [0, 1]

    lab_label = (("lab", LAB),)
    assert published == 2
    assert m["labq_schedule_publications_total"][lab_label] == published
    assert m["labq_schedule_last_published_timestamp_seconds"][lab_label] > 1.7e9
    assert m["labq_repair_publish_latency_seconds_count"][()] == 1
    assert m["labq_repair_publish_latency_seconds_sum"][()] >= 0

    for level in ("P1", "P2", "P3", "P4"):
        key = (("lab", LAB), ("priority", level))
        assert m["labq_open_cases"][key] == 1
        assert 0 <= m["labq_sla_breaches"][key] <= 1
    # The cases arrived days ago and none has started: P1's target start has passed.
    assert m["labq_sla_breaches"][(("lab", LAB), ("priority", "P1"))] == 1

    examiners = {
        dict(labels)["examiner"] for labels in m["labq_examiner_exposure_peak_day_minutes"]
    }
    assert examiners == {"E1", "E2"}
    for ref in examiners:
        key = (("examiner", ref), ("lab", LAB))
        assert m["labq_examiner_exposure_daily_cap_minutes"][key] == 240
        assert 0 <= m["labq_examiner_exposure_peak_day_minutes"][key] <= 240
        assert (
            m["labq_examiner_exposure_peak_week_minutes"][key]
            >= (m["labq_examiner_exposure_peak_day_minutes"][key])
        )
    assert sum(m["labq_examiner_exposure_peak_day_minutes"].values()) > 0  # reviews are exposure

    beats = m["labq_worker_heartbeat_age_seconds"]
    assert list(beats) == [(("lab", LAB), ("worker", "w-holding"))]
    assert beats[(("lab", LAB), ("worker", "w-holding"))] >= 0


def test_a_scrape_without_the_database_still_answers_and_says_so():
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    settings = Settings(database_url=url, embedded_worker=False, metrics_token=TOKEN)
    app = create_app(settings)
    with TestClient(app) as client:
        response = client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200
    m = families(response.text)
    assert m["labq_state_up"][()] == 0
    assert "labq_solve_runs_queued" not in m
