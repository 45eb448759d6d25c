"""Health and Prometheus metrics."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text):
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_requests_by_route_template(client, admin, keymaker):
    auditor = keymaker.headers("auditor")
    client.put("/labs/nowhere/examiners/E1", json={}, headers=admin)  # 404, labelled by template
    client.get("/health")
    client.get("/no/such/route")
    response = client.get("/metrics", headers=auditor)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    key = (
        "labq_http_requests_total",
        (("method", "PUT"), ("route", "/labs/{lab}/examiners/{ref}"), ("status", "404")),
    )
    assert found[key] >= 1
    health = (
        "labq_http_requests_total",
        (("method", "GET"), ("route", "/health"), ("status", "200")),
    )
    assert found[health] >= 1
    unmatched = (
        "labq_http_requests_total",
        (("method", "GET"), ("route", "unmatched"), ("status", "404")),
    )
    assert found[unmatched] >= 1
    count = (
        "labq_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/health")),
    )
    assert found[count] >= 1
    assert not any("nowhere" in str(labels) for _, labels in found)


def test_metrics_need_an_operator_key(client, keymaker):
    assert client.get("/metrics").status_code == 401
    supervisor = keymaker.headers("supervisor")
    assert client.get("/metrics", headers=supervisor).status_code == 403


def test_health_reports_an_unreachable_database():
    from fastapi.testclient import TestClient

    from api.app import create_app
    from scheduler.settings import Settings

    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    app = create_app(Settings(database_url=url, embedded_worker=False))
    with TestClient(app) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
