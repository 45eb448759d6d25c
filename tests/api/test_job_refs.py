"""Jobs by their case, device and job references; lists followed from their end."""

from __future__ import annotations

from api_support import make_lab

LAB = "refs"
L = f"/labs/{LAB}"
CASE = {"priority": "P4", "received_at": "2026-11-02T09:00:00+00:00"}
DEVICE = {"kind": "phone", "arrived_at": "2026-11-02T12:00:00+00:00"}
JOB = {"stage": "acquire", "attended_minutes": 60}


def ok(response, status=200):
    assert response.status_code == status, response.text
    return response.json()


def _case(client, sup, ref):
    ok(client.put(f"{L}/cases/{ref}", json=CASE, headers=sup), 201)
    ok(client.put(f"{L}/cases/{ref}/devices/D1", json=DEVICE, headers=sup), 201)
    return ok(client.put(f"{L}/cases/{ref}/devices/D1/jobs/acquire", json=JOB, headers=sup), 201)


def test_a_job_answers_the_same_at_its_id_and_its_references(client, admin, keymaker):
    make_lab(client, admin, LAB)
    sup = keymaker.headers("supervisor", LAB)
    by_id_job, by_ref_job = _case(client, sup, "R-1"), _case(client, sup, "R-2")
    by_id = f"{L}/jobs/{by_id_job['id']}"
    by_ref = f"{L}/cases/R-2/devices/D1/jobs/acquire"

    def same(action, body=None):
        a = ok(client.post(f"{by_id}{action}", json=body, headers=sup))
        b = ok(client.post(f"{by_ref}{action}", json=body, headers=sup))
        drop = {"id", "case", "updated_at", "started_at", "finished_at"}  # stamps of each call
        assert {k: v for k, v in a.items() if k not in drop} == {
            k: v for k, v in b.items() if k not in drop
        }
        return b

    read = client.get(by_ref, headers=sup)
    assert read.status_code == 200 and read.json()["id"] == by_ref_job["id"]
    assert (
        client.get(by_ref, headers={**sup, "If-None-Match": read.headers["ETag"]}).status_code
        == 304
    )
    pin = {"start": "2026-12-01T09:00:00+00:00"}
    assert same(":pin", pin)["pin"]["start"] == "2026-12-01T09:00:00Z"
    assert same(":unpin")["pin"] is None
    assert same(":start")["status"] == "in_progress"
    assert same(":done")["status"] == "done"
    assert client.post(f"{by_ref}:resume", headers=sup).status_code == 409


def test_if_match_guards_the_reference_form_as_the_id_form(client, keymaker):
    sup = keymaker.headers("supervisor", LAB)
    job = _case(client, sup, "R-3")
    by_ref = f"{L}/cases/R-3/devices/D1/jobs/acquire"
    stale = {**sup, "If-Match": '"stale"'}
    assert client.post(f"{by_ref}:hold", headers=stale).status_code == 412
    tag = client.get(f"{L}/jobs/{job['id']}", headers=sup).headers["ETag"]
    held = client.post(f"{by_ref}:hold", headers={**sup, "If-Match": tag})
    assert held.status_code == 200 and held.json()["status"] == "on_hold"


def test_a_wrong_reference_is_a_404_naming_the_missing_part(client, keymaker):
    sup = keymaker.headers("supervisor", LAB)
    for path, named in (
        (f"{L}/cases/NOPE/devices/D1/jobs/acquire", "case 'NOPE'"),
        (f"{L}/cases/R-1/devices/D9/jobs/acquire", "device 'D9'"),
        (f"{L}/cases/R-1/devices/D1/jobs/review", "job 'review'"),
    ):
        for method, tail in (("GET", ""), ("POST", ":start"), ("GET", "/recommendations")):
            r = client.request(method, f"{path}{tail}", headers=sup)
            assert r.status_code == 404, (path, tail, r.text)
            assert named in r.json()["detail"]
    action = client.get(f"{L}/cases/R-1/devices/D1/jobs/acquire:pin", headers=sup)
    assert action.status_code == 405


def test_a_poller_resumes_the_audit_trail_from_its_end(client, keymaker):
    sup = keymaker.headers("supervisor", LAB)
    auditor = keymaker.headers("auditor", LAB)
    pages = []
    cursor = None
    while True:
        page = ok(
            client.get(
                f"{L}/audit-events",
                params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                headers=auditor,
            )
        )
        pages.append(page)
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    last = pages[-1]
    assert last["items"] and last["resume_cursor"]
    seen = {e["id"] for p in pages for e in p["items"]}
    quiet = ok(
        client.get(f"{L}/audit-events", params={"cursor": last["resume_cursor"]}, headers=auditor)
    )
    assert quiet["items"] == [] and quiet["next_cursor"] is None
    assert quiet["resume_cursor"] == last["resume_cursor"]

    ok(client.patch(f"{L}/cases/R-1", json={"note": "exhibit returned"}, headers=sup))
    news = ok(
        client.get(f"{L}/audit-events", params={"cursor": quiet["resume_cursor"]}, headers=auditor)
    )
    assert [e["action"] for e in news["items"]] == ["case.upsert"]
    assert not seen & {e["id"] for e in news["items"]}


def test_a_poller_resumes_the_solve_runs_from_their_end(client, keymaker):
    sup = keymaker.headers("supervisor", LAB)
    first = ok(client.post(f"{L}/solve-runs", json={"time_limit_seconds": 2}, headers=sup), 202)
    page = ok(client.get(f"{L}/solve-runs", headers=sup))
    assert page["next_cursor"] is None
    assert [r["id"] for r in page["items"]][-1] == first["id"]
    ok(client.post(f"{L}/solve-runs/{first['id']}:cancel", headers=sup))
    second = ok(
        client.post(
            f"{L}/solve-runs", json={"time_limit_seconds": 2, "mode": "preview"}, headers=sup
        ),
        202,
    )
    news = ok(client.get(f"{L}/solve-runs", params={"cursor": page["resume_cursor"]}, headers=sup))
    assert [r["id"] for r in news["items"]] == [second["id"]]


def test_audit_events_name_the_entity_by_its_reference_even_after_deletion(client, keymaker):
    sup = keymaker.headers("supervisor", LAB)
    auditor = keymaker.headers("auditor", LAB)
    job = _case(client, sup, "R-9")
    assert client.delete(f"{L}/cases/R-9", headers=sup).status_code == 204
    events = ok(client.get(f"{L}/audit-events", params={"limit": 500}, headers=auditor))["items"]
    named = {(e["action"], e["entity_ref"]) for e in events}
    assert ("case.upsert", "R-9") in named
    assert ("case.delete", "R-9") in named
    assert ("job.upsert", "R-9/D1/acquire") in named
    job_events = [e for e in events if e["entity_type"] == "job"]
    assert str(job["id"]) in {e["entity_id"] for e in job_events}
