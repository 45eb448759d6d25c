"""Instants round-trip as timezone-aware values; naive datetimes are refused."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from models import Case
from scheduler.errors import Invalid
from scheduler.services import casework, labs


def test_timestamps_round_trip_with_timezone(session):
    lab = labs.create_lab(session, actor="t", code="tz", name="TZ", timezone="Asia/Kolkata")
    received = datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    casework.upsert_case(
        session, lab, actor="t", external_ref="C", priority="P3", received_at=received
    )
    session.expire_all()
    loaded = session.scalar(select(Case).where(Case.external_ref == "C"))
    assert loaded.received_at == received
    assert loaded.received_at.utcoffset() == timedelta(0)
    assert loaded.created_at.tzinfo is not None
    assert loaded.received_at.astimezone(received.tzinfo).hour == 1


def test_naive_datetime_is_refused(session):
    lab = labs.create_lab(session, actor="t", code="naive", name="N", timezone="UTC")
    with pytest.raises(Invalid, match="naive datetime"):
        casework.upsert_case(
            session,
            lab,
            actor="t",
            external_ref="C",
            priority="P3",
            received_at=datetime(2026, 1, 1, 12, 0),
        )
