"""The version of the code a process runs: the package version, plus the git commit of the checkout
it runs from (``0.1.0+g1a2b3c4``, ``0.1.0+g1a2b3c4.dirty`` when tracked files have uncommitted
changes; a PEP 440 local version, as setuptools-scm writes them).

Batch jobs record it in ``ops.job_runs.code_version``, so a table version can be traced to the
code that wrote it. Computed once per process and never raises: without a git checkout (an
installed package) or without ``git`` it is the package version alone.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from adclick import __version__

# The checkout holding the package (``adclick/`` sits at its top); an installed package has no ``.git``.
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def format_code_version(version: str, commit: str | None, dirty: bool = False) -> str:
    """``version``, with ``+g<commit>`` when the commit is known and ``.dirty`` after it when the
    tree had changes (no commit: the version alone, dirty or not)."""
    if not commit:
        return version
    return f"{version}+g{commit}{'.dirty' if dirty else ''}"


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):  # no git binary, or it hung
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(root: Path = SOURCE_ROOT) -> tuple[str | None, bool]:
    """The short commit of the checkout at ``root`` and whether tracked files differ from it;
    ``(None, False)`` when ``root`` is not the top of a git checkout."""
    if not (root / ".git").exists():
        return None, False
    commit = _git(root, "rev-parse", "--short=7", "HEAD")
    if commit is None:
        return None, False
    changes = _git(root, "status", "--porcelain", "--untracked-files=no")
    return commit, bool(changes)


@functools.cache
def code_version() -> str:
    """This process's code version (see the module docstring), computed on the first call."""
    return format_code_version(__version__, *git_state())
