"""What the traffic tests share: a small seeded generator run and a recorded run of it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adclick.privacy import LOCAL_DEV_KEY
from traffic.generator import (
    GeneratorConfig,
    generate_timed,
)
from traffic.truth import Truth

START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
TS_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# About 20,000 impressions over one hour.
SMALL = GeneratorConfig(start=START, seed=42, impressions_per_second=20_000 / 3600)


@dataclass
class Run:
    config: GeneratorConfig
    truth: Truth
    sends: list[tuple[datetime, dict[str, Any]]]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for _, event in self.sends]

    def first_sends(self) -> dict[str, tuple[datetime, dict[str, Any]]]:
        first: dict[str, tuple[datetime, dict[str, Any]]] = {}
        for sent, event in self.sends:
            first.setdefault(event["event_id"], (sent, event))
        return first


def run(config: GeneratorConfig, key: bytes = LOCAL_DEV_KEY) -> Run:
    truth = Truth()
    return Run(config, truth, list(generate_timed(config, truth, key=key)))
