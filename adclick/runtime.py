"""The JVM runtime recorded by the artifact cache: Spark's extra jars and the Java 17 home.

``adclick install`` (``infra.artifacts``) fills the cache and writes ``<cache>/spark/runtime.json``;
the SparkSession factory and ``spark-submit`` read it here, so the core never imports ``infra``.
``ADCLICK_JAVA17_HOME`` overrides the recorded Java home.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from adclick.errors import AdclickError
from adclick.settings import Settings

RECORD = "runtime.json"


class RuntimeMissing(AdclickError):
    """The artifact cache has no runtime record yet: ``adclick install`` has not run."""


@dataclass(frozen=True)
class SparkRuntime:
    jars: tuple[Path, ...]
    java17_home: Path
    s3a_jars: tuple[Path, ...] = ()
    """hadoop-aws and the AWS SDK, for an ``s3a://`` lake (on the class path, not in ``spark.jars``)."""


def record_path(settings: Settings) -> Path:
    return settings.cache_dir / "spark" / RECORD


def write_record(
    settings: Settings, jars: list[Path], java17_home: Path, s3a_jars: list[Path] | None = None
) -> Path:
    """Called by the artifact cache after an install (idempotent: rewritten every time)."""
    target = record_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "jars": [str(p) for p in jars],
        "java17_home": str(java17_home),
        "s3a_jars": [str(p) for p in s3a_jars or []],
    }
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=2))
    tmp.replace(target)
    return target


def spark_runtime(settings: Settings) -> SparkRuntime:
    """The recorded jars and Java home; a clear error when the cache is not installed."""
    target = record_path(settings)
    try:
        body = json.loads(target.read_text())
    except (OSError, ValueError):
        raise RuntimeMissing(
            f"the Spark runtime is not recorded in {target}: run `adclick install` (or `make install`) first"
        ) from None
    jars = tuple(Path(p) for p in body["jars"])
    s3a = tuple(Path(p) for p in body.get("s3a_jars", []))
    missing = [str(p) for p in (*jars, *s3a) if not p.is_file()]
    if missing:
        raise RuntimeMissing(
            f"jars recorded in {target} are missing ({missing[0]} ...): run `adclick install`"
        )
    home = settings.java17_home or Path(body["java17_home"])
    return SparkRuntime(jars=jars, java17_home=home, s3a_jars=s3a)
