"""The lake table catalog: logical name -> Delta path -> Trino name.

Every layer looks tables up here rather than building paths, so moving the lake from ``file://``
to ``s3a://`` is a settings change.
"""

from __future__ import annotations

from dataclasses import dataclass

from adclick.settings import Settings, get_settings


@dataclass(frozen=True)
class Table:
    layer: str
    name: str
    partition_by: tuple[str, ...] = ()
    description: str = ""

    @property
    def logical_name(self) -> str:
        return f"{self.layer}.{self.name}"

    def path(self, settings: Settings | None = None) -> str:
        root = (settings or get_settings()).lake_root.rstrip("/")
        return f"{root}/{self.layer}/{self.name}"

    def trino_name(self, settings: Settings | None = None) -> str:
        catalog = (settings or get_settings()).trino_catalog
        return f"{catalog}.{self.layer}.{self.name}"


LAYERS = ("bronze", "silver", "speed", "gold", "ops", "dims")

TABLES: dict[str, Table] = {
    t.logical_name: t
    for t in [
        Table("bronze", "events", ("event_date", "region"), "one row per Kafka record of a valid event"),
        Table(
            "bronze",
            "rejects",
            ("reject_date",),
            "one row per Kafka record that failed parsing or validation",
        ),
        Table("speed", "ad_clicks_minute", ("window_date",), "minute x ad x campaign x country x device"),
        Table(
            "speed", "ad_clicks_5min", ("window_date",), "5-minute window (sliding by 1) x ad x dimensions"
        ),
        Table("speed", "top_ads_minute", ("window_date",), "top ads by non-fraud clicks, minute x rank"),
    ]
}


def table(logical_name: str) -> Table:
    """Look a table up by ``layer.name``; a clear error names the known ones."""
    try:
        return TABLES[logical_name]
    except KeyError:
        raise KeyError(f"unknown table {logical_name!r}; known: {', '.join(sorted(TABLES))}") from None
