"""The console's pages through the ASGI app: every page renders for the roles that may see it,
names no other host, and writes go through the services with their checks and audit."""

from __future__ import annotations

import re

import pytest
from console_support import build_lab, external_urls, page_csrf, sign_in
from sqlalchemy import select

from api.console.app import NAV
from api.console.render import PALETTE, contrast
from models import AuditEvent, Case, Job, PriorityLevel, SolveRun
from scheduler.db import session_scope

LAB = "pageslab"


@pytest.fixture(scope="module")
def lab(client, admin, keymaker, app):
    build_lab(client, admin, keymaker, app, LAB)
    return LAB


@pytest.fixture(scope="module")
def supervisor(app, keymaker, lab):
    return sign_in(app, keymaker.token("supervisor", LAB))


def _job_of(app, case_ref: str, stage: str) -> int:
    with session_scope(app.state.engine) as s:
        from models import Device

        return s.scalar(
            select(Job.id)
            .join(Device, Job.device_id == Device.id)
            .join(Case, Device.case_id == Case.id)
            .where(Case.external_ref == case_ref, Job.stage == stage)
        )


def pages(lab: str) -> list[str]:
    return [
        f"/ui/labs/{lab}/board",
        f"/ui/labs/{lab}/board?days=1",
        f"/ui/labs/{lab}/board?days=10&start=-3",
        f"/ui/labs/{lab}/backlog",
        f"/ui/labs/{lab}/backlog?priority=P1&sla=on_track",
        f"/ui/labs/{lab}/cases/C1",
        f"/ui/labs/{lab}/exposure",
        f"/ui/labs/{lab}/runs",
        f"/ui/labs/{lab}/runs/live",
        "/ui/labs",
    ]


def test_every_page_renders_with_headers_and_no_external_url(supervisor, lab):
    for path in pages(lab):
        r = supervisor.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert external_urls(r.text) == [], path
        if "<table" in r.text:
            assert "<th" in r.text, path
    for path in ("/ui/palette.css", "/ui/static/console.css", "/ui/static/console.js"):
        r = supervisor.get(path)
        assert r.status_code == 200
        assert external_urls(r.text) == [], path


def test_the_board_shows_dates_bars_linked_to_their_job_and_exposure(supervisor, lab, app):
    r = supervisor.get(f"/ui/labs/{lab}/board?days=5")
    html = r.text
    assert len(re.findall(r'class="dayhead"', html)) == 5
    assert re.search(r'<span class="date">\w{3} \d{2} \w{3}</span>', html)
    bars = re.findall(
        r'<a class="bar (c-P\d)[^"]*"[^>]*href="(/ui/labs/[^"]+/cases/(C\d)#job-(\d+))"', html
    )
    assert bars, "no bar on the board"
    assert {"c-P1", "c-P2"} & {b[0] for b in bars}
    link = bars[0][1]
    target = supervisor.get(link.split("#")[0])
    assert target.status_code == 200 and f'id="job-{bars[0][3]}"' in target.text
    assert "exposure" in html and "min cap" in html
    assert "Frozen until" in html


def test_backlog_lists_open_cases_and_filters(supervisor, lab):
    r = supervisor.get(f"/ui/labs/{lab}/backlog")
    assert r.status_code == 200
    assert all(f">C{n}</a>" in r.text for n in range(1, 7))
    assert "<svg" in r.text and "Open cases per priority level" in r.text
    only_p1 = supervisor.get(f"/ui/labs/{lab}/backlog?priority=P1")
    shown = re.findall(r">(C\d)</a>", only_p1.text)
    assert shown and set(shown) <= {"C3", "C6"}  # n % 3 == 0 -> P1
    bad = supervisor.get(f"/ui/labs/{lab}/backlog?priority=P9")
    assert bad.status_code == 422 and "P9" in bad.text


def test_escalating_on_the_case_page_queues_a_repair_and_is_audited(supervisor, lab, app):
    csrf = page_csrf(supervisor, f"/ui/labs/{lab}/cases/C1")
    refused = supervisor.post(f"/ui/labs/{lab}/cases/C1/escalate", data={"priority": "P1"})
    assert refused.status_code == 403
    r = supervisor.post(
        f"/ui/labs/{lab}/cases/C1/escalate",
        data={"csrf": csrf, "priority": "P1", "reason": "new report"},
    )
    assert r.status_code == 303, r.text
    done = supervisor.get(r.headers["location"])
    assert "escalated to P1" in done.text and "repair run" in done.text
    with session_scope(app.state.engine) as s:
        level = s.scalar(
            select(PriorityLevel.code)
            .join(Case, Case.priority_level_id == PriorityLevel.id)
            .where(Case.external_ref == "C1")
        )
        assert level == "P1"
        assert s.scalar(select(SolveRun).where(SolveRun.mode == "repair").limit(1)) is not None
        assert (
            s.scalar(select(AuditEvent).where(AuditEvent.action.like("case.escalat%")).limit(1))
            is not None
        )
    again = supervisor.post(
        f"/ui/labs/{lab}/cases/C1/escalate", data={"csrf": csrf, "priority": "P2"}
    )
    assert again.status_code == 409 and "must raise the level" in again.text


def test_hold_and_resume_go_through_the_status_service(supervisor, lab, app):
    job = _job_of(app, "C2", "review")
    csrf = page_csrf(supervisor, f"/ui/labs/{lab}/cases/C2")
    r = supervisor.post(f"/ui/labs/{lab}/jobs/{job}/hold", data={"csrf": csrf})
    assert r.status_code == 303
    with session_scope(app.state.engine) as s:
        assert s.get(Job, job).status == "on_hold"
    r = supervisor.post(f"/ui/labs/{lab}/jobs/{job}/resume", data={"csrf": csrf})
    assert r.status_code == 303
    with session_scope(app.state.engine) as s:
        assert s.get(Job, job).status == "pending"


def test_a_pin_is_checked_as_the_api_checks_it(supervisor, lab, app):
    job = _job_of(app, "C4", "review")
    csrf = page_csrf(supervisor, f"/ui/labs/{lab}/cases/C4")
    r = supervisor.post(
        f"/ui/labs/{lab}/jobs/{job}/pin",
        data={"csrf": csrf, "start": "not a time", "examiner": "E1"},
    )
    assert r.status_code == 422 and "start" in r.text
    r = supervisor.post(
        f"/ui/labs/{lab}/jobs/{job}/pin",
        data={"csrf": csrf, "start": "2001-01-01T09:00", "examiner": "NOPE"},
    )
    assert r.status_code in (404, 422)


def test_an_auditor_reads_but_may_not_write(app, keymaker, lab):
    auditor = sign_in(app, keymaker.token("auditor", LAB))
    for path in pages(lab):
        assert auditor.get(path).status_code == 200, path
    page = auditor.get(f"/ui/labs/{lab}/cases/C5").text
    assert "/escalate" not in page and "/hold" not in page
    csrf = page_csrf(auditor, f"/ui/labs/{lab}/cases/C5")
    r = auditor.post(f"/ui/labs/{lab}/cases/C5/escalate", data={"csrf": csrf, "priority": "P1"})
    assert r.status_code == 403 and "auditor role may not" in r.text
    r = auditor.post(f"/ui/labs/{lab}/runs", data={"csrf": csrf})
    assert r.status_code == 403


def test_an_examiner_sees_only_their_own_work(app, keymaker, lab):
    examiner = sign_in(app, keymaker.token("examiner", LAB, examiner="E1"))
    home = examiner.get("/ui/")
    assert home.headers["location"] == f"/ui/labs/{lab}/me"
    mine = examiner.get(f"/ui/labs/{lab}/me?days=10")
    assert mine.status_code == 200
    assert external_urls(mine.text) == []
    lanes = re.findall(
        r'<th scope="row" class="lanename"><span class="ref">([^<]+)</span>', mine.text
    )
    assert lanes == ["E1"]
    assert "Workstations (machine work)" not in mine.text
    exposure_rows = re.findall(r'<th scope="row">(E\d)', mine.text)
    assert exposure_rows == ["E1"]
    assert "/cases/" not in mine.text  # bars do not link to pages an examiner may not open
    nav = re.findall(r'<nav aria-label="Pages">.*?</nav>', mine.text, re.S)[0]
    assert "My work" in nav and "Board" not in nav
    for path in pages(lab)[:-1]:
        assert examiner.get(path).status_code == 403, path
    csrf = page_csrf(examiner, f"/ui/labs/{lab}/me")
    link = examiner.post(f"/ui/labs/{lab}/me/calendar", data={"csrf": csrf})
    assert link.status_code == 200
    url = re.search(r'value="(http://testserver/feeds/[^"]+)"', link.text).group(1)
    feed = examiner.get(url.replace("http://testserver", ""))
    assert feed.status_code == 200 and "BEGIN:VCALENDAR" in feed.text
    other = sign_in(app, keymaker.token("supervisor", LAB))
    assert other.get(f"/ui/labs/{lab}/me").status_code == 403


def test_runs_page_queues_and_publishes_through_the_run_services(supervisor, lab, app):
    csrf = page_csrf(supervisor, f"/ui/labs/{lab}/runs")
    r = supervisor.post(f"/ui/labs/{lab}/runs", data={"csrf": csrf, "time_limit_seconds": "2"})
    assert r.status_code == 303
    from scheduler.worker import run_once

    while run_once(app.state.engine, "w-console-pages", policy="priority"):
        pass
    page = supervisor.get(f"/ui/labs/{lab}/runs")
    found = re.findall(r"/ui/labs/[^/]+/versions/(\d+)/publish", page.text)
    assert found, "no version to publish"
    version = found[0]
    r = supervisor.post(f"/ui/labs/{lab}/versions/{version}/publish", data={"csrf": csrf})
    assert r.status_code == 303
    page = supervisor.get(f"/ui/labs/{lab}/runs?from=1&to={version}")
    assert "moved" in page.text and "Examiner" in page.text
    with session_scope(app.state.engine) as s:
        assert (
            s.scalar(select(AuditEvent).where(AuditEvent.action.like("%publish%")).limit(1))
            is not None
        )


def test_the_palette_keeps_labels_readable():
    for name, (foreground, background) in PALETTE.items():
        assert contrast(foreground, background) >= 4.5, name
    assert contrast("#ffffff", "#ffffff") == 1
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0


def test_every_navigation_entry_names_known_roles():
    from models.security import ROLES

    assert [item.key for item in NAV][:4] == ["board", "backlog", "exposure", "runs"]
    for item in NAV:
        assert set(item.roles) <= set(ROLES)


def test_a_pin_where_the_job_is_published_is_kept_and_marked_on_the_board(supervisor, lab, app):
    from zoneinfo import ZoneInfo

    from models import Assignment, Examiner, ScheduleVersion, Workstation

    with session_scope(app.state.engine) as s:
        row = s.execute(
            select(
                Assignment.job_id,
                Assignment.starts_at,
                Examiner.external_ref,
                Workstation.external_ref,
            )
            .join(ScheduleVersion, Assignment.schedule_version_id == ScheduleVersion.id)
            .join(Examiner, Assignment.examiner_id == Examiner.id)
            .outerjoin(Workstation, Assignment.workstation_id == Workstation.id)
            .join(Job, Assignment.job_id == Job.id)
            .where(ScheduleVersion.is_current.is_(True), Job.pin_start_at.is_(None))
            .order_by(Assignment.starts_at.desc())
            .limit(1)
        ).one()
    job_id, start, examiner, workstation = row
    local = start.astimezone(ZoneInfo("Europe/London")).strftime("%Y-%m-%dT%H:%M")
    with session_scope(app.state.engine) as s:
        from models import Device

        case_ref = s.scalar(
            select(Case.external_ref)
            .join(Device, Device.case_id == Case.id)
            .join(Job, Job.device_id == Device.id)
            .where(Job.id == job_id)
        )
    csrf = page_csrf(supervisor, f"/ui/labs/{lab}/cases/{case_ref}")
    form = {"csrf": csrf, "start": local, "examiner": examiner}
    if workstation:
        form["workstation"] = workstation
    r = supervisor.post(f"/ui/labs/{lab}/jobs/{job_id}/pin", data=form)
    assert r.status_code == 303, r.text
    page = supervisor.get(r.headers["location"])
    assert f"job {job_id} pinned" in page.text
    with session_scope(app.state.engine) as s:
        assert s.get(Job, job_id).pin_start_at is not None
        assert (
            s.scalar(select(AuditEvent).where(AuditEvent.action == "job.pin").limit(1)) is not None
        )
    board = supervisor.get(f"/ui/labs/{lab}/board?days=10&start=-1").text
    marked = re.findall(r'<a class="bar [^"]*pinned[^"]*"[^>]*#job-(\d+)"', board)
    assert str(job_id) in marked
    r = supervisor.post(f"/ui/labs/{lab}/jobs/{job_id}/unpin", data={"csrf": csrf})
    assert r.status_code == 303


def test_bad_input_is_a_clear_page_never_a_server_error(supervisor, lab):
    csrf = page_csrf(supervisor, f"/ui/labs/{lab}/cases/C5")
    as_json = supervisor.post(
        f"/ui/labs/{lab}/cases/C5/escalate",
        json={"priority": "P1"},
        headers={"X-CSRF-Token": csrf},
    )
    assert as_json.status_code == 415 and "x-www-form-urlencoded" in as_json.text
    no_level = supervisor.post(
        f"/ui/labs/{lab}/cases/C5/escalate", data={"csrf": csrf, "priority": "P9"}
    )
    assert no_level.status_code in (404, 422) and "P9" in no_level.text
    bad_id = supervisor.post(f"/ui/labs/{lab}/jobs/abc/hold", data={"csrf": csrf})
    assert bad_id.status_code == 422 and "job_id" in bad_id.text
    missing = supervisor.get(f"/ui/labs/{lab}/cases/NOPE")
    assert missing.status_code == 404 and "NOPE" in missing.text
    unknown_page = supervisor.get("/ui/nothing-here")
    assert unknown_page.status_code == 404 and "text/html" in unknown_page.headers["content-type"]
    empty_find = supervisor.get(f"/ui/labs/{lab}/case?ref=")
    assert empty_find.status_code == 422 and "case reference" in empty_find.text
    days = supervisor.get(f"/ui/labs/{lab}/board?days=99")
    assert days.status_code == 422 and "days" in days.text
