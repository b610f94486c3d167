"""Unit tier fixtures. ``spark`` is a local session with the Delta extension (no services);
``fake``, ``mono`` and ``client`` are the query API's fake executor, cache clock and test client
(:mod:`query_api_fakes`, shared by the ``test_query_api_*`` modules)."""

from __future__ import annotations

import pytest
from query_api_fakes import client, fake, mono  # noqa: F401 (fixtures, found by pytest here)


@pytest.fixture(scope="session")
def spark():
    """A local session with the Delta extension (jars from the artifact cache), UI off, 2 shuffle
    partitions. Delta here is a library, not a service: unit tests may write to a temp lake."""
    from adclick.settings import get_settings
    from adclick.spark import get_spark

    session = get_spark(
        "adclick-unit", settings=get_settings(), extra_conf={"spark.sql.shuffle.partitions": "2"}
    )
    yield session
    session.stop()
