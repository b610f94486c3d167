"""Registers the lake's Delta tables in Trino's ``delta`` catalog (idempotent, safe to re-run).

Reads the table catalog; writes Trino's file metastore (one entry per table). Tables whose Delta
log does not exist yet are skipped and reported, not created empty.
"""

from __future__ import annotations

from pathlib import Path

from adclick.catalog import TABLES, Table
from adclick.settings import Settings
from serving.trino_client import register_table


def delta_log_exists(settings: Settings, table: Table) -> bool | None:
    """True/False for a local or an ``s3a://`` lake (on ``ADCLICK_S3_ENDPOINT``); None for any
    other remote lake (let Trino decide)."""
    if settings.lake_bucket:
        from adclick.s3 import client

        key = table.path(settings).removeprefix(f"s3a://{settings.lake_bucket}/") + "/_delta_log/"
        listed = client(settings).list_objects_v2(Bucket=settings.lake_bucket, Prefix=key, MaxKeys=1)
        return listed.get("KeyCount", 0) > 0
    if not settings.lake_is_local:
        return None
    return (Path(table.path(settings).removeprefix("file://")) / "_delta_log").is_dir()


def register_all(settings: Settings, tables: list[Table] | None = None) -> dict[str, str]:
    """Register every table that exists; returns ``{logical name: registered|present|absent}``."""
    result = {}
    for table in tables or list(TABLES.values()):
        if delta_log_exists(settings, table) is False:
            result[table.logical_name] = "absent"
            continue
        result[table.logical_name] = "registered" if register_table(settings, table) else "present"
    return result
