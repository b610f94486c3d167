"""Unit tier fixtures. ``spark`` is a plain local session (no Kafka/Delta jars, no services)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def spark():
    from adclick.settings import get_settings
    from infra.java import java17_home

    settings = get_settings()
    os.environ.setdefault("JAVA_HOME", str(java17_home(settings)))
    os.environ["SPARK_LOCAL_IP"] = settings.bind_host
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("adclick-unit")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.host", settings.bind_host)
        .getOrCreate()
    )
    yield session
    session.stop()
