"""The cluster profile's Spark standalone cluster: a master and ``ADCLICK_SPARK_WORKERS`` workers.

Both run from the pyspark distribution (``spark-class org.apache.spark.deploy.master.Master`` /
``...worker.Worker``), on Java 17, bound to ``bind_host``, in the Spark CPU cgroup and at Spark's
niceness (executors are the workers' children and inherit both). The stream app and the batch
jobs reach them through ``ADCLICK_SPARK_MASTER`` (``spark://127.0.0.1:7077``, which the cluster
profile sets), in client mode: the driver stays in the app's process, executors run on the
workers. Each worker offers ``ADCLICK_SPARK_WORKER_CORES`` cores and ``ADCLICK_SPARK_WORKER_MEMORY``;
an application takes ``ADCLICK_SPARK_CORES_MAX`` cores at most, so the stream app and a batch job
run side by side. A worker killed mid-job loses its executors; Spark reruns their tasks on the
others, and supervisord restarts the worker, which registers again.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from adclick.priority import SPARK_CGROUP, in_cgroup
from adclick.settings import Settings
from infra.java import java17_home
from infra.service import Service, http_ok

MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"
DAEMON_MEMORY = "512m"  # the master's and each worker's own heap (executors have their own)
# A worker deletes a finished application's folder (its jars and executor logs) after a day.
CLEANUP = "-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.appDataTtl=86400"


def spark_dir(s: Settings) -> Path:
    return s.path("spark")


def _spark_class() -> str:
    import pyspark

    return str(Path(pyspark.__file__).resolve().parent / "bin" / "spark-class")


def master_url(s: Settings) -> str:
    return f"spark://{s.bind_host}:{s.spark_standalone_port}"


def master_ui(s: Settings) -> str:
    return f"http://{s.bind_host}:{s.spark_standalone_ui_port}"


def worker_ui_port(s: Settings, n: int) -> int:
    return s.spark_standalone_ui_port + n


def _env(s: Settings, *, daemon_opts: str = "") -> dict[str, str]:
    env = {
        "JAVA_HOME": str(java17_home(s)),
        "SPARK_LOCAL_IP": s.bind_host,
        "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
        "SPARK_LOCAL_DIRS": str(spark_dir(s) / "local"),
        "PYSPARK_PYTHON": sys.executable,  # the executors' Python workers: this environment's
    }
    if daemon_opts:
        env["SPARK_DAEMON_JAVA_OPTS"] = daemon_opts
    return env


def _niced(s: Settings, command: list[str]) -> list[str]:
    niced = ["nice", "-n", str(s.spark_nice), *command] if s.spark_nice else command
    return in_cgroup(SPARK_CGROUP, s.spark_cpu_weight, niced)


def master_state(s: Settings) -> dict | None:
    """The master's ``/json/`` (status, workers), or None when it does not answer."""
    try:
        r = httpx.get(f"{master_ui(s)}/json/", timeout=2)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def alive_workers(s: Settings) -> list[dict]:
    """The workers the master holds as ALIVE."""
    state = master_state(s) or {}
    return [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]


def _worker_registered(s: Settings, n: int) -> bool:
    ui = f"http://{s.bind_host}:{worker_ui_port(s, n)}"
    return any(w.get("webuiaddress") == ui for w in alive_workers(s))


def master_service(s: Settings) -> Service:
    d = spark_dir(s)
    return Service(
        name="spark-master",
        command=_niced(
            s,
            [
                _spark_class(),
                MASTER,
                "--host",
                s.bind_host,
                "--port",
                str(s.spark_standalone_port),
                "--webui-port",
                str(s.spark_standalone_ui_port),
            ],
        ),
        env=_env(s, daemon_opts="-Dspark.deploy.retainedApplications=50"),
        cwd=d,
        port=s.spark_standalone_port,
        url=master_ui(s),
        note=master_url(s),
        health=lambda: http_ok(f"{master_ui(s)}/json/", lambda r: r.status_code == 200 and "ALIVE" in r.text),
        prepare=lambda: (d / "local").mkdir(parents=True, exist_ok=True),
        start_timeout=60,
    )


def worker_service(s: Settings, n: int) -> Service:
    d = spark_dir(s)
    work = d / f"worker-{n}"
    return Service(
        name=f"spark-worker-{n}",
        command=_niced(
            s,
            [
                _spark_class(),
                WORKER,
                "--host",
                s.bind_host,
                "--cores",
                str(s.spark_worker_cores),
                "--memory",
                s.spark_worker_memory,
                "--work-dir",
                str(work),
                "--webui-port",
                str(worker_ui_port(s, n)),
                master_url(s),
            ],
        ),
        # Finished applications' folders (their jars and logs) go after a day.
        env=_env(
            s, daemon_opts="-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.appDataTtl=86400"
        ),
        cwd=d,
        port=worker_ui_port(s, n),
        url=f"http://{s.bind_host}:{worker_ui_port(s, n)}",
        health=lambda: _worker_registered(s, n),
        prepare=lambda: work.mkdir(parents=True, exist_ok=True),
        start_timeout=90,
    )


def spark_services(s: Settings) -> list[Service]:
    """The standalone master and its workers (the cluster profile), else none."""
    if s.stack_profile != "cluster":
        return []
    return [master_service(s), *(worker_service(s, n) for n in range(1, s.spark_workers + 1))]
