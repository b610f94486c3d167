"""Query API, pipeline health: ``GET /v1/pipeline`` over the fake Trino and fake probes, the stream
heartbeat probe (a temp status file, a fake lag), the Airflow client (httpx's mock transport, no
Airflow) and the probes' memo."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from query_api_fakes import NOW, FakeClock, FakeExecutor, TestClient, fake_probes, ts

from adclick import stream_status
from adclick.settings import Settings
from query_api.airflow_runs import AirflowRuns
from query_api.app import create_app
from query_api.executor import QueryUnavailable
from query_api.pipeline_probes import Memo, stream_health

RECON_COLUMNS = (
    "day", "speed_total", "gold_total", "diff", "late_dropped", "late_counted", "duplicates",
    "fraud_reclassified", "unexplained", "drift", "passed", "checked_at",
)  # fmt: skip
JOB_COLUMNS = ("job", "day", "started_at", "finished_at", "status", "rows_in", "rows_out", "message")
STREAM = {
    "status": "ok",
    "error": None,
    "age_seconds": 1.5,
    "queries": [{"query": "speed_minute", "lag": 12}],
}
AIRFLOW = {"status": "ok", "error": None, "dags": [{"dag_id": "daily_batch", "runs": [{"state": "success"}]}]}


def _app(fake: FakeExecutor, **probes: Any) -> TestClient:
    app = create_app(Settings(), fake, clock=lambda: NOW, monotonic=FakeClock(), probes=fake_probes(**probes))
    return TestClient(app)


def test_pipeline_reports_reconciliation_jobs_stream_and_airflow(fake: FakeExecutor) -> None:
    fake.answer(
        "serving.reconciliation_latest",
        RECON_COLUMNS,
        [
            (date(2026, 1, 9), 1012, 1000, 12, 3, 5, 0, 0, 9, 0.009, True, ts("2026-01-10 03:10:00")),
            (date(2026, 1, 8), 990, 1000, -10, 10, 0, 0, 0, 0, 0.0, True, ts("2026-01-09 03:10:00")),
        ],
    )
    fake.answer(
        "serving.job_runs_latest",
        JOB_COLUMNS,
        [
            (
                "gold",
                date(2026, 1, 9),
                ts("2026-01-10 03:00:00"),
                ts("2026-01-10 03:04:00"),
                "succeeded",
                9,
                4,
                None,
            )
        ],
    )
    with _app(fake, stream=STREAM, airflow=AIRFLOW) as client:
        r = client.get("/v1/pipeline", params={"days": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["now"] == "2026-01-10T12:00:30Z"
    rec = body["reconciliation"]
    assert rec["status"] == "ok" and rec["error"] is None
    assert [(d["day"], d["diff"], d["late_dropped"], d["passed"]) for d in rec["days"]] == [
        ("2026-01-09", 12, 3, True),
        ("2026-01-08", -10, 10, True),
    ]
    assert rec["days"][0]["checked_at"] == "2026-01-10T03:10:00Z"
    assert body["jobs"]["runs"][0] == {
        "job": "gold", "day": "2026-01-09", "started_at": "2026-01-10T03:00:00Z",
        "finished_at": "2026-01-10T03:04:00Z", "status": "succeeded", "rows_in": 9, "rows_out": 4,
        "message": None,
    }  # fmt: skip
    assert body["stream"] == STREAM and body["airflow"] == AIRFLOW
    sql = {s.split(" FROM ")[1].split(" ")[0]: (s, p) for s, p in fake.calls}
    assert sql["delta.serving.reconciliation_latest"][0].endswith("ORDER BY day DESC LIMIT ?")
    assert sql["delta.serving.reconciliation_latest"][1] == [2]
    assert sql["delta.serving.job_runs_latest"][1] == []


def test_pipeline_without_trino_still_answers_the_other_sections(fake: FakeExecutor) -> None:
    fake.fail = QueryUnavailable("Trino unreachable: refused")
    with _app(fake, stream=STREAM) as client:
        r = client.get("/v1/pipeline")
    assert r.status_code == 200
    body = r.json()
    for section, key in (("reconciliation", "days"), ("jobs", "runs")):
        assert body[section] == {"status": "unknown", "error": "Trino unreachable: refused", key: []}
    assert body["stream"] == STREAM and body["airflow"]["status"] == "unknown"


def test_pipeline_parameters_are_checked(client: TestClient, fake: FakeExecutor) -> None:
    for params, parameter in (({"days": 0}, "days"), ({"days": 93}, "days"), ({"day": 3}, "day")):
        r = client.get("/v1/pipeline", params=params)
        assert r.status_code == 400 and r.json()["parameter"] == parameter, r.text
    assert "days" in client.get("/v1/pipeline", params={"day": 3}).json()["reason"]  # the known names
    assert fake.calls == []
    assert client.get("/v1/pipeline").json()["reconciliation"] == {"status": "ok", "error": None, "days": []}
    (reconciliation,) = [p for s, p in fake.calls if "reconciliation_latest" in s]
    assert reconciliation == [7]  # the default: a week of checks


# --- the stream heartbeat -------------------------------------------------------------------------


def _beat(settings: Settings, updated_at: float, **queries: dict[str, Any]) -> None:
    target = stream_status.path(settings)
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"updated_at": updated_at, "pid": 1, "queries": queries}))


def test_stream_health_reads_the_heartbeat_and_the_lag(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert stream_health(settings)["status"] == "unknown"
    assert str(tmp_path) in stream_health(settings)["error"]  # says where it looked
    info = {"active": True, "batch_id": 41, "input_rows": 250, "rows_per_s": 125.0, "duration_ms": 1840}
    _beat(settings, 1000.0, speed_minute={**info, "late_rows_dropped": 3}, bronze_landing=info)
    lags = {"speed_minute": 17, "bronze_landing": 0}
    health = stream_health(settings, lag=lambda s, q: lags[q], now=lambda: 1004.0)
    assert (health["status"], health["age_seconds"], health["updated_at"]) == (
        "ok",
        4.0,
        datetime.fromtimestamp(1000.0, UTC),
    )
    assert [(q["query"], q["lag"], q["duration_ms"], q["batch_id"]) for q in health["queries"]] == [
        ("bronze_landing", 0, 1840, 41),
        ("speed_minute", 17, 1840, 41),
    ]
    assert health["queries"][1]["late_rows_dropped"] == 3
    old = stream_health(settings, lag=lambda s, q: 0, now=lambda: 1000.0 + stream_status.STALE_AFTER_S)
    assert old["status"] == "stale"


def test_stream_health_with_kafka_down_keeps_the_rest(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    _beat(settings, time.time(), speed_minute={"active": False, "batch_id": 7})

    def down(settings: Settings, query: str) -> int:
        raise ConnectionError("no brokers")

    health = stream_health(settings, lag=down)
    assert health["status"] == "stale"  # fresh, but a query stopped
    (query,) = health["queries"]
    assert (query["batch_id"], query["lag"], query["lag_error"]) == (7, None, "ConnectionError: no brokers")


# --- Airflow --------------------------------------------------------------------------------------


class FakeAirflow:
    """Airflow's token, DAG list and DAG-run routes (httpx.MockTransport); counts logins."""

    def __init__(self) -> None:
        self.logins = 0
        self.valid = "t1"
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.url.path == "/auth/token":
            body = json.loads(request.content)
            if body != {"username": "admin", "password": "admin"}:
                return httpx.Response(401, json={"detail": "bad login"})
            self.logins += 1
            return httpx.Response(201, json={"access_token": self.valid})
        if request.headers.get("authorization") != f"Bearer {self.valid}":
            return httpx.Response(401, json={"detail": "expired"})
        if request.url.path == "/api/v2/dags":
            dags = [
                {"dag_id": "trino_catalog", "is_paused": False},
                {"dag_id": "daily_batch", "is_paused": True},
            ]
            return httpx.Response(200, json={"dags": dags})
        dag = request.url.path.split("/")[4]
        runs = {"daily_batch": [{"dag_run_id": "scheduled__2026-01-09", "state": "failed", "run_after": "x"}]}
        return httpx.Response(200, json={"dag_runs": runs.get(dag, []), "total_entries": 1})


def test_airflow_runs_logs_in_lists_each_dag_and_renews_the_token() -> None:
    airflow = FakeAirflow()
    runs = AirflowRuns(Settings(), client=httpx.Client(transport=httpx.MockTransport(airflow)))
    answer = runs()
    assert answer["status"] == "ok" and answer["error"] is None
    assert answer["dags"] == [
        {"dag_id": "daily_batch", "is_paused": True, "runs": [
            {"run_id": "scheduled__2026-01-09", "state": "failed", "run_type": None, "run_after": "x",
             "logical_date": None, "start_date": None, "end_date": None}]},
        {"dag_id": "trino_catalog", "is_paused": False, "runs": []},
    ]  # fmt: skip
    listing = next(r for r in airflow.seen if "dagRuns" in r.url.path)
    assert dict(listing.url.params) == {"order_by": "-run_after", "limit": "3"}  # newest first
    runs()
    assert airflow.logins == 1  # the token is kept
    airflow.valid = "t2"  # it expired: one 401, one new login, and the answer still comes
    assert runs()["status"] == "ok" and airflow.logins == 2


def test_airflow_unreachable_or_refusing_is_unknown() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    down = AirflowRuns(Settings(), client=httpx.Client(transport=httpx.MockTransport(refused)))()
    assert down["status"] == "unknown" and down["dags"] == []
    assert down["error"].startswith("Airflow unreachable: ConnectError")
    wrong = Settings(airflow_admin_password="nope")
    refusing = AirflowRuns(wrong, client=httpx.Client(transport=httpx.MockTransport(FakeAirflow())))()
    assert (
        refusing["status"] == "unknown" and refusing["error"] == "Airflow answered HTTP 401 for /auth/token"
    )


def test_memo_looks_again_only_after_its_ttl() -> None:
    clock = FakeClock()
    calls: list[int] = []
    memo = Memo(5.0, lambda: {"n": len(calls) + (calls.append(1) or 0)}, clock=clock)
    assert memo() == memo() == {"n": 0}
    clock.now += 5
    assert memo() == {"n": 1} and len(calls) == 2
