"""The console's Capacity and What-if pages through the ASGI app, on a small lab whose licence
pool is the bottleneck, with real CP-SAT previews (docs/architecture.md §5.10, §5.11)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from console_support import external_urls, page_csrf, sign_in
from sqlalchemy import select

from models import AuditEvent, ScheduleVersion
from scheduler.db import session_scope
from scheduler.worker import run_once

LAB = "capui"
NOW = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
SHIFTS = [{"weekday": d, "starts": "08:00", "ends": "16:30"} for d in range(5)]


def _case(n: int) -> dict[str, object]:
    return {
        "external_ref": f"K{n:02d}",
        "priority": "P3",
        "received_at": "2026-11-23T09:00:00+00:00",
        "devices": [
            {
                "external_ref": "D1",
                "kind": "computer",
                "arrived_at": "2026-11-23T12:00:00+00:00",
                "jobs": [
                    {
                        "external_ref": "process",
                        "stage": "process",
                        "attended_minutes": 15,
                        "machine_minutes": 720,
                        "capabilities": ["processing"],
                        "pools": ["axiom"],
                    },
                    {
                        "external_ref": "review",
                        "stage": "review",
                        "attended_minutes": 120,
                        "skills": ["review"],
                        "after": ["process"],
                    },
                ],
            }
        ],
    }


def _solve(app) -> None:
    assert run_once(app.state.engine, "w-capui", policy="cpsat", now=NOW, workers=1)


@pytest.fixture(scope="module")
def lab(client, admin, keymaker, app) -> str:
    r = client.post("/labs", json={"code": LAB, "name": "Cap UI", "timezone": "UTC"}, headers=admin)
    assert r.status_code == 201, r.text
    sup = keymaker.headers("supervisor", LAB)
    for ref in ("E1", "E2"):
        r = client.put(
            f"/labs/{LAB}/examiners/{ref}",
            json={"skills": ["review"], "shifts": SHIFTS},
            headers=sup,
        )
        assert r.status_code == 201, r.text
    for ref in ("S1", "S2"):
        r = client.put(
            f"/labs/{LAB}/workstations/{ref}", json={"capabilities": ["processing"]}, headers=sup
        )
        assert r.status_code == 201, r.text
    assert client.put(
        f"/labs/{LAB}/licence-pools/axiom", json={"capacity": 1}, headers=sup
    ).status_code in (200, 201)
    r = client.post(
        f"/labs/{LAB}/cases:import", json={"cases": [_case(n) for n in range(12)]}, headers=sup
    )
    assert r.status_code == 200, r.text
    r = client.post(
        f"/labs/{LAB}/solve-runs",
        json={"auto_publish": True, "time_limit_seconds": 5},
        headers=sup,
    )
    assert r.status_code == 202, r.text
    _solve(app)
    return LAB


@pytest.fixture(scope="module")
def supervisor(app, keymaker, lab):
    return sign_in(app, keymaker.token("supervisor", LAB))


def test_the_capacity_page_names_the_bottleneck_with_a_chart_and_tables(supervisor, lab):
    r = supervisor.get(f"/ui/labs/{lab}/capacity")
    assert r.status_code == 200, r.text[:500]
    html = r.text
    assert external_urls(html) == []
    assert "<h1>Capacity</h1>" in html
    sentence = re.search(r"<strong>Bottleneck:</strong> ([^<]+)</p>", html)
    assert sentence and sentence.group(1).startswith("AXIOM licences (1) are ")
    assert "reviews wait for processing." in sentence.group(1)
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert '<title id="capacity-title">' in svg and ">bottleneck</text>" in svg
    assert "AXIOM licences (1)" in svg and "all examiners (2)" in svg
    for heading in ("Licence pools", "Workstation capabilities", "Examiner skills", "Examiners"):
        assert f"<h2>{heading}</h2>" in html
    assert html.count('<th scope="col">Resource</th>') == 4
    assert re.search(r'<tr class="c-bad"><th scope="row">AXIOM licences \(1\)', html)
    assert '<a href="/ui/labs/capui/what-if">' in html


def test_auditors_read_capacity_but_cannot_run_a_what_if(app, keymaker, lab):
    auditor = sign_in(app, keymaker.token("auditor", LAB))
    page = auditor.get(f"/ui/labs/{lab}/capacity")
    assert page.status_code == 200
    nav = re.findall(r'<nav aria-label="Pages">(.*?)</nav>', page.text, re.S)[0]
    assert ">Capacity<" in nav and ">What-if<" not in nav
    assert "what-if</a>" not in page.text
    assert auditor.get(f"/ui/labs/{lab}/what-if").status_code == 403
    examiner = sign_in(app, keymaker.token("examiner", LAB, examiner="E1"))
    assert examiner.get(f"/ui/labs/{lab}/capacity").status_code == 403


def test_a_what_if_from_the_form_is_compared_side_by_side(supervisor, lab, app):
    form = supervisor.get(f"/ui/labs/{lab}/what-if")
    assert form.status_code == 200 and external_urls(form.text) == []
    assert 'name="licences_axiom"' in form.text and 'value="review"' in form.text
    csrf = page_csrf(supervisor, f"/ui/labs/{lab}/what-if")
    refused = supervisor.post(f"/ui/labs/{lab}/what-if", data={"licences_axiom": "3"})
    assert refused.status_code == 403
    posted = supervisor.post(
        f"/ui/labs/{lab}/what-if",
        data={
            "csrf": csrf,
            "licences_axiom": "3",
            "add_workstations": "1",
            "add_capability": "processing",
            "target_P1": "24",  # unchanged: not a change
            "time_limit_seconds": "5",
        },
    )
    assert posted.status_code == 303, posted.text[:500]
    where = posted.headers["location"]
    assert re.fullmatch(rf"/ui/labs/{lab}/what-if/\d+", where)
    waiting = supervisor.get(where)
    assert "The preview is queued" in waiting.text and "data-refresh=" in waiting.text
    assert "add 1 workstation(s) with processing (capacity 1); axiom licences: 3" in waiting.text
    _solve(app)
    live = supervisor.get(where + "/live")
    assert live.status_code == 200 and '<table class="comparison">' in live.text
    done = supervisor.get(where).text
    assert "data-refresh=" not in done
    rows = {
        m[0]: m[1:]
        for m in re.findall(
            r'<tr><th scope="row">([^<]+)</th><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>',
            done,
        )
    }
    was, now, change = rows["Jobs scheduled in the horizon"]
    assert int(now.replace(",", "")) > int(was.replace(",", "")) and change.startswith("+")
    assert "P3: waiting cases that start on target" in rows
    assert rows["P3: backlog cleared by"][2].endswith("earlier")
    assert rows["Exposure cap breaches (always none)"][:2] == ("0", "0")
    assert done.count("<dd>") == 2 and "AXIOM licences (1) are" in done
    with session_scope(app.state.engine) as session:
        actions = list(
            session.scalars(select(AuditEvent.action).where(AuditEvent.action == "what_if.create"))
        )
        previews = session.scalars(select(ScheduleVersion.id)).all()
    assert actions and len(previews) == 1  # the published version only


@pytest.mark.parametrize(
    ("form", "words"),
    [
        ({}, "a what-if needs at least one change"),
        ({"add_examiners": "-1", "add_skill": "review"}, "add_examiners"),
        ({"add_examiners": "1", "add_skill": "juggling"}, "juggling"),
        ({"add_examiners": "two"}, "whole number"),
        ({"licences_axiom": "0"}, "capacity"),
    ],
)
def test_bad_what_if_forms_are_pages_naming_the_problem(supervisor, lab, form, words):
    csrf = page_csrf(supervisor, f"/ui/labs/{lab}/what-if")
    r = supervisor.post(f"/ui/labs/{lab}/what-if", data={"csrf": csrf, **form})
    assert r.status_code == 422, r.text[:300]
    assert words in r.text
