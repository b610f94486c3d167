"""Progress of long commands (adclick.progress): plain lines when stderr is not a terminal, a tqdm bar
when it is (faked here), and the commands that use it: generate, replay, batch over days."""

from __future__ import annotations

import io
import sys
from datetime import date
from pathlib import Path

import pytest
from tqdm import tqdm

import traffic.sinks
from adclick.progress import Progress, is_terminal
from cli.main import main


class Tty(io.StringIO):
    """A captured stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _clock(*times: float):
    ticks = iter(times)
    return lambda: next(ticks)


# --- plain lines (logs) -----------------------------------------------------------------------


def test_plain_line_every_interval_and_a_final_one_only_if_it_moved() -> None:
    stream = io.StringIO()
    progress = Progress("gen", every_seconds=5.0, stream=stream, clock=_clock(0.0, 1.0, 6.0, 7.0, 12.5, 13.0))
    for _ in range(4):
        progress.tick(10)
    progress.done()  # at 40 already shown: no repeat
    assert stream.getvalue().splitlines() == ["gen: 20 events, 3.3/s, 6s", "gen: 40 events, 3.2/s, 12s"]
    assert not progress.is_bar

    stream = io.StringIO()
    with Progress("gen", every_seconds=5.0, stream=stream, clock=_clock(0.0, 6.0, 7.0, 8.0)) as progress:
        progress.tick(600)
        progress.tick(100)
    assert stream.getvalue().splitlines() == ["gen: 600 events, 100/s, 6s", "gen: 700 events, 88/s, 8s"]


def test_plain_line_with_a_total_shows_share_and_eta() -> None:
    stream = io.StringIO()
    progress = Progress("gen", expected=1_000, stream=stream, clock=_clock(0.0, 5.0))
    progress.tick(250)
    assert stream.getvalue() == "gen: 250 of 1,000 events (25%), 50/s, 5s, ETA 15s\n"


def test_plain_line_of_slow_work_counts_per_hour() -> None:
    stream = io.StringIO()
    progress = Progress("batch day", expected=3, unit="days", stream=stream, clock=_clock(0.0, 300.0))
    progress.tick()
    assert stream.getvalue() == "batch day: 1 of 3 days (33%), 12/h, 5m00s, ETA 10m00s\n"


def test_nothing_is_printed_for_a_short_run_and_write_passes_lines_through() -> None:
    stream = io.StringIO()
    with Progress("gen", stream=stream, clock=_clock(0.0, 0.5, 1.0)) as progress:
        progress.tick(5)
        progress.write("silver: 12 rows")
    assert stream.getvalue() == "silver: 12 rows\n"


# --- the bar (terminal) -----------------------------------------------------------------------


def test_a_terminal_gets_a_bar_with_rate_and_eta() -> None:
    assert is_terminal(Tty()) and not is_terminal(io.StringIO()) and not is_terminal(object())
    stream = Tty()
    progress = Progress("generate", expected=2_000, stream=stream)
    assert progress.is_bar
    progress.tick(500)
    progress._bar.refresh()  # tqdm redraws at most every 0.1 s; draw now
    drawn = stream.getvalue()
    assert "\r" in drawn and "generate:  25%" in drawn and "500/2.00k [" in drawn and "events/s]" in drawn
    assert "<" in drawn.split("500/2.00k [")[-1]  # elapsed<remaining: the ETA
    progress.tick(1_400)  # the estimate was 2,000, the run sent 1,900
    progress.done()
    final = stream.getvalue().rsplit("\r", 1)[-1]
    assert final.startswith("generate: 100%") and "1.90k/1.90k" in final and final.endswith("\n")


def test_bar_total_set_later_and_log_lines_above_it() -> None:
    stream = Tty()
    with Progress("replay", stream=stream) as progress:
        progress.tick(3)
        progress.set_expected(12)
        progress.write("a log line")
        assert progress.expected == 12
    out = stream.getvalue()
    assert "a log line\n" in out
    assert "replay:  25%" in out


def test_bar_can_be_forced_off_and_on() -> None:
    assert not Progress("x", stream=Tty(), bar=False).is_bar
    bar = Progress("x", stream=io.StringIO(), bar=True)
    assert bar.is_bar
    bar.done()
    bar.done()  # idempotent: a sink and its command may both end it


def test_the_traffic_sinks_use_the_same_helper() -> None:
    assert traffic.sinks.Progress is Progress


# --- the commands -----------------------------------------------------------------------------


def _generate(tmp_path: Path) -> int:
    return main(
        ["generate", "--seed", "7", "--clicks", "200", "--start", "2025-03-01T00:00:00Z", "--duration", "10m",
         "--out", str(tmp_path / "run")]
    )  # fmt: skip


def test_generate_draws_a_bar_on_a_terminal_ending_at_the_real_count(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("ADCLICK_HASH_KEY", raising=False)
    stderr = Tty()
    monkeypatch.setattr(sys, "stderr", stderr)
    assert _generate(tmp_path) == 0
    sent = len((tmp_path / "run" / "events.ndjson").read_bytes().splitlines())
    final = stderr.getvalue().rsplit("\r", 1)[-1]
    assert final.startswith("generate: 100%")
    shown = tqdm.format_sizeof(sent)  # e.g. 11.4k: three digits
    assert f"{shown}/{shown} [" in final


def test_generate_in_a_log_prints_no_bar(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("ADCLICK_HASH_KEY", raising=False)
    assert _generate(tmp_path) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and err.startswith("generate: seed 7")


def test_replay_bar_learns_its_total_from_the_file(tmp_path, monkeypatch) -> None:
    csv = tmp_path / "sample.csv"
    csv.write_text(
        "ip,app,device,os,channel,click_time,attributed_time,is_attributed\n"
        "87540,12,1,13,497,2017-11-07 09:30:38,,0\n"
        "224120,19,0,29,213,2017-11-08 02:22:38,2017-11-08 02:22:38,1\n"
    )
    stderr = Tty()
    monkeypatch.setattr(sys, "stderr", stderr)
    assert main(["replay", str(csv), "--end", "2025-03-01T12:00:00Z", "--out", str(tmp_path / "o")]) == 0
    final = stderr.getvalue().rsplit("\r", 1)[-1]
    assert final.startswith("replay: 100%") and "3.00/3.00" in final  # 2 clicks + 1 conversion


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "log"])
def test_batch_over_days_shows_progress_per_day(monkeypatch, capsys, terminal: bool) -> None:
    import adclick.priority
    import adclick.spark
    import batch_layer.pipeline

    days: list[date] = []

    class FakeSpark:
        def stop(self) -> None:
            pass

    def run_step(spark, settings, job, day, log, fraud_model=None) -> None:
        days.append(day)
        log(f"{job} {day}: done")

    monkeypatch.setattr(adclick.spark, "get_spark", lambda *a, **k: FakeSpark())
    monkeypatch.setattr(batch_layer.pipeline, "run_step", run_step)
    yielded: list[object] = []
    monkeypatch.setattr(adclick.priority, "yield_cpu", yielded.append)  # not the test process
    if terminal:
        monkeypatch.setattr(sys, "stderr", Tty())
    assert main(["batch", "silver", "--date", "2026-11-01", "--to", "2026-11-03", "--no-register"]) == 0
    assert days == [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]
    assert len(yielded) == 1  # the batch yields the CPU once, before its Spark session
    err = sys.stderr.getvalue() if terminal else capsys.readouterr().err
    assert "silver 2026-11-03: done\n" in err
    if terminal:
        assert err.rsplit("\r", 1)[-1].startswith("batch silver: 100%") and "3/3 [" in err
    else:
        assert "\r" not in err
