"""A JVM client on the serving views: the Trino JDBC driver (476) gives what the Python client gives.

``tests/integration/jdbc/JdbcQuery.java`` runs with Java 17's source launcher (no build step),
the driver jar from the artifact cache on its class path, as the analyst user a BI tool would use.
The data comes from ``serving_data`` (tests/integration/serving_data.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from trino.exceptions import TrinoUserError

from adclick.settings import Settings

if TYPE_CHECKING:
    from serving_data import ServingData

pytestmark = pytest.mark.integration
pytest_plugins = ("serving_data",)  # the shared data fixture (see tests/integration/test_serving.py)

PROGRAM = Path(__file__).resolve().parent / "jdbc" / "JdbcQuery.java"
ATTEMPTS = 3


def _jdbc_url(settings: Settings) -> str:
    return f"jdbc:trino://{settings.trino_host}:{settings.trino_port}/{settings.trino_catalog}/serving"


def _jdbc(settings: Settings, user: str, sql: str) -> subprocess.CompletedProcess:
    from infra.artifacts import trino_jdbc_jar
    from infra.java import java17_home

    java = java17_home(settings) / "bin" / "java"
    command = [str(java), "-cp", str(trino_jdbc_jar(settings)), str(PROGRAM), _jdbc_url(settings), user, sql]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def _python(settings: Settings, sql: str, user: str) -> list[list]:
    from serving.trino_client import query

    return query(settings, sql, user=user)[1]


def test_jdbc_reads_the_daily_view_like_the_python_client(serving_data: ServingData) -> None:
    s = serving_data.settings
    analyst = s.trino_analyst_user
    sql = f"SELECT count(*), sum(clicks) FROM {s.trino_catalog}.serving.ad_clicks_daily"
    # The stream may still add to today's rows: compare the JDBC answer with a Python answer that
    # was the same just before and just after it.
    for _ in range(ATTEMPTS):
        before = _python(s, sql, analyst)
        run = _jdbc(s, analyst, sql)
        after = _python(s, sql, analyst)
        assert run.returncode == 0, run.stderr[-3000:]
        if before == after:
            break
    assert before == after, "the view kept changing under the comparison"
    (count, clicks) = before[0]
    assert count > 0 and clicks > 0
    assert [line.split("\t") for line in run.stdout.splitlines()] == [[str(count), str(clicks)]]


def test_jdbc_analyst_is_refused_bronze_like_the_python_client(serving_data: ServingData) -> None:
    s = serving_data.settings
    sql = f"SELECT count(*) FROM {s.trino_catalog}.bronze.events"
    with pytest.raises(TrinoUserError) as refused:
        _python(s, sql, s.trino_analyst_user)
    assert refused.value.error_name == "PERMISSION_DENIED"

    run = _jdbc(s, s.trino_analyst_user, sql)
    assert run.returncode == 1
    assert run.stdout == ""
    assert "Access Denied" in run.stderr
