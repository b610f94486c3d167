"""Shared by the tests of the ingestion building blocks: a settable clock and test settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adclick.settings import Settings


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"env": "test", "home": Path("/tmp/adclick-unit-unused")}
    values.update(overrides)
    return Settings(_env_file=None, **values)
