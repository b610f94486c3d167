"""Which day the daily_batch benchmark runs: one the watermark rule lets it finalise, with no data."""

from __future__ import annotations

from datetime import date

import pytest

from bench.daily_dag_small_day import pick_day

TODAY = date(2026, 12, 2)


def test_a_new_stack_runs_yesterday() -> None:
    assert pick_day(None, TODAY, lambda d: True) == date(2026, 12, 1)


def test_after_a_watermark_the_next_closed_day_else_an_earlier_empty_one() -> None:
    assert pick_day(date(2026, 11, 20), TODAY, lambda d: True) == date(2026, 11, 21)
    # The day after is taken: the watermark day itself and before it are backfills (it stays).
    taken = {date(2026, 11, 21), date(2026, 11, 20), date(2026, 11, 19)}
    assert pick_day(date(2026, 11, 20), TODAY, lambda d: d not in taken) == date(2026, 11, 18)
    # Watermark at yesterday: no later closed day; never today or a skipped-to day.
    assert pick_day(date(2026, 12, 1), TODAY, lambda d: d != date(2026, 12, 1)) == date(2026, 11, 30)


def test_no_day_at_all_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="watermark"):
        pick_day(None, TODAY, lambda d: False)
