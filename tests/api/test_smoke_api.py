"""The app answers on both backends: health without a key, a lab created and read with one."""

from __future__ import annotations

from api_support import make_lab


def test_health_needs_no_key(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_admin_creates_and_reads_a_lab(client, admin):
    created = make_lab(client, admin, "smoke")
    read = client.get("/labs/smoke", headers=admin)
    assert read.status_code == 200
    assert read.json() == created
    assert read.headers["ETag"].startswith('"')
