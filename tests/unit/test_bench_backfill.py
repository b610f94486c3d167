"""Which seven days the backfill benchmark runs: empty days the watermark rule lets it pass."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bench.backfill_7_days import pick_days

TODAY = date(2026, 12, 7)
FIRST = date(2026, 11, 1)


def _week(start: date) -> list[date]:
    return [start + timedelta(days=i) for i in range(7)]


def test_a_new_stack_backfills_the_last_seven_closed_days() -> None:
    assert pick_days(None, TODAY, FIRST, set()) == _week(date(2026, 11, 30))


def test_the_week_after_the_watermark_when_it_is_closed_else_an_earlier_empty_week() -> None:
    assert pick_days(date(2026, 11, 20), TODAY, FIRST, set()) == _week(date(2026, 11, 21))
    # Watermark at yesterday: the latest empty week up to it (reruns, the watermark stays).
    filled = {date(2026, 12, 6), date(2026, 11, 29)}
    assert pick_days(date(2026, 12, 6), TODAY, FIRST, filled) == _week(date(2026, 11, 22))


def test_never_before_the_dags_start_date_nor_over_filled_days() -> None:
    filled = {FIRST + timedelta(days=i) for i in range(0, 40, 5)}  # a filled day every five
    with pytest.raises(RuntimeError, match="no 7 consecutive days"):
        pick_days(date(2026, 12, 6), TODAY, FIRST, filled)
    assert pick_days(date(2026, 11, 9), TODAY, FIRST, {date(2026, 11, 3)}) == _week(date(2026, 11, 10))
