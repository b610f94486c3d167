"""Shared test settings: tests keep their state in var/test unless ADCLICK_HOME says otherwise."""

from __future__ import annotations

import logging
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("ADCLICK_HOME", str(ROOT / "var" / "test"))
os.environ.setdefault("ADCLICK_ENV", "test")

# py4j logs "Closing down clientserver connection" from __del__ after pytest closed its streams.
logging.getLogger("py4j").setLevel(logging.WARNING)
