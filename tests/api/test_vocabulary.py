"""A lab's vocabulary through the API: read and edited by the roles that may, enforced on every
write that names a skill, a capability or a stage, with every unknown term listed at once."""

from __future__ import annotations

import pytest
from api_support import case_payload, make_lab

from models.lab import DEFAULT_VOCABULARY

LAB = "vocab"
CASE = {"priority": "P4", "received_at": "2026-11-02T09:00:00Z"}
DEVICE = {"kind": "phone", "arrived_at": "2026-11-02T12:00:00Z"}
DEFAULT = {
    "skills": list(DEFAULT_VOCABULARY["skill"]),
    "capabilities": list(DEFAULT_VOCABULARY["capability"]),
    "stages": ["acquire", "process", "report", "review", "unlock"],
}


@pytest.fixture(scope="module")
def sup(client, admin, keymaker):
    make_lab(
        client,
        admin,
        LAB,
        vocabulary={"skills": ["mobile", "review"], "capabilities": ["ufed"]},
    )
    return keymaker.headers("supervisor", lab=LAB)


def ok(response, status=200):
    assert response.status_code == status, response.text
    return response.json()


def unknown(field: str, kind: str, term: str) -> dict[str, str]:
    plural = {"skill": "skills", "capability": "capabilities", "stage": "stages"}[kind]
    return {
        "location": "body",
        "field": field,
        "message": f"{kind} {term!r} is not in the vocabulary of lab {LAB!r} "
        f"(add it with PUT /labs/{LAB}/vocabulary/{plural}/{term})",
        "type": "unknown_term",
    }


def refused(response) -> dict:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


def vocabulary(client, headers):
    return ok(client.get(f"/labs/{LAB}/vocabulary", headers=headers))


# --- reading -------------------------------------------------------------------------------------


def test_a_lab_created_without_one_has_the_default_vocabulary(client, admin):
    make_lab(client, admin, "vocab-default")
    assert ok(client.get("/labs/vocab-default/vocabulary", headers=admin)) == DEFAULT


def test_a_lab_created_with_one_has_exactly_it_and_every_stage_unless_told(client, sup):
    assert vocabulary(client, sup) == {
        "skills": ["mobile", "review"],
        "capabilities": ["ufed"],
        "stages": DEFAULT["stages"],
    }


def test_the_vocabulary_has_an_etag_and_answers_304(client, sup):
    first = client.get(f"/labs/{LAB}/vocabulary", headers=sup)
    tag = first.headers["ETag"]
    again = client.get(f"/labs/{LAB}/vocabulary", headers={**sup, "If-None-Match": tag})
    assert again.status_code == 304
    assert again.headers["ETag"] == tag


def test_readers_read_and_only_supervisors_and_admins_edit(client, sup, keymaker):
    for role in ("auditor", "integration"):
        reader = keymaker.headers(role, lab=LAB)
        assert client.get(f"/labs/{LAB}/vocabulary", headers=reader).status_code == 200
        assert client.put(f"/labs/{LAB}/vocabulary/skills/cloud", headers=reader).status_code == 403
        put = client.put(f"/labs/{LAB}/vocabulary", json={}, headers=reader)
        assert put.status_code == 403
    ok(client.put(f"/labs/{LAB}/examiners/READER", json={}, headers=sup), 201)
    examiner_key = keymaker.headers("examiner", lab=LAB, examiner="READER")
    assert client.get(f"/labs/{LAB}/vocabulary", headers=examiner_key).status_code == 403
    other = keymaker.headers("supervisor", lab="vocab-default")
    assert client.get(f"/labs/{LAB}/vocabulary", headers=other).status_code == 403
    assert "cloud" not in vocabulary(client, sup)["skills"]


# --- refusing unknown terms ----------------------------------------------------------------------


def test_an_examiner_with_unknown_skills_is_refused_with_each_listed(client, sup):
    body = {"skills": ["mobile", "mobil", "chip_off"]}
    problem = refused(client.put(f"/labs/{LAB}/examiners/X1", json=body, headers=sup))
    assert problem["errors"] == [
        unknown("skills[1]", "skill", "mobil"),
        unknown("skills[2]", "skill", "chip_off"),
    ]
    assert problem["detail"].startswith("skills[1]: skill 'mobil' is not in the vocabulary")
    assert problem["detail"].endswith("(and 1 more problem(s))")
    assert client.get(f"/labs/{LAB}/examiners/X1", headers=sup).status_code == 404

    ok(client.put(f"/labs/{LAB}/examiners/X1", json={"skills": ["mobile"]}, headers=sup), 201)
    patched = client.patch(f"/labs/{LAB}/examiners/X1", json={"skills": ["cloud"]}, headers=sup)
    assert refused(patched)["errors"] == [unknown("skills[0]", "skill", "cloud")]
    assert ok(client.get(f"/labs/{LAB}/examiners/X1", headers=sup))["skills"] == ["mobile"]


def test_a_workstation_with_unknown_capabilities_is_refused(client, sup):
    body = {"capabilities": ["graykey", "ufed", "axiom"]}
    problem = refused(client.put(f"/labs/{LAB}/workstations/X1", json=body, headers=sup))
    assert problem["errors"] == [
        unknown("capabilities[0]", "capability", "graykey"),
        unknown("capabilities[2]", "capability", "axiom"),
    ]
    assert client.get(f"/labs/{LAB}/workstations/X1", headers=sup).status_code == 404
    ok(
        client.put(f"/labs/{LAB}/workstations/X1", json={"capabilities": ["ufed"]}, headers=sup),
        201,
    )
    patched = client.patch(
        f"/labs/{LAB}/workstations/X1", json={"capabilities": ["imager"]}, headers=sup
    )
    assert refused(patched)["errors"] == [unknown("capabilities[0]", "capability", "imager")]


def test_a_job_naming_unknown_terms_is_refused_with_all_of_them(client, sup):
    ok(client.put(f"/labs/{LAB}/cases/VJ-1", json=CASE, headers=sup), 201)
    ok(client.put(f"/labs/{LAB}/cases/VJ-1/devices/D1", json=DEVICE, headers=sup), 201)
    # A lab that does no unlocking: the stage is refused like a skill it never defined.
    assert client.delete(f"/labs/{LAB}/vocabulary/stages/unlock", headers=sup).status_code == 204
    url = f"/labs/{LAB}/cases/VJ-1/devices/D1/jobs/unlock"
    body = {
        "stage": "unlock",
        "attended_minutes": 30,
        "skills": ["unlock", "mobile"],
        "capabilities": ["graykey"],
    }
    problem = refused(client.put(url, json=body, headers=sup))
    assert problem["errors"] == [
        unknown("stage", "stage", "unlock"),
        unknown("skills[0]", "skill", "unlock"),
        unknown("capabilities[0]", "capability", "graykey"),
    ]
    assert (
        client.get(f"/labs/{LAB}/jobs", params={"case": "VJ-1"}, headers=sup).json()["items"] == []
    )
    ok(client.put(f"/labs/{LAB}/vocabulary/stages/unlock", headers=sup), 201)


def test_an_import_lists_every_unknown_term_and_every_other_problem(client, sup):
    cases = [case_payload(f"VI-{i}") for i in range(3)]
    cases[0]["devices"][0]["jobs"][0]["skills"] = ["mobile", "moblie"]
    cases[2]["devices"][0]["jobs"][0]["capabilities"] = ["ufed", "cellebrite"]
    cases[2]["devices"][0]["jobs"][2]["pools"] = ["nope"]
    cases[1]["devices"][0]["jobs"][2]["stage"] = "report"
    assert client.delete(f"/labs/{LAB}/vocabulary/stages/report", headers=sup).status_code == 204
    response = client.post(f"/labs/{LAB}/cases:import", json={"cases": cases}, headers=sup)
    problem = refused(response)
    jobs = "cases[{}].devices[0].jobs[{}]"
    assert problem["errors"] == [  # in the payload's order
        unknown(f"{jobs.format(0, 0)}.skills[1]", "skill", "moblie"),
        unknown(f"{jobs.format(1, 2)}.stage", "stage", "report"),
        unknown(f"{jobs.format(2, 0)}.capabilities[1]", "capability", "cellebrite"),
        {
            "location": "body",
            "field": f"{jobs.format(2, 2)}.pools[0]",
            "message": "licence pool 'nope' does not exist in this lab",
            "type": "invalid",
        },
    ]
    assert problem["detail"].endswith("(and 3 more problem(s))")
    listed = client.get(f"/labs/{LAB}/cases", headers=sup).json()["items"]
    assert not [c for c in listed if c["external_ref"].startswith("VI-")]
    ok(client.put(f"/labs/{LAB}/vocabulary/stages/report", headers=sup), 201)


def test_a_stage_labq_does_not_plan_cannot_be_defined(client, sup):
    put = client.put(f"/labs/{LAB}/vocabulary/stages/triage", headers=sup)
    (error,) = refused(put)["errors"]
    assert (error["location"], error["field"]) == ("path", "term")
    assert all(stage in error["message"] for stage in ("unlock", "acquire", "report"))
    spec = client.get("/openapi.json").json()["paths"]["/labs/{lab}/vocabulary/stages/{term}"]
    (term,) = [p for p in spec["put"]["parameters"] if p["name"] == "term"]
    assert term["schema"]["enum"] == ["unlock", "acquire", "process", "review", "report"]
    whole = client.put(f"/labs/{LAB}/vocabulary", json={"stages": ["triage"]}, headers=sup)
    assert refused(whole)["errors"][0]["field"] == "stages[0]"
    assert (
        client.put(f"/labs/{LAB}/vocabulary/skills/Not%20A%20Label", headers=sup).status_code == 422
    )


# --- editing -------------------------------------------------------------------------------------


def test_adding_a_term_lets_writes_name_it(client, sup):
    assert (
        client.put(f"/labs/{LAB}/examiners/X2", json={"skills": ["cloud"]}, headers=sup).status_code
        == 422
    )
    added = client.put(f"/labs/{LAB}/vocabulary/skills/cloud", headers=sup)
    assert added.status_code == 201
    assert "cloud" in added.json()["skills"]
    again = client.put(f"/labs/{LAB}/vocabulary/skills/cloud", headers=sup)
    assert again.status_code == 200
    assert again.headers["ETag"] == added.headers["ETag"]
    ok(client.put(f"/labs/{LAB}/examiners/X2", json={"skills": ["cloud"]}, headers=sup), 201)


def test_removing_a_term_in_use_is_409_naming_its_users(client, sup):
    ok(client.put(f"/labs/{LAB}/vocabulary/skills/chip_off", headers=sup), 201)
    for ref in ("R1", "R2"):
        body = {"skills": ["chip_off", "mobile"]}
        ok(client.put(f"/labs/{LAB}/examiners/{ref}", json=body, headers=sup), 201)
    ok(client.put(f"/labs/{LAB}/cases/RU-1", json=CASE, headers=sup), 201)
    ok(client.put(f"/labs/{LAB}/cases/RU-1/devices/D1", json=DEVICE, headers=sup), 201)
    job = {"stage": "acquire", "attended_minutes": 30, "skills": ["chip_off"]}
    ok(client.put(f"/labs/{LAB}/cases/RU-1/devices/D1/jobs/chip", json=job, headers=sup), 201)

    response = client.delete(f"/labs/{LAB}/vocabulary/skills/chip_off", headers=sup)
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["in_use"] == [
        {
            "kind": "skill",
            "term": "chip_off",
            "examiners": {"count": 2, "refs": ["R1", "R2"]},
            "jobs": {"count": 1, "refs": ["RU-1/D1/chip"]},
        }
    ]
    assert problem["detail"].startswith(
        "skill 'chip_off' is in use by examiners R1, R2; jobs RU-1/D1/chip"
    )
    assert "chip_off" in vocabulary(client, sup)["skills"]

    for ref in ("R1", "R2"):
        ok(client.patch(f"/labs/{LAB}/examiners/{ref}", json={"skills": ["mobile"]}, headers=sup))
    still = client.delete(f"/labs/{LAB}/vocabulary/skills/chip_off", headers=sup)
    assert still.status_code == 409
    assert still.json()["in_use"][0] == {
        "kind": "skill",
        "term": "chip_off",
        "jobs": {"count": 1, "refs": ["RU-1/D1/chip"]},
    }
    job["skills"] = []
    ok(client.put(f"/labs/{LAB}/cases/RU-1/devices/D1/jobs/chip", json=job, headers=sup))
    assert client.delete(f"/labs/{LAB}/vocabulary/skills/chip_off", headers=sup).status_code == 204
    assert "chip_off" not in vocabulary(client, sup)["skills"]
    gone = client.delete(f"/labs/{LAB}/vocabulary/skills/chip_off", headers=sup)
    assert gone.status_code == 404


def test_replacing_the_vocabulary_checks_if_match_and_every_term_in_use(client, sup):
    ok(
        client.put(f"/labs/{LAB}/workstations/RW1", json={"capabilities": ["ufed"]}, headers=sup),
        201,
    )
    current = client.get(f"/labs/{LAB}/vocabulary", headers=sup)
    before, tag = current.json(), current.headers["ETag"]
    stale = {**sup, "If-Match": '"0123456789abcdef0123456789abcdef"'}
    assert client.put(f"/labs/{LAB}/vocabulary", json=before, headers=stale).status_code == 412

    narrowed = {"skills": ["review"], "capabilities": [], "stages": before["stages"]}
    response = client.put(
        f"/labs/{LAB}/vocabulary", json=narrowed, headers={**sup, "If-Match": tag}
    )
    assert response.status_code == 409, response.text
    in_use = {(u["kind"], u["term"]) for u in response.json()["in_use"]}
    assert {("skill", "mobile"), ("capability", "ufed")} <= in_use
    assert ("skill", "review") not in in_use
    assert vocabulary(client, sup) == before

    grown = {**before, "skills": [*before["skills"], "computer"]}
    replaced = client.put(f"/labs/{LAB}/vocabulary", json=grown, headers={**sup, "If-Match": tag})
    assert ok(replaced)["skills"] == sorted(grown["skills"])
    assert replaced.headers["ETag"] != tag
    assert (
        client.get(f"/labs/{LAB}/vocabulary", headers=sup).headers["ETag"]
        == replaced.headers["ETag"]
    )


def vocabulary_events(client, admin) -> list[dict]:
    return ok(
        client.get(
            f"/labs/{LAB}/audit-events",
            params={"entity_type": "lab_vocabulary", "limit": 500},
            headers=admin,
        )
    )["items"]


def test_every_change_to_the_vocabulary_is_audited_and_a_refusal_is_not(client, sup, admin):
    earlier = vocabulary_events(client, admin)
    assert earlier[0]["action"] == "vocabulary.create"
    assert earlier[0]["before_digest"] is None
    ok(client.put(f"/labs/{LAB}/vocabulary/capabilities/axiom", headers=sup), 201)
    ok(client.put(f"/labs/{LAB}/vocabulary/capabilities/axiom", headers=sup))  # no change
    assert (
        client.delete(f"/labs/{LAB}/vocabulary/capabilities/axiom", headers=sup).status_code == 204
    )
    assert client.delete(f"/labs/{LAB}/vocabulary/skills/mobile", headers=sup).status_code == 409

    added, removed = vocabulary_events(client, admin)[len(earlier) :]
    assert (added["action"], removed["action"]) == ("vocabulary.add", "vocabulary.remove")
    supervisor = sup["X-API-Key"].split("_")[1]
    for event in (added, removed):
        assert (event["entity_ref"], event["lab"], event["actor"]) == (
            LAB,
            LAB,
            supervisor,
        )
    assert added["after_digest"] == removed["before_digest"]
    assert removed["after_digest"] == added["before_digest"]
