"""Shared test settings: tests keep their state in var/test unless ADCLICK_HOME says otherwise."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("ADCLICK_HOME", str(ROOT / "var" / "test"))
os.environ.setdefault("ADCLICK_ENV", "test")
# The test stack's daily_batch: days from a week ago can be backfilled and `dags test`ed; no
# catch-up storm when the tests unpause it, and yesterday's scheduled run waits in its sensor.
_today = datetime.now(UTC).date()
os.environ.setdefault("ADCLICK_BATCH_START_DATE", (_today - timedelta(days=6)).isoformat())
os.environ.setdefault("ADCLICK_BATCH_CATCHUP", "false")
os.environ.setdefault("ADCLICK_BATCH_GRACE_HOURS", "48")

# py4j logs "Closing down clientserver connection" from __del__ after pytest closed its streams.
logging.getLogger("py4j").setLevel(logging.WARNING)
