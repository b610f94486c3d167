"""Progress of a long command on stderr: a bar with rate and ETA on a terminal, plain lines in logs.

The one helper every long command uses (``adclick generate``, ``replay``, ``batch --to``,
``dlq replay``, and the traffic sinks under them). When the stream is a TTY it draws a ``tqdm``
bar (count, rate, elapsed, and ETA once the expected total is known); otherwise it prints a line
``<label>: <n>[ of <total>] <unit>[ (<p>%)], <rate>, <elapsed>[, ETA <t>]`` at most every
``every_seconds``, so log files and Airflow task logs get no carriage-return noise.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _rate(per_second: float) -> str:
    """Events/s for fast work, per minute or hour for slow work (days of a batch range)."""
    for per, scale in (("s", 1), ("min", 60), ("h", 3600)):
        value = per_second * scale
        if value >= 1 or per == "h":
            return f"{value:,.0f}/{per}" if value >= 10 else f"{value:,.1f}/{per}"
    raise AssertionError("unreachable")  # pragma: no cover


class Progress:
    """Counts work done (:meth:`tick`) and shows it on ``stream`` (stderr).

    ``expected``: the total when known (enables the percentage and the ETA); it may be set later
    (:meth:`set_expected`) or be an estimate: :meth:`done` ends the bar at the real count.
    ``bar``: force the bar (True) or the plain lines (False); default: bar when ``stream`` is a
    TTY. Use as a context manager, or call :meth:`done` (idempotent) at the end.
    """

    def __init__(
        self,
        label: str,
        *,
        expected: int | None = None,
        unit: str = "events",
        every_seconds: float = 5.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        bar: bool | None = None,
    ) -> None:
        self.label = label
        self.unit = unit
        self.expected = expected
        self.every_seconds = every_seconds
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.count = 0
        self.lines = 0  # plain lines printed
        self._printed = 0  # the count the last plain line showed
        self._started = clock()
        self._last = self._started
        self._closed = False
        self._bar: Any = None
        if bar if bar is not None else is_terminal(self.stream):
            from tqdm import tqdm

            big = unit == "events"
            self._bar = tqdm(
                total=expected,
                desc=label,
                # "12.3k events/s" for events; "300.00s/day" for slow units (tqdm inverts the rate)
                unit=f" {unit}" if big else unit.removesuffix("s"),
                unit_scale=big,
                file=self.stream,
                dynamic_ncols=True,
            )

    @property
    def is_bar(self) -> bool:
        return self._bar is not None

    def tick(self, n: int = 1) -> None:
        self.count += n
        if self._bar is not None:
            self._bar.update(n)  # tqdm redraws at most every 0.1 s
            return
        now = self.clock()
        if now - self._last >= self.every_seconds:
            self._last = now
            self._print(now)

    def set_expected(self, expected: int | None) -> None:
        self.expected = expected
        if self._bar is not None:
            self._bar.total = expected
            self._bar.refresh()

    def write(self, line: str) -> None:
        """A log line that does not break the bar (printed above it)."""
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def done(self) -> None:
        """Close the bar at the real count; in plain mode, a final line when the run was long
        enough to have shown progress and moved since the last line."""
        if self._closed:
            return
        self._closed = True
        if self.expected is not None and self.expected != self.count:
            self.expected = self.count  # the estimate was off: end at 100 %, not 97 or 103
            if self._bar is not None:
                self._bar.total = self.count
        if self._bar is not None:
            self._bar.close()
        elif self.lines and self.count != self._printed:
            self._print(self.clock())

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.done()

    def _print(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = self.count / elapsed
        line = f"{self.label}: {self.count:,}"
        if self.expected:
            line += f" of {self.expected:,} {self.unit} ({100 * self.count / self.expected:.0f}%)"
        else:
            line += f" {self.unit}"
        line += f", {_rate(rate)}, {_duration(elapsed)}"
        if self.expected and rate > 0 and self.count < self.expected:
            line += f", ETA {_duration((self.expected - self.count) / rate)}"
        self.lines += 1
        self._printed = self.count
        print(line, file=self.stream, flush=True)
