"""The base of errors reported to people as one clear line (the CLI prints them, no traceback)."""

from __future__ import annotations


class AdclickError(RuntimeError):
    """An error whose message says what is wrong and what to do."""
