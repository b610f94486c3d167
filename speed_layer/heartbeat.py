"""The stream application's heartbeat: ``var/stream/status.json``, rewritten every few seconds.

Holds each query's latest progress (batch id, input rows, rate, Kafka end offsets), so
``adclick status`` can report health and consumer lag without talking to Spark.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from adclick.settings import Settings

STALE_AFTER_S = 30.0


def path(settings: Settings) -> Path:
    return settings.path("stream", "status.json")


def write(settings: Settings, queries: dict[str, Any]) -> None:
    target = path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps({"updated_at": time.time(), "pid": os.getpid(), "queries": queries}))
    tmp.replace(target)


def read(settings: Settings) -> dict[str, Any] | None:
    try:
        return json.loads(path(settings).read_text())
    except (OSError, ValueError):
        return None


def is_fresh(settings: Settings) -> bool:
    beat = read(settings)
    return bool(beat and beat["queries"] and time.time() - beat["updated_at"] < STALE_AFTER_S)
