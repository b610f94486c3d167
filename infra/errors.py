"""Errors the stack reports to people, each saying what is wrong and what to do."""

from __future__ import annotations

from adclick.errors import AdclickError


class StackError(AdclickError):
    """A problem starting, stopping or installing the local stack."""
