"""Engine times in the lab's terms: what reaches a person never says 'day 3' or '[4320, 4500)'."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from scheduler.core.plan import clock
from scheduler.planning.loader import Timeline
from scheduler.planning.words import in_lab_terms, job_name

# Thursday 3 December 2026, 08:00 UTC, in London (UTC+0 in winter) and in Auckland (UTC+13)
EPOCH = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def timeline(zone: str) -> Timeline:
    return Timeline(EPOCH, ZoneInfo(zone), 20160, (), (), (), 0)


def test_an_engine_time_reads_as_the_labs_weekday_date_and_clock() -> None:
    assert clock(4 * 1440 + 90) == "day 4 01:30"
    assert in_lab_terms(f"released at {clock(4 * 1440 + 90)}", timeline("Europe/London")) == (
        "released at Mon 7 Dec 09:30"
    )
    assert in_lab_terms(f"released at {clock(0)}", timeline("Pacific/Auckland")) == (
        "released at Thu 3 Dec 21:00"
    )


def test_a_window_of_minutes_reads_as_a_local_span() -> None:
    london = timeline("Europe/London")
    assert in_lab_terms("attended [60, 180) outside [1440, 1920)", london) == (
        "attended Thu 3 Dec 09:00-11:00 outside Fri 4 Dec 08:00-16:00"
    )
    assert in_lab_terms("runs [900, 1500)", london) == "runs Thu 3 Dec 23:00 to Fri 4 Dec 09:00"


def test_text_without_engine_times_is_left_alone() -> None:
    text = "no examiner combines skills mobile and severity 3 (day shift)"
    assert in_lab_terms(text, timeline("Europe/London")) == text


def test_a_job_is_named_by_case_device_and_stage() -> None:
    assert job_name("CR-2026-0403/D2/review") == "CR-2026-0403 D2 review"
    assert job_name("lonely") == "lonely"


def test_a_rule_instance_names_its_examiner_and_day_not_an_index() -> None:
    from datetime import date

    london = Timeline(
        EPOCH,
        ZoneInfo("Europe/London"),
        20160,
        (date(2026, 12, 3), date(2026, 12, 4)),
        ((0, 960), (960, 2400)),
        ((0, 5280), (5280, 15360)),
        0,
    )
    text = "clashes with kept a under exposure_daily_cap[e=E1,d=1], examiner_overlap[e=E1]"
    assert in_lab_terms(text, london) == (
        "clashes with kept a under exposure_daily_cap (E1 on Fri 4 Dec), examiner_overlap (E1)"
    )
    assert in_lab_terms("exposure_weekly_cap[e=E2,w=1]", london) == (
        "exposure_weekly_cap (E2, the week of Mon 7 Dec)"
    )
    assert in_lab_terms("pool_capacity[p=axiom] precedence[j=C1/D1/review]", london) == (
        "pool_capacity (the axiom licences) precedence (C1 D1 review)"
    )
